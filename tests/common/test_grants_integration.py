"""The migrate step and the runtime role's grants, on the real PostgreSQL.

Each test gets a throwaway owner role, runtime role and database (dropped afterwards), and a
small schema of its own: the mechanism is checked apart from any service's tables.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from genomebus_common.runtime.db import (
    Migration,
    MigrationError,
    connect_pool,
    migrate,
    with_database,
)
from genomebus_common.runtime.grants import APPEND_ONLY, UPDATABLE, GrantsError, RuntimeGrants
from genomebus_common.runtime.settings import ServiceSettings

THINGS = Migration(
    "svc",
    1,
    "0001_things.sql",
    "CREATE TABLE things (id bigserial PRIMARY KEY, note text);"
    "CREATE TABLE history (id bigserial PRIMARY KEY, what text)",
)
MORE = Migration("svc", 2, "0002_more.sql", "CREATE TABLE more (x integer)")
GRANTS = RuntimeGrants({"things": UPDATABLE, "history": APPEND_ONLY})


@dataclass(frozen=True)
class Roles:
    owner: str
    runtime: str
    owner_dsn: str
    runtime_dsn: str


def _as(dsn: str, user: str, password: str) -> str:
    parts = urlsplit(dsn)
    netloc = f"{user}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
async def roles(settings: ServiceSettings) -> AsyncIterator[Roles]:
    admin = settings.postgres_dsn.get_secret_value()
    tag = uuid.uuid4().hex[:10]
    owner, runtime, database = f"test_{tag}_owner", f"test_{tag}_runtime", f"test_{tag}"
    password = secrets.token_urlsafe(16)
    conn = await asyncpg.connect(admin)
    try:
        for role in (owner, runtime):
            await conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
        await conn.execute(f'CREATE DATABASE "{database}" OWNER "{owner}"')
    finally:
        await conn.close()
    target = with_database(admin, database)
    yield Roles(owner, runtime, _as(target, owner, password), _as(target, runtime, password))
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for role in (runtime, owner):
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await conn.close()


async def test_runtime_pool_serves_after_the_migrate_step_with_only_its_grants(
    roles: Roles,
) -> None:
    applied = await migrate(roles.owner_dsn, [THINGS], GRANTS, roles.runtime)
    assert "svc/0001_things.sql" in applied
    async with connect_pool(roles.runtime_dsn, [THINGS], forbid_owner=True) as pool:
        await pool.execute("INSERT INTO things (note) VALUES ('a')")
        await pool.execute("UPDATE things SET note = 'b'")
        await pool.execute("INSERT INTO history (what) VALUES ('a')")
        for statement in (
            "UPDATE history SET what = 'x'",
            "DELETE FROM history",
            "DELETE FROM things",
            "TRUNCATE things",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await pool.execute(statement)


async def test_a_pool_given_the_owner_dsn_migrates_first_then_serves_as_runtime(
    roles: Roles,
) -> None:
    async with connect_pool(
        roles.runtime_dsn, [THINGS], migrate_dsn=roles.owner_dsn, grants=GRANTS
    ) as pool:
        assert await pool.fetchval("SELECT current_user") == roles.runtime
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.execute("CREATE TABLE intruder (x integer)")


async def test_pending_migration_and_only_the_runtime_role_says_to_run_the_migrate_step(
    roles: Roles,
) -> None:
    await migrate(roles.owner_dsn, [THINGS], GRANTS, roles.runtime)
    with pytest.raises(MigrationError, match="genomebus-migrate"):
        async with connect_pool(roles.runtime_dsn, [THINGS, MORE]):
            pass


async def test_a_table_the_grants_do_not_list_stops_the_migrate_step(roles: Roles) -> None:
    with pytest.raises(GrantsError, match=r"not listed .*\['more'\]"):
        await migrate(roles.owner_dsn, [THINGS, MORE], GRANTS, roles.runtime)


async def test_a_listed_table_that_does_not_exist_stops_the_migrate_step(roles: Roles) -> None:
    stale = GRANTS + RuntimeGrants({"gone": APPEND_ONLY})
    with pytest.raises(GrantsError, match=r"listed but missing: \['gone'\]"):
        await migrate(roles.owner_dsn, [THINGS], stale, roles.runtime)


async def test_the_owner_cannot_be_the_runtime_role(roles: Roles) -> None:
    with pytest.raises(GrantsError, match="is the role that migrates"):
        await migrate(roles.owner_dsn, [THINGS], GRANTS, roles.owner)


async def test_a_grant_made_by_hand_is_taken_back_by_the_next_migrate_step(roles: Roles) -> None:
    await migrate(roles.owner_dsn, [THINGS], GRANTS, roles.runtime)
    owner = await asyncpg.connect(roles.owner_dsn)
    try:
        await owner.execute(f'GRANT DELETE, TRUNCATE ON history TO "{roles.runtime}"')
    finally:
        await owner.close()
    await migrate(roles.owner_dsn, [THINGS], GRANTS, roles.runtime)
    runtime = await asyncpg.connect(roles.runtime_dsn)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await runtime.execute("DELETE FROM history")
    finally:
        await runtime.close()


async def test_outside_development_a_service_refuses_to_serve_as_the_owner(roles: Roles) -> None:
    await migrate(roles.owner_dsn, [THINGS], GRANTS, roles.runtime)
    with pytest.raises(MigrationError, match="owns its tables"):
        async with connect_pool(roles.owner_dsn, [THINGS], forbid_owner=True):
            pass
    async with connect_pool(roles.owner_dsn, [THINGS]):  # development: allowed
        pass


def test_grants_refuse_privileges_a_service_never_needs() -> None:
    for privileges in ({"SELECT", "TRUNCATE"}, {"INSERT"}, {"SELECT", "TRIGGER"}):
        with pytest.raises(GrantsError):
            RuntimeGrants({"t": frozenset(privileges)})
    with pytest.raises(GrantsError, match="listed twice"):
        GRANTS + RuntimeGrants({"things": APPEND_ONLY})


def test_with_database_keeps_credentials_and_options() -> None:
    dsn = "postgresql://u:p@pg:5432/one?sslmode=verify-full&sslrootcert=/etc/ca/ca.crt"
    assert with_database(dsn, "two") == (
        "postgresql://u:p@pg:5432/two?sslmode=verify-full&sslrootcert=/etc/ca/ca.crt"
    )
