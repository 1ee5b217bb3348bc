"""The registry's composition root: which adapters serve which ports, built from the settings.

Every part is made by a factory in ``Parts``; a test replaces one (``dataclasses.replace``) and
keeps the rest real. The pool is an async context manager, opened by the app's lifespan, and
what needs it (handlers, queries, the outbox relay, the folder) is built inside it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from genomebus_common.contracts.events import Stage
from genomebus_common.runtime import metrics
from genomebus_common.runtime.db import service_pool
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.outbox import OutboxRelay
from genomebus_common.runtime.service import ServiceRuntime, create_app

from .adapters import http, kafka
from .adapters.postgres.counts import Folder, report_pending
from .adapters.postgres.handlers import RegistryHandlers
from .adapters.postgres.queries import Queries
from .config import RegistrySettings
from .ports import Notifier, RegistryEvents, RegistryQueries, VcfStore
from .schema import schema


@dataclass
class Registry:
    """What one registry process holds once started (``app.state.resources``)."""

    pool: asyncpg.Pool
    handlers: RegistryEvents
    queries: RegistryQueries
    relay: OutboxRelay


def open_pool(settings: RegistrySettings) -> AbstractAsyncContextManager[asyncpg.Pool]:
    """The registry's pool, its migrations applied and its runtime grants checked."""
    return service_pool(settings, schema())


def object_store(settings: RegistrySettings) -> VcfStore:
    return ObjectStore.from_settings(settings)


def postgres_handlers(
    settings: RegistrySettings, pool: asyncpg.Pool, store: VcfStore, relay: Notifier
) -> RegistryEvents:
    return RegistryHandlers(pool=pool, store=store, work_dir=Path(settings.work_dir), relay=relay)


def postgres_queries(settings: RegistrySettings, pool: asyncpg.Pool) -> RegistryQueries:
    return Queries(pool, min_cell_count=settings.min_cell_count)


@dataclass(frozen=True)
class Parts:
    """How each part is built; replace any to override it."""

    pool: Callable[[RegistrySettings], AbstractAsyncContextManager[asyncpg.Pool]] = open_pool
    store: Callable[[RegistrySettings], VcfStore] = object_store
    handlers: Callable[[RegistrySettings, asyncpg.Pool, VcfStore, Notifier], RegistryEvents] = (
        postgres_handlers
    )
    queries: Callable[[RegistrySettings, asyncpg.Pool], RegistryQueries] = postgres_queries
    topics: kafka.Topics = field(default_factory=kafka.Topics)


def build_app(settings: RegistrySettings, parts: Parts | None = None) -> FastAPI:
    """The registry process: its API, and (``consume_events``) its Kafka subscribers."""
    parts = parts or Parts()
    runtime = ServiceRuntime(settings, Stage.REGISTRY)
    store = parts.store(settings)

    @contextlib.asynccontextmanager
    async def resources(rt: ServiceRuntime) -> AsyncIterator[Registry]:
        async with parts.pool(settings) as pool:
            relay = OutboxRelay(pool, rt.broker)
            rt.readiness["postgres"] = lambda: pool.fetchval("SELECT true")
            registry = Registry(
                pool=pool,
                handlers=parts.handlers(settings, pool, store, relay),
                queries=parts.queries(settings, pool),
                relay=relay,
            )
            rt.keep_running(relay)  # publishes only while Kafka is connected
            if settings.consume_events:  # the writers fold; query-only replicas only read
                rt.keep_running(Folder(pool, interval=settings.fold_interval_s))
            metrics.on_scrape(registry, lambda: report_pending(pool))
            yield registry

    app = create_app(runtime, resources=resources, title="genomebus registry: national variants")
    http.install(app, settings.registry_clients, max_region_bp=settings.max_region_bp)
    if settings.consume_events:
        kafka.subscribe(
            runtime.consumer,
            lambda: app.state.resources.handlers,
            topics=parts.topics,
            max_poll_interval_ms=settings.kafka_max_poll_interval_s * 1000,
        )
    return app
