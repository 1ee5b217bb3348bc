"""What the registry knows, independent of Kafka, HTTP and SQL: variant identity, VCF rows,
consent rules and the research answers' shapes (the small-count rule is ``disclosure``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, Field

from genomebus_common.contracts.errors import PermanentError
from genomebus_common.stagekit.reference import sha512t24u

from . import disclosure

#: Our own prefix: the digest is VRS-like (sha512t24u of canonical JSON) but it is not a GA4GH
#: VRS Allele digest, so it must not claim the "ga4gh:VA." namespace.
VARIANT_ID_PREFIX = "gb:VA."


class InvalidVcf(PermanentError):
    """The VCF cannot be read or is not what the contract promises (normalised, split)."""

    code = "invalid_vcf"


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


class GenotypeRow(NamedTuple):
    """One staged row: exactly the column order of the loader's staging table. (The public
    variant id is not staged: it is computed from the allele when an answer names it.)"""

    chrom: str
    pos: int
    ref: str
    alt: str
    alt_count: int
    dp: int | None
    gq: int | None


@dataclass
class ParseStats:
    records: int = 0
    genotypes: int = 0
    skipped_no_alt_call: int = 0
    skipped_symbolic: int = 0


def _int_or_none(value: object) -> int | None:
    if isinstance(value, tuple):  # Number=. fields come back as tuples
        value = value[0] if value else None
    return int(value) if isinstance(value, (int, float)) else None


def read_genotypes(
    path: Path, reference_digest: str, sample_id: str, stats: ParseStats | None = None
) -> Iterator[GenotypeRow]:
    """Stream a single-sample, normalised, split VCF as genotype rows (non-reference calls only).

    Records are expected one ALT each (``bcftools norm -m -any``); a multi-allelic record means
    the producer broke the contract, which is a permanent error rather than something to guess
    about. Symbolic and spanning-deletion alleles carry no sequence to identify and are skipped.
    """
    import pysam  # imported here: the parser is the only user and pysam is slow to import

    stats = stats if stats is not None else ParseStats()
    try:
        vcf = pysam.VariantFile(str(path))
    except (OSError, ValueError) as exc:
        raise InvalidVcf(f"cannot open the VCF: {exc}") from exc
    with vcf:
        names = list(vcf.header.samples)
        if not names:
            raise InvalidVcf("the VCF has no sample column")
        if len(names) == 1:
            column = 0
        elif sample_id in names:
            column = names.index(sample_id)
        else:
            raise InvalidVcf(f"the VCF has {len(names)} samples and none is {sample_id!r}")
        has_format_dp = "DP" in vcf.header.formats
        has_info_dp = "DP" in vcf.header.info
        has_gq = "GQ" in vcf.header.formats
        try:
            for record in vcf:
                stats.records += 1
                alts = record.alts
                if not alts:
                    continue
                if len(alts) != 1:
                    raise InvalidVcf(
                        f"{record.chrom}:{record.pos} has {len(alts)} ALT alleles; the registry "
                        "takes normalised VCFs split to one ALT per record"
                    )
                alt = alts[0].upper()
                if alt.startswith("<") or alt == "*" or "[" in alt or "]" in alt:
                    stats.skipped_symbolic += 1
                    continue
                call = record.samples[column]
                gt = call.get("GT") or ()
                alt_count = sum(1 for allele in gt if allele == 1)
                if alt_count == 0:
                    stats.skipped_no_alt_call += 1
                    continue
                if alt_count > 2:
                    raise InvalidVcf(f"{record.chrom}:{record.pos}: more than two ALT copies")
                dp = _int_or_none(call.get("DP")) if has_format_dp else None
                if dp is None and has_info_dp:
                    dp = _int_or_none(record.info.get("DP"))
                gq = _int_or_none(call.get("GQ")) if has_gq else None
                chrom, pos, ref = record.chrom, record.pos, record.ref.upper()
                stats.genotypes += 1
                yield GenotypeRow(chrom, pos, ref, alt, alt_count, dp, gq)
        except (OSError, ValueError) as exc:
            raise InvalidVcf(f"the VCF is malformed after {stats.records} records: {exc}") from exc


# --- consent ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentState:
    """The consent projection of one patient; ``version`` None means no consent on record."""

    version: int | None
    analysis_consent_given: bool | None
    research_use: str | None
    withdrawn: bool | None

    @property
    def forbids_use(self) -> str | None:
        """Why the data must not be used at all (the sample is quarantined), or None.

        No consent on record is not a reason to quarantine: consent may arrive after the sample,
        and the views deny every use until it does.
        """
        if self.version is None:
            return None
        if self.withdrawn:
            return f"consent withdrawn (version {self.version})"
        if not self.analysis_consent_given:
            return f"no analysis consent (version {self.version})"
        return None


# --- disclosure ---------------------------------------------------------------------------------


class AlleleCounts(BaseModel):
    """Research counts of one allele on one reference, over research-consenting patients, as
    ``disclosure`` lets them be shown: an int is exact, a string is a bound."""

    variant_id: str
    reference_digest: str
    chrom: str
    pos: int
    ref: str
    alt: str
    carriers: int | str
    allele_count: int | str
    allele_number: int | str
    allele_frequency: float | None
    suppressed: str | None = Field(
        None, description="Why some counts are withheld (small-cell rule); absent when none is."
    )

    @classmethod
    def disclose(
        cls, *, carriers: int, allele_count: int, samples: int, threshold: int, **ident: object
    ) -> AlleleCounts:
        """The counts over ``samples`` research patients, small cells withheld (disclosure.py)."""
        shown = disclosure.disclose(disclosure.Cells(samples, carriers, allele_count), threshold)
        return cls(**shown._asdict(), **ident)  # type: ignore[arg-type]


class AlleleAnswer(BaseModel):
    chrom: str
    pos: int
    ref: str
    alt: str
    results: list[AlleleCounts]


class RegionCursor(BaseModel):
    """Where a region page ended: the last variant's reference and key, opaque to clients."""

    reference_digest: str
    key: int

    def encode(self) -> str:
        raw = json.dumps([self.reference_digest, self.key]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> RegionCursor:
        """Raises ValueError for anything that is not a cursor this service handed out."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            digest, key = json.loads(raw)
            if not isinstance(key, int) or isinstance(key, bool) or not 0 <= key < 1 << 63:
                raise ValueError("not a key")
            return cls(reference_digest=digest, key=key)
        except (ValueError, TypeError) as exc:
            raise ValueError("not a region cursor from this service") from exc


class RegionAnswer(BaseModel):
    chrom: str
    start: int
    end: int
    variants: list[AlleleCounts]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; absent on the last page."
    )


class PatientVariant(BaseModel):
    sample_id: str
    variant_id: str
    reference_digest: str
    chrom: str
    pos: int
    ref: str
    alt: str
    zygosity: str
    alt_count: int
    dp: int | None
    gq: int | None


class PatientSample(BaseModel):
    sample_id: str
    hospital_id: str | None
    reference_id: str
    reference_digest: str


class PatientVariants(BaseModel):
    patient_pseudonym: str
    samples: list[PatientSample]
    variants: list[PatientVariant] = Field(
        description="A page of the patient's variants, sample by sample in position order."
    )
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; absent on the last page."
    )


class PatientCursor(BaseModel):
    """Where a page of a patient's variants ended (a block and a call in it), opaque."""

    position: tuple[int, int, int, int]

    def encode(self) -> str:
        return base64.urlsafe_b64encode(json.dumps(self.position).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> PatientCursor:
        """Raises ValueError for anything that is not a cursor this service handed out."""
        try:
            raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if (
                not isinstance(raw, list)
                or len(raw) != 4
                or not all(type(v) is int and 0 <= v < 1 << 31 for v in raw)
            ):
                raise ValueError("not a position")
            return cls(position=tuple(raw))
        except (ValueError, TypeError) as exc:
            raise ValueError("not a patient cursor from this service") from exc
