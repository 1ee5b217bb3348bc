"""Database roles on the real PostgreSQL, connecting as the services' runtime roles do.

Each database service (ingest, consent, registry) serves as ``genomebus_<service>_runtime`` with
the credentials the dev stack made (the env file's ``GENOMEBUS_<SERVICE>_POSTGRES_DSN``), after
the migrate step ran as the database's owner. These tests log in exactly so and try what that
role must never do: rewrite the append-only tables, switch their triggers off, create objects,
reach another service's database. Where a service runs as the owner or a superuser (as all of
them did before), the same statements succeed, or only a trigger refuses, and a table's owner
can disable its triggers: these tests fail there. Every attempt runs in a transaction that is
rolled back, so a wrongly granted privilege never damages the stack's data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from genomebus_common.runtime.db import service_schema
from genomebus_common.runtime.grants import APPEND_ONLY, COMMON_GRANTS
from genomebus_devstack import dbroles
from genomebus_devstack.services import ServiceGroup, ServiceProcess

SERVICES = dbroles.DATABASE_SERVICES

#: History, never rewritten: what each service's runtime role may only read and append to.
APPEND_ONLY_TABLES: dict[str, tuple[str, ...]] = {
    "ingest": ("rejected_registrations", "genomebus_inbox"),
    "consent": (
        "consent_versions",
        "idempotency_keys",
        "genomebus_inbox",
        "consent_access_log",
        "treating_hospitals",
    ),
    "registry": ("audit_log", "removed_samples", "genomebus_inbox"),
}
#: Append-only tables whose triggers refuse changes even to the owner: the runtime role must
#: not be able to disable them.
GUARDED_BY_TRIGGERS = {"consent": "consent_versions", "registry": "audit_log"}

APPEND_ONLY_CASES = [(s, t) for s, tables in APPEND_ONLY_TABLES.items() for t in tables]


@pytest.fixture(scope="module")
def migrated(endpoints: dict[str, str]) -> dict[str, str]:
    """Each service's database migrated by the migrate step, as the Kubernetes init container
    runs it (``genomebus-migrate``, owner DSN plus runtime DSN); returns the runtime DSNs."""
    script = Path(sys.executable).with_name("genomebus-migrate")
    for service in SERVICES:
        env = {
            **os.environ,
            "GENOMEBUS_PROFILE": "dev",
            "GENOMEBUS_SERVICE_NAME": service,
            "GENOMEBUS_POSTGRES_DSN": endpoints[dbroles.dsn_key(service)],
            "GENOMEBUS_POSTGRES_MIGRATE_DSN": endpoints[dbroles.migrate_dsn_key(service)],
        }
        done = subprocess.run(
            [str(script)], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"genomebus-migrate {service}: {done.stderr[-2000:]}"
    return {service: endpoints[dbroles.dsn_key(service)] for service in SERVICES}


@asynccontextmanager
async def rolled_back(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a transaction that is always rolled back."""
    conn = await asyncpg.connect(dsn)
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield conn
    finally:
        await transaction.rollback()
        await conn.close()


async def first_column(conn: asyncpg.Connection, table: str) -> str:
    return await conn.fetchval(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum = 1", table
    )


@pytest.mark.parametrize(("service", "table"), APPEND_ONLY_CASES)
@pytest.mark.parametrize("statement", ["UPDATE", "DELETE", "TRUNCATE"])
async def test_runtime_role_may_not_rewrite_append_only_tables(
    migrated: dict[str, str], service: str, table: str, statement: str
) -> None:
    async with rolled_back(migrated[service]) as conn:
        column = await first_column(conn, table)
        sql = {
            "UPDATE": f'UPDATE "{table}" SET "{column}" = "{column}"',
            "DELETE": f'DELETE FROM "{table}"',
            "TRUNCATE": f'TRUNCATE "{table}"',
        }[statement]
        with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
            await conn.execute(sql)
    # The privilege refuses, not a trigger (a trigger's refusal can be switched off by the owner).
    assert f"permission denied for table {table}" in str(refused.value)


@pytest.mark.parametrize(("service", "table"), sorted(GUARDED_BY_TRIGGERS.items()))
@pytest.mark.parametrize("which", ["ALL", "USER"])
async def test_runtime_role_may_not_disable_the_append_only_triggers(
    migrated: dict[str, str], service: str, table: str, which: str
) -> None:
    async with rolled_back(migrated[service]) as conn:
        with pytest.raises(
            asyncpg.InsufficientPrivilegeError, match=f"must be owner of table {table}"
        ):
            await conn.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER {which}')


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    "ddl",
    [
        "CREATE TABLE genomebus_intruder (x integer)",
        "CREATE TABLE public.genomebus_intruder (x integer)",
        "CREATE VIEW genomebus_intruder AS SELECT 1 AS x",
        "CREATE FUNCTION genomebus_intruder() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
    ],
)
async def test_runtime_role_may_not_create_in_the_schema(
    migrated: dict[str, str], service: str, ddl: str
) -> None:
    async with rolled_back(migrated[service]) as conn:
        with pytest.raises(
            asyncpg.InsufficientPrivilegeError, match="permission denied for schema public"
        ):
            await conn.execute(ddl)


