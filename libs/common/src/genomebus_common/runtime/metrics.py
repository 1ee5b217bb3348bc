"""Prometheus metrics every genomebus service exposes at ``GET /metrics`` (see ``runtime.py``).

Every name starts with ``genomebus_``. Each process runs one service, so no metric carries a
service label: Prometheus adds ``job``/``instance`` (and Kubernetes ``pod``) when it scrapes.
Labels stay bounded: stages, topics, error codes from ``errors.py``, buckets and route
templates, never a sample id.

| metric | type | labels | what it tells an operator |
| --- | --- | --- | --- |
| ``genomebus_handle_seconds`` | histogram | stage, topic, outcome | time to handle one event, retries included; outcome ``ok``, ``dead_lettered`` or ``error`` (unfinished: the DLQ publish failed or the worker stopped; the message is redelivered) |
| ``genomebus_handler_failures_total`` | counter | stage, topic, cause, kind | failed attempts by cause (the ``code`` of the error tree) and kind (``transient``/``permanent``), retried ones included |
| ``genomebus_dead_letters_total`` | counter | stage, topic, cause | messages parked in ``<topic>.dlq`` |
| ``genomebus_consumer_lag_messages`` | gauge | group, topic, partition | end offset minus position of each assigned partition, read from the consumers at scrape time |
| ``genomebus_object_bytes_total`` | counter | direction, bucket | bytes streamed to (``put``) and from (``get``) the object store |
| ``genomebus_outbox_backlog`` | gauge | | outbox rows not yet published (read at scrape time) |
| ``genomebus_outbox_oldest_unsent_seconds`` | gauge | | age of the oldest unpublished outbox row; 0 when none |
| ``genomebus_outbox_failed_rows`` | gauge | | outbox rows Kafka refused for good, waiting for an operator |
| ``genomebus_outbox_published_total`` | counter | topic | events the outbox relay published |
| ``genomebus_outbox_delay_seconds`` | histogram | | commit-to-publish delay of outbox rows |
| ``genomebus_http_request_seconds`` | histogram | method, route, status | the service's own HTTP API (health, readiness and metrics excluded) |
| ``genomebus_samples`` | gauge | state | ingest only: samples in each state, counted in its database at scrape time |
| ``genomebus_registry_pending_adjustments`` | gauge | | registry only: count adjustments committed and not yet folded into the stored counts (read at scrape time); every research answer evaluates them |
| ``genomebus_registry_folded_adjustments_total`` | counter | | registry only: adjustments the folder moved into the stored counts |
| ``genomebus_scatter_units_total`` | counter | stage, lane, state | units of scattered work (read chunks, regions) ``published`` and ``done``: the difference is a stage's outstanding work per lane |
| ``genomebus_scatter_unit_seconds`` | histogram | stage, lane | tool time of one unit (units are killed at their time limit: cause ``tool_timed_out``) |

Scrape-time readings (lag, outbox, samples) are refreshed by ``refresh()`` just before
``/metrics`` renders, each bounded by a short timeout, so a slow database costs a stale
reading, never a hung scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

log = logging.getLogger(__name__)

#: The media type of ``render``'s text (Prometheus' text exposition format).
CONTENT_TYPE: str = CONTENT_TYPE_LATEST

# ``*_created`` series double what Prometheus stores and no dashboard here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated

# Handling a message spans milliseconds (a consent event) to hours (a whole genome's alignment).
_HANDLE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 21600)
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_DELAY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)

HANDLE_SECONDS = Histogram(
    "genomebus_handle_seconds",
    "Time to handle one consumed event, retries included, by outcome.",
    ["stage", "topic", "outcome"],
    buckets=_HANDLE_BUCKETS,
)
HANDLER_FAILURES = Counter(
    "genomebus_handler_failures",
    "Failed handling attempts by cause (error code) and kind (transient or permanent).",
    ["stage", "topic", "cause", "kind"],
)
DEAD_LETTERS = Counter(
    "genomebus_dead_letters",
    "Messages sent to the dead-letter topic, by cause.",
    ["stage", "topic", "cause"],
)
CONSUMER_LAG = Gauge(
    "genomebus_consumer_lag_messages",
    "Messages not yet consumed per assigned partition (highwater - position), read at scrape.",
    ["group", "topic", "partition"],
)
OBJECT_BYTES = Counter(
    "genomebus_object_bytes",
    "Bytes streamed to (put) or from (get) the object store.",
    ["direction", "bucket"],
)
OUTBOX_BACKLOG = Gauge("genomebus_outbox_backlog", "Outbox rows not yet published.")
OUTBOX_OLDEST = Gauge(
    "genomebus_outbox_oldest_unsent_seconds", "Age of the oldest unpublished outbox row (0: none)."
)
OUTBOX_FAILED = Gauge(
    "genomebus_outbox_failed_rows", "Outbox rows Kafka refused for good (an operator must act)."
)
OUTBOX_PUBLISHED = Counter(
    "genomebus_outbox_published", "Events published by the outbox relay.", ["topic"]
)
OUTBOX_DELAY = Histogram(
    "genomebus_outbox_delay_seconds",
    "Delay between an outbox row's commit and its publication.",
    buckets=_DELAY_BUCKETS,
)
HTTP_SECONDS = Histogram(
    "genomebus_http_request_seconds",
    "HTTP API requests by method, route template and status.",
    ["method", "route", "status"],
    buckets=_HTTP_BUCKETS,
)
SAMPLES = Gauge("genomebus_samples", "Samples in each state (ingest's database).", ["state"])
REGISTRY_PENDING = Gauge(
    "genomebus_registry_pending_adjustments",
    "Registry count adjustments committed and not yet folded into the stored counts: every "
    "research answer evaluates them, so a growing value means folds fall behind.",
)
REGISTRY_FOLDED = Counter(
    "genomebus_registry_folded_adjustments",
    "Registry count adjustments folded into the stored counts.",
)
SCATTER_UNITS = Counter(
    "genomebus_scatter_units",
    "Units of scattered work (read chunks, regions) published and done, per stage and lane: "
    "published - done is the stage's outstanding work.",
    ["stage", "lane", "state"],
)
SCATTER_UNIT_SECONDS = Histogram(
    "genomebus_scatter_unit_seconds",
    "Tool time of one unit of scattered work.",
    ["stage", "lane"],
    buckets=_HANDLE_BUCKETS,
)


def _series_names(families: Iterable[Any]) -> set[str]:
    names: set[str] = set()
    for metric in families:
        if not metric.name.startswith("genomebus_"):
            continue
        for sample in metric.samples:
            names.add(sample.name)
        # A labelled metric with no child yet shows no samples: name its series anyway.
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
        }.get(metric.type, ("",))
        names.update(metric.name + s for s in suffixes)
    return names


def metric_names(registry: CollectorRegistry = DEFAULT_REGISTRY) -> set[str]:
    """Every genomebus series name registered in this process (``_bucket``, ``_total`` ...
    included): what a dashboard may reference. A service that defines metrics of its own
    registers them when its module is imported."""
    return _series_names(registry.collect())


def shared_metric_names() -> set[str]:
    """The series of the metrics defined here, which every service exposes."""
    from prometheus_client.metrics import MetricWrapperBase

    owned = [m for m in globals().values() if isinstance(m, MetricWrapperBase)]
    return _series_names(family for m in owned for family in m.collect())


# --- scrape-time readings ----------------------------------------------------------------------

Refresher = Callable[[], Awaitable[None]]
# Keyed by identity: owners may be unhashable dataclasses; the owner is kept for log messages.
_refreshers: dict[int, tuple[Any, Refresher]] = {}
_REFRESH_TIMEOUT_S = 2.0


def on_scrape(owner: Any, refresher: Refresher) -> None:
    """Run ``refresher`` before each scrape until ``forget(owner)``: a relay, a consumer or a
    service registers, while it runs, what it alone can read."""
    _refreshers[id(owner)] = (owner, refresher)


def forget(owner: Any) -> None:
    _refreshers.pop(id(owner), None)


async def refresh() -> None:
    """Bring every scrape-time reading up to date, each within a bound."""
    for owner, refresher in list(_refreshers.values()):
        try:
            await asyncio.wait_for(refresher(), _REFRESH_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - a stale reading beats a failed scrape
            log.warning(
                "metrics refresh failed", extra={"owner": type(owner).__name__, "error": str(exc)}
            )


async def render() -> bytes:
    await refresh()
    return generate_latest(DEFAULT_REGISTRY)


class LagReader:
    """Consumer lag per assigned partition: the partition's end offset (one ListOffsets request
    per consumer, bounded by a timeout) minus the consumer's position (local once known).

    aiokafka's cached highwater is not enough: it only moves when the fetcher fetches, and the
    fetcher stops while the handler is busy with what it already fetched (hours, for an
    alignment), so the lag would look frozen exactly when it grows.
    """

    def __init__(self) -> None:
        self._consumers: list[tuple[str, Callable[[], Any]]] = []
        self._seen: set[tuple[str, str, str]] = set()

    def watch(self, group: str, consumer_of: Callable[[], Any]) -> None:
        """``consumer_of`` returns the live AIOKafkaConsumer (None while stopped)."""
        self._consumers.append((group, consumer_of))

    async def refresh(self) -> None:
        current: set[tuple[str, str, str]] = set()
        for group, consumer_of in self._consumers:
            consumer = consumer_of()
            if consumer is None:
                continue
            assigned = list(consumer.assignment())
            if not assigned:
                continue
            try:
                ends = await asyncio.wait_for(consumer.end_offsets(assigned), 1.0)
            except Exception:  # noqa: BLE001 - broker slow or away: the cached highwater will do
                ends = {tp: consumer.highwater(tp) for tp in assigned}
            for tp in assigned:
                end = ends.get(tp)
                if end is None:
                    continue  # nothing known yet
                try:
                    position = await asyncio.wait_for(consumer.position(tp), 0.2)
                except Exception:  # noqa: BLE001 - being reset or revoked: no honest reading now
                    continue
                labels = (group, tp.topic, str(tp.partition))
                CONSUMER_LAG.labels(*labels).set(max(0, end - position))
                current.add(labels)
        for gone in self._seen - current:  # revoked partitions are someone else's lag now
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(*gone)
        self._seen = current


def count_states(states: Iterable[str], counts: dict[str, int]) -> None:
    """Set the samples gauge for every known state (0 when none), so a state that empties
    drops to zero instead of keeping its last value."""
    for state in states:
        SAMPLES.labels(state).set(counts.get(state, 0))
    for state, n in counts.items():
        SAMPLES.labels(state).set(n)


class Stopwatch:
    """``time.perf_counter`` since construction, for a histogram observed at the end."""

    __slots__ = ("start",)

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start
