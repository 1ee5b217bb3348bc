"""Each database service's two roles and its database on the dev stack's PostgreSQL.

Per service (ingest, consent, registry): database ``genomebus_<service>``, owned by the LOGIN role
``genomebus_<service>`` (the owner: the migrate step connects as it), and the LOGIN role
``genomebus_<service>_runtime`` that the service's pool uses, with only the grants of the
service's ``schema.py`` (applied by the migrate step). Passwords are generated at the first
``up`` and kept in ``<state>/postgres-roles.json`` (0600); the env file carries the DSNs. The
names are the ones the Kubernetes manifests use, so a difference in privileges shows up here.

Why by the superuser DSN and asyncpg rather than psql: the same provisioning serves the dev stack
and test endpoints given in the environment (any server whose superuser DSN we are given).
A database made before the roles existed (its tables owned by the superuser) is adopted: its
objects are handed to the owner, since the migrate step must own what it alters and grants.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .paths import write_private
from .procs import StackError

if TYPE_CHECKING:
    import asyncpg

#: The services that keep tables, each in a database of its own.
DATABASE_SERVICES: tuple[str, ...] = ("ingest", "consent", "registry")
PROFILE_KEY = "GENOMEBUS_PROFILE"
_SAFE_PASSWORD = re.compile(r"^[A-Za-z0-9_-]{16,}$")


def database(service: str) -> str:
    return f"genomebus_{service}"


def owner_role(service: str) -> str:
    return f"genomebus_{service}"


def runtime_role(service: str) -> str:
    return f"genomebus_{service}_runtime"


def dsn_key(service: str) -> str:
    """Env file key of the service's runtime DSN (the launcher hands it over as its own)."""
    return f"GENOMEBUS_{service.upper()}_POSTGRES_DSN"


def migrate_dsn_key(service: str) -> str:
    """Env file key of the service's owner DSN (the migrate step's)."""
    return f"GENOMEBUS_{service.upper()}_POSTGRES_MIGRATE_DSN"


@dataclass(frozen=True)
class RolePasswords:
    owner: str
    runtime: str

    @classmethod
    def generate(cls) -> RolePasswords:
        return cls(owner=secrets.token_urlsafe(24), runtime=secrets.token_urlsafe(24))


def load_passwords(path: Path) -> dict[str, RolePasswords]:
    """The stack's role passwords, generated once per state dir (missing services are added)."""
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        stored = {}
    found = {s: RolePasswords(**stored[s]) for s in DATABASE_SERVICES if s in stored}
    if len(found) < len(DATABASE_SERVICES):
        found |= {s: RolePasswords.generate() for s in DATABASE_SERVICES if s not in found}
        write_private(path, json.dumps({s: vars(p) for s, p in found.items()}, indent=1) + "\n")
    return found


def service_dsns(admin_dsn: str, service: str, passwords: RolePasswords) -> dict[str, str]:
    """The env entries of one service: its runtime and owner DSNs on the admin DSN's server."""

    def dsn(user: str, password: str) -> str:
        parts = urlsplit(admin_dsn)
        host = parts.hostname or "127.0.0.1"
        netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc, path="/" + database(service)))

    return {
        dsn_key(service): dsn(runtime_role(service), passwords.runtime),
        migrate_dsn_key(service): dsn(owner_role(service), passwords.owner),
    }


def env_entries(admin_dsn: str, passwords: Mapping[str, RolePasswords]) -> dict[str, str]:
    """Every database service's DSNs, and the dev profile they need (no TLS here)."""
    entries = {PROFILE_KEY: "dev"}
    for service in DATABASE_SERVICES:
        entries |= service_dsns(admin_dsn, service, passwords[service])
    return entries


def provision(admin_dsn: str, passwords: Mapping[str, RolePasswords]) -> None:
    """Create (or bring back in line) every service's roles and database. Idempotent."""
    for value in (v for p in passwords.values() for v in (p.owner, p.runtime)):
        if not _SAFE_PASSWORD.match(value):
            raise StackError(
                "a stack database password is not URL-safe; delete "
                "postgres-roles.json from the state dir and run `genomebus stack up`"
            )
    _run(_provision(admin_dsn, passwords))


async def _provision(admin_dsn: str, passwords: Mapping[str, RolePasswords]) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        for service in DATABASE_SERVICES:
            for role, password in (
                (owner_role(service), passwords[service].owner),
                (runtime_role(service), passwords[service].runtime),
            ):
                await _ensure_role(conn, role, password)
            await _ensure_database(conn, database(service), owner_role(service))
    finally:
        await conn.close()
    for service in DATABASE_SERVICES:
        target = urlunsplit(urlsplit(admin_dsn)._replace(path="/" + database(service)))
        conn = await asyncpg.connect(target)
        try:
            await adopt(conn, owner_role(service))
        finally:
            await conn.close()


async def _execute_formatted(conn: asyncpg.Connection, template: str, *args: str) -> None:
    """Run DDL built by the server's ``format()`` (%I identifiers, %L literals): DDL takes no
    bind parameters, and this quotes exactly as PostgreSQL parses."""
    placeholders = ", ".join(f"${i + 2}::text" for i in range(len(args)))
    statement = await conn.fetchval(f"SELECT format($1::text, {placeholders})", template, *args)
    await conn.execute(statement)


async def _ensure_role(conn: asyncpg.Connection, role: str, password: str) -> None:
    exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role)
    if not exists:
        await _execute_formatted(conn, "CREATE ROLE %I", role)
    # Plain LOGIN and nothing else, whatever an earlier version of the stack gave it.
    await _execute_formatted(
        conn,
        "ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
        "NOREPLICATION NOBYPASSRLS INHERIT PASSWORD %L",
        role,
        password,
    )


async def _ensure_database(conn: asyncpg.Connection, name: str, owner: str) -> None:
    exists = await conn.fetchval("SELECT true FROM pg_database WHERE datname = $1", name)
    if not exists:
        import asyncpg

        # A concurrent up may have made it meanwhile.
        with contextlib.suppress(asyncpg.DuplicateDatabaseError):
            await _execute_formatted(conn, "CREATE DATABASE %I OWNER %I", name, owner)
    await _execute_formatted(conn, "ALTER DATABASE %I OWNER TO %I", name, owner)


async def adopt(conn: asyncpg.Connection, owner: str) -> int:
    """Hand every object of schema public that ``owner`` does not own to it; returns how many.

    For databases made before the stack had roles (the superuser owned everything). Tables
    first: their sequences, indexes and row types follow them; then free sequences and routines.
    """
    rows = await conn.fetch(
        """
        SELECT format('ALTER %s %s OWNER TO %I',
                      CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                     WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                      c.oid::regclass, $1::text) AS statement
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND pg_get_userbyid(c.relowner) <> $1""",
        owner,
    )
    moved = 0
    async with conn.transaction():
        for row in rows:
            await conn.execute(row["statement"])
            moved += 1
        later = await conn.fetch(
            """
            SELECT format('ALTER SEQUENCE %s OWNER TO %I', c.oid::regclass, $1::text) AS statement
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind = 'S' AND pg_get_userbyid(c.relowner) <> $1
            UNION ALL
            SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $1::text)
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> $1""",
            owner,
        )
        for row in later:
            await conn.execute(row["statement"])
            moved += 1
    return moved


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run to completion even when the caller is inside an event loop (a thread of its own)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as exc:  # noqa: BLE001 (re-raised below)
            errors.append(exc)

    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    if errors:
        raise StackError(f"cannot provision the services' database roles: {errors[0]}") from errors[
            0
        ]
