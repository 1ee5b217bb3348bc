"""What calling does with one aligned sample (a ``ScatterWork``): cut the genome into regions,
call a region (reading just that region's reads from the BAM in the object store), and gather
the regions into the sample's one normalised, indexed, checked VCF and its ``VariantsCalled``.

Idempotent by construction (see ``genomebus_common.stagekit.scatter`` and ``stage``): the plan,
each region's result and the sample's event are records beside the outputs, written after them.
What every scattered stage does alike is ``StageWork``'s; this module states what is calling's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genomebus_common.contracts.events import (
    Producer,
    SampleAligned,
    SampleEvent,
    Stage,
    VariantsCalled,
)
from genomebus_common.stagekit.energy import estimate
from genomebus_common.stagekit.scatter import ScatterPlan, ScatterStore, UnitResult
from genomebus_common.stagekit.tools import ResourceMeter
from genomebus_common.stagekit.work import StageWork, chained_tool, unit_result

from .config import CallingSettings
from .core.regions import region_units
from .ports import CallerTools, References, StageObjects

PRODUCER = Producer(service="calling", version="0.2.0")
#: The record of the sample's event, beside its VCF.
RECORD = "variants-called.json"


@dataclass
class CallingWork(StageWork[SampleAligned]):
    """Calling's ``ScatterWork``: units are regions of the genome."""

    settings: CallingSettings
    store: StageObjects
    references: References
    tools: CallerTools

    stage = Stage.CALLING
    event_type = VariantsCalled
    source_type = SampleAligned
    unit_kind = "region"

    @property
    def limits(self) -> CallingSettings:
        return self.settings

    @property
    def output_bucket(self) -> str:
        return self.settings.variants_bucket

    def plan(
        self, source: SampleEvent, scatter: ScatterStore, workdir: Path
    ) -> list[dict[str, Any]]:
        """Check the BAM (complete, sorted, this reference's) and cut its contigs into regions."""
        assert isinstance(source, SampleAligned)
        reference_fasta, _ = self.references.materialise(source.reference)
        self.tools.check_bam(source.bam, reference_fasta)
        contigs = self.tools.contigs(source.bam)
        return region_units(contigs, self.settings.region_size_bp, source.bam.size)

    def unit_input_bytes(self, plan: ScatterPlan, index: int) -> int:
        return int(plan.units[index]["bam_share_bytes"])

    def work(
        self, plan: ScatterPlan, index: int, scatter: ScatterStore, workdir: Path
    ) -> UnitResult:
        source = self.source(plan)
        reference_fasta, _ = self.references.materialise(source.reference)
        bai = self.store.download(source.bam_index, workdir / "input.bam.bai")
        calls = self.tools.call(
            source.bam, bai, reference_fasta, workdir / "out", plan.units[index]["regions"]
        )
        bcf = self.keep_unit_output(scatter, index, "calls.bcf", calls.bcf)
        return unit_result(index, {"bcf": bcf}, {"tool": calls.tool.model_dump(mode="json")})

    def gather(
        self,
        plan: ScatterPlan,
        results: list[UnitResult],
        scatter: ScatterStore,
        workdir: Path,
        meter: ResourceMeter,
    ) -> VariantsCalled:
        started = time.monotonic()
        source = self.source(plan)
        reference_fasta, _ = self.references.materialise(source.reference)
        bcfs = self.fetch_unit_outputs(results, "bcf", workdir, ".bcf")
        gathered = self.tools.gather(bcfs, reference_fasta, workdir / "gather")
        refs = self.keep_sample_outputs(
            scatter,
            source.sample_id,
            {".vcf.gz": (gathered.vcf, "application/gzip"), ".vcf.gz.tbi": (gathered.tbi, None)},
        )
        return source.follow_on(
            VariantsCalled,
            PRODUCER,
            bam=source.bam,
            vcf=refs[".vcf.gz"],
            vcf_index=refs[".vcf.gz.tbi"],
            counts=gathered.counts,
            # bcftools as a unit ran it, then the gather's concat | norm; the index
            tools=[
                chained_tool(results[0].details["tool"], gathered.tools[0].command),
                gathered.tools[1],
            ],
            energy=estimate(meter, self.settings),
            scatter=self.summary(len(results), started),
        )


__all__ = ["PRODUCER", "RECORD", "CallingWork"]
