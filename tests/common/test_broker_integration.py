"""The reliable consumer over the real Kafka broker: delivery, retries, dead letters."""

from __future__ import annotations

import asyncio
import json

import pytest

from genomebus_common.contracts.errors import ObjectStoreUnavailable
from genomebus_common.contracts.events import SampleReceived, Stage, StageFailed
from genomebus_common.contracts.headers import (
    H_DLQ_ERROR_CODE,
    H_DLQ_ERROR_KIND,
    H_DLQ_OFFSET,
    H_DLQ_PARTITION,
    H_DLQ_REASON,
    H_DLQ_TOPIC,
)
from genomebus_common.contracts.topics import ALL_TOPICS, STAGE_FAILED
from genomebus_common.runtime.broker import (
    Delivery,
    ReliableConsumer,
    RetryPolicy,
    create_broker,
    ensure_topics,
)
from genomebus_common.runtime.kafka_client import client_options
from genomebus_common.runtime.settings import ServiceSettings

from .factories import sample_received
from .kafka_helpers import create_topics, headers, read_topic, read_until, wait_for

pytestmark = pytest.mark.integration


def _consumer(settings: ServiceSettings, unique: str, attempts: int = 3):
    broker = create_broker(settings)
    consumer = ReliableConsumer(
        broker,
        stage=Stage.ALIGNMENT,
        group_id=f"test-{unique}",
        retry=RetryPolicy(max_attempts=attempts, initial_backoff_s=0.05, max_backoff_s=0.1),
    )
    return broker, consumer


async def test_ensure_topics_creates_every_topic_and_its_dlq(settings: ServiceSettings) -> None:
    await ensure_topics(settings)
    again = await ensure_topics(settings)
    assert again == [], "a second call must find everything in place"
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        names = set(await admin.list_topics())
    finally:
        await admin.close()
    for topic in ALL_TOPICS:
        assert topic.name in names and topic.dlq in names


async def test_events_flow_through_the_real_broker(settings: ServiceSettings, unique: str) -> None:
    topic = f"test.{unique}.flow"
    await create_topics(settings, topic, partitions=3)
    broker, consumer = _consumer(settings, unique)
    received: list[tuple[SampleReceived, Delivery]] = []

    async def handle(event: SampleReceived, delivery: Delivery) -> None:
        received.append((event, delivery))

    consumer.subscribe(SampleReceived, handle, topic)
    sent = [sample_received(f"S-{unique}-{i}") for i in range(5)]
    async with broker:
        await broker.start()
        for event in sent:
            await broker.publish(event.to_bytes(), topic=topic, key=event.sample_id.encode())
        await wait_for(lambda: len(received) == 5, timeout_s=30)
    assert {e.event_id for e, _ in received} == {e.event_id for e in sent}
    assert all(d.topic == topic and d.key == e.sample_id.encode() for e, d in received)


async def test_invalid_event_goes_to_dlq_with_reason_and_the_partition_keeps_flowing(
    settings: ServiceSettings, unique: str
) -> None:
    topic = f"test.{unique}.poison"
    await create_topics(settings, topic, f"{topic}.dlq")
    broker, consumer = _consumer(settings, unique)
    handled: list[str] = []

    async def handle(event: SampleReceived, delivery: Delivery) -> None:
        handled.append(event.sample_id)

    consumer.subscribe(SampleReceived, handle, topic)
    good = sample_received(f"S-{unique}-after")
    bad = json.loads(sample_received(f"S-{unique}-bad").to_bytes())
    del bad["reads_r1"]
    bad["read_pairs"] = -3
    async with broker:
        await broker.start()
        await broker.publish(json.dumps(bad).encode(), topic=topic, key=b"bad")
        await broker.publish(b"{not json", topic=topic, key=b"garbage")
        await broker.publish(good.to_bytes(), topic=topic, key=b"good")
        await wait_for(lambda: handled == [good.sample_id], timeout_s=30)

    dead = await read_topic(settings, f"{topic}.dlq", count=2)
    first, second = (headers(r) for r in dead)
    assert dead[0].value == json.dumps(bad).encode(), "the DLQ keeps the original bytes"
    assert dead[0].key == b"bad"
    assert first[H_DLQ_ERROR_CODE] == "invalid_event"
    assert first[H_DLQ_ERROR_KIND] == "permanent"
    assert "reads_r1" in first[H_DLQ_REASON] and "read_pairs" in first[H_DLQ_REASON]
    assert first[H_DLQ_TOPIC] == topic
    assert (first[H_DLQ_PARTITION], first[H_DLQ_OFFSET]) == ("0", "0")
    assert second[H_DLQ_OFFSET] == "1" and "Invalid JSON" in second[H_DLQ_REASON]


