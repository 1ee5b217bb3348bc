"""Calling's handlers: an aligned sample is cut into regions of the genome, any calling worker
calls a region (reading just that region's reads from the BAM in the object store), and the
worker that finishes the last region gathers them into the sample's one normalised, indexed,
checked VCF and publishes VariantsCalled.

Idempotent by construction (see ``genomebus_common.stagekit.scatter`` and ``stage``): the plan, each
region's result and the sample's event are records beside the outputs, written after them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker

from genomebus_common.contracts.events import (
    Priority,
    Producer,
    SampleAligned,
    SampleEvent,
    ScatterSummary,
    Stage,
    VariantsCalled,
)
from genomebus_common.runtime.broker import Delivery
from genomebus_common.runtime.objectstore import HtslibS3, ObjectStore
from genomebus_common.stagekit.consent_view import ConsentView
from genomebus_common.stagekit.energy import estimate
from genomebus_common.stagekit.reference import ReferenceRegistry
from genomebus_common.stagekit.scatter import ScatterPlan, ScatterStore, UnitResult, new_attempt
from genomebus_common.stagekit.stage import ScatteredStage
from genomebus_common.stagekit.tools import ResourceMeter, time_limit_for

from .config import CallingSettings
from .core.regions import plan_regions
from .pipeline import bam_contigs, call_unit, check_remote_bam, gather_calls

log = logging.getLogger(__name__)
PRODUCER = Producer(service="calling", version="0.2.0")
RECORD = "variants-called.json"


@dataclass
class CallingWork:
    """What calling does with one sample, region by region (``ScatterWork``)."""

    settings: CallingSettings
    store: ObjectStore
    references: ReferenceRegistry
    stage: Stage = Stage.CALLING
    event_type: type[VariantsCalled] = VariantsCalled

    @property
    def htslib(self) -> HtslibS3:
        return HtslibS3(self.settings)

    def plan(
        self, source: SampleEvent, scatter: ScatterStore, workdir: Path
    ) -> list[dict[str, Any]]:
        """Check the BAM (complete, sorted, this reference's) and cut its contigs into regions."""
        assert isinstance(source, SampleAligned)
        reference_fasta, _ = self.references.materialise(source.reference)
        url, env = self.htslib.url(source.bam), self.htslib.env()
        check_remote_bam(url, reference_fasta, env)
        contigs, _ = bam_contigs(url, env)
        units = plan_regions(contigs, self.settings.region_size_bp)
        sizes = dict(contigs)
        bases = [sum(_span(r, sizes) for r in regions) for regions in units]
        total = sum(sizes.values()) or 1
        return [
            {"regions": regions, "bases": n, "bam_share_bytes": source.bam.size * n // total}
            for regions, n in zip(units, bases, strict=True)
        ]

    def time_limit(self, plan: ScatterPlan, index: int) -> float:
        return time_limit_for(
            plan.units[index]["bam_share_bytes"],
            floor_s=self.settings.unit_time_floor_s,
            bytes_per_s=self.settings.unit_min_bytes_per_s,
        )

    def work(
        self, plan: ScatterPlan, index: int, scatter: ScatterStore, workdir: Path
    ) -> UnitResult:
        source = SampleAligned.model_validate(plan.source)
        reference_fasta, _ = self.references.materialise(source.reference)
        bai = self.store.download(source.bam_index, workdir / "input.bam.bai")
        bam = f"{self.htslib.url(source.bam)}##idx##{bai}"
        bcf, tool = call_unit(
            bam,
            reference_fasta,
            workdir / "out",
            regions=plan.units[index]["regions"],
            env=self.htslib.env(),
        )
        ref = self.store.put_file(
            scatter.bucket, scatter.work_key(index, f"{new_attempt()}/calls.bcf"), bcf
        )
        return UnitResult(
            index=index,
            outputs={"bcf": ref},
            cpu_seconds=0,
            wall_seconds=0,
            details={"tool": tool.model_dump(mode="json")},
        )

    def gather(
        self,
        plan: ScatterPlan,
        results: list[UnitResult],
        scatter: ScatterStore,
        workdir: Path,
        meter: ResourceMeter,
    ) -> VariantsCalled:
        started = time.monotonic()
        source = SampleAligned.model_validate(plan.source)
        reference_fasta, _ = self.references.materialise(source.reference)
        inputs = workdir / "units"
        inputs.mkdir()
        bcfs = [
            self.store.download(r.outputs["bcf"], inputs / f"unit{r.index:06d}.bcf")
            for r in results
        ]
        vcf, tbi, counts, tools = gather_calls(
            bcfs, reference_fasta, workdir / "gather", threads=self.settings.threads
        )
        bucket, attempt = self.settings.variants_bucket, new_attempt()
        vcf_ref = self.store.put_file(
            bucket,
            scatter.output_key(attempt, f"{source.sample_id}.vcf.gz"),
            vcf,
            content_type="application/gzip",
        )
        tbi_ref = self.store.put_file(
            bucket, scatter.output_key(attempt, f"{source.sample_id}.vcf.gz.tbi"), tbi
        )
        unit_tool = results[0].details["tool"]
        return VariantsCalled(
            **source.carried(PRODUCER),
            bam=source.bam,
            vcf=vcf_ref,
            vcf_index=tbi_ref,
            counts=counts,
            tools=[  # type: ignore[list-item]
                {**unit_tool, "command": f"{unit_tool['command']} | {tools[0].command}"},
                tools[1],
            ],
            energy=estimate(meter, self.settings),
            scatter=ScatterSummary(
                units=len(results), unit_kind="region", gather_seconds=time.monotonic() - started
            ),
        )


def _span(text: str, sizes: dict[str, int]) -> int:
    name, _, span = text.rpartition(":")
    start, _, end = span.partition("-")
    return int(end) - int(start) + 1 if name else sizes.get(text, 0)


@dataclass
class CallSample:
    """The calling service's handlers: aligned samples, their regions, and removals."""

    settings: CallingSettings
    store: ObjectStore
    references: ReferenceRegistry
    broker: KafkaBroker
    consent: ConsentView | None = None

    def __post_init__(self) -> None:
        self.stage = ScatteredStage(
            broker=self.broker,
            store=self.store,
            bucket=self.settings.variants_bucket,
            work=CallingWork(self.settings, self.store, self.references),  # type: ignore[arg-type]
            producer=PRODUCER,
            scratch=Path(self.settings.work_dir) / "calling",
            record_name=RECORD,
            consent=self.consent,
            floor_s=self.settings.unit_time_floor_s,
            min_bytes_per_s=self.settings.unit_min_bytes_per_s,
        )

    async def __call__(self, event: SampleAligned, delivery: Delivery) -> None:
        log.info("planning", extra={"sample_id": event.sample_id})
        await self.stage.on_source(event, event.priority or Priority.ROUTINE)


__all__ = ["RECORD", "CallSample", "CallingWork"]
