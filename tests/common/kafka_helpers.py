"""Small helpers for tests that talk to the real broker, as whoever ``settings`` names (the
stack's administrator in the shared ``settings`` fixture: they make and read any topic)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from genomebus_common.runtime.kafka_client import client_options
from genomebus_common.runtime.settings import ServiceSettings


async def create_topics(settings: ServiceSettings, *names: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        )
    finally:
        await admin.close()


async def read_topic(
    settings: ServiceSettings,
    topic: str,
    *,
    count: int,
    timeout_s: float = 30.0,
) -> list[ConsumerRecord]:
    """Read ``count`` records from the start of ``topic`` as an outside consumer would."""
    consumer = AIOKafkaConsumer(
        topic, **client_options(settings), auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for part in batch.values():
                    records.extend(part)
    except TimeoutError:
        raise AssertionError(
            f"expected {count} records on {topic} within {timeout_s}s, got {len(records)}"
        ) from None
    finally:
        await consumer.stop()
    return records


async def read_until(
    settings: ServiceSettings,
    topic: str,
    predicate: Callable[[ConsumerRecord], bool],
    *,
    timeout_s: float = 30.0,
) -> ConsumerRecord:
    """The first record on ``topic`` (from its start) that satisfies ``predicate``."""
    consumer = AIOKafkaConsumer(
        topic, **client_options(settings), auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for part in batch.values():
                    for record in part:
                        if predicate(record):
                            return record
    except TimeoutError:
        raise AssertionError(f"no matching record on {topic} within {timeout_s}s") from None
    finally:
        await consumer.stop()


async def wait_for(
    condition: Callable[[], bool], *, timeout_s: float = 30.0, what: str = ""
) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not condition():  # noqa: ASYNC110 - polls a plain predicate, no event to wait on
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(
            f"timed out after {timeout_s}s waiting for {what or condition}"
        ) from None


def headers(record: ConsumerRecord) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}
