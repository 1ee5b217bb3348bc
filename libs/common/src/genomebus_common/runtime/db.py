"""PostgreSQL through asyncpg: a pool, and migrations applied at start-up.

Migrations are plain SQL files named ``NNNN_description.sql`` in a folder per component. Each
applies in its own transaction, in order, under an advisory lock so that replicas starting
together do not race. The checksum of every applied file is kept: editing a migration that has
already run is refused, since the databases that ran the old text would silently differ.

Two roles per database (``grants.py`` says why): the owner migrates and sets the runtime role's
grants (the migrate step: ``migrate``, run by ``genomebus-migrate`` or by a service given
``GENOMEBUS_POSTGRES_MIGRATE_DSN``); the service's pool logs in as the runtime role and only
checks that nothing is pending.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from genomebus_common.contracts.errors import PermanentError
from genomebus_common.runtime.failures import from_asyncpg_error
from genomebus_common.runtime.grants import COMMON_GRANTS, RuntimeGrants, apply_grants
from genomebus_common.runtime.pgtypes import Connection

if TYPE_CHECKING:
    from genomebus_common.runtime.settings import PostgresSettings

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


@dataclass(frozen=True)
class Schema:
    """A service's tables: its migrations, and what its runtime role may do with them."""

    component: str
    migrations: list[Migration]
    grants: RuntimeGrants


def service_schema(service: str) -> Schema:
    """The schema of service ``service``, from ``genomebus_<service>.schema.schema()``.

    How the migrate command, which every image carries, finds the one service it runs for.
    """
    try:
        module = importlib.import_module(f"genomebus_{service}.schema")
    except ModuleNotFoundError as exc:
        raise MigrationError(f"service {service!r} keeps no tables here ({exc})") from exc
    schema: Schema = module.schema()
    return schema


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


async def pending_migrations(conn: Connection, migrations: list[Migration]) -> list[Migration]:
    """The migrations not applied yet, read without any DDL or lock.

    Why apart from :func:`apply_migrations`: a service running as its runtime role may read the
    record but not create tables, so it checks here that its owner (a migrate step) has done
    everything, and only a pending migration makes it try (and fail, saying why). Refuses an
    applied migration whose text changed.
    """
    if await conn.fetchval("SELECT to_regclass('genomebus_migrations')") is None:
        return list(migrations)
    rows = await conn.fetch("SELECT component, version, name, checksum FROM genomebus_migrations")
    done = {(r["component"], r["version"]): r for r in rows}
    pending = []
    for migration in migrations:
        previous = done.get((migration.component, migration.version))
        if previous is None:
            pending.append(migration)
        elif previous["checksum"] != migration.checksum:
            raise MigrationError(
                f"{migration.component}/{migration.name} changed after it was applied "
                f"(as {previous['name']}); add a new migration instead of editing it"
            )
    return pending


async def apply_migrations(
    conn: Connection,
    migrations: list[Migration],
    *,
    grants: RuntimeGrants | None = None,
    runtime_role: str | None = None,
) -> list[str]:
    """Apply what has not been applied yet; returns the names applied now.

    With ``grants`` and ``runtime_role`` (the connection is the owner's), the runtime role's
    privileges are then set to exactly ``grants``, under the same lock, every time: a grant made
    by hand is taken back, and a table the grants do not list stops the step.
    """
    if not await pending_migrations(conn, migrations) and grants is None:
        return []  # the usual start: nothing to do, so no DDL (a runtime role could not do it)
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
        for migration in await pending_migrations(conn, migrations):  # again, under the lock
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
            name = f"{migration.component}/{migration.name}"
            log.info("applied migration", extra={"migration": name})
            applied_now.append(name)
        if grants is not None and runtime_role is not None:
            await apply_grants(conn, COMMON_GRANTS + grants, runtime_role)
    except asyncpg.InsufficientPrivilegeError as exc:
        raise MigrationError(
            f"role {await _current_user(conn)!r} may not apply the pending migrations or grants "
            f"({exc}): run the migrate step (`genomebus-migrate`) as the database's owner, or "
            "give the service GENOMEBUS_POSTGRES_MIGRATE_DSN"
        ) from exc
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)
    return applied_now


