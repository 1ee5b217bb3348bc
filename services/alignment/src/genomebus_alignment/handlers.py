"""Alignment's handlers: a received sample is cut into chunks of reads, any alignment worker
aligns a chunk, and the worker that finishes the last chunk gathers them into the sample's one
checked BAM and publishes SampleAligned.

Idempotent by construction (see ``genomebus_common.stagekit.scatter`` and ``stage``): the plan, each
chunk's result and the sample's event are records beside the outputs, written after them; a
redelivered event finds them and does no work twice. A chunk that fails is retried alone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker

from genomebus_common.contracts.events import (
    AlignmentMetrics,
    ObjectRef,
    Producer,
    SampleAligned,
    SampleEvent,
    SampleReceived,
    ScatterSummary,
    Stage,
)
from genomebus_common.runtime.broker import Delivery
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.stagekit.consent_view import ConsentView
from genomebus_common.stagekit.energy import estimate
from genomebus_common.stagekit.reference import ReferenceRegistry
from genomebus_common.stagekit.scatter import ScatterPlan, ScatterStore, UnitResult, new_attempt
from genomebus_common.stagekit.stage import ScatteredStage
from genomebus_common.stagekit.tools import ResourceMeter, time_limit_for

from .config import AlignmentSettings
from .core.chunks import ChunkRule, InvalidPairs, split_pairs
from .fastq import FastqCount, InvalidReads, counted_fastq
from .pipeline import ReadCountMismatch, align, align_unit, gather_alignments

log = logging.getLogger(__name__)
PRODUCER = Producer(service="alignment", version="0.2.0")
RECORD = "sample-aligned.json"


class _UploadingSink:
    """A chunk's two gzip files, written to scratch and uploaded when the chunk is complete."""

    def __init__(self, scatter: ScatterStore, workdir: Path, index: int, plan: str) -> None:
        self.scatter, self.index, self.plan = scatter, index, plan
        self.paths = [workdir / f"chunk{index}.r{m + 1}.fq.gz" for m in range(2)]
        self.files = [p.open("wb") for p in self.paths]
        self.unit: dict[str, Any] | None = None
        self.uploaded: list[str] = []

    def write(self, mate: int, data: bytes) -> None:
        self.files[mate].write(data)

    def close(self, pairs: int, bases: int) -> None:
        for handle in self.files:
            handle.close()
        refs = []
        for path in self.paths:
            key = self.scatter.work_key(self.index, f"{self.plan}/{path.name.split('.', 1)[1]}")
            self.uploaded.append(key)  # before the upload: a half-done one is removed too
            refs.append(
                self.scatter.store.put_file(
                    self.scatter.bucket, key, path, content_type="application/gzip"
                )
            )
        for path in self.paths:
            path.unlink()
        self.unit = {
            "r1": refs[0].model_dump(mode="json"),
            "r2": refs[1].model_dump(mode="json"),
            "pairs": pairs,
            "bases": bases,
        }


