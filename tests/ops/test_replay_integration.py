"""Replaying a real dead-letter topic: a message parked by the reliable consumer comes back once."""

from __future__ import annotations

import asyncio
import json

import pytest

from genomebus_common.contracts.errors import ObjectStoreUnavailable
from genomebus_common.contracts.events import SampleReceived, Stage
from genomebus_common.contracts.topics import Topic
from genomebus_common.runtime.broker import Delivery, ReliableConsumer, RetryPolicy, create_broker
from genomebus_common.runtime.kafka_client import client_options
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_ops.dlq import Selection, Verdict
from genomebus_ops.replay import list_parked, replay

from ..common.factories import sample_received
from ..common.kafka_helpers import create_topics, read_topic, wait_for

pytestmark = pytest.mark.integration


async def test_a_parked_message_is_replayed_once_after_the_fix_and_bad_ones_stay(
    settings: ServiceSettings, unique: str
) -> None:
    topic = Topic(f"test.{unique}.received", SampleReceived, 1, "test lane")
    await create_topics(settings, topic.name, topic.dlq)
    store_is_down = True
    handled: list[str] = []

    async def handle(event: SampleReceived, delivery: Delivery) -> None:
        if store_is_down:
            raise ObjectStoreUnavailable("MinIO is down for maintenance")
        handled.append(event.sample_id)

    broker = create_broker(settings)
    consumer = ReliableConsumer(
        broker,
        stage=Stage.ALIGNMENT,
        group_id=f"test-{unique}",
        retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.05, max_backoff_s=0.05),
    )
    consumer.subscribe(SampleReceived, handle, topic.name)
    sample = sample_received(f"S-{unique}")
    broken = json.loads(sample_received(f"S-{unique}-bad").to_bytes())
    broken["read_pairs"] = -1
    async with broker:
        await broker.start()
        await broker.publish(sample.to_bytes(), topic=topic.name, key=sample.sample_id.encode())
        await broker.publish(json.dumps(broken).encode(), topic=topic.name, key=b"bad")
        await read_topic(settings, topic.dlq, count=2)
        assert handled == [], "the sample was parked, not handled"

        rows: list[dict[str, object]] = []
        assert await list_parked(settings, topic.dlq, emit=rows.append, topics=[topic]) == 2
        assert rows[0]["kind"] == "transient" and rows[1]["error_code"] == "invalid_event"
        assert "MinIO is down" in str(rows[0]["reason"]) and not rows[0]["dealt_with"]

        dry = await replay(settings, topic.dlq, Selection(), dry_run=True, topics=[topic])
        assert dry.replayed == ["0:0"] and dry.skipped[0]["why"] == Verdict.SKIP_INVALID.value
        await asyncio.sleep(1.0)
        assert handled == [], "a dry run publishes nothing"

        store_is_down = False
        report = await replay(settings, topic.dlq, Selection(), dry_run=False, topics=[topic])
        assert report.replayed == ["0:0"]
        assert [s["dlq_offset"] for s in report.skipped] == ["0:1"]
        await wait_for(lambda: handled == [sample.sample_id], timeout_s=30)

        again = await replay(settings, topic.dlq, Selection(), dry_run=False, topics=[topic])
        assert again.replayed == [] and again.skipped == [], "a finished replay is not repeated"
        await asyncio.sleep(1.0)
        assert handled == [sample.sample_id], "handled exactly once"

    rows = []
    await list_parked(settings, topic.dlq, emit=rows.append, topics=[topic])
    assert [r["dealt_with"] for r in rows] == [True, True], "the DLQ keeps its records, marked"
    replayed = (await read_topic(settings, topic.name, count=3))[2]
    headers = {k: (v or b"").decode() for k, v in replayed.headers}
    assert headers["x-replay-count"] == "1" and headers["x-replayed-from"] == f"{topic.dlq}:0:0"
    assert replayed.value == sample.to_bytes(), "the body goes back untouched"


async def test_a_replay_from_the_beginning_never_moves_the_mark_backwards(
    settings: ServiceSettings, unique: str
) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from genomebus_ops.replay import replay_group

    topic = Topic(f"test.{unique}.again", SampleReceived, 1, "test lane")
    await create_topics(settings, topic.name, topic.dlq)
    broker = create_broker(settings)
    async with broker:
        await broker.start()
        for i in range(3):
            event = sample_received(f"S-{unique}-{i}")
            await broker.publish(
                event.to_bytes(),
                topic=topic.dlq,
                key=event.sample_id.encode(),
                headers={"x-dlq-original-topic": topic.name},
            )
    first = await replay(settings, topic.dlq, Selection(), dry_run=False, topics=[topic])
    assert first.replayed == ["0:0", "0:1", "0:2"]
    again = await replay(
        settings,
        topic.dlq,
        Selection(offsets=frozenset({(0, 0)})),
        dry_run=False,
        from_beginning=True,
        topics=[topic],
    )
    assert again.replayed == ["0:0"], "an operator may send one record again on purpose"
    reader = AIOKafkaConsumer(**client_options(settings), group_id=replay_group(topic.dlq, [topic]))
    await reader.start()
    try:
        assert await reader.committed(TopicPartition(topic.dlq, 0)) == 3, (
            "the mark stays at the end"
        )
    finally:
        await reader.stop()
