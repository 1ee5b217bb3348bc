"""Entry point: ``genomebus-registry`` loads called variants, follows consent, answers queries."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from genomebus_common.contracts.events import (
    ConsentChanged,
    SampleAligned,
    SampleRemoved,
    Stage,
    VariantsCalled,
)
from genomebus_common.contracts.topics import (
    CONSENT_CHANGED,
    SAMPLE_ALIGNED,
    SAMPLE_REMOVED,
    VARIANTS_CALLED,
)
from genomebus_common.runtime import metrics
from genomebus_common.runtime.broker import Delivery
from genomebus_common.runtime.db import service_pool
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.outbox import OutboxRelay
from genomebus_common.runtime.service import ServiceRuntime, create_app, serve

from . import api
from .adapters.counts import Folder, report_pending
from .config import RegistrySettings
from .handlers import RegistryHandlers
from .queries import Queries
from .schema import schema


@dataclass
class Registry:
    """What one registry process holds once started (``app.state.resources``)."""

    pool: asyncpg.Pool
    handlers: RegistryHandlers
    queries: Queries
    relay: OutboxRelay


def build_app(
    settings: RegistrySettings,
    *,
    variants_called_topic: str = VARIANTS_CALLED.name,
    consent_changed_topic: str = CONSENT_CHANGED.name,
    sample_aligned_topic: str = SAMPLE_ALIGNED.name,
) -> FastAPI:
    """The registry process. The topic arguments exist for tests that need private topics."""
    runtime = ServiceRuntime(settings, Stage.REGISTRY)
    store = ObjectStore.from_settings(settings)

    @contextlib.asynccontextmanager
    async def resources_(rt: ServiceRuntime) -> AsyncIterator[Registry]:
        async with service_pool(settings, schema()) as pool:
            relay = OutboxRelay(pool, rt.broker)
            rt.readiness["postgres"] = lambda: pool.fetchval("SELECT true")
            registry = Registry(
                pool=pool,
                handlers=RegistryHandlers(
                    pool=pool, store=store, work_dir=Path(settings.work_dir), relay=relay
                ),
                queries=Queries(pool, min_cell_count=settings.min_cell_count),
                relay=relay,
            )
            rt.keep_running(relay)  # publishes only while Kafka is connected
            if settings.consume_events:  # the writers fold; query-only replicas only read
                rt.keep_running(Folder(pool, interval=settings.fold_interval_s))
            metrics.on_scrape(registry, lambda: report_pending(pool))
            yield registry

    app = create_app(runtime, resources=resources_, title="genomebus registry: national variants")
    api.install(app, settings.registry_clients, max_region_bp=settings.max_region_bp)

    if settings.consume_events:
        # The handlers exist only once the pool is open (lifespan); consuming starts after that.
        async def on_variants_called(event: VariantsCalled, delivery: Delivery) -> None:
            await app.state.resources.handlers.variants_called(event, delivery)

        async def on_consent_changed(event: ConsentChanged, delivery: Delivery) -> None:
            await app.state.resources.handlers.consent_changed(event, delivery)

        runtime.consumer.subscribe(
            VariantsCalled,
            on_variants_called,
            variants_called_topic,
            max_poll_interval_ms=settings.kafka_max_poll_interval_s * 1000,
        )

        async def on_sample_removed(event: SampleRemoved, delivery: Delivery) -> None:
            await app.state.resources.handlers.sample_removed(event, delivery)

        runtime.consumer.subscribe(
            SampleRemoved, on_sample_removed, SAMPLE_REMOVED.name, group_suffix="removals"
        )

        async def on_sample_aligned(event: SampleAligned, delivery: Delivery) -> None:
            await app.state.resources.handlers.sample_aligned(event, delivery)

        # Only alignment's energy estimate is taken from sample.aligned; its own group, so the
        # registry's record of it never waits behind (or holds up) a load.
        runtime.consumer.subscribe(
            SampleAligned, on_sample_aligned, sample_aligned_topic, group_suffix="energy"
        )
        # Consent has its own consumer group: a withdrawal never queues behind a large VCF load.
        # A consent change is never parked for a database outage: it waits, in order.
        runtime.consumer.subscribe(
            ConsentChanged,
            on_consent_changed,
            consent_changed_topic,
            group_suffix="consent",
            retry_transient_forever=True,
            # while it waits, the member stays in its group (no rebalance every 5 minutes)
            max_poll_interval_ms=settings.kafka_max_poll_interval_s * 1000,
        )
    return app


def main() -> None:
    settings = RegistrySettings.load()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
