"""The ``AlignerTools`` port on the real tools: ``pipeline``'s functions with this node's
threads and sort memory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from genomebus_common.contracts.events import ReadGroup
from genomebus_common.stagekit.work import ReadStream

from ..core.results import Aligner, AlignmentResult, GatheredAlignment, UnitAlignment
from .pipeline import align, align_unit, gather_alignments


@dataclass(frozen=True)
class SamtoolsAligner:
    """bwa or minimap2, then samtools, as ``pipeline`` runs them."""

    threads: int
    sort_memory_mb: int

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
        return align_unit(
            r1,
            r2,
            reference_fasta,
            read_group,
            workdir,
            aligner=aligner,
            threads=self.threads,
            sort_memory_mb=self.sort_memory_mb,
            batch_bases=batch_bases,
            first_pair=first_pair,
        )

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
        return align(
            r1,
            r2,
            reference_fasta,
            read_group,
            workdir,
            aligner=aligner,
            threads=self.threads,
            sort_memory_mb=self.sort_memory_mb,
            batch_bases=batch_bases,
        )

    def gather(
        self,
        unit_bams: Sequence[Path],
        reference_fasta: Path,
        workdir: Path,
        *,
        expected_pairs: int,
    ) -> GatheredAlignment:
        bam, bai, stats, metrics, tool = gather_alignments(
            list(unit_bams),
            reference_fasta,
            workdir,
            expected_pairs=expected_pairs,
            threads=self.threads,
        )
        return GatheredAlignment(bam=bam, bai=bai, markdup_stats=stats, metrics=metrics, tool=tool)


__all__ = ["SamtoolsAligner"]
