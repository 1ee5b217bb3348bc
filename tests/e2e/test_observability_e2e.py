"""One trace per sample across the five services, and the metrics that matter move.

The services run as processes (``conftest.pipeline``) with their real OTLP/HTTP exporter
pointed at a receiver in this test process (``otlp.py``); metrics are scraped from each
service's ``/metrics`` as Prometheus would.

The sample's patient has no consent when the sample arrives, so the sample waits, and a
clinician then records consent through the consent service's API. Consent is per patient, so
it has a trace of its own (consent API -> outbox -> consent.changed -> ingest); ingest's decision
to release the sample is a span in the sample's trace that links to it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from genomebus_common.contracts.events import VariantsReady
from genomebus_common.contracts.topics import VARIANTS_CALLED, VARIANTS_READY
from genomebus_common.runtime.objectstore import file_sha256
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit.reference import Manifest
from genomebus_testdata import SimulatedSample, read_pairs_for, simulate_sample

from ..common.kafka_helpers import read_until
from .conftest import HOSPITAL, Pipeline
from .otlp import ReceivedSpan, Receiver

pytestmark = pytest.mark.integration

PATIENT = "230487-2211"  # made up, well formed; no consent until the test records one
SERVICES = ("ingest", "consent", "alignment", "calling", "registry")


@pytest.fixture(scope="module")
def small_sample(
    reference_fasta: Path, tmp_path_factory: pytest.TempPathFactory
) -> SimulatedSample:
    """2x: enough for every stage to do real work, quick enough for a trace test."""
    return simulate_sample(
        reference_fasta,
        tmp_path_factory.mktemp("e2e-sample-2x"),
        read_pairs=read_pairs_for(2, 1_000_000),
        seed=77,
    )


def scrape(pipeline: Pipeline) -> dict[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    """Every service's /metrics: {service: {(sample name, labels): value}}."""
    found: dict[str, dict[tuple[str, frozenset[tuple[str, str]]], float]] = {}
    for name in SERVICES:
        response = httpx.get(f"{pipeline.services[name].url}/metrics", timeout=10)
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"].startswith("text/plain"), name
        found[name] = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }
    return found


