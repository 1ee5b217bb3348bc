"""A sample keeps one trace in ingest: work on it later continues the trace its POST began.

Consent is per patient, not per sample, so it does not own a sample's trace: a release links to
the trace of the consent version it rests on, and the sample's own trace stays one line from
POST to "variants ready". ``Tracing`` on OpenTelemetry, with the runtime's tracer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import context as otel_context
from opentelemetry import trace

from genomebus_common.runtime.telemetry import carrier, context_from, links_to

from ..core.sample import TraceCarrier
from ..ports import SpanAttribute


class OtelTracing:
    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def carrier(self) -> TraceCarrier:
        return carrier()

    @contextlib.contextmanager
    def sample_span(
        self,
        name: str,
        stored: TraceCarrier | None,
        *also_links: TraceCarrier | None,
        **attributes: SpanAttribute,
    ) -> Iterator[None]:
        here = otel_context.get_current()
        sample_context = context_from(stored)
        with self.tracer.start_as_current_span(
            name,
            context=sample_context if sample_context is not None else here,
            links=links_to(here if sample_context is not None else None, *also_links),
            attributes={f"genomebus.{k}": v for k, v in attributes.items() if v is not None},
        ):
            yield

    @contextlib.contextmanager
    def linked_span(
        self, name: str, stored: TraceCarrier | None, **attributes: SpanAttribute
    ) -> Iterator[None]:
        with self.tracer.start_as_current_span(
            name,
            links=links_to(stored),
            attributes={f"genomebus.{k}": v for k, v in attributes.items() if v is not None},
        ):
            yield
