"""What alignment does with one sample (a ``ScatterWork``): cut its reads into chunks, align a
chunk, and gather the chunks into the sample's one checked BAM and its ``SampleAligned``.

Idempotent by construction (see ``genomebus_common.stagekit.scatter`` and ``stage``): the plan,
each chunk's result and the sample's event are records beside the outputs, written after them;
a redelivered event finds them and does no work twice. A chunk that fails is retried alone.
What every scattered stage does alike (keeping outputs per attempt, time limits, fetching the
units' outputs) is ``StageWork``'s; this module states what is alignment's own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genomebus_common.contracts.events import (
    AlignmentMetrics,
    ObjectRef,
    Producer,
    SampleAligned,
    SampleEvent,
    SampleReceived,
    Stage,
)
from genomebus_common.stagekit.energy import estimate
from genomebus_common.stagekit.scatter import ScatterPlan, ScatterStore, UnitResult, new_attempt
from genomebus_common.stagekit.tools import ResourceMeter
from genomebus_common.stagekit.work import StageWork, chained_tool, unit_result

from .adapters.chunk_sink import UploadingSink
from .config import AlignmentSettings
from .core.chunks import ChunkRule, InvalidPairs, split_pairs
from .core.fastq import FastqCount, InvalidReads, counted_fastq
from .core.units import (
    UnitIdentity,
    fits_one_chunk,
    number_units,
    require_pairs,
    whole_sample_unit,
)
from .ports import AlignerTools, References, StageObjects

PRODUCER = Producer(service="alignment", version="0.2.0")
#: The record of the sample's event, beside its BAM.
RECORD = "sample-aligned.json"


@dataclass
class AlignmentWork(StageWork[SampleReceived]):
    """Alignment's ``ScatterWork``: units are chunks of read pairs."""

    settings: AlignmentSettings
    store: StageObjects
    references: References
    tools: AlignerTools

    stage = Stage.ALIGNMENT
    event_type = SampleAligned
    source_type = SampleReceived
    unit_kind = "read_chunk"

    @property
    def limits(self) -> AlignmentSettings:
        return self.settings

    @property
    def output_bucket(self) -> str:
        return self.settings.alignments_bucket

    @property
    def rule(self) -> ChunkRule:
        return ChunkRule.for_bases(self.settings.chunk_bases, self.settings.bwa_batch_bases)

    @property
    def identity(self) -> UnitIdentity:
        return UnitIdentity(self.settings.aligner, self.settings.bwa_batch_bases)

    def plan(
        self, source: SampleEvent, scatter: ScatterStore, workdir: Path
    ) -> list[dict[str, Any]]:
        """Stream both FASTQ files once, cutting them into chunks of whole bwa batches."""
        assert isinstance(source, SampleReceived)
        self.references.materialise(source.reference)  # an unknown reference fails here, first
        rule = self.rule
        if fits_one_chunk(source.read_bases, rule):
            return [
                whole_sample_unit(
                    source.reads_r1.model_dump(mode="json"),
                    source.reads_r2.model_dump(mode="json"),
                    source.read_pairs,
                    source.read_bases,
                    self.identity,
                )
            ]
        sinks: list[UploadingSink] = []
        attempt = new_attempt()  # two plans of one sample never share chunk objects

        def open_chunk(index: int) -> UploadingSink:
            sinks.append(UploadingSink(self.store, scatter, workdir, index, attempt))
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
                        sink.close_files()
            if not pairs:
                raise InvalidReads("the reads files hold no reads")
            require_pairs(
                sum(pairs), source.read_pairs, f"ingest counted {source.read_pairs} read pairs"
            )
        except BaseException:
            # No plan will name the chunks cut so far: they go now (a whole genome's worth of
            # reads would otherwise stay in the bucket after a dead-lettered sample).
            for sink in sinks:
                sink.remove_uploaded()
            raise
        units = [sink.unit for sink in sinks if sink.unit is not None]
        number_units(units, self.identity)
        return units

    def unit_input_bytes(self, plan: ScatterPlan, index: int) -> int:
        unit = plan.units[index]
        return int(unit["r1"]["size"] + unit["r2"]["size"])

    def work(
        self, plan: ScatterPlan, index: int, scatter: ScatterStore, workdir: Path
    ) -> UnitResult:
        source = self.source(plan)
        unit = plan.units[index]
        identity = UnitIdentity.of_unit(unit, self.identity)
        reference_fasta, _ = self.references.materialise(source.reference)
        if len(plan.units) == 1:
            return self._whole(source, unit, identity, reference_fasta, scatter, workdir)
        with (
            self.store.open(ObjectRef.model_validate(unit["r1"])) as r1,
            self.store.open(ObjectRef.model_validate(unit["r2"])) as r2,
        ):
            aligned = self.tools.align_unit(
                r1,
                r2,
                reference_fasta,
                source.read_group,
                workdir,
                aligner=identity.aligner,
                batch_bases=identity.batch_bases,
                first_pair=unit["first_pair"],
            )
        require_pairs(
            aligned.read_pairs, unit["pairs"], f"chunk {index} was cut with {unit['pairs']} pairs"
        )
        bam = self.keep_unit_output(
            scatter, index, "sorted.bam", aligned.bam, content_type="application/x-bam"
        )
        return unit_result(
            index,
            {"bam": bam},
            {
                "pairs": aligned.read_pairs,
                "tools": [t.model_dump(mode="json") for t in aligned.tools],
            },
        )

    def _whole(
        self,
        source: SampleReceived,
        unit: dict[str, Any],
        identity: UnitIdentity,
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
            result = self.tools.align_whole(
                r1,
                r2,
                reference_fasta,
                source.read_group,
                workdir,
                aligner=identity.aligner,
                batch_bases=identity.batch_bases,
            )
        require_pairs(
            result.read_pairs, source.read_pairs, f"ingest counted {source.read_pairs} read pairs"
        )
        refs = self.keep_sample_outputs(
            scatter,
            source.sample_id,
            {".bam": (result.bam, "application/x-bam"), ".bam.bai": (result.bai, None)},
        )
        return unit_result(
            0,
            {"bam": refs[".bam"], "bai": refs[".bam.bai"]},
            {
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
        source = self.source(plan)
        if len(results) == 1 and results[0].details.get("whole"):
            whole = results[0]
            return self._aligned(
                source,
                whole.outputs,
                AlignmentMetrics.model_validate(whole.details["metrics"]),
                whole.details["tools"],
                meter,
                units=1,
                gather_started=None,
            )
        unit_tools = results[0].details["tools"]
        reference_fasta, _ = self.references.materialise(source.reference)
        bams = self.fetch_unit_outputs(results, "bam", workdir, ".bam")
        gathered = self.tools.gather(
            bams, reference_fasta, workdir / "gather", expected_pairs=source.read_pairs
        )
        refs = self.keep_sample_outputs(
            scatter,
            source.sample_id,
            {".bam": (gathered.bam, "application/x-bam"), ".bam.bai": (gathered.bai, None)},
        )
        return self._aligned(
            source,
            {"bam": refs[".bam"], "bai": refs[".bam.bai"]},
            gathered.metrics,
            # the aligner as a unit ran it; the unit's samtools, then the gather's
            [unit_tools[0], chained_tool(unit_tools[1], gathered.tool.command)],
            meter,
            units=len(results),
            gather_started=started,
        )

    def _aligned(
        self,
        source: SampleReceived,
        outputs: dict[str, ObjectRef],
        metrics: AlignmentMetrics,
        tools: list[dict[str, Any]],
        meter: ResourceMeter,
        *,
        units: int,
        gather_started: float | None,
    ) -> SampleAligned:
        return source.follow_on(
            SampleAligned,
            PRODUCER,
            bam=outputs["bam"],
            bam_index=outputs["bai"],
            metrics=metrics,
            tools=tools,
            energy=estimate(meter, self.settings),
            scatter=self.summary(units, gather_started),
        )


__all__ = ["PRODUCER", "RECORD", "AlignmentWork"]
