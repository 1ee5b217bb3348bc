"""The composition root: ingest's adapters and use cases built from its settings.

Each part is an async context manager that opens what it needs and closes it on exit; the
factories are fields of ``Wiring``, so a test replaces any of them (objects in memory instead
of S3, samples in memory instead of PostgreSQL) and keeps the rest of the app as it runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from genomebus_common.contracts.events import Stage
from genomebus_common.runtime import metrics
from genomebus_common.runtime.db import service_pool
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.outbox import OutboxRelay
from genomebus_common.runtime.service import ServiceRuntime, create_app
from genomebus_common.stagekit.reference import ReferenceRegistry

from . import schema
from .adapters import http, kafka
from .adapters.postgres import PostgresSamples
from .adapters.s3 import RegisteredReferences, S3Reads
from .adapters.sweep import Sweeper
from .adapters.tracing import OtelTracing
from .config import IngestSettings
from .core.ingest import Ingest
from .core.states import SampleStatus
from .ports import ReadsStore, References, Relay, SampleRepository


@dataclass(frozen=True)
class Objects:
    """The reads and landing buckets, and the reference genomes registered beside them."""

    reads: ReadsStore
    references: References


@dataclass(frozen=True)
class Records:
    """The sample records and the outbox relay to wake after each commit (None: none)."""

    samples: SampleRepository
    relay: Relay | None


ObjectsFactory = Callable[[IngestSettings, ServiceRuntime], AbstractAsyncContextManager[Objects]]
RecordsFactory = Callable[[IngestSettings, ServiceRuntime], AbstractAsyncContextManager[Records]]


@contextlib.asynccontextmanager
async def s3_objects(settings: IngestSettings, rt: ServiceRuntime) -> AsyncIterator[Objects]:
    """The object store, with ingest's buckets made if missing."""
    store = ObjectStore.from_settings(settings)
    reads = S3Reads(
        store, reads_bucket=settings.reads_bucket, landing_bucket=settings.landing_bucket
    )
    reads.ensure_buckets()
    registry = ReferenceRegistry(store, Path(settings.work_dir) / "references")
    yield Objects(reads, RegisteredReferences(registry))


@contextlib.asynccontextmanager
async def postgres_records(settings: IngestSettings, rt: ServiceRuntime) -> AsyncIterator[Records]:
    """The database, migrated, with its outbox relay publishing while Kafka is up."""
    async with service_pool(settings, schema.schema()) as pool:
        relay = OutboxRelay(pool, rt.broker)
        samples = PostgresSamples(pool)
        rt.readiness["postgres"] = samples.ping
        rt.keep_running(relay)  # publishes only while Kafka is connected
        yield Records(samples, relay)


@dataclass(frozen=True)
class Wiring:
    """How each part is built; replace a field to build it otherwise (tests)."""

    objects: ObjectsFactory = s3_objects
    records: RecordsFactory = postgres_records


@contextlib.asynccontextmanager
async def running_ingest(
    settings: IngestSettings, rt: ServiceRuntime, wiring: Wiring
) -> AsyncIterator[Ingest]:
    """Ingest's core on its adapters, with its sweep and its samples gauge while it runs."""
    async with wiring.objects(settings, rt) as objects, wiring.records(settings, rt) as records:
        ingest = Ingest(
            samples=records.samples,
            objects=objects.reads,
            references=objects.references,
            pseudonymiser=settings.pseudonymiser(),
            relay=records.relay,
            tracing=OtelTracing(rt.tracer),
        )
        rt.keep_running(
            Sweeper(
                ingest,
                interval_s=settings.sweep_interval_s,
                stale_after_s=settings.sweep_stale_after_s,
            )
        )

        async def count_samples() -> None:
            """``genomebus_samples{state}`` at scrape time."""
            counts = await records.samples.count_by_status()
            metrics.count_states(
                [s.value for s in SampleStatus], {s.value: n for s, n in counts.items()}
            )

        metrics.on_scrape(ingest, count_samples)
        try:
            yield ingest
        finally:
            metrics.forget(ingest)


def build_app(settings: IngestSettings, wiring: Wiring = Wiring()) -> FastAPI:
    runtime = ServiceRuntime(settings, Stage.INGEST)

    def resources(rt: ServiceRuntime) -> AbstractAsyncContextManager[Ingest]:
        return running_ingest(settings, rt, wiring)

    def opened() -> Ingest:
        ingest: Ingest = app.state.resources
        return ingest

    kafka.subscribe(runtime, settings, opened)
    app = create_app(
        runtime,
        resources=resources,
        title="genomebus ingest: hospital LIS API",
        streamed_bodies=(http.STREAMED_UPLOADS,),
    )
    http.install(app, settings.hospital_tokens)
    return app
