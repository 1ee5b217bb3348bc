"""PostgreSQL through asyncpg: a pool, and migrations applied at start-up.

Migrations are plain SQL files named ``NNNN_description.sql`` in a folder per component. Each
applies in its own transaction, in order, under an advisory lock so that replicas starting
together do not race. The checksum of every applied file is kept: editing a migration that has
already run is refused, since the databases that ran the old text would silently differ.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import asyncpg

from .errors import PermanentError, from_asyncpg_error

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any constant works: it only has to be the same in every process that migrates.
_MIGRATION_LOCK_ID = 0x67656E6F6D65  # "genome"


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(PermanentError):
    code = "migration_error"


def load_migrations(component: str, folder: Traversable | Path) -> list[Migration]:
    """Read ``NNNN_name.sql`` files from ``folder``; refuse gaps and duplicates."""
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(component, int(match[1]), entry.name, entry.read_text()))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{component}: migration {migration.name} should be number {expected:04d}"
            )
    return found


def common_migrations() -> list[Migration]:
    """The tables the shared mechanisms need (the inbox for idempotent handlers)."""
    return load_migrations("common", resources.files(__package__) / "migrations")


async def apply_migrations(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    """Apply what has not been applied yet; returns the names applied now."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS genomebus_migrations (
                component  text        NOT NULL,
                version    integer     NOT NULL,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            )"""
        )
        rows = await conn.fetch("SELECT component, version, name, checksum FROM genomebus_migrations")
        done = {(r["component"], r["version"]): r for r in rows}
        for migration in migrations:
            previous = done.get((migration.component, migration.version))
            if previous is not None:
                if previous["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"{migration.component}/{migration.name} changed after it was applied "
                        f"(as {previous['name']}); add a new migration instead of editing it"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO genomebus_migrations (component, version, name, checksum) "
                    "VALUES ($1, $2, $3, $4)",
                    migration.component,
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("applied migration", extra={"migration": f"{migration.component}/{migration.name}"})
            applied_now.append(f"{migration.component}/{migration.name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)
    return applied_now


@asynccontextmanager
async def connect_pool(
    dsn: str, migrations: list[Migration] | None = None, *, max_size: int = 10
) -> AsyncIterator[asyncpg.Pool]:
    """A pool for this service's own database, migrated before anyone uses it."""
    try:
        # JIT off: every statement here is short, and the estimate of a join over partitions
        # can pass jit_above_cost, where compiling took seconds for a query that runs in 10 ms.
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=max_size, server_settings={"jit": "off"}
        )
    except Exception as exc:
        raise from_asyncpg_error(exc) from exc
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, [*common_migrations(), *(migrations or [])])
        yield pool
    finally:
        await close_pool(pool)


async def close_pool(pool: asyncpg.Pool, timeout_s: float = 10.0) -> None:
    """Close gracefully, but never hang a shutdown on a connection someone failed to release.

    asyncpg's ``Pool.close`` waits without bound; a pod that cannot stop is worse than a
    connection cut (PostgreSQL rolls back whatever it was doing).
    """
    try:
        await asyncio.wait_for(pool.close(), timeout=timeout_s)
    except TimeoutError:
        log.warning("database pool did not close in time; terminating its connections",
                    extra={"timeout_s": timeout_s})
        pool.terminate()


def with_database(dsn: str, database: str) -> str:
    """The same server and credentials, another database (our DSNs carry no query string)."""
    return dsn.rpartition("/")[0] + "/" + database


async def ensure_database(dsn: str) -> None:
    """Create the DSN's database if it is missing.

    For development stacks, where one PostgreSQL serves every service and each service must
    still have a database of its own; in production the operator provisions databases.
    """
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        name = dsn.rpartition("/")[2]
        admin = await asyncpg.connect(with_database(dsn, "postgres"))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            pass  # another process made it meanwhile
        finally:
            await admin.close()
    else:
        await conn.close()
