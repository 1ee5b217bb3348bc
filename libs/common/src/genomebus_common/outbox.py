"""The transactional outbox: state changes and the events they cause commit together.

``enqueue`` writes the event into ``genomebus_outbox`` on the caller's connection, inside the
caller's transaction. ``OutboxRelay`` publishes unsent rows in order and marks them sent; it is
woken right after a commit (``notify``) and also polls, so a crash anywhere loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import asyncpg
from faststream.kafka import KafkaBroker

from .broker import event_headers
from .errors import GenomebusError, PermanentError, from_asyncpg_error, from_kafka_error
from .events import Event
from .topics import message_key, topic_for

log = logging.getLogger(__name__)


async def enqueue(conn: asyncpg.Connection, event: Event) -> None:
    """Add ``event`` to the outbox on ``conn`` (call inside the state change's transaction)."""
    await conn.execute(
        """
        INSERT INTO genomebus_outbox (event_id, topic, key, headers, payload)
        VALUES ($1, $2, $3, $4::jsonb, $5)
        ON CONFLICT (event_id) DO NOTHING""",
        event.event_id,
        topic_for(event),
        message_key(event),
        json.dumps(event_headers(event)),
        event.to_bytes(),
    )


class OutboxRelay:
    """Publishes the outbox in insertion order; one relay per service process is enough."""

    def __init__(
        self, pool: asyncpg.Pool, broker: KafkaBroker, *, poll_s: float = 1.0, batch: int = 100
    ) -> None:
        self.pool = pool
        self.broker = broker
        self.poll_s = poll_s
        self.batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Publish soon: something was just committed."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish what is unsent now; returns how many were published."""
        published = 0
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                # SKIP LOCKED lets several replicas relay without publishing a row twice at once.
                rows = await conn.fetch(
                    """
                    SELECT id, topic, key, headers, payload FROM genomebus_outbox
                    WHERE published_at IS NULL AND failed_at IS NULL ORDER BY id LIMIT $1
                    FOR UPDATE SKIP LOCKED""",
                    self.batch,
                )
                for row in rows:
                    try:
                        await self.broker.publish(
                            bytes(row["payload"]),
                            topic=row["topic"],
                            key=bytes(row["key"]),
                            headers=json.loads(row["headers"]),
                        )
                    except Exception as exc:
                        mapped = from_kafka_error(exc)
                        if not isinstance(mapped, PermanentError):
                            raise mapped from exc
                        log.error("outbox row refused by Kafka", extra={"id": row["id"], "error": mapped.reason})
                        await conn.execute(
                            "UPDATE genomebus_outbox SET failed_at = now(), last_error = $2 WHERE id = $1",
                            row["id"],
                            mapped.reason[:2000],
                        )
                        continue
                    await conn.execute(
                        "UPDATE genomebus_outbox SET published_at = now() WHERE id = $1", row["id"]
                    )
                    published += 1
        except GenomebusError:
            raise
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise from_asyncpg_error(exc) from exc
        return published

    async def run(self) -> None:
        while True:
            try:
                while await self.publish_pending() == self.batch:
                    pass
            except Exception as exc:  # never stop relaying: the next round may succeed
                log.warning("outbox relay will retry", extra={"error": str(exc)})
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            except TimeoutError:
                pass
            self._wake.clear()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
