"""The transactional outbox: state changes and the events they cause commit together.

``enqueue`` writes the event into ``genomebus_outbox`` on the caller's connection, inside the
caller's transaction. ``OutboxRelay`` publishes unsent rows in order and marks them sent; it is
woken right after a commit (``notify``) and also polls, so a crash anywhere loses nothing.

A row keeps the W3C trace context of the code that enqueued it, and the relay publishes it
inside that context: the trace of the request or event that caused the change continues on
Kafka, however long the row waited and whichever replica's relay sends it. The relay also keeps
the outbox metrics (``metrics.py``): backlog, oldest unsent row, failed rows, publish delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime

import asyncpg
from faststream.kafka import KafkaBroker
from opentelemetry import context as otel_context

from genomebus_common.contracts.errors import PermanentError
from genomebus_common.contracts.events import Event
from genomebus_common.contracts.topics import message_key, topic_for
from genomebus_common.runtime import metrics
from genomebus_common.runtime.broker import event_headers
from genomebus_common.runtime.failures import database_errors, from_kafka_error
from genomebus_common.runtime.pgtypes import Connection
from genomebus_common.runtime.telemetry import carrier, context_from

log = logging.getLogger(__name__)


async def enqueue(conn: Connection, event: Event) -> None:
    """Add ``event`` to the outbox on ``conn`` (call inside the state change's transaction).

    The current trace context is stored with it, so the publish continues this trace.
    """
    trace_context = carrier()
    await conn.execute(
        """
        INSERT INTO genomebus_outbox (event_id, topic, key, headers, payload, trace_context)
        VALUES ($1, $2, $3, $4::jsonb, $5, $6::jsonb)
        ON CONFLICT (event_id) DO NOTHING""",
        event.event_id,
        topic_for(event),
        message_key(event),
        json.dumps(event_headers(event)),
        event.to_bytes(),
        json.dumps(trace_context) if trace_context else None,
    )


class OutboxRelay:
    """Publishes the outbox in insertion order; every replica runs one, one publishes at a time."""

    def __init__(
        self, pool: asyncpg.Pool, broker: KafkaBroker, *, poll_s: float = 1.0, batch: int = 100
    ) -> None:
        self.pool = pool
        self.broker = broker
        self.poll_s = poll_s
        self.batch = batch
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Publish soon: something was just committed."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish what is unsent now; returns how many were published."""
        published = 0
        with database_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                # One relay at a time, whatever the replicas: two relaying different batches at
                # once would publish one key's events out of order (a patient's consent v1
                # after v2, and compaction would keep v1). The others skip this round.
                if not await conn.fetchval(
                    "SELECT pg_try_advisory_xact_lock(hashtext('genomebus'), hashtext('outbox'))"
                ):
                    return 0
                rows = await conn.fetch(
                    """
                    SELECT id, topic, key, headers, payload, trace_context, created_at
                    FROM genomebus_outbox
                    WHERE published_at IS NULL AND failed_at IS NULL ORDER BY id LIMIT $1
                    FOR UPDATE""",
                    self.batch,
                )
                for row in rows:
                    stored = json.loads(row["trace_context"]) if row["trace_context"] else None
                    parent = context_from(stored)
                    token = otel_context.attach(parent) if parent is not None else None
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
                        log.error(
                            "outbox row refused by Kafka",
                            extra={"id": row["id"], "error": mapped.reason},
                        )
                        await conn.execute(
                            "UPDATE genomebus_outbox SET failed_at = now(), last_error = $2"
                            " WHERE id = $1",
                            row["id"],
                            mapped.reason[:2000],
                        )
                        continue
                    finally:
                        if token is not None:
                            otel_context.detach(token)
                    await conn.execute(
                        "UPDATE genomebus_outbox SET published_at = now() WHERE id = $1", row["id"]
                    )
                    published += 1
                    metrics.OUTBOX_PUBLISHED.labels(row["topic"]).inc()
                    metrics.OUTBOX_DELAY.observe(
                        max(0.0, (datetime.now(UTC) - row["created_at"]).total_seconds())
                    )
        return published

    def _stop_requested(self) -> bool:
        """Read afresh after each await (``stop`` sets it meanwhile), never narrowed."""
        return self._stopping

    async def run(self) -> None:
        while not self._stop_requested():
            try:
                while await self.publish_pending() == self.batch and not self._stop_requested():
                    pass
            except Exception as exc:  # noqa: BLE001 - keep relaying: the next round may work
                log.warning("outbox relay will retry", extra={"error": str(exc)})
            if self._stop_requested():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            self._wake.clear()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name="outbox-relay")
        # Scraped while this relay runs: every service with an outbox reports its backlog.
        metrics.on_scrape(self, lambda: read_backlog(self.pool))

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let the round in progress finish, then stop.

        A round cancelled half-way would roll back rows it had already published (they would
        go out again on the next start) and can leave a connection the pool then waits for.
        """
        metrics.forget(self)
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=grace_s)
        except TimeoutError:
            log.warning("outbox relay did not finish its round in time; cancelling it")
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None


async def read_backlog(pool: asyncpg.Pool) -> None:
    """Outbox backlog from the partial index on unsent rows: cheap while the backlog is small,
    and bounded by the statement timeout when it is not."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL statement_timeout = '1500ms'")
        # Each query matches a partial index: published rows (the whole history) are never read.
        unsent = await conn.fetchrow(
            """
            SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest
            FROM genomebus_outbox WHERE published_at IS NULL AND failed_at IS NULL"""
        )
        failed = await conn.fetchval(
            "SELECT count(*) FROM genomebus_outbox"
            " WHERE published_at IS NULL AND failed_at IS NOT NULL"
        )
    if unsent is None:  # an aggregate without GROUP BY always returns one row
        raise RuntimeError("the outbox backlog query returned no row")
    row = {"unsent": unsent["n"], "failed": failed, "oldest": unsent["oldest"]}
    metrics.OUTBOX_BACKLOG.set(row["unsent"])
    metrics.OUTBOX_FAILED.set(row["failed"])
    metrics.OUTBOX_OLDEST.set(float(row["oldest"]))
