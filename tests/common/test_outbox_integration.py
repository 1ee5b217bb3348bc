"""The outbox publishes what committed, in order, and nothing that rolled back."""

from __future__ import annotations

import pytest

from genomebus_common.contracts.events import SampleReceived
from genomebus_common.contracts.topics import sample_received_topic
from genomebus_common.runtime.broker import create_broker
from genomebus_common.runtime.db import connect_pool
from genomebus_common.runtime.outbox import OutboxRelay, enqueue
from genomebus_common.runtime.settings import ServiceSettings

from .factories import sample_received
from .kafka_helpers import read_until

pytestmark = pytest.mark.integration


async def test_committed_events_are_published_once_and_rolled_back_ones_never(
    settings: ServiceSettings, fresh_dsn: str, unique: str
) -> None:
    kept = [sample_received(f"S-{unique}-{i}") for i in range(3)]
    dropped = sample_received(f"S-{unique}-rolled-back")
    async with connect_pool(fresh_dsn) as pool:
        async with pool.acquire() as conn:
            async with conn.transaction():
                for event in kept:
                    await enqueue(conn, event)
                await enqueue(conn, kept[0])  # the same event twice is one row
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    await enqueue(conn, dropped)
                    raise RuntimeError("the state change failed")
        broker = create_broker(settings)
        async with broker:
            relay = OutboxRelay(pool, broker)
            assert await relay.publish_pending() == 3
            assert await relay.publish_pending() == 0
        unsent = await pool.fetchval(
            "SELECT count(*) FROM genomebus_outbox WHERE published_at IS NULL"
        )
    assert unsent == 0

    topic = sample_received_topic(kept[0].priority)
    last = await read_until(
        settings,
        topic,
        lambda r: SampleReceived.from_bytes(r.value).sample_id == kept[-1].sample_id,
    )
    assert last.key == kept[-1].sample_id.encode()
    assert dict(last.headers)["x-genomebus-event-type"] == b"sample.received"


async def test_a_row_kafka_refuses_for_good_is_set_aside_and_the_rest_flows(
    settings: ServiceSettings, fresh_dsn: str, unique: str
) -> None:
    too_big = sample_received(f"S-{unique}-big")
    after = sample_received(f"S-{unique}-after")
    async with connect_pool(fresh_dsn) as pool:
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, too_big)
            # Inflate the stored payload past Kafka's 1 MB limit, as a runaway producer might.
            await conn.execute(
                "UPDATE genomebus_outbox SET payload = payload || $1 WHERE event_id = $2",
                b" " * (2 * 1024 * 1024),
                too_big.event_id,
            )
            await enqueue(conn, after)
        broker = create_broker(settings)
        async with broker:
            assert await OutboxRelay(pool, broker).publish_pending() == 1
        failed = await pool.fetchrow(
            "SELECT failed_at, last_error FROM genomebus_outbox WHERE event_id = $1",
            too_big.event_id,
        )
    assert failed["failed_at"] is not None and failed["last_error"]
    await read_until(
        settings,
        sample_received_topic(after.priority),
        lambda r: r.key == after.sample_id.encode(),
    )


async def test_replicas_relaying_together_keep_one_key_in_order(
    settings: ServiceSettings, fresh_dsn: str, unique: str
) -> None:
    """Every replica runs a relay; one patient's consent versions must still reach Kafka in
    the order they were recorded (a compacted topic keeps the last one it was given)."""
    import asyncio
    import hashlib

    from genomebus_common.contracts.events import ConsentChanged, ResearchUse
    from genomebus_common.contracts.topics import CONSENT_CHANGED

    from .kafka_helpers import read_until

    patient = "pk1_" + hashlib.sha256(unique.encode()).hexdigest()
    versions = [
        ConsentChanged(
            correlation_id=f"C-{unique}-{n}",
            patient_pseudonym=patient,
            version=n,
            analysis_consent_given=True,
            research_use=ResearchUse.ALLOWED,
            withdrawn=False,
            recorded_by="test",
        )
        for n in range(1, 121)
    ]
    async with connect_pool(fresh_dsn) as pool:
        async with pool.acquire() as conn, conn.transaction():
            for event in versions:
                await enqueue(conn, event)
        brokers = [create_broker(settings) for _ in range(3)]
        for broker in brokers:
            await broker.start()
        try:
            relays = [OutboxRelay(pool, broker, batch=7) for broker in brokers]

            async def drain(relay: OutboxRelay) -> None:
                while await pool.fetchval(
                    "SELECT count(*) FROM genomebus_outbox WHERE published_at IS NULL"
                ):
                    await relay.publish_pending()

            await asyncio.gather(*(drain(r) for r in relays))
        finally:
            for broker in brokers:
                await broker.stop()

    seen: list[int] = []

    def collect(record: object) -> bool:
        if record.key == patient.encode():  # type: ignore[attr-defined]
            seen.append(ConsentChanged.from_bytes(record.value).version)  # type: ignore[attr-defined]
        return len(seen) == len(versions)

    await read_until(settings, CONSENT_CHANGED.name, collect)
    assert seen == sorted(seen) == list(range(1, 121))
