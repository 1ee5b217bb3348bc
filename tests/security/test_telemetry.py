"""Telemetry carries no free text and no national id: read from what exporters receive."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genomebus_common.runtime.telemetry import JsonFormatter
from genomebus_common.stagekit.reference import Manifest

from ..ingest.fastq_data import pair
from ..ingest.test_api_integration import registration

pytestmark = pytest.mark.integration


def _exported_text(exporter: InMemorySpanExporter) -> str:
    """Everything an exporter could send, with non-ASCII kept as it is (not JSON-escaped)."""
    return "\n".join(
        repr(
            (
                s.name,
                dict(s.attributes or {}),
                [(e.name, dict(e.attributes or {})) for e in s.events],
                s.status.description,
            )
        )
        for s in exporter.get_finished_spans()
    )


async def test_spans_hold_no_query_string_no_reason_and_no_national_id(
    lis: httpx.AsyncClient,
    toy_reference: Manifest,
) -> None:
    exporter = InMemorySpanExporter()
    lis.app.state.runtime.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    r1, r2 = pair(3, seed=83)
    sample = (await lis.post("/v1/samples", json=registration(toy_reference, r1, r2))).json()
    removed = await lis.delete(
        f"/v1/samples/{sample['sample_id']}",
        params={"reason": "the patient moved to Aarhus and asked us"},
    )
    assert removed.status_code == 200
    await lis.get(
        "/v1/samples/RH.x", params={"lookup": "010190-1234", "other": "0101\u201390\u20131234"}
    )
    text = _exported_text(exporter)
    assert exporter.get_finished_spans(), "no spans were exported at all"
    assert "Aarhus" not in text, "a removal reason reached a span"
    assert "010190" not in text and "0101\u201390" not in text, "a national id reached a span"


def test_log_lines_carry_no_national_id_in_any_spelling() -> None:
    formatter = JsonFormatter("tests")
    for spelling in ("010190-1234", "010190\u20131234", "0101.90.1234"):
        record = logging.makeLogRecord(
            {"msg": f"looked up {spelling}", "levelname": "INFO", "extra_field": spelling}
        )
        record.patient_hint = spelling
        record.reasons = [f"mate {spelling}", {"nested": (spelling,)}]  # logged lists and dicts too
        line = formatter.format(record)
        assert "0101" not in line and "redacted" in json.loads(line)["message"], line
