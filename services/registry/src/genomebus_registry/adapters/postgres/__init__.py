"""The registry in PostgreSQL: its schema, loads, consent projection, counts, queries and
audit, each statement in the transaction of the change or question it serves."""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

#: A connection as the statements take it: opened alone, or acquired from the pool.
Connection = asyncpg.Connection | PoolConnectionProxy
