"""Entry point: ``genomebus-ingest`` runs the LIS API and the outbox relay."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from genomebus_common.contracts.events import ConsentChanged, Stage, StageProgress
from genomebus_common.contracts.topics import CONSENT_CHANGED, STAGE_PROGRESS
from genomebus_common.runtime import metrics
from genomebus_common.runtime.broker import Delivery
from genomebus_common.runtime.db import service_pool
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.outbox import OutboxRelay
from genomebus_common.runtime.service import ServiceRuntime, create_app, serve
from genomebus_common.stagekit.reference import ReferenceRegistry

from . import api, schema
from .config import IngestSettings
from .domain import SampleStatus
from .service import Ingest, Sweeper


async def count_samples(pool: asyncpg.Pool) -> None:
    """``genomebus_samples{state}`` at scrape time: one grouped count over the status index,
    under a statement timeout, so a scrape costs at most that however many samples there are."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL statement_timeout = '1500ms'")
        rows = await conn.fetch("SELECT status, count(*) AS n FROM samples GROUP BY status")
    metrics.count_states([s.value for s in SampleStatus], {r["status"]: r["n"] for r in rows})


def build_app(settings: IngestSettings) -> FastAPI:
    runtime = ServiceRuntime(settings, Stage.INGEST)

    @contextlib.asynccontextmanager
    async def resources_(rt: ServiceRuntime) -> AsyncIterator[Ingest]:
        store = ObjectStore.from_settings(settings)
        for bucket in (settings.reads_bucket, settings.landing_bucket):
            store.ensure_bucket(bucket)
        async with service_pool(settings, schema.schema()) as pool:
            relay = OutboxRelay(pool, rt.broker)
            rt.readiness["postgres"] = lambda: pool.fetchval("SELECT true")
            ingest = Ingest(
                pool=pool,
                store=store,
                references=ReferenceRegistry(store, Path(settings.work_dir) / "references"),
                pseudonymiser=settings.pseudonymiser(),
                relay=relay,
                reads_bucket=settings.reads_bucket,
                landing_bucket=settings.landing_bucket,
                tracer=rt.tracer,
            )
            rt.keep_running(relay)  # publishes only while Kafka is connected
            rt.keep_running(
                Sweeper(
                    ingest,
                    interval_s=settings.sweep_interval_s,
                    stale_after_s=settings.sweep_stale_after_s,
                )
            )
            metrics.on_scrape(ingest, lambda: count_samples(pool))
            try:
                yield ingest
            finally:
                metrics.forget(ingest)

    async def on_consent(event: ConsentChanged, delivery: Delivery) -> None:
        await app.state.resources.apply_consent(event, delivery)

    # A consent change is never parked for a database outage: it waits, in order.
    runtime.consumer.subscribe(
        ConsentChanged,
        on_consent,
        CONSENT_CHANGED.name,
        retry_transient_forever=True,
        # while it waits, the member stays in its group (no rebalance every 5 minutes)
        max_poll_interval_ms=settings.kafka_max_poll_interval_s * 1000,
    )

    async def on_progress(event: StageProgress, delivery: Delivery) -> None:
        await app.state.resources.apply_progress(event, delivery)

    runtime.consumer.subscribe(
        StageProgress, on_progress, STAGE_PROGRESS.name, group_suffix="progress"
    )
    app = create_app(
        runtime,
        resources=resources_,
        title="genomebus ingest: hospital LIS API",
        streamed_bodies=(api.STREAMED_UPLOADS,),
    )
    api.install(app, settings.hospital_tokens)
    return app


def main() -> None:
    settings = IngestSettings.load()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
