"""What alignment refuses, whichever part finds it: the planner, a unit, or the gather."""

from __future__ import annotations

from genomebus_common.contracts.errors import PermanentError, ToolFailed


class ReferenceNotIndexed(PermanentError):
    """The reference lacks the aligner's index: the registry must run ``index_reference``."""

    code = "reference_not_indexed"


class ReadCountMismatch(ToolFailed):
    """The BAM does not hold one primary record per input read: reads were lost or invented."""

    code = "read_count_mismatch"


__all__ = ["ReadCountMismatch", "ReferenceNotIndexed"]
