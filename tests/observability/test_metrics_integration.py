"""The metrics move when the work they describe happens: the reliable consumer on the real
Kafka, the outbox on the real PostgreSQL, the object store on the real MinIO, and /metrics on a
service app as Prometheus scrapes it."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from genomebus_common.contracts.errors import ObjectStoreUnavailable
from genomebus_common.contracts.events import SampleReceived, Stage
from genomebus_common.contracts.topics import topic_for
from genomebus_common.runtime.broker import Delivery, ReliableConsumer, RetryPolicy, create_broker
from genomebus_common.runtime.db import connect_pool
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.outbox import OutboxRelay, enqueue, read_backlog
from genomebus_common.runtime.service import ServiceRuntime, create_app
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.runtime.telemetry import make_tracer_provider

from ..common.factories import sample_received
from ..common.kafka_helpers import create_topics, read_until, wait_for

pytestmark = pytest.mark.integration


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_handling_time_failures_dead_letters_and_lag_are_counted(
    settings: ServiceSettings, unique: str
) -> None:
    topic = f"test.{unique}.metrics"
    await create_topics(settings, topic, f"{topic}.dlq")
    group = f"test-{unique}"
    handled: list[str] = []
    flaky = {"left": 1}

    async def handle(event: SampleReceived, delivery: Delivery) -> None:
        if event.sample_id.endswith("flaky") and flaky["left"]:
            flaky["left"] -= 1
            raise ObjectStoreUnavailable("MinIO is restarting")
        handled.append(event.sample_id)

    broker = create_broker(settings)
    consumer = ReliableConsumer(
        broker,
        stage=Stage.CALLING,
        group_id=group,
        retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.01),
    )
    consumer.subscribe(SampleReceived, handle, topic)
    ok = {"stage": "calling", "topic": topic, "outcome": "ok"}
    dead = {"stage": "calling", "topic": topic, "outcome": "dead_lettered"}
    async with broker:
        await broker.start()
        for event in (sample_received(f"S-{unique}-good"), sample_received(f"S-{unique}-flaky")):
            await broker.publish(event.to_bytes(), topic=topic, key=event.sample_id.encode())
        await broker.publish(b"{}", topic=topic, key=b"garbage")
        await wait_for(
            lambda: sample("genomebus_handle_seconds_count", **dead) == 1 and len(handled) == 2,
            timeout_s=30,
        )
        await consumer.lag.refresh()
        lag = sample("genomebus_consumer_lag_messages", group=group, topic=topic, partition="0")

    assert sample("genomebus_handle_seconds_count", **ok) == 2
    assert sample("genomebus_handle_seconds_bucket", **ok, le="+Inf") == 2
    assert (
        sample(
            "genomebus_handler_failures_total",
            stage="calling",
            topic=topic,
            cause="object_store_unavailable",
            kind="transient",
        )
        == 1
    )  # retried, then fine
    assert (
        sample(
            "genomebus_handler_failures_total",
            stage="calling",
            topic=topic,
            cause="invalid_event",
            kind="permanent",
        )
        == 1
    )
    assert (
        sample("genomebus_dead_letters_total", stage="calling", topic=topic, cause="invalid_event")
        == 1
    )
    assert lag == 0, "all three consumed: nothing lags"


async def test_lag_is_what_the_consumer_has_not_reached(
    settings: ServiceSettings, unique: str
) -> None:
    topic = f"test.{unique}.lag"
    await create_topics(settings, topic, f"{topic}.dlq")
    group = f"test-{unique}"
    release = asyncio.Event()
    started: list[str] = []

    async def slow(event: SampleReceived, delivery: Delivery) -> None:
        started.append(event.sample_id)
        await release.wait()

    broker = create_broker(settings)
    consumer = ReliableConsumer(broker, stage=Stage.ALIGNMENT, group_id=group, retry=RetryPolicy())
    consumer.subscribe(SampleReceived, slow, topic)
    async with broker:
        await broker.start()
        for i in range(4):
            event = sample_received(f"S-{unique}-{i}")
            await broker.publish(event.to_bytes(), topic=topic, key=b"one-partition")
        await wait_for(lambda: bool(started), timeout_s=30)

        async def lag() -> float:
            await consumer.lag.refresh()
            return sample(
                "genomebus_consumer_lag_messages", group=group, topic=topic, partition="0"
            )

        # The first is being handled (position 1) and three wait behind it, though the
        # fetcher, idle while the handler is busy, may not have seen them all.
        while_busy = await lag()
        release.set()
        await wait_for(lambda: len(started) == 4, timeout_s=30)
        await asyncio.sleep(0.2)  # the last offset is committed after its handler returns
        after = await lag()
    assert while_busy == 3
    assert after == 0


async def test_the_outbox_publishes_inside_the_trace_that_enqueued_and_reports_its_backlog(
    settings: ServiceSettings, fresh_dsn: str, unique: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = make_tracer_provider("tests", processors=[SimpleSpanProcessor(exporter)])
    event = sample_received(f"S-{unique}-outbox")
    async with connect_pool(fresh_dsn) as pool:
        with provider.get_tracer("tests").start_as_current_span("release sample") as release:
            async with pool.acquire() as conn, conn.transaction():
                await enqueue(conn, event)
        await read_backlog(pool)
        assert sample("genomebus_outbox_backlog") == 1
        assert sample("genomebus_outbox_oldest_unsent_seconds") >= 0
        published_before = sample("genomebus_outbox_published_total", topic=topic_for(event))
        broker = create_broker(settings, tracer_provider=provider)
        async with broker:
            # Published later, from the relay's own task: outside any span of the caller.
            relay = OutboxRelay(pool, broker)
            fresh = contextvars.Context()  # no span of the caller's here
            assert await asyncio.create_task(relay.publish_pending(), context=fresh) == 1
        await read_backlog(pool)
        assert sample("genomebus_outbox_backlog") == 0
        stored = await pool.fetchval("SELECT trace_context FROM genomebus_outbox")
    assert (
        sample("genomebus_outbox_published_total", topic=topic_for(event)) == published_before + 1
    )

    wanted = release.get_span_context()
    assert json.loads(stored)["traceparent"].split("-")[1] == format(wanted.trace_id, "032x")
    producers = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.PRODUCER]
    assert producers and all(s.context.trace_id == wanted.trace_id for s in producers)
    record = await read_until(
        settings, topic_for(event), lambda r: r.key == event.sample_id.encode()
    )
    traceparent = dict(record.headers)["traceparent"].decode()
    assert traceparent.split("-")[1] == format(wanted.trace_id, "032x"), (
        "the trace crossed the outbox"
    )


def test_object_bytes_are_counted_both_ways(store: ObjectStore, bucket: str) -> None:
    data = b"ACGT" * 300_000
    put_before = sample("genomebus_object_bytes_total", direction="put", bucket=bucket)
    ref = store.put_stream(bucket, "x/reads.bin", io.BytesIO(data))
    with store.open(ref) as stream:
        while stream.read(65536):
            pass
    assert sample(
        "genomebus_object_bytes_total", direction="put", bucket=bucket
    ) == put_before + len(data)
    assert sample("genomebus_object_bytes_total", direction="get", bucket=bucket) == len(data)


async def test_every_service_app_serves_metrics(settings: ServiceSettings, unique: str) -> None:
    """What runtime.create_app gives every service (the registry too) without its own wiring."""
    runtime = ServiceRuntime(
        settings.model_copy(update={"service_name": f"obs-{unique}"}), Stage.CALLING
    )

    async def handle(event: SampleReceived, delivery: Delivery) -> None:
        pass

    topic = f"test.{unique}.app"
    await create_topics(settings, topic, f"{topic}.dlq")
    runtime.consumer.subscribe(SampleReceived, handle, topic)
    app = create_app(runtime)
    async with app.router.lifespan_context(app):
        event = sample_received(f"S-{unique}-app")
        await runtime.broker.publish(event.to_bytes(), topic=topic, key=b"k")
        labels = {"stage": "calling", "topic": topic, "outcome": "ok"}
        await wait_for(
            lambda: sample("genomebus_handle_seconds_count", **labels) == 1, timeout_s=30
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            response = await http.get("/metrics")
            await http.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        f'genomebus_handle_seconds_count{{outcome="ok",stage="calling",topic="{topic}"}} 1.0'
        in text
    )
    assert (
        f'genomebus_consumer_lag_messages{{group="genomebus.obs-{unique}",partition="0",topic="{topic}"}}'
        in text
    )
    assert "genomebus_http_request_seconds" in text and 'route="/healthz"' not in text
