"""Entry point: ``genomebus-consent`` runs the consent API and the outbox relay.

Consent publishes ConsentChanged (through its outbox) and consumes one topic: ingest's
``sample.registered``, which says which hospital treats which patient (who may record and read
that patient's consent).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from genomebus_common.contracts.events import SampleRegistered, Stage
from genomebus_common.contracts.topics import SAMPLE_REGISTERED
from genomebus_common.runtime.broker import Delivery
from genomebus_common.runtime.db import service_pool
from genomebus_common.runtime.outbox import OutboxRelay
from genomebus_common.runtime.service import ServiceRuntime, create_app, serve

from . import api, schema
from .config import ConsentSettings
from .service import ConsentService


def build_app(settings: ConsentSettings) -> FastAPI:
    runtime = ServiceRuntime(settings, Stage.CONSENT)
    # Built before serving: a missing or short key stops the process at start, not at a request.
    pseudonymiser = settings.pseudonymiser()

    @contextlib.asynccontextmanager
    async def resources_(rt: ServiceRuntime) -> AsyncIterator[ConsentService]:
        async with service_pool(settings, schema.schema()) as pool:
            relay = OutboxRelay(pool, rt.broker)
            rt.readiness["postgres"] = lambda: pool.fetchval("SELECT true")
            rt.keep_running(relay)  # publishes only while Kafka is connected
            yield ConsentService(
                pool=pool,
                pseudonymiser=pseudonymiser,
                relay=relay,
                portal_clients=frozenset(settings.consent_portal_clients),
            )

    async def on_sample_registered(event: SampleRegistered, delivery: Delivery) -> None:
        await app.state.resources.sample_registered(event)

    runtime.consumer.subscribe(SampleRegistered, on_sample_registered, SAMPLE_REGISTERED.name)
    app = create_app(runtime, resources=resources_, title="genomebus consent: consent records API")
    api.install(app, settings.consent_clients)
    return app


def main() -> None:
    settings = ConsentSettings.load()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