@pytest.mark.parametrize(
    ("service", "other"), [(a, b) for a in SERVICES for b in SERVICES if a != b]
)
async def test_runtime_role_cannot_read_another_services_tables(
    migrated: dict[str, str], endpoints: dict[str, str], service: str, other: str
) -> None:
    """Each service has a database of its own; another service's role may not even connect."""
    from genomebus_common.runtime.db import with_database

    elsewhere = with_database(migrated[service], dbroles.database(other))
    with pytest.raises(
        asyncpg.InsufficientPrivilegeError, match="permission denied for (database|table)"
    ):
        conn = await asyncpg.connect(elsewhere)
        try:  # only reached if the connection was let in: then no table may be readable either
            table = APPEND_ONLY_TABLES[other][0]
            await conn.fetch(f'SELECT * FROM "{table}" LIMIT 1')
        finally:
            await conn.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_runtime_role_owns_nothing_and_has_no_special_attributes(
    migrated: dict[str, str], service: str
) -> None:
    async with rolled_back(migrated[service]) as conn:
        role = await conn.fetchrow(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = current_user"
        )
        assert role["rolname"] == dbroles.runtime_role(service)
        assert not any(
            role[k]
            for k in ("rolsuper", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls")
        ), dict(role)
        owned = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relowner = "
            "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
        )
        assert owned == []
        # not a member of the owner role either (it would inherit the owner's rights)
        assert not await conn.fetchval(
            "SELECT pg_has_role(current_user, $1, 'MEMBER')", dbroles.owner_role(service)
        )


def test_append_only_tables_are_append_only_in_the_grants_too() -> None:
    """The services' grant tables say the same as this test's list (neither drifts alone)."""
    for service in SERVICES:
        grants = COMMON_GRANTS + service_schema(service).grants
        append_only = {t for t, privileges in grants.tables.items() if privileges == APPEND_ONLY}
        assert append_only >= set(APPEND_ONLY_TABLES[service]), service
        assert all(
            "DELETE" not in p and "UPDATE" not in p
            for t, p in grants.tables.items()
            if t in APPEND_ONLY_TABLES[service]
        )


async def test_what_the_registry_needs_still_works(migrated: dict[str, str]) -> None:
    """The privileges left are enough for the registry's own work: audit rows, a sample's
    blocks written and deleted, a staging table, new allele codes, pending adjustments written
    and folded into the counts (registry_fold runs with the caller's rights)."""
    async with rolled_back(migrated["registry"]) as conn:
        await conn.execute(
            "INSERT INTO audit_log (actor, role, action, purpose, outcome) "
            "VALUES ('tests', 'service', 'check', 'roles test', 'rolled back')"
        )
        await conn.execute("CREATE TEMP TABLE registry_staging_check (x integer) ON COMMIT DROP")
        await conn.execute("SELECT registry_lock_alleles()")
        await conn.execute(
            "INSERT INTO variant_alleles (contig_no, pos, code, ref, alt) "
            "VALUES (-1, 1, 16, 'AT', 'A')"
        )
        await conn.execute(
            "INSERT INTO genotype_blocks VALUES (-1, -1, 0, '{16453}', '{30}', '{99}')"
        )
        await conn.execute(
            "INSERT INTO pending_adjustments (patient_pseudonym, reference_digest, samples, w_all, "
            "w_research) VALUES ('pk1_check', 'SQC.check', '{-1}', 1, 0)"
        )
        assert await conn.fetchval("SELECT registry_fold(1000000)") >= 1
        assert (
            await conn.fetchval(
                "SELECT all_het FROM variant_counts WHERE key = registry_key(-1, 0, 16453)"
            )
            is not None
        )
        await conn.execute("DELETE FROM genotype_blocks WHERE sample_no = -1")


async def test_services_run_as_their_runtime_roles(
    migrated: dict[str, str], endpoints: dict[str, str], tmp_path: Path
) -> None:
    """Started as the dev stack starts them (migrating as the owner), the services' open
    connections are all the runtime role's: the owner's connection is gone once migrated."""
    env = {
        **endpoints,
        "GENOMEBUS_PSEUDONYM_KEY": "ab" * 32,
        "GENOMEBUS_LOG_LEVEL": "INFO",
        "GENOMEBUS_REGISTRY_CLIENTS": json.dumps({}),
    }
    group = ServiceGroup(
        [
            ServiceProcess(
                name, {**env, "GENOMEBUS_WORK_DIR": str(tmp_path / name)}, tmp_path / "logs"
            )
            for name in SERVICES
        ]
    )
    with group:
        admin = await asyncpg.connect(endpoints["GENOMEBUS_POSTGRES_DSN"])
        try:
            rows = await admin.fetch(
                "SELECT datname, usename FROM pg_stat_activity WHERE datname = ANY($1::text[]) "
                "AND pid <> pg_backend_pid()",
                [dbroles.database(s) for s in SERVICES],
            )
        finally:
            await admin.close()
    by_database: dict[str, set[str]] = {}
    for row in rows:
        by_database.setdefault(row["datname"], set()).add(row["usename"])
    for service in SERVICES:
        assert by_database.get(dbroles.database(service)) == {dbroles.runtime_role(service)}, (
            by_database
        )
