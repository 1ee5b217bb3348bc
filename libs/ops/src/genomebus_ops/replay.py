"""The Kafka side of a DLQ replay: read parked records up to a fixed end, publish, then commit.

Kept apart from ``dlq.py`` (which decides) so the rules are testable without a broker and this
stays a thin loop. See ``dlq.py`` for the guarantees.

The replay's consumer group (``genomebus.dlq-replay.<topic>``) remembers how far a DLQ has been
dealt with. Its committed offset only moves over records that were replayed or judged for good
(invalid, looping); a record left out by the operator's filter holds it back in its partition,
so a later run still sees it. Records after it that were replayed will be seen again by such a
run too; the loop guard and the stages' idempotence make that a no-op, never a second sample.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]  # aiokafka ships no py.typed
from aiokafka.structs import OffsetAndMetadata  # type: ignore[import-untyped]  # aiokafka ships no py.typed

from genomebus_common.contracts.topics import ALL_TOPICS, Topic
from genomebus_common.runtime.broker import decode_headers
from genomebus_common.runtime.failures import from_kafka_error
from genomebus_common.runtime.kafka_client import client_options
from genomebus_common.runtime.settings import ServiceSettings

from .dlq import (
    DEFAULT_MAX_REPLAYS,
    ParkedMessage,
    ReplayReport,
    Selection,
    Verdict,
    judge,
    replay_headers,
    topic_of_dlq,
)

log = logging.getLogger(__name__)


def replay_group(dlq_topic: str, topics: Iterable[Topic] = ALL_TOPICS) -> str:
    return f"genomebus.dlq-replay.{topic_of_dlq(dlq_topic, topics).name}"


async def _parked(
    consumer: AIOKafkaConsumer, dlq_topic: str, *, from_beginning: bool
) -> AsyncIterator[ParkedMessage]:
    """Every record from the group's position (or the start) up to the end seen at the start."""
    partitions = consumer.partitions_for_topic(dlq_topic)
    if partitions is None:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call
        partitions = consumer.partitions_for_topic(dlq_topic) or set()
    if not partitions:
        raise SystemExit(f"{dlq_topic} does not exist on this cluster")
    tps = [TopicPartition(dlq_topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    ends = await consumer.end_offsets(tps)
    starts = await consumer.beginning_offsets(tps)
    for tp in tps:
        committed = None if from_beginning else await consumer.committed(tp)
        consumer.seek(tp, max(committed or 0, starts[tp]))
    remaining = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=1000)
        for tp, records in batch.items():
            for record in records:
                if record.offset >= ends[tp]:
                    remaining.discard(tp)
                    break
                yield ParkedMessage(
                    dlq_topic=dlq_topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    value=record.value or b"",
                    headers=decode_headers(record.headers),
                )
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)


async def list_parked(
    settings: ServiceSettings,
    dlq_topic: str,
    *,
    emit: Callable[[dict[str, object]], None],
    topics: Iterable[Topic] = ALL_TOPICS,
) -> int:
    """Show every record in a DLQ (the why and where, never the body) and whether it was dealt
    with."""
    group = replay_group(dlq_topic, topics)
    consumer = AIOKafkaConsumer(
        **client_options(settings), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        count = 0
        done: dict[int, int] = {}
        async for message in _parked(consumer, dlq_topic, from_beginning=True):
            if message.partition not in done:
                tp = TopicPartition(dlq_topic, message.partition)
                done[message.partition] = await consumer.committed(tp) or 0
            emit(message.summary() | {"dealt_with": message.offset < done[message.partition]})
            count += 1
        return count
    finally:
        await consumer.stop()


async def replay(
    settings: ServiceSettings,
    dlq_topic: str,
    selection: Selection,
    *,
    dry_run: bool,
    force: bool = False,
    from_beginning: bool = False,
    max_replays: int = DEFAULT_MAX_REPLAYS,
    progress: Callable[[ParkedMessage, Verdict], None] | None = None,
    topics: Iterable[Topic] = ALL_TOPICS,
) -> ReplayReport:
    """Send selected parked records back to their topic; see the module docstring for safety."""
    topics = tuple(topics)
    topic_of_dlq(dlq_topic, topics)  # refuse a wrong name before touching the cluster
    report = ReplayReport(dry_run=dry_run)
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        group_id=replay_group(dlq_topic, topics),
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(**client_options(settings), acks="all", enable_idempotence=True)
    try:
        await consumer.start()
        await producer.start()
    except Exception as exc:
        await consumer.stop()
        await producer.stop()
        raise from_kafka_error(exc) from exc
    held_back: set[int] = set()
    # How far earlier runs got: a --from-beginning run never moves that mark backwards.
    reached: dict[int, int] = {}
    try:
        async for message in _parked(consumer, dlq_topic, from_beginning=from_beginning):
            if message.partition not in reached:
                tp = TopicPartition(dlq_topic, message.partition)
                reached[message.partition] = await consumer.committed(tp) or 0
            verdict = judge(message, selection, max_replays=max_replays, force=force, topics=topics)
            if verdict is Verdict.REPLAY and not dry_run:
                await producer.send_and_wait(
                    message.original_topic,  # judge checked it is a known topic
                    value=message.value,
                    key=message.key,
                    headers=replay_headers(message),
                )
            report.record(message, verdict)
            if progress is not None:
                progress(message, verdict)
            if verdict is Verdict.SKIP_FILTERED:
                held_back.add(message.partition)
            elif (
                not dry_run
                and message.partition not in held_back
                and message.offset + 1 > reached[message.partition]
            ):
                tp = TopicPartition(dlq_topic, message.partition)
                await consumer.commit({tp: OffsetAndMetadata(message.offset + 1, "")})
                reached[message.partition] = message.offset + 1
    finally:
        await producer.stop()
        await consumer.stop()
    return report
