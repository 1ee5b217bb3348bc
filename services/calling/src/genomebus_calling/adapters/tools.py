"""The ``CallerTools`` port on the real tools: ``pipeline``'s functions, reaching stored BAMs
through htslib's S3 support with this service's credentials, and this node's threads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from genomebus_common.contracts.events import ObjectRef
from genomebus_common.runtime.objectstore import HtslibS3

from ..core.results import GatheredCalls, RegionCalls
from .pipeline import bam_contigs, call_unit, check_remote_bam, gather_calls


@dataclass(frozen=True)
class BcftoolsCaller:
    """bcftools mpileup | call per unit, concat | norm for the gather."""

    htslib: HtslibS3
    threads: int

    def check_bam(self, bam: ObjectRef, reference_fasta: Path) -> None:
        check_remote_bam(self.htslib.url(bam), reference_fasta, self.htslib.env())

    def contigs(self, bam: ObjectRef) -> list[tuple[str, int]]:
        contigs, _ = bam_contigs(self.htslib.url(bam), self.htslib.env())
        return contigs

    def call(
        self,
        bam: ObjectRef,
        bam_index: Path,
        reference_fasta: Path,
        workdir: Path,
        regions: Sequence[str],
    ) -> RegionCalls:
        bcf, tool = call_unit(
            f"{self.htslib.url(bam)}##idx##{bam_index}",
            reference_fasta,
            workdir,
            regions=regions,
            env=self.htslib.env(),
        )
        return RegionCalls(bcf=bcf, tool=tool)

    def gather(
        self, unit_bcfs: Sequence[Path], reference_fasta: Path, workdir: Path
    ) -> GatheredCalls:
        vcf, tbi, counts, tools = gather_calls(
            unit_bcfs, reference_fasta, workdir, threads=self.threads
        )
        return GatheredCalls(vcf=vcf, tbi=tbi, counts=counts, tools=tools)


__all__ = ["BcftoolsCaller"]
