"""The dev stack's database roles: passwords kept once, enforced, and old databases adopted."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from genomebus_common.runtime.db import connect_pool, migrate, with_database
from genomebus_devstack import dbroles
from genomebus_registry.schema import GRANTS, migrations


def test_passwords_are_generated_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "postgres-roles.json"
    first = dbroles.load_passwords(path)
    assert set(first) == set(dbroles.DATABASE_SERVICES)
    assert dbroles.load_passwords(path) == first
    assert path.stat().st_mode & 0o077 == 0
    assert len({p.owner for p in first.values()} | {p.runtime for p in first.values()}) == 6


def test_service_dsns_name_each_role_and_database() -> None:
    entries = dbroles.service_dsns(
        "postgresql://postgres@127.0.0.1:5999/genomebus",
        "consent",
        dbroles.RolePasswords(owner="o" * 20, runtime="r" * 20),
    )
    assert entries == {
        "GENOMEBUS_CONSENT_POSTGRES_DSN": (
            f"postgresql://genomebus_consent_runtime:{'r' * 20}@127.0.0.1:5999/genomebus_consent"
        ),
        "GENOMEBUS_CONSENT_POSTGRES_MIGRATE_DSN": (
            f"postgresql://genomebus_consent:{'o' * 20}@127.0.0.1:5999/genomebus_consent"
        ),
    }


@pytest.mark.parametrize("service", dbroles.DATABASE_SERVICES)
async def test_a_runtime_role_needs_its_password(endpoints: dict[str, str], service: str) -> None:
    """The stack trusts only its superuser on loopback: a role's password is checked, as it
    would be in production, so a wrong DSN fails here first."""
    good = endpoints[dbroles.dsn_key(service)]
    conn = await asyncpg.connect(good)
    await conn.close()
    parts = urlsplit(good)
    wrong = urlunsplit(
        parts._replace(netloc=f"{parts.username}:not-the-password@{parts.hostname}:{parts.port}")
    )
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


async def test_a_database_made_before_the_roles_is_adopted_by_its_owner(
    endpoints: dict[str, str],
) -> None:
    """A stack's registry database from before the roles: the superuser owns every table.
    Adopted, the owner can migrate it further and set the runtime role's grants."""
    admin = endpoints["GENOMEBUS_POSTGRES_DSN"]
    tag = uuid.uuid4().hex[:10]
    database, owner, runtime = f"test_{tag}", f"test_{tag}_owner", f"test_{tag}_runtime"
    password = secrets.token_urlsafe(16)
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{database}"')
    for role in (owner, runtime):
        await conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
    try:
        legacy = with_database(admin, database)
        async with connect_pool(legacy, migrations()[:-1]):  # as it was, by the superuser
            pass
        target = await asyncpg.connect(legacy)
        try:
            await conn.execute(f'ALTER DATABASE "{database}" OWNER TO "{owner}"')
            moved = await dbroles.adopt(target, owner)
            assert moved > 20  # tables, views, functions, the partitions, free sequences
            assert await dbroles.adopt(target, owner) == 0
            strays = await target.fetch(
                "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> $1",
                owner,
            )
            assert strays == []
        finally:
            await target.close()
        parts = urlsplit(legacy)
        as_owner = urlunsplit(
            parts._replace(netloc=f"{owner}:{password}@{parts.hostname}:{parts.port}")
        )
        applied = await migrate(as_owner, migrations(), GRANTS, runtime)
        assert applied == [f"registry/{migrations()[-1].name}"]
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for role in (runtime, owner):
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        await conn.close()
