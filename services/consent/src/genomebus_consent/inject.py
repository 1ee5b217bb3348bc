"""The composition root: consent's adapters and use cases built from its settings.

Each part is an async context manager that opens what it needs and closes it on exit; the
factories are fields of ``Wiring`` so a test replaces any of them (an in-memory store instead of
PostgreSQL) and keeps the rest of the app as it runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from fastapi import FastAPI

from genomebus_common.contracts.events import Stage
from genomebus_common.runtime.db import service_pool
from genomebus_common.runtime.outbox import OutboxRelay
from genomebus_common.runtime.service import ServiceRuntime, create_app

from . import schema
from .adapters import http, kafka
from .adapters.postgres import PostgresConsentStore
from .config import ConsentSettings
from .core.consents import ConsentService
from .ports import ConsentStore, OutboxWakeup


@dataclass(frozen=True)
class Storage:
    """The store and the outbox relay to wake after each commit (None: nothing to wake)."""

    store: ConsentStore
    relay: OutboxWakeup | None


StorageFactory = Callable[[ConsentSettings, ServiceRuntime], AbstractAsyncContextManager[Storage]]


@contextlib.asynccontextmanager
async def postgres_storage(settings: ConsentSettings, rt: ServiceRuntime) -> AsyncIterator[Storage]:
    """The PostgreSQL store, migrated, with its outbox relay publishing while Kafka is up."""
    async with service_pool(settings, schema.schema()) as pool:
        relay = OutboxRelay(pool, rt.broker)
        rt.readiness["postgres"] = lambda: pool.fetchval("SELECT true")
        rt.keep_running(relay)  # publishes only while Kafka is connected
        yield Storage(PostgresConsentStore(pool), relay)


@dataclass(frozen=True)
class Wiring:
    """How each part is built; replace a field to build it otherwise (tests)."""

    storage: StorageFactory = postgres_storage


def build_app(settings: ConsentSettings, wiring: Wiring = Wiring()) -> FastAPI:
    runtime = ServiceRuntime(settings, Stage.CONSENT)
    # Built before serving: a missing or short key stops the process at start, not at a request.
    pseudonymiser = settings.pseudonymiser()

    @contextlib.asynccontextmanager
    async def consents(rt: ServiceRuntime) -> AsyncIterator[ConsentService]:
        async with wiring.storage(settings, rt) as storage:
            yield ConsentService(
                store=storage.store,
                pseudonymiser=pseudonymiser,
                relay=storage.relay,
                portal_clients=frozenset(settings.consent_portal_clients),
            )

    def opened() -> ConsentService:
        service: ConsentService = app.state.resources
        return service

    kafka.subscribe(runtime.consumer, opened)
    app = create_app(runtime, resources=consents, title="genomebus consent: consent records API")
    http.install(app, settings.consent_clients)
    return app
