"""What alignment's work needs from outside: the object store, the reference genomes, and the
aligner's tools. The work is written against these, so it runs on in-memory stand-ins in tests
and on MinIO, the reference cache and bwa/samtools in the service (``inject``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from genomebus_common.contracts.events import ReadGroup
from genomebus_common.stagekit.work import ReadStream, References, StageObjects

from .core.results import Aligner, AlignmentResult, GatheredAlignment, UnitAlignment


class AlignerTools(Protocol):
    """The aligner and samtools, with the node's resources (threads, sort memory) set."""

    def align_unit(
        self,
        r1: ReadStream | Path,
        r2: ReadStream | Path,
        reference_fasta: Path,
        read_group: ReadGroup,
        workdir: Path,
        *,
        aligner: Aligner,
        batch_bases: int,
        first_pair: int,
    ) -> UnitAlignment:
        """One chunk into a sorted BAM, checked to hold one primary record per read."""
        ...

    def align_whole(
        self,
        r1: ReadStream | Path,
        r2: ReadStream | Path,
        reference_fasta: Path,
        read_group: ReadGroup,
        workdir: Path,
        *,
        aligner: Aligner,
        batch_bases: int,
    ) -> AlignmentResult:
        """A sample that is one chunk, aligned, duplicate-marked, indexed and checked at once."""
        ...

    def gather(
        self,
        unit_bams: Sequence[Path],
        reference_fasta: Path,
        workdir: Path,
        *,
        expected_pairs: int,
    ) -> GatheredAlignment:
        """The units' BAMs merged in unit order, duplicate-marked, indexed and checked."""
        ...


__all__ = ["AlignerTools", "References", "StageObjects"]
