"""Calling's subscriber wiring on FastStream's in-memory test broker (no Kafka): aligned samples
in calling's group, regions in one group per lane, removals apart, each event reaching the stage
parsed."""

from __future__ import annotations

from faststream.kafka import TestKafkaBroker

from genomebus_calling.adapters.kafka import subscribe
from genomebus_common.contracts.events import AlignmentMetrics, Priority, SampleAligned, Stage
from genomebus_common.contracts.topics import SAMPLE_ALIGNED, SAMPLE_REMOVED, work_topic

from ..common.factories import object_ref, sample_received
from ..common.wiring import RecordingStage, groups, runtime


async def test_aligned_samples_and_each_lanes_regions_in_their_groups() -> None:
    rt = runtime("calling")
    stage = RecordingStage(Stage.CALLING)
    subscribe(rt.consumer, stage, [Priority.ROUTINE], max_poll_interval_s=600)  # type: ignore[arg-type]
    assert groups(rt.broker) == {
        SAMPLE_ALIGNED.name: "genomebus.calling",
        work_topic(Stage.CALLING, Priority.ROUTINE): "genomebus.calling.work.routine",
        SAMPLE_REMOVED.name: "genomebus.calling.removals",
    }
    aligned = sample_received(priority=Priority.ROUTINE).follow_on(
        SampleAligned,
        None,
        bam=object_ref("a.bam"),
        bam_index=object_ref("a.bam.bai"),
        metrics=AlignmentMetrics(reads_total=2, mapping_rate=1, duplicate_rate=0, mean_coverage=1),
        tools=[],
    )
    async with TestKafkaBroker(rt.broker) as broker:
        await broker.publish(aligned.to_bytes(), topic=SAMPLE_ALIGNED.name, key=b"s")
    assert stage.calls == [("on_source", (aligned,))]
