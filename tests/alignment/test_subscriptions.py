"""Alignment's subscriber wiring on FastStream's in-memory test broker (no Kafka): one consumer
group per priority lane for received samples and for work units (an urgent sample never queues
behind research), removals in a group of their own, each event reaching the stage parsed."""

from __future__ import annotations

from faststream.kafka import TestKafkaBroker

from genomebus_alignment.adapters.kafka import subscribe
from genomebus_common.contracts.events import Priority, Stage
from genomebus_common.contracts.topics import SAMPLE_REMOVED, sample_received_topic, work_topic

from ..common.factories import sample_received, sample_removed
from ..common.wiring import RecordingStage, groups, runtime


async def test_each_lane_in_its_own_group_and_each_event_reaching_the_stage() -> None:
    rt = runtime("alignment")
    stage = RecordingStage(Stage.ALIGNMENT)
    lanes = [Priority.URGENT_CLINICAL, Priority.RESEARCH]
    subscribe(rt.consumer, stage, lanes, max_poll_interval_s=600)  # type: ignore[arg-type]
    assert groups(rt.broker) == {
        sample_received_topic(Priority.URGENT_CLINICAL): "genomebus.alignment.urgent_clinical",
        sample_received_topic(Priority.RESEARCH): "genomebus.alignment.research",
        work_topic(Stage.ALIGNMENT, Priority.URGENT_CLINICAL): (
            "genomebus.alignment.work.urgent_clinical"
        ),
        work_topic(Stage.ALIGNMENT, Priority.RESEARCH): "genomebus.alignment.work.research",
        SAMPLE_REMOVED.name: "genomebus.alignment.removals",
    }
    urgent = sample_received(priority=Priority.URGENT_CLINICAL)
    removal = sample_removed("S-1")
    async with TestKafkaBroker(rt.broker) as broker:
        await broker.publish(
            urgent.to_bytes(), topic=sample_received_topic(Priority.URGENT_CLINICAL), key=b"s"
        )
        await broker.publish(removal.to_bytes(), topic=SAMPLE_REMOVED.name, key=b"S-1")
    assert [(name, args[0]) for name, args in stage.calls] == [
        ("on_source", urgent),
        ("handle_removal", removal),
    ]
