"""Topic names and message keys: the one place that says where each event travels.

Sample events are keyed by sample id, so one sample's events stay in order on one partition;
consent events are keyed by patient pseudonym, so one patient's versions stay in order.
New samples travel on one lane per priority: an urgent clinical sample never queues behind a
research backlog, because each lane has its own topic and its own consumers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import (
    ConsentChanged,
    Event,
    Priority,
    SampleAligned,
    SampleEvent,
    SampleReceived,
    SampleRemoved,
    StageFailed,
    VariantsCalled,
    VariantsReady,
)

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Topic:
    name: str
    event: type[Event]
    partitions: int
    description: str

    @property
    def dlq(self) -> str:
        return dead_letter_topic(self.name)


SAMPLE_RECEIVED_LANES: dict[Priority, Topic] = {
    priority: Topic(
        name=f"genomebus.sample.received.{priority.value}",
        event=SampleReceived,
        partitions=6,
        description=f"Samples ready for alignment, {priority.value} lane.",
    )
    for priority in Priority
}
SAMPLE_ALIGNED = Topic(
    "genomebus.sample.aligned", SampleAligned, 6, "Aligned, indexed, checked BAMs."
)
VARIANTS_CALLED = Topic(
    "genomebus.variants.called", VariantsCalled, 6, "Called, indexed, checked VCFs."
)
CONSENT_CHANGED = Topic(
    "genomebus.consent.changed", ConsentChanged, 6, "Every new consent version, per patient."
)
VARIANTS_READY = Topic(
    "genomebus.variants.ready", VariantsReady, 6, "Samples loaded into the national registry."
)
SAMPLE_REMOVED = Topic(
    "genomebus.sample.removed", SampleRemoved, 6, "Samples a hospital withdrew: delete their data."
)
STAGE_FAILED = Topic(
    "genomebus.stage.failed", StageFailed, 3, "A stage gave up on an event (see its DLQ)."
)

ALL_TOPICS: tuple[Topic, ...] = (
    *SAMPLE_RECEIVED_LANES.values(),
    SAMPLE_ALIGNED,
    VARIANTS_CALLED,
    CONSENT_CHANGED,
    VARIANTS_READY,
    SAMPLE_REMOVED,
    STAGE_FAILED,
)


def dead_letter_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


_DAY_MS = 24 * 3600 * 1000
# Events wait for a consumer for as long as a lane may be backlogged (research waits for heat
# demand, bounded by the heat controller's GENOMEBUS_HEAT_MAX_RESEARCH_WAIT_S) plus an outage.
PIPELINE_RETENTION_MS = 30 * _DAY_MS
# Dead letters wait for a person to look at them and replay them (genomebus-dlq).
DLQ_RETENTION_MS = 90 * _DAY_MS


def retention_config(topic: Topic | None, *, dlq: bool = False) -> dict[str, str]:
    """How long a topic keeps its records: the same wherever topics are made (``ensure_topics``
    locally, the Strimzi KafkaTopics on Kubernetes), never a broker default."""
    if dlq:
        return {"cleanup.policy": "delete", "retention.ms": str(DLQ_RETENTION_MS)}
    if topic is CONSENT_CHANGED:
        # Every consent view reads this topic from the beginning at start and keeps each
        # patient's latest version (keyed by pseudonym, versions only grow): compaction keeps
        # exactly that forever, where time-based deletion (the broker's default, 7 days) would
        # forget old withdrawals.
        return {"cleanup.policy": "compact"}
    return {"cleanup.policy": "delete", "retention.ms": str(PIPELINE_RETENTION_MS)}


def sample_received_topic(priority: Priority) -> str:
    return SAMPLE_RECEIVED_LANES[priority].name


def topic_for(event: Event) -> str:
    """Where an event is published."""
    if isinstance(event, SampleReceived):
        return sample_received_topic(event.priority)
    for topic in ALL_TOPICS:
        if type(event) is topic.event:
            return topic.name
    raise LookupError(f"no topic carries {type(event).__name__}")


def message_key(event: Event) -> bytes:
    """The partitioning key that keeps related events in order."""
    if isinstance(event, SampleEvent):
        return event.sample_id.encode()
    if isinstance(event, ConsentChanged):
        return event.patient_pseudonym.encode()
    if isinstance(event, (StageFailed, SampleRemoved)) and event.sample_id:
        return event.sample_id.encode()
    return event.correlation_id.encode()
