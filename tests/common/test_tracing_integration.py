"""One trace follows an event across a Kafka hop, and the logs name it."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genomebus_common.contracts.events import SampleReceived, Stage
from genomebus_common.runtime.broker import Delivery, ReliableConsumer, RetryPolicy, create_broker
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.runtime.telemetry import JsonFormatter, make_tracer_provider

from .factories import sample_received
from .kafka_helpers import create_topics, wait_for

pytestmark = pytest.mark.integration


async def test_trace_id_survives_a_kafka_hop_and_appears_in_logs(
    settings: ServiceSettings, unique: str
) -> None:
    topic = f"test.{unique}.trace"
    await create_topics(settings, topic, f"{topic}.dlq")
    exporter = InMemorySpanExporter()
    provider = make_tracer_provider("tests", processors=[SimpleSpanProcessor(exporter)])
    tracer = provider.get_tracer("lis")

    log_lines = io.StringIO()
    handler = logging.StreamHandler(log_lines)
    handler.setFormatter(JsonFormatter("tests"))
    logger = logging.getLogger(f"tests.trace.{unique}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    seen: list[int] = []

    async def handle(event: SampleReceived, delivery: Delivery) -> None:
        seen.append(trace.get_current_span().get_span_context().trace_id)
        logger.info("aligned", extra={"sample_id": event.sample_id})

    broker = create_broker(settings, tracer_provider=provider)
    consumer = ReliableConsumer(
        broker, stage=Stage.ALIGNMENT, group_id=f"test-{unique}", retry=RetryPolicy()
    )
    consumer.subscribe(SampleReceived, handle, topic)
    event = sample_received(f"S-{unique}")
    async with broker:
        await broker.start()
        with tracer.start_as_current_span("lis POST /samples") as root:
            trace_id = root.get_span_context().trace_id
            await broker.publish(event.to_bytes(), topic=topic, key=event.sample_id.encode())
        await wait_for(lambda: bool(seen), timeout_s=30)

    assert seen == [trace_id], "the consumer's span continues the producer's trace"
    spans = exporter.get_finished_spans()
    assert {s.context.trace_id for s in spans} == {trace_id}
    assert any(s.kind == trace.SpanKind.CONSUMER for s in spans)
    line = json.loads(log_lines.getvalue().splitlines()[0])
    assert line["trace_id"] == format(trace_id, "032x")
    assert line["sample_id"] == event.sample_id and line["service"] == "tests"
