"""A sample keeps one trace in ingest: from the LIS's POST, through its reads and the consent
decision, to the SampleReceived its outbox publishes; consent takes part by a link."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genomebus_common.contracts.topics import sample_received_topic
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit.reference import Manifest

from ..common.kafka_helpers import read_until, wait_for
from .conftest import give_consent
from .fastq_data import pair
from .test_api_integration import registration

pytestmark = pytest.mark.integration
PATIENT = "150372-1357"  # made up, well formed; consent comes after the reads


async def test_the_sample_trace_runs_from_the_post_to_the_published_event(
    lis: httpx.AsyncClient, toy_reference: Manifest, settings: ServiceSettings
) -> None:
    exporter = InMemorySpanExporter()
    provider = lis.app.state.runtime.tracer_provider  # type: ignore[attr-defined]
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    r1, r2 = pair(12)
    body = registration(toy_reference, r1, r2, national_id=PATIENT)
    sample = (await lis.post("/v1/samples", json=body)).json()
    await lis.put(sample["upload"]["R1"], content=r1)
    waiting = (await lis.put(sample["upload"]["R2"], content=r2)).json()
    assert waiting["status"] == "awaiting_consent"

    # The consent event arrives in a trace of its own (the consent service's), as Kafka delivers it.
    with provider.get_tracer("tests").start_as_current_span(
        "consent.changed process"
    ) as consent_span:
        await give_consent(lis, PATIENT, 1)
    consent_context = consent_span.get_span_context()

    record = await read_until(
        settings,
        sample_received_topic("urgent_clinical"),  # type: ignore[arg-type]
        lambda r: r.key == sample["sample_id"].encode(),
    )

    def finished() -> list[ReadableSpan]:
        return list(exporter.get_finished_spans())

    await wait_for(lambda: any(s.kind == trace.SpanKind.PRODUCER for s in finished()), timeout_s=10)
    spans = finished()
    post = next(
        s for s in spans if s.kind == trace.SpanKind.SERVER and s.name == "POST /v1/samples"
    )
    sample_trace = post.context.trace_id
    mine = [s for s in spans if s.context.trace_id == sample_trace]
    names = sorted(s.name for s in mine)
    assert names.count("ingest.store_reads") == 2, names
    decision = next(s for s in mine if s.name == "ingest.consent_decision")
    assert decision.attributes["genomebus.consent_version"] == 1
    assert consent_context.trace_id != sample_trace
    assert any(link.context.span_id == consent_context.span_id for link in decision.links), (
        "the release links to the consent event that allowed it"
    )
    assert any(
        s.kind == trace.SpanKind.PRODUCER and sample_received_topic("urgent_clinical") in s.name
        for s in mine
    ), names
    # The published message carries the sample's trace, for alignment to continue it.
    traceparent = dict(record.headers)["traceparent"].decode()
    assert traceparent.split("-")[1] == format(sample_trace, "032x")
    # The PUTs were their own requests: their server spans are other traces, linked from the
    # sample's.
    puts = [s for s in spans if s.kind == trace.SpanKind.SERVER and s.name.startswith("PUT ")]
    assert len(puts) == 2 and all(p.context.trace_id != sample_trace for p in puts)
    stores = [s for s in mine if s.name == "ingest.store_reads"]
    assert {link.context.span_id for s in stores for link in s.links} == {
        p.context.span_id for p in puts
    }


async def test_a_lis_that_sends_traceparent_has_the_sample_in_its_own_trace(
    lis: httpx.AsyncClient, toy_reference: Manifest
) -> None:
    exporter = InMemorySpanExporter()
    lis.app.state.runtime.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    lis_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    r1, r2 = pair(5)
    response = await lis.post(
        "/v1/samples",
        json=registration(toy_reference, r1, r2),
        headers={"traceparent": f"00-{lis_trace}-00f067aa0ba902b7-01"},
    )
    assert response.status_code == 201
    post = next(s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.SERVER)
    assert format(post.context.trace_id, "032x") == lis_trace
    assert post.attributes["http.route"] == "/v1/samples"
