"""How long the oldest research sample has been waiting, read from Kafka itself.

"Waiting" means not yet consumed by alignment's research consumer group: per partition, the
records from the group's committed offset (or the log start, when the group never committed
there: alignment subscribes with ``auto_offset_reset=earliest``) to the end offset. The first
such record is the oldest on its partition (records are appended in time order), so one read
per partition gives its age; the oldest over all partitions is what the wait bound watches.

Alignment commits only after a sample is aligned (at-least-once), so the record at the
committed offset may be one a worker is aligning right now; it counts as waiting until done.
That errs towards more capacity, never towards a sample waiting past its limit unnoticed.
The record's timestamp is the producer's (CreateTime): when ingest published it.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]  # aiokafka ships no py.typed
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]  # aiokafka ships no py.typed

from genomebus_common.runtime.kafka_client import client_options
from genomebus_common.runtime.settings import KafkaSettings

from ..core.backlog import Backlog, BacklogError, PartitionBacklog


class BacklogProbe:
    """Measures one consumer group's backlog on one topic; fresh clients each round, so a
    broker restart or a moved group coordinator never leaves it holding a stale connection."""

    def __init__(
        self, settings: KafkaSettings, topic: str, group_id: str, *, read_timeout_s: float = 15.0
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.group_id = group_id
        self.read_timeout_s = read_timeout_s

    async def measure(self) -> Backlog:
        admin = AIOKafkaAdminClient(
            **client_options(self.settings), client_id="genomebus-heat-probe"
        )
        consumer = AIOKafkaConsumer(
            **client_options(self.settings),
            client_id="genomebus-heat-probe",
            group_id=None,  # reading only: never joins, commits in or disturbs alignment's group
            enable_auto_commit=False,
        )
        try:
            await admin.start()
            await consumer.start()
            return await self._measure(admin, consumer)
        finally:
            await consumer.stop()
            await admin.close()

    async def _measure(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> Backlog:
        # The admin's metadata request never auto-creates the topic (a consumer's might, with
        # the broker's default partition count): a missing lane is an error to report.
        (described,) = await admin.describe_topics([self.topic])
        numbers = [p["partition"] for p in described.get("partitions") or ()]
        if described.get("error_code") or not numbers:
            raise BacklogError(
                f"topic {self.topic} does not exist or has no partitions "
                f"(Kafka error code {described.get('error_code')})"
            )
        tps = [TopicPartition(self.topic, n) for n in sorted(numbers)]
        committed = await admin.list_consumer_group_offsets(self.group_id, partitions=tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        measured_at = time.time()

        nexts: dict[TopicPartition, int] = {}
        for tp in tps:
            meta = committed.get(tp)
            position = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
            # Retention may have deleted records the group never read: they wait no longer.
            nexts[tp] = max(position, starts[tp])

        to_read = {tp: nexts[tp] for tp in tps if nexts[tp] < ends[tp]}
        stamps = await self._first_timestamps(consumer, to_read) if to_read else {}
        return Backlog(
            measured_at,
            tuple(
                PartitionBacklog(tp.partition, nexts[tp], ends[tp], stamps.get(tp)) for tp in tps
            ),
        )

    async def _first_timestamps(
        self, consumer: AIOKafkaConsumer, positions: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int | None]:
        consumer.assign(list(positions))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        found: dict[TopicPartition, int | None] = {}
        try:
            async with asyncio.timeout(self.read_timeout_s):
                while len(found) < len(positions):
                    pending = [tp for tp in positions if tp not in found]
                    batch = await consumer.getmany(*pending, timeout_ms=500, max_records=50)
                    for tp, records in batch.items():
                        if records and tp not in found:
                            # -1: a pre-0.10 message format without time; its age is unknown.
                            stamp = records[0].timestamp
                            found[tp] = stamp if stamp >= 0 else None
                            consumer.pause(tp)  # one record per partition is all we need
        except TimeoutError:
            missing = sorted(tp.partition for tp in positions if tp not in found)
            raise BacklogError(
                f"no record read from {self.topic} partitions {missing} within "
                f"{self.read_timeout_s}s"
            ) from None
        return found
