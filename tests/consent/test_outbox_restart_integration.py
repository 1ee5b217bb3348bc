"""Events still in a service's outbox when it starts (it crashed or stopped before sending them)
are published once Kafka is connected, never set aside as refused because it was not yet."""

from __future__ import annotations

import asyncio
import hashlib
from importlib import resources

import pytest

from genomebus_common.contracts.events import ConsentChanged, ResearchUse
from genomebus_common.contracts.topics import CONSENT_CHANGED
from genomebus_common.runtime.db import connect_pool, load_migrations
from genomebus_common.runtime.outbox import enqueue
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_consent.config import ConsentSettings
from genomebus_consent.main import build_app

from ..common.kafka_helpers import read_until

pytestmark = pytest.mark.integration


async def test_rows_waiting_at_start_are_published_not_set_aside(
    consent_settings: ConsentSettings, settings: ServiceSettings, unique: str
) -> None:
    # What consent's outbox holds: consent versions (its Kafka user may publish nothing else).
    patient = "pk1_" + hashlib.sha256(f"outbox-restart-{unique}".encode()).hexdigest()
    waiting = [
        ConsentChanged(
            correlation_id=f"restart-{unique}",
            patient_pseudonym=patient,
            version=v,
            analysis_consent_given=True,
            research_use=ResearchUse.ALLOWED,
            recorded_by="tests",
        )
        for v in range(1, 6)
    ]
    dsn = consent_settings.postgres_dsn.get_secret_value()
    migrations = load_migrations("consent", resources.files("genomebus_consent") / "migrations")
    async with connect_pool(dsn, migrations) as pool:
        async with pool.acquire() as conn, conn.transaction():
            for event in waiting:
                await enqueue(conn, event)

        app = build_app(consent_settings)
        async with app.router.lifespan_context(app):
            for _ in range(200):
                states = await pool.fetch(
                    "SELECT published_at IS NOT NULL AS sent, failed_at IS NOT NULL AS failed,"
                    " last_error FROM genomebus_outbox ORDER BY id"
                )
                if all(s["sent"] or s["failed"] for s in states):
                    break
                await asyncio.sleep(0.05)
        assert [(s["sent"], s["failed"], s["last_error"]) for s in states] == [
            (True, False, None)
        ] * 5

    last = await read_until(  # read as the administrator: consent's user only writes
        settings,
        CONSENT_CHANGED.name,
        lambda r: r.key == patient.encode() and ConsentChanged.from_bytes(r.value).version == 5,
    )
    assert last.key == patient.encode()
