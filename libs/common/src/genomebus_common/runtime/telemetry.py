"""Tracing and logs: one trace follows a sample across services, and every log line names it.

The broker's OpenTelemetry middleware puts W3C ``traceparent`` into Kafka headers on publish and
continues the trace on consume, so a trace survives each Kafka hop. Where a trace must wait (an
outbox row, a sample awaiting its reads or its consent), the W3C carrier is stored with the row
(``carrier()``) and the work that continues later starts from it (``context_from()``), linking to
whatever woke it (a request, a consent event), so one sample keeps one trace from the LIS's POST
to "variants ready". HTTP requests get a server span each from FastAPI's own instrumentation
(``fastapi_telemetry``), continuing a caller's ``traceparent`` when one is sent. Logs are JSON
lines carrying the current trace and span ids, so an SRE can go from a log line to the whole
journey.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from genomebus_common.contracts.identifiers import redact_national_ids
from genomebus_common.runtime.settings import CommonSettings

_PROPAGATOR = TraceContextTextMapPropagator()
TRACER_NAME = "genomebus"

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_STANDARD_LOG_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


# Attributes that carry a request's query string: free text (a removal's reason) and ids.
_QUERY_ATTRIBUTES = frozenset({"url.query", "http.query"})
_URL_ATTRIBUTES = frozenset({"http.target", "http.url", "url.full"})


def _scrub_value(key: str, value: Any) -> Any:
    """A span attribute as it may be exported: a URL without its query, then redacted as a log
    field is (``_redacted``)."""
    if isinstance(value, str) and key in _URL_ATTRIBUTES:
        value = value.split("?", 1)[0]
    if isinstance(value, bytes):  # a message key, say: kept unless something in it is redacted
        text = value.decode("latin-1")
        redacted = redact_national_ids(text)
        return value if redacted == text else redacted
    return _redacted(value)


def scrub_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a span may export: no query strings, and nothing shaped like a national id."""
    return {
        k: _scrub_value(k, v) for k, v in (attributes or {}).items() if k not in _QUERY_ATTRIBUTES
    }


def scrub_span(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    if status.description:
        status = trace.Status(status.status_code, redact_national_ids(status.description))
    return ReadableSpan(
        name=redact_national_ids(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=scrub_attributes(span.attributes),
        events=[Event(e.name, scrub_attributes(e.attributes), e.timestamp) for e in span.events],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class _Scrubbed(SpanProcessor):
    """Hands every ended span to ``inner`` scrubbed: whatever instrumentation recorded (FastAPI
    puts the query string of ``DELETE ...?reason=`` in ``url.query``; an exception event quotes
    its message), no exporter sees free text or a national id."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.inner.on_end(scrub_span(span))

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class ScrubbingTracerProvider(TracerProvider):
    """A tracer provider whose every span processor (added now or later, by a test too)
    receives scrubbed spans: the one place telemetry is cleaned, so no exporter can miss it."""

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(_Scrubbed(span_processor))


def make_tracer_provider(
    service_name: str,
    *,
    processors: list[SpanProcessor] | None = None,
    otlp_endpoint: str | None = None,
) -> TracerProvider:
    """A tracer provider for one service; exports to OTLP when an endpoint is configured."""
    provider = ScrubbingTracerProvider(
        resource=Resource.create({"service.name": f"genomebus-{service_name}"})
    )
    for processor in processors or ():
        provider.add_span_processor(processor)
    if otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:  # the exporter is an optional extra
            raise RuntimeError(
                "GENOMEBUS_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp-proto-http "
                "is not installed"
            ) from exc
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    return provider


def carrier(ctx: otel_context.Context | None = None) -> dict[str, str]:
    """The current (or given) trace position as W3C headers, to store with a row that another
    task will pick up later; empty when there is no valid span."""
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers, context=ctx)
    return headers


def context_from(stored: Mapping[str, str] | None) -> otel_context.Context | None:
    """The context a stored carrier names, or None when it names none (an old row)."""
    if not stored or "traceparent" not in stored:
        return None
    ctx = _PROPAGATOR.extract(dict(stored))
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def links_to(*sources: Mapping[str, str] | otel_context.Context | None) -> list[Link]:
    """Links to each valid source (a stored carrier or a context), duplicates dropped: how work
    that belongs to one trace says which other traces (a request, a consent change) caused it."""
    links: list[Link] = []
    seen: set[tuple[int, int]] = set()
    for source in sources:
        ctx = source if isinstance(source, otel_context.Context) else context_from(source)
        if ctx is None:
            continue
        span_context = trace.get_current_span(ctx).get_span_context()
        key = (span_context.trace_id, span_context.span_id)
        if span_context.is_valid and key not in seen:
            seen.add(key)
            links.append(Link(span_context))
    return links


def tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """genomebus's tracer: the runtime's provider when given, else the global one."""
    return (provider or trace.get_tracer_provider()).get_tracer(TRACER_NAME)


UNOBSERVED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def fastapi_telemetry(tracer_provider: trace.TracerProvider) -> dict[str, Any]:
    """FastAPI's own OpenTelemetry instrumentation (``FastAPI(telemetry=...)``): a server span
    per request named by its route template, continuing a caller's ``traceparent``, on the
    service's provider. Probes are left out (many, and about no sample); so are FastAPI's
    per-request metrics and logs (the Prometheus metrics and JSON logs cover them) and its
    dependency/serialisation spans (three more spans per request that say little here)."""
    return {
        "tracer_provider": tracer_provider,
        "tracing": True,
        "metrics": False,
        "logs": False,
        "operation_spans": False,
        "auto_configure": False,
        "exclude": lambda scope: scope.get("path") in UNOBSERVED_PATHS,
    }


class HttpMetrics:
    """ASGI middleware: ``genomebus_http_request_seconds`` per request, labelled by the route
    template (never the concrete path: ids stay out of labels). Probes are not counted."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in UNOBSERVED_PATHS:
            await self.app(scope, receive, send)
            return
        from genomebus_common.runtime.metrics import HTTP_SECONDS, Stopwatch

        status = {"code": 500}

        async def send_recording(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        clock = Stopwatch()
        try:
            await self.app(scope, receive, send_recording)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_SECONDS.labels(scope.get("method", "GET"), route, str(status["code"])).observe(
                clock.elapsed
            )


class JsonFormatter(logging.Formatter):
    """One JSON object per line with time, level, logger, message, trace ids and extras."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service_name,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD_LOG_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # Redacted before encoding: JSON escapes non-ASCII, and an escaped dash would hide a
        # national id from the screen.
        return json.dumps(_redacted(entry), default=lambda v: redact_national_ids(str(v)))


def _redacted(value: Any) -> Any:
    """``value`` with every string in it, at any depth, redacted (a log's ``reasons`` list)."""
    if isinstance(value, str):
        return redact_national_ids(value)
    if isinstance(value, dict):
        return {redact_national_ids(str(k)): _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redacted(v) for v in value]
    return value


def configure_logging(settings: CommonSettings) -> None:
    """Route all logging to stderr as JSON lines at the configured level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(settings.service_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
