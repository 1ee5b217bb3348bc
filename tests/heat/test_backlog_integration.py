"""The research-backlog probe against the real Kafka broker: committed vs end offsets, and the
timestamp of the first record the group has not consumed."""

from __future__ import annotations

import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from genomebus_common.runtime.kafka_client import client_options
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_heat.adapters.backlog import BacklogProbe
from genomebus_heat.core.backlog import BacklogError
from tests.common.kafka_helpers import create_topics

pytestmark = pytest.mark.integration


async def produce(settings: ServiceSettings, topic: str, stamps: dict[int, list[float]]) -> None:
    """Records whose CreateTime is the given epoch seconds, per partition, in order."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        for partition, times in stamps.items():
            for n, t in enumerate(times):
                await producer.send_and_wait(
                    topic,
                    f"sample-{partition}-{n}".encode(),
                    partition=partition,
                    timestamp_ms=int(t * 1000),
                )
    finally:
        await producer.stop()


async def commit(
    settings: ServiceSettings, group: str, topic: str, offsets: dict[int, int]
) -> None:
    """Commit as alignment's group would after handling those records."""
    consumer = AIOKafkaConsumer(
        **client_options(settings), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in offsets]
        consumer.assign(tps)
        await consumer.commit({TopicPartition(topic, p): o for p, o in offsets.items()})
    finally:
        await consumer.stop()


async def committed(settings: ServiceSettings, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        return {
            tp.partition: m.offset
            for tp, m in (await admin.list_consumer_group_offsets(group)).items()
        }
    finally:
        await admin.close()


async def test_oldest_waiting_sample_is_the_first_unconsumed_record(
    settings: ServiceSettings, unique: str
) -> None:
    topic, group = f"heat-research-{unique}", f"heat-group-{unique}"
    await create_topics(settings, topic, partitions=3)
    now = time.time()
    await produce(
        settings,
        topic,
        {
            0: [now - 3000, now - 2000, now - 1000],  # first one consumed: 2000 s waits
            1: [now - 5000, now - 4000],  # all consumed: older, but no longer waiting
            2: [now - 1500],  # never committed: waits from the log start
        },
    )
    await commit(settings, group, topic, {0: 1, 1: 2})

    backlog = await BacklogProbe(settings, topic, group).measure()

    by_partition = {p.partition: p for p in backlog.partitions}
    assert [(by_partition[p].next_offset, by_partition[p].end_offset) for p in (0, 1, 2)] == [
        (1, 3),
        (2, 2),
        (0, 1),
    ]
    assert by_partition[0].oldest_timestamp_ms == int((now - 2000) * 1000)
    assert by_partition[1].oldest_timestamp_ms is None
    assert backlog.waiting == 3
    assert backlog.oldest_wait_s == pytest.approx(2000, abs=60)
    # Measuring never commits in, or joins, the group it measures.
    assert await committed(settings, group) == {0: 1, 1: 2}


async def test_group_that_never_committed_waits_from_the_start(
    settings: ServiceSettings, unique: str
) -> None:
    topic = f"heat-research-{unique}"
    await create_topics(settings, topic, partitions=2)
    now = time.time()
    await produce(settings, topic, {0: [now - 700, now - 10], 1: [now - 7200]})
    backlog = await BacklogProbe(settings, topic, f"heat-nobody-{unique}").measure()
    assert backlog.waiting == 3
    assert backlog.oldest_wait_s == pytest.approx(7200, abs=60)


async def test_nothing_waiting_when_everything_is_consumed_or_the_topic_is_empty(
    settings: ServiceSettings, unique: str
) -> None:
    topic, group = f"heat-research-{unique}", f"heat-group-{unique}"
    await create_topics(settings, topic, partitions=2)
    empty = await BacklogProbe(settings, topic, group).measure()
    assert empty.waiting == 0 and empty.oldest_wait_s is None

    now = time.time()
    await produce(settings, topic, {0: [now - 100, now - 50]})
    await commit(settings, group, topic, {0: 2})
    drained = await BacklogProbe(settings, topic, group).measure()
    assert drained.waiting == 0 and drained.oldest_wait_s is None


async def test_future_timestamps_count_as_no_wait_not_negative(
    settings: ServiceSettings, unique: str
) -> None:
    topic = f"heat-research-{unique}"
    await create_topics(settings, topic, partitions=1)
    await produce(settings, topic, {0: [time.time() + 600]})  # a producer clock running fast
    backlog = await BacklogProbe(settings, topic, f"heat-group-{unique}").measure()
    assert backlog.waiting == 1 and backlog.oldest_wait_s == 0.0


async def test_missing_topic_is_an_error_not_an_empty_backlog(
    settings: ServiceSettings, unique: str
) -> None:
    probe = BacklogProbe(settings, f"heat-absent-{unique}", "g")
    with pytest.raises(BacklogError, match="does not exist"):
        await probe.measure()
