"""Topic names and message keys: the one place that says where each event travels.

Sample events are keyed by sample id, so one sample's events stay in order on one partition;
consent events are keyed by patient pseudonym, so one patient's versions stay in order.
New samples travel on one lane per priority: an urgent clinical sample never queues behind a
research backlog, because each lane has its own topic and its own consumers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from genomebus_common.contracts.events import (
    ConsentChanged,
    Event,
    Priority,
    SampleAligned,
    SampleEvent,
    SampleReceived,
    SampleRegistered,
    SampleRemoved,
    Stage,
    StageFailed,
    StageProgress,
    VariantsCalled,
    VariantsReady,
    WorkUnit,
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
SAMPLE_REGISTERED = Topic(
    "genomebus.sample.registered",
    SampleRegistered,
    6,
    "A hospital registered a sample of a patient: who treats whom, for consent's access rules.",
)
STAGE_FAILED = Topic(
    "genomebus.stage.failed", StageFailed, 3, "A stage gave up on an event (see its DLQ)."
)
STAGE_PROGRESS = Topic(
    "genomebus.stage.progress",
    StageProgress,
    3,
    "Units done of a sample's scattered work, per stage (ingest shows it in the sample's status).",
)

#: Stages whose work on one sample is cut into units that any of their workers can take.
SCATTERED_STAGES = (Stage.ALIGNMENT, Stage.CALLING)

#: How many units of one lane a stage works on at once, at most: the lane's work topic has
#: this many partitions, and a consumer group never has more busy members than partitions.
#: Urgent clinical samples get every worker a stage has; research leaves room for the others.
#: (Raising a lane's width later is a partition increase, which Kafka allows online.)
SCATTER_WIDTH: dict[Priority, int] = {
    Priority.URGENT_CLINICAL: 24,
    Priority.ROUTINE: 8,
    Priority.RESEARCH: 2,
}

WORK_LANES: dict[tuple[Stage, Priority], Topic] = {
    (stage, priority): Topic(
        name=f"genomebus.work.{stage.value}.{priority.value}",
        event=WorkUnit,
        partitions=SCATTER_WIDTH[priority],
        description=f"Units of {stage.value} work (one sample cut into many), "
        f"{priority.value} lane.",
    )
    for stage in SCATTERED_STAGES
    for priority in Priority
}

ALL_TOPICS: tuple[Topic, ...] = (
    *SAMPLE_RECEIVED_LANES.values(),
    *WORK_LANES.values(),
    SAMPLE_ALIGNED,
    VARIANTS_CALLED,
    CONSENT_CHANGED,
    VARIANTS_READY,
    SAMPLE_REMOVED,
    SAMPLE_REGISTERED,
    STAGE_FAILED,
    STAGE_PROGRESS,
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


def work_topic(stage: Stage, priority: Priority) -> str:
    return WORK_LANES[(stage, priority)].name


def work_partition(unit: WorkUnit) -> int:
    """The partition a unit goes to: consecutive units of a sample on consecutive partitions
    (from a place that depends on the sample), so that with round-robin assignment they land
    on different workers instead of queueing behind each other on one."""
    width = WORK_LANES[(unit.stage, unit.priority)].partitions
    start = int.from_bytes(hashlib.sha256(unit.sample_id.encode()).digest()[:4], "big")
    return (start + unit.unit_index) % width


def topic_for(event: Event) -> str:
    """Where an event is published."""
    if isinstance(event, SampleReceived):
        return sample_received_topic(event.priority)
    if isinstance(event, WorkUnit):
        return work_topic(event.stage, event.priority)
    for topic in ALL_TOPICS:
        if type(event) is topic.event:
            return topic.name
    raise LookupError(f"no topic carries {type(event).__name__}")


def message_key(event: Event) -> bytes:
    """The partitioning key that keeps related events in order."""
    if isinstance(event, WorkUnit):
        return f"{event.sample_id}/{event.unit_index}".encode()
    if isinstance(event, SampleEvent):
        return event.sample_id.encode()
    if isinstance(event, (ConsentChanged, SampleRegistered)):
        return event.patient_pseudonym.encode()
    if isinstance(event, (StageFailed, SampleRemoved)) and event.sample_id:
        return event.sample_id.encode()
    return event.correlation_id.encode()


# --- who reads and writes what: the one table every Kafka ACL is generated from ------------------
#: Consumer groups are ``genomebus.<service>`` and ``genomebus.<service>.<suffix>``
#: (``ServiceSettings.consumer_group`` and ``ReliableConsumer.subscribe(group_suffix=...)``).
GROUP_PREFIX = "genomebus."


@dataclass(frozen=True)
class BusClient:
    """One Kafka identity (a service or a tool) and what it does on the bus.

    Least privilege, by construction: the dev stack's ACLs and the Strimzi ``KafkaUser``
    resources are both generated from ``BUS_CLIENTS``, so a service can write only what it
    produces and read only what it consumes, and the two deployments cannot drift apart.
    A test builds each service's real app and checks its subscriptions and the events it
    constructs against this table.
    """

    name: str
    #: Topics it publishes to.
    produces: tuple[str, ...] = ()
    #: Topics it reads in its own consumer groups through ``ReliableConsumer``, which parks a
    #: failed message in ``<topic>.dlq`` and announces it on ``stage.failed``: both are writes.
    consumes: tuple[str, ...] = ()
    #: Topics it reads otherwise, never dead-lettering: without a consumer group (assigned
    #: partitions: consent views, probes) or in a tool's own groups (``group_prefix``).
    follows: tuple[str, ...] = ()
    #: A tool's consumer groups, as a prefix (ending in a dot), instead of ``genomebus.<name>``.
    group_prefix: str | None = None
    #: Other clients' consumer groups whose committed offsets it reads (DESCRIBE only).
    watches_groups: tuple[str, ...] = ()

    @property
    def user(self) -> str:
        """The SASL/SCRAM user name (and the Strimzi KafkaUser, whose Secret has this name)."""
        return f"genomebus-{self.name}"

    @property
    def writes(self) -> frozenset[str]:
        dead_letters = {dead_letter_topic(t) for t in self.consumes}
        announce = {STAGE_FAILED.name} if self.consumes else set()
        return frozenset(self.produces) | dead_letters | announce

    @property
    def reads(self) -> frozenset[str]:
        return frozenset(self.consumes) | frozenset(self.follows)

    @property
    def topics(self) -> frozenset[str]:
        """Every topic this client touches: what it must find at start-up, and all it may see."""
        return self.reads | self.writes

    @property
    def groups(self) -> tuple[str, ...]:
        """Consumer groups it may join. A name ending in a dot is a prefix: a service joins
        ``genomebus.<name>`` and every group below ``genomebus.<name>.`` (so that
        ``genomebus.alignmentx`` would stay someone else's)."""
        if self.group_prefix is not None:
            return (self.group_prefix,)
        if not self.consumes:
            return ()
        own = f"{GROUP_PREFIX}{self.name}"
        return (own, own + ".")


def _lanes(stage: Stage) -> tuple[str, ...]:
    return tuple(WORK_LANES[(stage, p)].name for p in Priority)


_RECEIVED = tuple(t.name for t in SAMPLE_RECEIVED_LANES.values())

BUS_CLIENTS: dict[str, BusClient] = {
    client.name: client
    for client in (
        BusClient(
            "ingest",
            # the outbox: new samples on their priority lane, withdrawals by the hospital, and
            # who registered a sample of whom (consent's treating hospitals)
            produces=(*_RECEIVED, SAMPLE_REMOVED.name, SAMPLE_REGISTERED.name),
            consumes=(CONSENT_CHANGED.name, STAGE_PROGRESS.name),
        ),
        # Only the consent service writes consent: no other identity can forge a withdrawal
        # or a consent nobody gave.
        BusClient("consent", produces=(CONSENT_CHANGED.name,), consumes=(SAMPLE_REGISTERED.name,)),
        BusClient(
            "alignment",
            produces=(*_lanes(Stage.ALIGNMENT), SAMPLE_ALIGNED.name, STAGE_PROGRESS.name),
            consumes=(*_RECEIVED, *_lanes(Stage.ALIGNMENT), SAMPLE_REMOVED.name),
            follows=(CONSENT_CHANGED.name,),  # its consent view
        ),
        BusClient(
            "calling",
            produces=(*_lanes(Stage.CALLING), VARIANTS_CALLED.name, STAGE_PROGRESS.name),
            consumes=(SAMPLE_ALIGNED.name, *_lanes(Stage.CALLING), SAMPLE_REMOVED.name),
            follows=(CONSENT_CHANGED.name,),  # its consent view
        ),
        BusClient(
            "registry",
            produces=(VARIANTS_READY.name,),
            consumes=(
                VARIANTS_CALLED.name,
                SAMPLE_REMOVED.name,
                SAMPLE_ALIGNED.name,
                CONSENT_CHANGED.name,
            ),
        ),
        BusClient(
            "heat",
            # how long the oldest research sample waits: the lane's records and alignment's
            # committed offsets on it, read, never joined
            follows=(SAMPLE_RECEIVED_LANES[Priority.RESEARCH].name,),
            watches_groups=(f"{GROUP_PREFIX}{Stage.ALIGNMENT.value}.{Priority.RESEARCH.value}",),
        ),
        BusClient(
            # genomebus-dlq: reads every dead-letter topic in its replay groups and sends
            # records back to where they came from; never to consent.changed (a consent is
            # recorded again through the consent service, as a new version).
            "ops",
            produces=tuple(t.name for t in ALL_TOPICS if t is not CONSENT_CHANGED),
            follows=tuple(t.dlq for t in ALL_TOPICS),
            group_prefix=f"{GROUP_PREFIX}dlq-replay.",
        ),
    )
}


def bus_client(service_name: str) -> BusClient | None:
    """The table's entry for a service name, or None for a name it does not know (tests and
    tools running as the cluster's administrator)."""
    return BUS_CLIENTS.get(service_name)
