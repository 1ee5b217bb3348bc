"""Idempotent handling: an event's effect and the record that it was applied commit together.

Kafka delivers at least once, so every handler may see the same event twice. A handler whose
effect is a database write wraps it in ``once(...)``: the inbox row and the effect share one
transaction, and a second delivery finds the row and does nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from genomebus_common.contracts.events import Event
from genomebus_common.runtime.broker import Delivery
from genomebus_common.runtime.failures import database_errors
from genomebus_common.runtime.pgtypes import Connection


@asynccontextmanager
async def once(
    pool: asyncpg.Pool, consumer: str, event: Event, delivery: Delivery
) -> AsyncIterator[Connection | None]:
    """Yield a connection inside a transaction for a first delivery, or ``None`` for a repeat.

    Usage::

        async with once(pool, "registry", event, delivery) as conn:
            if conn is None:
                return  # already applied
            await conn.execute(...)
    """
    with database_errors():
        async with pool.acquire() as conn, conn.transaction():
            claimed = await conn.fetchval(
                """
                INSERT INTO genomebus_inbox (consumer, event_id, topic, partition, "offset")
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (consumer, event_id) DO NOTHING
                RETURNING true""",
                consumer,
                event.event_id,
                delivery.topic,
                delivery.partition,
                delivery.offset,
            )
            yield conn if claimed else None