def value(samples: dict, name: str, **labels: str) -> float:
    """Sum of the series of ``name`` whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def register_and_upload(
    lis: httpx.Client, sample: SimulatedSample, reference_id: str, specimen: str
) -> dict:
    body = {
        "hospital_id": HOSPITAL,
        "specimen_id": specimen,
        "lis_order_id": f"O{specimen}",
        "national_id": PATIENT,
        "sequencing_run": "E2E-OBS",
        "read_group": {"id": f"{specimen}.L1", "library": "LIB1"},
        "priority": "routine",
        "reference_id": reference_id,
        "reads": {
            "r1_sha256": file_sha256(sample.reads_1),
            "r2_sha256": file_sha256(sample.reads_2),
        },
    }
    view = lis.post("/v1/samples", json=body)
    assert view.status_code == 201, view.text
    for mate, path in (("R1", sample.reads_1), ("R2", sample.reads_2)):
        with path.open("rb") as handle:
            response = lis.put(view.json()["upload"][mate], content=handle)
        assert response.status_code == 200, response.text
    return response.json()


def _tree_is_whole(spans: list[ReceivedSpan]) -> bool:
    ids = {s.span_id for s in spans}
    return all(s.parent_span_id in ids for s in spans if s.parent_span_id)


async def _record_consent(pipeline: Pipeline, specimen: str) -> httpx.Response:
    """The patient's consent, as the hospital's clinician records it. Consent takes it once
    ingest's sample.registered has told it this hospital treats the patient: until then the
    answer is 404, and the LIS tries again."""
    with pipeline.consent_client() as consent:
        deadline = time.monotonic() + 60
        while True:
            recorded = consent.post(
                "/v1/consents",
                json={
                    "national_id": PATIENT,
                    "analysis_consent_given": True,
                    "consent_document": "DOC-OBS",
                    "consent_date": "2026-01-15",
                    "secondary_findings": "do_not_report",
                    "research_use": "allowed",
                    "recorded_by": "e2e observability",
                },
                headers={"Idempotency-Key": f"obs-{specimen}"},
            )
            if recorded.status_code != 404 or time.monotonic() > deadline:
                return recorded
            await asyncio.sleep(0.3)


async def test_one_trace_from_the_lis_post_to_variants_ready_and_the_metrics_move(
    pipeline: Pipeline,
    registered_reference: Manifest,
    small_sample: SimulatedSample,
    settings: ServiceSettings,
    traces: Receiver,
) -> None:
    before = scrape(pipeline)
    specimen = f"T{uuid.uuid4().hex[:8]}"
    with pipeline.lis() as lis:
        view = register_and_upload(lis, small_sample, registered_reference.reference.id, specimen)
    sample_id = view["sample_id"]
    assert view["status"] == "awaiting_consent", view  # no consent yet: the sample waits

    recorded = await _record_consent(pipeline, specimen)
    assert recorded.status_code == 201, recorded.text

    started = time.monotonic()
    ready = VariantsReady.from_bytes(
        (
            await read_until(
                settings,
                VARIANTS_READY.name,
                lambda r: r.key == sample_id.encode(),
                timeout_s=240,
            )
        ).value  # type: ignore[arg-type]
    )
    print(f"\nconsent to variants.ready: {time.monotonic() - started:.1f}s")

    # --- the trace ---------------------------------------------------------------------------
    def sample_trace(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        ids = {
            s.trace_id
            for s in spans
            if s.attributes.get("genomebus.sample_id") == sample_id
            and s.service == "genomebus-ingest"
        }
        return [s for s in spans if s.trace_id in ids]

    def complete(spans: list[ReceivedSpan]) -> bool:
        mine = sample_trace(spans)
        return _tree_is_whole(mine) and any(
            s.service == "genomebus-registry"
            and s.kind == "PRODUCER"
            and VARIANTS_READY.name in s.name
            for s in mine
        )

    spans = sample_trace(traces.wait_for(complete, timeout_s=30))
    assert spans, "no span names the sample"
    trace_ids = {s.trace_id for s in spans}
    assert len(trace_ids) == 1, f"the sample is in {len(trace_ids)} traces"
    summary = "\n".join(sorted(f"{s.service} {s.kind} {s.name}" for s in spans))
    print(f"trace {next(iter(trace_ids))}: {len(spans)} spans\n{summary}")
    roots = [s for s in spans if not s.parent_span_id]
    assert [(r.service, r.kind, r.name) for r in roots] == [
        ("genomebus-ingest", "SERVER", "POST /v1/samples")
    ], summary
    assert _tree_is_whole(spans), "a span's parent is missing: a hop lost the context\n" + summary
    assert {s.service for s in spans} >= {
        "genomebus-ingest",
        "genomebus-alignment",
        "genomebus-calling",
        "genomebus-registry",
    }, summary
    # Every hop: ingest's outbox publish, each stage's consume and publish, the registry's outbox.
    for service, kind, topic in (
        ("genomebus-ingest", "PRODUCER", "genomebus.sample.received.routine"),
        ("genomebus-alignment", "CONSUMER", "genomebus.sample.received.routine"),
        ("genomebus-alignment", "PRODUCER", "genomebus.sample.aligned"),
        ("genomebus-calling", "CONSUMER", "genomebus.sample.aligned"),
        ("genomebus-calling", "PRODUCER", VARIANTS_CALLED.name),
        ("genomebus-registry", "CONSUMER", VARIANTS_CALLED.name),
        ("genomebus-registry", "PRODUCER", VARIANTS_READY.name),
    ):
        assert any(s.service == service and s.kind == kind and topic in s.name for s in spans), (
            f"no {kind} span of {service} on {topic}\n{summary}"
        )
    assert any(s.name == "sample.aligned.compute" for s in spans), summary
    assert any(s.name == "variants.called.compute" for s in spans), summary

    # Consent takes part by a link: the release links to the consent change's own trace,
    # which begins at the consent service's API.
    decision = next(s for s in spans if s.name == "ingest.consent_decision")
    assert decision.attributes["genomebus.consent_version"] == 1
    assert decision.links, "the release does not link to the consent that allowed it"
    consent_trace = {t for t, _ in decision.links} - trace_ids
    assert len(consent_trace) == 1
    consent_spans = traces.wait_for(
        lambda all_: any(s.trace_id in consent_trace and s.kind == "SERVER" for s in all_),
        timeout_s=10,
    )
    consent_spans = [s for s in consent_spans if s.trace_id in consent_trace]
    assert any(
        s.service == "genomebus-consent" and s.kind == "SERVER" and s.name == "POST /v1/consents"
        for s in consent_spans
    ), consent_spans
    assert any(s.service == "genomebus-consent" and s.kind == "PRODUCER" for s in consent_spans)
    assert any(s.service == "genomebus-ingest" and s.kind == "CONSUMER" for s in consent_spans)

    # --- the metrics -------------------------------------------------------------------------
    after = scrape(pipeline)

    def moved(service: str, name: str, **labels: str) -> float:
        return value(after[service], name, **labels) - value(before[service], name, **labels)

    ok = {"outcome": "ok"}
    assert (
        moved(
            "ingest",
            "genomebus_handle_seconds_count",
            stage="ingest",
            topic="genomebus.consent.changed",
            **ok,
        )
        >= 1
    )
    assert (
        moved(
            "alignment",
            "genomebus_handle_seconds_count",
            stage="alignment",
            topic="genomebus.sample.received.routine",
            **ok,
        )
        >= 1
    )
    assert (
        moved(
            "calling",
            "genomebus_handle_seconds_count",
            stage="calling",
            topic="genomebus.sample.aligned",
            **ok,
        )
        >= 1
    )
    assert (
        moved(
            "registry",
            "genomebus_handle_seconds_count",
            stage="registry",
            topic=VARIANTS_CALLED.name,
            **ok,
        )
        >= 1
    )
    reads_size = small_sample.reads_1.stat().st_size + small_sample.reads_2.stat().st_size
    assert moved("ingest", "genomebus_object_bytes_total", direction="put") >= reads_size
    assert moved("alignment", "genomebus_object_bytes_total", direction="get") >= reads_size
    assert moved("alignment", "genomebus_object_bytes_total", direction="put") > 0
    assert moved("registry", "genomebus_object_bytes_total", direction="get") >= ready.vcf.size
    assert (
        moved(
            "ingest", "genomebus_outbox_published_total", topic="genomebus.sample.received.routine"
        )
        >= 1
    )
    assert (
        moved("consent", "genomebus_outbox_published_total", topic="genomebus.consent.changed") >= 1
    )
    assert moved("registry", "genomebus_outbox_published_total", topic=VARIANTS_READY.name) >= 1
    assert (
        moved(
            "ingest",
            "genomebus_http_request_seconds_count",
            route="/v1/samples",
            method="POST",
            status="201",
        )
        == 1
    )
    assert value(after["ingest"], "genomebus_samples", state="received") >= 1
    for service in ("ingest", "consent", "registry"):  # the services with an outbox
        assert ("genomebus_outbox_backlog", frozenset()) in after[service], service
    lagging = [k for k in after["alignment"] if k[0] == "genomebus_consumer_lag_messages"]
    assert lagging and all(
        dict(labels)["group"].startswith("genomebus.alignment") for _, labels in lagging
    )


async def test_a_dead_lettered_message_shows_in_the_metrics(
    pipeline: Pipeline, settings: ServiceSettings, as_service: Callable[[str], dict[str, Any]]
) -> None:
    """Not an event at all, on the registry's topic: dead-lettered at once, and counted."""
    from genomebus_common.runtime.broker import create_broker

    labels = {"stage": "registry", "topic": VARIANTS_CALLED.name}
    before = scrape(pipeline)["registry"]
    calling = ServiceSettings(**{**settings.model_dump(), **as_service("calling")})
    async with create_broker(calling) as broker:  # a broken calling worker's publish
        await broker.publish(
            b'{"not": "an event"}', topic=VARIANTS_CALLED.name, key=uuid.uuid4().hex.encode()
        )
    deadline = time.monotonic() + 30
    while True:
        after = scrape(pipeline)["registry"]
        if value(after, "genomebus_dead_letters_total", **labels) > value(
            before, "genomebus_dead_letters_total", **labels
        ):
            break
        assert time.monotonic() < deadline, "the dead letter was not counted"
        await asyncio.sleep(0.3)
    assert value(after, "genomebus_dead_letters_total", cause="invalid_event", **labels) == (
        value(before, "genomebus_dead_letters_total", cause="invalid_event", **labels) + 1
    )
    assert value(
        after, "genomebus_handler_failures_total", cause="invalid_event", kind="permanent", **labels
    ) == (
        value(
            before,
            "genomebus_handler_failures_total",
            cause="invalid_event",
            kind="permanent",
            **labels,
        )
        + 1
    )
    assert value(after, "genomebus_handle_seconds_count", outcome="dead_lettered", **labels) == (
        value(before, "genomebus_handle_seconds_count", outcome="dead_lettered", **labels) + 1
    )
