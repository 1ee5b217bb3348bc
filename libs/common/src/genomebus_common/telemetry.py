"""Tracing and logs: one trace follows a sample across services, and every log line names it.

The broker's OpenTelemetry middleware puts W3C ``traceparent`` into Kafka headers on publish and
continues the trace on consume, so a trace survives each Kafka hop. Logs are JSON lines carrying
the current trace and span ids, so an SRE can go from a log line to the whole journey.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .settings import ServiceSettings

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_STANDARD_LOG_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def make_tracer_provider(
    service_name: str, *, processors: list[SpanProcessor] | None = None, otlp_endpoint: str | None = None
) -> TracerProvider:
    """A tracer provider for one service; exports to OTLP when an endpoint is configured."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"genomebus-{service_name}"}))
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


class JsonFormatter(logging.Formatter):
    """One JSON object per line with time, level, logger, message, trace ids and extras."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
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
        return json.dumps(entry, default=str)


def configure_logging(settings: ServiceSettings) -> None:
    """Route all logging to stderr as JSON lines at the configured level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(settings.service_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
