"""A variant's public identity: the same allele on the same reference has the same id anywhere."""

from __future__ import annotations

import json

from genomebus_common.contracts.digests import sha512t24u

#: Our own prefix: the digest is VRS-like (sha512t24u of canonical JSON) but it is not a GA4GH
#: VRS Allele digest, so it must not claim the "ga4gh:VA." namespace.
VARIANT_ID_PREFIX = "gb:VA."


def variant_id(reference_digest: str, chrom: str, pos: int, ref: str, alt: str) -> str:
    """The stable id of one normalised allele: the same allele gives the same id anywhere.

    The reference's digest is part of the identity: the same coordinates on another assembly are
    another variant.
    """
    canonical = json.dumps(
        {"alt": alt, "chrom": chrom, "pos": pos, "ref": ref, "reference": reference_digest},
        separators=(",", ":"),
        sort_keys=True,
        ensure_ascii=False,
    ).encode()
    return VARIANT_ID_PREFIX + sha512t24u(canonical)