async def _current_user(conn: Connection) -> str:
    return str(await conn.fetchval("SELECT current_user"))


async def refuse_owner(conn: Connection) -> None:
    """Refuse to serve as the role that owns the tables (or a superuser).

    Outside development a service must run as its runtime role: as the owner it could UPDATE or
    DELETE the append-only tables or disable their triggers, and the database would not stop it.
    """
    owns = await conn.fetchval(
        "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
        "WHERE oid = to_regclass('genomebus_migrations')"
    )
    if owns:
        raise MigrationError(
            f"the service connects as {await _current_user(conn)!r}, which owns its tables (or is "
            "a superuser): give GENOMEBUS_POSTGRES_DSN the runtime role's credentials and the "
            "owner's to the migrate step only"
        )


async def migrate(
    owner_dsn: str, migrations: list[Migration], grants: RuntimeGrants, runtime_role: str
) -> list[str]:
    """The migrate step: as the owner, apply the migrations and the runtime role's grants."""
    try:
        conn = await asyncpg.connect(owner_dsn)
    except Exception as exc:
        raise from_asyncpg_error(exc) from exc
    try:
        return await apply_migrations(
            conn, [*common_migrations(), *migrations], grants=grants, runtime_role=runtime_role
        )
    finally:
        await conn.close()


@asynccontextmanager
async def connect_pool(
    dsn: str,
    migrations: list[Migration] | None = None,
    *,
    max_size: int = 10,
    migrate_dsn: str | None = None,
    grants: RuntimeGrants | None = None,
    forbid_owner: bool = False,
) -> AsyncIterator[asyncpg.Pool]:
    """A pool for this service's own database, migrated before anyone uses it.

    ``dsn`` is the role the service runs as. With ``migrate_dsn`` (the owner's) the migrations
    and ``grants`` are applied through that first, on a connection closed before the pool is
    used, for the role ``dsn`` logs in as. Without it the pool's own role migrates if anything is
    pending (one role that owns everything: the tests' throwaway databases), and a runtime role
    simply finds the migrate step's work done. ``forbid_owner`` (production) refuses a ``dsn``
    that owns the tables.
    """
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
            if migrate_dsn is not None:
                await migrate(
                    migrate_dsn,
                    migrations or [],
                    grants or RuntimeGrants({}),
                    await _current_user(conn),
                )
            await apply_migrations(conn, [*common_migrations(), *(migrations or [])])
            if forbid_owner:
                await refuse_owner(conn)
        yield pool
    finally:
        await close_pool(pool)


def service_pool(
    settings: PostgresSettings, schema: Schema
) -> AbstractAsyncContextManager[asyncpg.Pool]:
    """The pool a service serves from, as its settings say (see :func:`connect_pool`)."""
    migrate_dsn = settings.postgres_migrate_dsn
    return connect_pool(
        settings.postgres_dsn.get_secret_value(),
        schema.migrations,
        max_size=settings.postgres_pool_max,
        migrate_dsn=migrate_dsn.get_secret_value() if migrate_dsn is not None else None,
        grants=schema.grants,
        forbid_owner=settings.profile != "dev",
    )


async def close_pool(pool: asyncpg.Pool, timeout_s: float = 10.0) -> None:
    """Close gracefully, but never hang a shutdown on a connection someone failed to release.

    asyncpg's ``Pool.close`` waits without bound; a pod that cannot stop is worse than a
    connection cut (PostgreSQL rolls back whatever it was doing).
    """
    try:
        await asyncio.wait_for(pool.close(), timeout=timeout_s)
    except TimeoutError:
        log.warning(
            "database pool did not close in time; terminating its connections",
            extra={"timeout_s": timeout_s},
        )
        pool.terminate()


def with_database(dsn: str, database: str) -> str:
    """The same server, credentials and options, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))