@dataclass
class AlignmentWork:
    """What alignment does with one sample, unit by unit (``ScatterWork``)."""

    settings: AlignmentSettings
    store: ObjectStore
    references: ReferenceRegistry
    stage: Stage = Stage.ALIGNMENT
    event_type: type[SampleAligned] = SampleAligned

    @property
    def rule(self) -> ChunkRule:
        return ChunkRule.for_bases(self.settings.chunk_bases, self.settings.bwa_batch_bases)

    def plan(
        self, source: SampleEvent, scatter: ScatterStore, workdir: Path
    ) -> list[dict[str, Any]]:
        """Stream both FASTQ files once, cutting them into chunks of whole bwa batches."""
        assert isinstance(source, SampleReceived)
        self.references.materialise(source.reference)  # an unknown reference fails here, first
        rule = self.rule
        if (
            source.read_bases is not None
            and source.read_bases < rule.batch_bases * rule.batches_per_chunk
        ):
            # Fewer bases than one chunk's batches can hold: one chunk, exactly the files as
            # sent, so nothing is read, cut or stored twice.
            return [
                {
                    "r1": source.reads_r1.model_dump(mode="json"),
                    "r2": source.reads_r2.model_dump(mode="json"),
                    "pairs": source.read_pairs,
                    "bases": source.read_bases,
                    "first_pair": 0,
                    **self._identity(),
                }
            ]
        sinks: list[_UploadingSink] = []
        attempt = new_attempt()  # two plans of one sample never share chunk objects

        def open_chunk(index: int) -> _UploadingSink:
            sinks.append(_UploadingSink(scatter, workdir, index, attempt))
            return sinks[-1]

        counts = (FastqCount("R1"), FastqCount("R2"))
        try:
            with self.store.open(source.reads_r1) as r1, self.store.open(source.reads_r2) as r2:
                try:
                    pairs = split_pairs(
                        counted_fastq(r1.read, counts[0]),
                        counted_fastq(r2.read, counts[1]),
                        rule,
                        open_chunk,
                    )
                except InvalidPairs as exc:
                    raise InvalidReads(str(exc)) from exc
                finally:
                    for sink in sinks:
                        for handle in sink.files:
                            handle.close()
            if not pairs:
                raise InvalidReads("the reads files hold no reads")
            if sum(pairs) != source.read_pairs:
                raise ReadCountMismatch(
                    f"ingest counted {source.read_pairs} read pairs, alignment read {sum(pairs)}"
                )
        except BaseException:
            # No plan will name the chunks cut so far: they go now (a whole genome's worth of
            # reads would otherwise stay in the bucket after a dead-lettered sample).
            for sink in sinks:
                for key in sink.uploaded:
                    self.store.remove(scatter.bucket, key)
            raise
        units = [sink.unit for sink in sinks if sink.unit is not None]
        first = 0
        for unit in units:  # where each chunk's pairs start in the sample (bwa -J)
            unit["first_pair"] = first
            unit.update(self._identity())
            first += unit["pairs"]
        return units

    def _identity(self) -> dict[str, Any]:
        """What a chunk's records depend on besides its reads: fixed in the plan, so a rolling
        update that changes the settings never mixes two aligners or batch sizes in one BAM."""
        return {"aligner": self.settings.aligner, "batch_bases": self.settings.bwa_batch_bases}

    def time_limit(self, plan: ScatterPlan, index: int) -> float:
        unit = plan.units[index]
        size = unit["r1"]["size"] + unit["r2"]["size"]
        return time_limit_for(
            size,
            floor_s=self.settings.unit_time_floor_s,
            bytes_per_s=self.settings.unit_min_bytes_per_s,
        )

    def work(
        self, plan: ScatterPlan, index: int, scatter: ScatterStore, workdir: Path
    ) -> UnitResult:
        source = SampleReceived.model_validate(plan.source)
        unit = plan.units[index]
        reference_fasta, _ = self.references.materialise(source.reference)
        if len(plan.units) == 1:
            return self._whole(source, unit, reference_fasta, scatter, workdir)
        with (
            self.store.open(ObjectRef.model_validate(unit["r1"])) as r1,
            self.store.open(ObjectRef.model_validate(unit["r2"])) as r2,
        ):
            aligned = align_unit(
                r1,  # type: ignore[arg-type]
                r2,  # type: ignore[arg-type]
                reference_fasta,
                source.read_group,
                workdir,
                aligner=unit.get("aligner", self.settings.aligner),
                threads=self.settings.threads,
                sort_memory_mb=self.settings.sort_memory_mb,
                batch_bases=unit.get("batch_bases", self.settings.bwa_batch_bases),
                first_pair=unit["first_pair"],
            )
        if aligned.read_pairs != unit["pairs"]:
            raise ReadCountMismatch(
                f"chunk {index} was cut with {unit['pairs']} pairs, alignment read {aligned.read_pairs}"
            )
        bam = self.store.put_file(
            scatter.bucket,
            scatter.work_key(index, f"{new_attempt()}/sorted.bam"),
            aligned.bam,
            content_type="application/x-bam",
        )
        return UnitResult(
            index=index,
            outputs={"bam": bam},
            cpu_seconds=0,
            wall_seconds=0,
            details={
                "pairs": aligned.read_pairs,
                "tools": [t.model_dump(mode="json") for t in aligned.tools],
            },
        )

    def _whole(
        self,
        source: SampleReceived,
        unit: dict[str, Any],
        reference_fasta: Path,
        scatter: ScatterStore,
        workdir: Path,
    ) -> UnitResult:
        """A sample that is one chunk: its unit streams through duplicate marking and stores
        the sample's BAM itself, so its gather has nothing to merge."""
        with (
            self.store.open(ObjectRef.model_validate(unit["r1"])) as r1,
            self.store.open(ObjectRef.model_validate(unit["r2"])) as r2,
        ):
            result = align(
                r1,  # type: ignore[arg-type]
                r2,  # type: ignore[arg-type]
                reference_fasta,
                source.read_group,
                workdir,
                aligner=unit.get("aligner", self.settings.aligner),
                threads=self.settings.threads,
                sort_memory_mb=self.settings.sort_memory_mb,
                batch_bases=unit.get("batch_bases", self.settings.bwa_batch_bases),
            )
        if result.read_pairs != source.read_pairs:
            raise ReadCountMismatch(
                f"ingest counted {source.read_pairs} read pairs, alignment read {result.read_pairs}"
            )
        bucket, attempt = self.settings.alignments_bucket, new_attempt()
        bam = self.store.put_file(
            bucket,
            scatter.output_key(attempt, f"{source.sample_id}.bam"),
            result.bam,
            content_type="application/x-bam",
        )
        bai = self.store.put_file(
            bucket, scatter.output_key(attempt, f"{source.sample_id}.bam.bai"), result.bai
        )
        return UnitResult(
            index=0,
            outputs={"bam": bam, "bai": bai},
            cpu_seconds=0,
            wall_seconds=0,
            details={
                "pairs": result.read_pairs,
                "whole": True,
                "metrics": result.metrics.model_dump(mode="json"),
                "tools": [t.model_dump(mode="json") for t in result.tools],
            },
        )

    def gather(
        self,
        plan: ScatterPlan,
        results: list[UnitResult],
        scatter: ScatterStore,
        workdir: Path,
        meter: ResourceMeter,
    ) -> SampleAligned:
        started = time.monotonic()
        source = SampleReceived.model_validate(plan.source)
        if len(results) == 1 and results[0].details.get("whole"):
            return self._aligned(
                source,
                results[0].outputs["bam"],
                results[0].outputs["bai"],
                AlignmentMetrics.model_validate(results[0].details["metrics"]),
                results[0].details["tools"],
                meter,
                units=1,
                gather_seconds=0.0,
            )
        reference_fasta, _ = self.references.materialise(source.reference)
        inputs = workdir / "units"
        inputs.mkdir()
        bams = [
            self.store.download(r.outputs["bam"], inputs / f"unit{r.index:06d}.bam")
            for r in results
        ]
        bam, bai, _stats, metrics, merged = gather_alignments(
            bams,
            reference_fasta,
            workdir / "gather",
            expected_pairs=source.read_pairs,
            threads=self.settings.threads,
        )
        bucket, attempt = self.settings.alignments_bucket, new_attempt()
        bam_ref = self.store.put_file(
            bucket,
            scatter.output_key(attempt, f"{source.sample_id}.bam"),
            bam,
            content_type="application/x-bam",
        )
        bai_ref = self.store.put_file(
            bucket, scatter.output_key(attempt, f"{source.sample_id}.bam.bai"), bai
        )
        unit_tools = results[0].details["tools"]
        tools = [
            unit_tools[0],
            {**unit_tools[1], "command": f"{unit_tools[1]['command']} | {merged.command}"},
        ]
        return self._aligned(
            source,
            bam_ref,
            bai_ref,
            metrics,
            tools,
            meter,
            units=len(results),
            gather_seconds=time.monotonic() - started,
        )

    def _aligned(
        self,
        source: SampleReceived,
        bam: ObjectRef,
        bai: ObjectRef,
        metrics: AlignmentMetrics,
        tools: list[dict[str, Any]],
        meter: ResourceMeter,
        *,
        units: int,
        gather_seconds: float,
    ) -> SampleAligned:
        return SampleAligned(
            **source.carried(PRODUCER),
            bam=bam,
            bam_index=bai,
            metrics=metrics,
            tools=tools,  # type: ignore[arg-type]
            energy=estimate(meter, self.settings),
            priority=source.priority,
            scatter=ScatterSummary(
                units=units, unit_kind="read_chunk", gather_seconds=gather_seconds
            ),
        )


@dataclass
class AlignSample:
    """The alignment service's handlers: received samples, their units, and removals."""

    settings: AlignmentSettings
    store: ObjectStore
    references: ReferenceRegistry
    broker: KafkaBroker
    consent: ConsentView | None = None

    def __post_init__(self) -> None:
        self.stage = ScatteredStage(
            broker=self.broker,
            store=self.store,
            bucket=self.settings.alignments_bucket,
            work=AlignmentWork(self.settings, self.store, self.references),  # type: ignore[arg-type]
            producer=PRODUCER,
            scratch=Path(self.settings.work_dir) / "alignment",
            record_name=RECORD,
            consent=self.consent,
            floor_s=self.settings.unit_time_floor_s,
            min_bytes_per_s=self.settings.unit_min_bytes_per_s,
        )

    async def __call__(self, event: SampleReceived, delivery: Delivery) -> None:
        log.info("planning", extra={"sample_id": event.sample_id, "read_pairs": event.read_pairs})
        await self.stage.on_source(event, event.priority)


__all__ = ["RECORD", "AlignSample", "AlignmentWork"]
