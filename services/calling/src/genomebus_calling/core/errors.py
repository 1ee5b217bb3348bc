"""What calling refuses: a BAM it cannot call, whichever part finds it."""

from __future__ import annotations

from genomebus_common.contracts.errors import PermanentError


class ReferenceMismatch(PermanentError):
    """The BAM was aligned to another reference than the one it is to be called against."""

    code = "reference_mismatch"


class InvalidAlignment(PermanentError):
    """The BAM is unusable for calling (truncated, unsorted, missing)."""

    code = "invalid_alignment"


__all__ = ["InvalidAlignment", "ReferenceMismatch"]
