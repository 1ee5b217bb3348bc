"""Migrations on the real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from genomebus_common.runtime.db import (
    MigrationError,
    apply_migrations,
    common_migrations,
    connect_pool,
    load_migrations,
)

pytestmark = pytest.mark.integration


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return folder


async def test_migrations_apply_once_in_order_and_the_pool_is_ready(
    fresh_dsn: str, tmp_path: Path
) -> None:
    folder = _write(
        tmp_path / "m",
        {
            "0001_samples.sql": "CREATE TABLE samples (id text PRIMARY KEY);",
            "0002_state.sql": "ALTER TABLE samples ADD COLUMN state text NOT NULL DEFAULT 'new';",
        },
    )
    migrations = load_migrations("svc", folder)
    async with connect_pool(fresh_dsn, migrations) as pool:
        await pool.execute("INSERT INTO samples (id) VALUES ('S1')")
        assert await pool.fetchval("SELECT state FROM samples") == "new"
        assert await pool.fetchval("SELECT count(*) FROM genomebus_inbox") == 0
    async with connect_pool(fresh_dsn, migrations) as pool:  # a restart: nothing reapplied
        rows = await pool.fetch("SELECT component, version FROM genomebus_migrations ORDER BY 1, 2")
    assert [(r["component"], r["version"]) for r in rows] == [
        ("common", 1),
        ("common", 2),
        ("common", 3),
        ("common", 4),
        ("svc", 1),
        ("svc", 2),
    ]


async def test_an_edited_migration_is_refused(fresh_dsn: str, tmp_path: Path) -> None:
    folder = _write(tmp_path / "m", {"0001_t.sql": "CREATE TABLE t (a int);"})
    async with connect_pool(fresh_dsn, load_migrations("svc", folder)):
        pass
    _write(folder, {"0001_t.sql": "CREATE TABLE t (a bigint);"})
    with pytest.raises(MigrationError, match="changed after it was applied"):
        async with connect_pool(fresh_dsn, load_migrations("svc", folder)):
            pass


def test_a_gap_in_migration_numbers_is_refused(tmp_path: Path) -> None:
    folder = _write(tmp_path / "m", {"0001_a.sql": "SELECT 1;", "0003_c.sql": "SELECT 1;"})
    with pytest.raises(MigrationError, match="should be number 0002"):
        load_migrations("svc", folder)


async def test_a_failing_migration_leaves_no_trace(fresh_dsn: str, tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "m", {"0001_bad.sql": "CREATE TABLE half (a int); SELECT * FROM nowhere;"}
    )
    with pytest.raises(asyncpg.UndefinedTableError):
        async with connect_pool(fresh_dsn, load_migrations("svc", folder)):
            pass
    conn = await asyncpg.connect(fresh_dsn)
    try:
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert (
            await conn.fetchval("SELECT count(*) FROM genomebus_migrations WHERE component='svc'")
            == 0
        )
    finally:
        await conn.close()


async def test_replicas_starting_together_apply_each_migration_once(
    fresh_dsn: str, tmp_path: Path
) -> None:
    folder = _write(tmp_path / "m", {"0001_t.sql": "CREATE TABLE t (a int); SELECT pg_sleep(0.3);"})
    migrations = [*common_migrations(), *load_migrations("svc", folder)]

    async def one_replica() -> list[str]:
        conn = await asyncpg.connect(fresh_dsn)
        try:
            return await apply_migrations(conn, migrations)
        finally:
            await conn.close()

    results = await asyncio.gather(*(one_replica() for _ in range(3)))
    assert sorted(len(r) for r in results) == [0, 0, len(migrations)]