async def test_transient_failures_are_retried_then_succeed(
    settings: ServiceSettings, unique: str
) -> None:
    topic = f"test.{unique}.flaky"
    await create_topics(settings, topic, f"{topic}.dlq")
    broker, consumer = _consumer(settings, unique, attempts=4)
    attempts: list[int] = []

    async def handle(event: SampleReceived, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if delivery.attempt < 3:
            raise ObjectStoreUnavailable("MinIO is restarting")

    consumer.subscribe(SampleReceived, handle, topic)
    async with broker:
        await broker.start()
        await broker.publish(sample_received(f"S-{unique}").to_bytes(), topic=topic)
        await wait_for(lambda: attempts == [1, 2, 3], timeout_s=30)
        await asyncio.sleep(0.5)
    assert attempts == [1, 2, 3]


async def test_a_subscription_that_must_not_lose_events_retries_past_the_budget(
    settings: ServiceSettings, unique: str
) -> None:
    """Consent changes: a database outage longer than the retry budget holds the partition
    until it passes; nothing is dead-lettered and the events after it keep their order."""
    topic = f"test.{unique}.consent-like"
    await create_topics(settings, topic, f"{topic}.dlq")
    broker, consumer = _consumer(settings, unique, attempts=2)
    handled: list[tuple[str, int]] = []

    async def handle(event: SampleReceived, delivery: Delivery) -> None:
        handled.append((event.sample_id, delivery.attempt))
        if event.sample_id.endswith("-first") and delivery.attempt < 6:
            raise ObjectStoreUnavailable("down for longer than the retry budget")

    consumer.subscribe(SampleReceived, handle, topic, retry_transient_forever=True)
    first, second = sample_received(f"S-{unique}-first"), sample_received(f"S-{unique}-second")
    async with broker:
        await broker.start()
        for event in (first, second):
            await broker.publish(event.to_bytes(), topic=topic, key=b"one-patient")
        await wait_for(lambda: any(s == second.sample_id for s, _ in handled), timeout_s=30)
    assert handled == [(first.sample_id, n) for n in range(1, 7)] + [(second.sample_id, 1)]
    with pytest.raises(AssertionError, match="got 0"):  # nothing was dead-lettered
        await read_topic(settings, f"{topic}.dlq", count=1, timeout_s=2)


async def test_a_removal_is_retried_past_the_budget_without_asking(
    settings: ServiceSettings, unique: str
) -> None:
    """A sample.removed subscriber that forgot retry_transient_forever still never parks a
    removal for an outage: the event type decides (a parked removal leaves data behind)."""
    from genomebus_common.contracts.events import SampleRemoved

    topic = f"test.{unique}.removed"
    await create_topics(settings, topic, f"{topic}.dlq")
    broker, consumer = _consumer(settings, unique, attempts=2)
    attempts: list[int] = []

    async def handle(event: SampleRemoved, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if delivery.attempt < 5:
            raise ObjectStoreUnavailable("down for longer than the retry budget")

    consumer.subscribe(SampleRemoved, handle, topic)  # no flag
    removal = SampleRemoved(
        correlation_id=f"c-{unique}",
        sample_id=f"S-{unique}",
        patient_pseudonym="pk1_" + "a" * 64,
        hospital_id="RH",
        reason="the hospital withdrew it",
        requested_by="RH",
    )
    async with broker:
        await broker.start()
        await broker.publish(removal.to_bytes(), topic=topic, key=b"S")
        await wait_for(lambda: attempts[-1:] == [5], timeout_s=30)
    assert attempts == [1, 2, 3, 4, 5]
    with pytest.raises(AssertionError, match="got 0"):
        await read_topic(settings, f"{topic}.dlq", count=1, timeout_s=2)


async def test_the_consent_topic_is_compacted_wherever_it_is_made(
    settings: ServiceSettings,
) -> None:
    """Time-based deletion (the broker's default) would let consent views forget withdrawals:
    ensure_topics makes, or corrects, the consent topic as compacted."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from genomebus_common.contracts.topics import CONSENT_CHANGED, SAMPLE_ALIGNED

    await ensure_topics(settings)
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:

        async def policy(name: str) -> dict[str, str]:
            [response] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name)]
            )
            entries = response.resources[0][4]
            wanted = ("cleanup.policy", "retention.ms", "max.message.bytes")
            return {e[0]: e[1] for e in entries if e[0] in wanted}

        # As an older version (or a broker's auto-create) left it, with an operator's own
        # override beside: corrected on the next start, the operator's setting kept.
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    CONSENT_CHANGED.name,
                    configs={"cleanup.policy": "delete", "max.message.bytes": "2000000"},
                )
            ]
        )
        assert (await policy(CONSENT_CHANGED.name))["cleanup.policy"] == "delete"
        await ensure_topics(settings)
        corrected = await policy(CONSENT_CHANGED.name)
        assert corrected["cleanup.policy"] == "compact"
        assert corrected["max.message.bytes"] == "2000000", "AlterConfigs must not wipe overrides"
        aligned = await policy(SAMPLE_ALIGNED.name)
        assert (aligned["cleanup.policy"], aligned["retention.ms"]) == (
            "delete",
            str(30 * 24 * 3600 * 1000),
        )
    finally:
        await admin.close()


async def test_exhausted_retries_dead_letter_as_retriable_and_announce_stage_failed(
    settings: ServiceSettings, unique: str
) -> None:
    topic = f"test.{unique}.down"
    await create_topics(settings, topic, f"{topic}.dlq")
    await ensure_topics(settings, [STAGE_FAILED])
    broker, consumer = _consumer(settings, unique, attempts=2)

    async def handle(event: SampleReceived, delivery: Delivery) -> None:
        raise ObjectStoreUnavailable("MinIO stays down")

    consumer.subscribe(SampleReceived, handle, topic)
    event = sample_received(f"S-{unique}")
    async with broker:
        await broker.start()
        await broker.publish(event.to_bytes(), topic=topic, key=event.sample_id.encode())
        dead = await read_topic(settings, f"{topic}.dlq", count=1)
    assert headers(dead[0])[H_DLQ_ERROR_KIND] == "transient"
    assert headers(dead[0])[H_DLQ_ERROR_CODE] == "object_store_unavailable"

    record = await read_until(
        settings,
        STAGE_FAILED.name,
        lambda r: StageFailed.from_bytes(r.value).source_event_id == event.event_id,
    )
    failed = StageFailed.from_bytes(record.value)
    assert failed.retriable and failed.stage == Stage.ALIGNMENT
    assert failed.sample_id == event.sample_id and failed.source_topic == topic
    assert record.key == event.sample_id.encode()


async def test_unmapped_timeouts_are_retried_not_dead_lettered(
    settings: ServiceSettings, unique: str
) -> None:
    topic = f"test.{unique}.timeouts"
    await create_topics(settings, topic, f"{topic}.dlq")
    broker, consumer = _consumer(settings, unique, attempts=3)
    attempts: list[int] = []

    async def handle(event: SampleReceived, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if delivery.attempt == 1:
            raise TimeoutError("a tool did not answer in time")

    consumer.subscribe(SampleReceived, handle, topic)
    async with broker:
        await broker.start()
        await broker.publish(sample_received(f"S-{unique}").to_bytes(), topic=topic)
        await wait_for(lambda: attempts == [1, 2], timeout_s=30)


async def test_a_stopping_service_neither_retries_nor_dead_letters_and_the_message_stays(
    settings: ServiceSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from aiokafka import AIOKafkaConsumer, TopicPartition

    from genomebus_common import shutdown
    from genomebus_common.stagekit import tools

    monkeypatch.setattr(shutdown, "_stopping", threading.Event())  # the test process goes on
    topic = f"test.{unique}.stopping"
    await create_topics(settings, topic, f"{topic}.dlq")
    # The broker waits graceful_timeout (15 s by default) for the parked handler, then cancels it.
    broker = create_broker(settings, graceful_timeout=1.0)
    consumer = ReliableConsumer(
        broker,
        stage=Stage.ALIGNMENT,
        group_id=f"test-{unique}",
        retry=RetryPolicy(max_attempts=5, initial_backoff_s=0.05, max_backoff_s=0.1),
    )
    started, attempts = asyncio.Event(), []

    async def align(event: SampleReceived, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        pipeline = tools.Pipeline([["sleep", "60"]]).start()
        started.set()
        await asyncio.to_thread(pipeline.wait)

    consumer.subscribe(SampleReceived, align, topic)
    async with broker:
        await broker.start()
        await broker.publish(sample_received(f"S-{unique}").to_bytes(), topic=topic, key=b"k")
        await asyncio.wait_for(started.wait(), timeout=30)
        assert shutdown.begin() == 1  # what the runtime does first when it stops
        await asyncio.sleep(1.0)
    assert attempts == [1], "no retry once the service is stopping"

    reader = AIOKafkaConsumer(
        **client_options(settings), group_id=f"test-{unique}", enable_auto_commit=False
    )
    await reader.start()
    try:
        tp = TopicPartition(topic, 0)
        assert not await reader.committed(tp), "the message was not committed: it comes back"
        dlq = TopicPartition(f"{topic}.dlq", 0)
        assert (await reader.end_offsets([dlq]))[dlq] == 0, "and it was not dead-lettered"
    finally:
        await reader.stop()


async def test_where_an_operator_owns_the_topics_a_missing_one_is_named_not_created(
    settings: ServiceSettings, unique: str
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from genomebus_common.contracts.errors import TopicsMissing
    from genomebus_common.contracts.topics import Topic

    lane = Topic(f"test.{unique}.owned", SampleReceived, 2, "owned by an operator")
    owned = settings.model_copy(update={"kafka_create_topics": False})
    with pytest.raises(TopicsMissing, match=lane.name):
        await ensure_topics(owned, [lane])
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        assert lane.name not in await admin.list_topics(), "nothing was created"
    finally:
        await admin.close()
    assert sorted(await ensure_topics(settings, [lane])) == [lane.name, lane.dlq]
    assert await ensure_topics(owned, [lane]) == [], "once they exist, the service starts"


async def test_null_or_binary_header_values_do_not_block_the_partition(
    settings: ServiceSettings, unique: str
) -> None:
    from aiokafka import AIOKafkaProducer

    topic = f"test.{unique}.headers"
    await create_topics(settings, topic, f"{topic}.dlq")
    broker, consumer = _consumer(settings, unique)
    handled: list[tuple[str, dict[str, str]]] = []

    async def handle(event: SampleReceived, delivery: Delivery) -> None:
        handled.append((event.sample_id, delivery.headers))

    consumer.subscribe(SampleReceived, handle, topic)
    odd, after = sample_received(f"S-{unique}-odd"), sample_received(f"S-{unique}-after")
    producer = AIOKafkaProducer(**client_options(settings))
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, odd.to_bytes(), key=b"k", headers=[("x-null", None), ("x-binary", b"\xff\xfe")]
        )
        await producer.send_and_wait(topic, after.to_bytes(), key=b"k")
    finally:
        await producer.stop()
    async with broker:
        await broker.start()
        await wait_for(lambda: len(handled) >= 2, timeout_s=30)
        await asyncio.sleep(0.5)
    assert [sample for sample, _ in handled] == [odd.sample_id, after.sample_id], (
        "once each, in order"
    )
    assert handled[0][1]["x-null"] == "" and handled[0][1]["x-binary"] == "\ufffd\ufffd"


async def test_a_failed_announcement_does_not_dead_letter_the_message_twice(
    settings: ServiceSettings, unique: str
) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = f"test.{unique}.announce"
    await create_topics(settings, topic, f"{topic}.dlq")
    broker, consumer = _consumer(settings, unique)
    real_publish = broker.publish

    async def publish(*args: object, **kwargs: object) -> object:
        if kwargs.get("topic") == STAGE_FAILED.name:
            raise ConnectionError("stage.failed unreachable")
        return await real_publish(*args, **kwargs)

    broker.publish = publish  # type: ignore[method-assign]
    consumer.subscribe(SampleReceived, lambda e, d: asyncio.sleep(0), topic)
    async with broker:
        await broker.start()
        await real_publish(b"{not json", topic=topic, key=b"poison")
        await read_topic(settings, f"{topic}.dlq", count=1)
        await asyncio.sleep(4.0)  # long enough for a redelivery and a second dead letter
    reader = AIOKafkaConsumer(**client_options(settings))
    await reader.start()
    try:
        dlq = TopicPartition(f"{topic}.dlq", 0)
        assert (await reader.end_offsets([dlq]))[dlq] == 1, "parked once"
    finally:
        await reader.stop()
