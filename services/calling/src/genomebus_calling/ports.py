"""What calling's work needs from outside: the object store, the reference genomes, and the
caller's tools (which read the BAM where it is stored, by ranges). The work is written against
these, so it runs on in-memory stand-ins in tests and on MinIO, the reference cache and
samtools/bcftools in the service (``inject``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from genomebus_common.contracts.events import ObjectRef
from genomebus_common.stagekit.work import References, StageObjects

from .core.results import GatheredCalls, RegionCalls


class CallerTools(Protocol):
    """samtools and bcftools, reading a stored BAM by ranges, with the node's threads set."""

    def check_bam(self, bam: ObjectRef, reference_fasta: Path) -> None:
        """Raise unless the BAM is complete, coordinate-sorted and aligned to this reference."""
        ...

    def contigs(self, bam: ObjectRef) -> list[tuple[str, int]]:
        """The BAM header's (name, length) per @SQ, in order."""
        ...

    def call(
        self,
        bam: ObjectRef,
        bam_index: Path,
        reference_fasta: Path,
        workdir: Path,
        regions: Sequence[str],
    ) -> RegionCalls:
        """Call ``regions`` of the stored BAM (its index downloaded to ``bam_index``)."""
        ...

    def gather(
        self, unit_bcfs: Sequence[Path], reference_fasta: Path, workdir: Path
    ) -> GatheredCalls:
        """The units' calls concatenated in genome order, normalised, indexed and checked."""
        ...


__all__ = ["CallerTools", "References", "StageObjects"]
