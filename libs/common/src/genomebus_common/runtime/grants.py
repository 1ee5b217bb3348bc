"""What a service's runtime role may do with each of its tables, written down in one place.

A service's database has two roles. The *owner* runs the migrations and owns every table; the
*runtime* role is what the service's connections use, with only the privileges below. Why the
split: the owner may UPDATE, DELETE, TRUNCATE and ``ALTER TABLE ... DISABLE TRIGGER`` anything,
so a service that ran as its owner could rewrite its own audit history after a compromise or a
bug. The runtime role cannot: the append-only tables (audit log, consent versions, tombstones)
grant it SELECT and INSERT only, it owns nothing, and it may not CREATE in the schema.

Why a table in code rather than GRANT statements in migrations: the runtime role's name is
chosen where the service is deployed (the dev stack, Kubernetes), the shared tables (inbox,
outbox) exist in every service's database, and applying the whole table again at every migrate
step puts back anything granted by hand. The rule for new tables: none gets any privilege until
it is listed here; the migrate step refuses a table (or view) that is not listed, so a migration
that adds one must decide its class in the same change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from genomebus_common.contracts.errors import PermanentError
from genomebus_common.runtime.pgtypes import Connection

#: History that is written once and never changed: the audit trail, consent versions,
#: tombstones, the record of handled events. The database refuses the runtime role anything else.
APPEND_ONLY: frozenset[str] = frozenset({"SELECT", "INSERT"})
#: State that changes (a sample's status, a projection, counts), but whose rows are never deleted.
UPDATABLE: frozenset[str] = frozenset({"SELECT", "INSERT", "UPDATE"})
#: Read only (views, the migrations' record).
READ_ONLY: frozenset[str] = frozenset({"SELECT"})

_TABLE_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
# Relations that need a decision: tables, partitioned tables, views, materialized views, foreign
# tables. Partitions are reached through their parent (whose privileges PostgreSQL checks), and
# sequences all get USAGE (they only number their own tables' rows).
_RELKINDS = ("r", "p", "v", "m", "f")


class GrantsError(PermanentError):
    code = "grants_error"


@dataclass(frozen=True)
class RuntimeGrants:
    """Privileges of the runtime role: per relation of schema ``public``, and the functions it
    may EXECUTE that are not executable by everyone (SECURITY DEFINER ones)."""

    tables: Mapping[str, frozenset[str]]
    functions: tuple[str, ...] = ()
    schema: str = field(default="public")

    def __post_init__(self) -> None:
        for table, privileges in self.tables.items():
            unknown = set(privileges) - _TABLE_PRIVILEGES
            if unknown or "SELECT" not in privileges:
                raise GrantsError(
                    f"{table}: privileges {sorted(privileges)} (SELECT and any of "
                    f"INSERT, UPDATE, DELETE; never TRUNCATE, TRIGGER, REFERENCES)"
                )

    def __add__(self, other: RuntimeGrants) -> RuntimeGrants:
        overlap = set(self.tables) & set(other.tables)
        if overlap:
            raise GrantsError(f"grants listed twice: {sorted(overlap)}")
        return RuntimeGrants(
            {**self.tables, **other.tables}, (*self.functions, *other.functions), self.schema
        )

    def privileges(self, table: str) -> frozenset[str]:
        return self.tables.get(table, frozenset())


#: The shared mechanisms' tables, present in every service's database (``common`` migrations).
COMMON_GRANTS = RuntimeGrants(
    {
        # Which events a consumer has applied: a record, never rewritten (replays rely on it).
        "genomebus_inbox": APPEND_ONLY,
        # Events to publish: the relay marks rows published or failed.
        "genomebus_outbox": UPDATABLE,
        # Read at start-up to check that nothing is pending; only the owner writes it.
        "genomebus_migrations": READ_ONLY,
    }
)


async def apply_grants(conn: Connection, grants: RuntimeGrants, runtime_role: str) -> None:
    """Make the runtime role's privileges exactly ``grants``, as the owner, in one transaction.

    Also closes the database to everyone else (PUBLIC loses CONNECT and TEMPORARY, so no other
    service's role can even connect) and to creation in the schema. Refuses a relation that the
    table does not list, one it lists that does not exist, and a runtime role that is the
    connection's own role (it would own everything: the split would mean nothing).
    """
    me = await conn.fetchval("SELECT current_user")
    if runtime_role == me:
        raise GrantsError(
            f"the runtime role {runtime_role!r} is the role that migrates (the "
            "owner): give the service a role of its own"
        )
    if not await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", runtime_role):
        raise GrantsError(
            f"role {runtime_role!r} does not exist: create it first (LOGIN, no other "
            "attributes); see docs/security.md"
        )
    existing = {
        r["relname"]
        for r in await conn.fetch(
            """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind::text = ANY($2::text[]) AND NOT c.relispartition""",
            grants.schema,
            list(_RELKINDS),
        )
    }
    unlisted, stale = existing - set(grants.tables), set(grants.tables) - existing
    if unlisted or stale:
        raise GrantsError(
            "the runtime grants do not match the schema: "
            + (
                f"not listed (decide their class in the service's schema.py): {sorted(unlisted)}; "
                if unlisted
                else ""
            )
            + (f"listed but missing: {sorted(stale)}" if stale else "")
        )
    database = await conn.fetchval("SELECT current_database()")
    async with conn.transaction():
        for statement in _statements(grants, runtime_role, database):
            await conn.execute(statement)


def _statements(grants: RuntimeGrants, role: str, database: str) -> list[str]:
    """The REVOKE/GRANT statements, identifiers quoted; revoking first makes them exact."""
    q = _quote
    schema = q(grants.schema)
    out = [
        f"REVOKE ALL ON DATABASE {q(database)} FROM PUBLIC",
        # TEMPORARY: the registry stages a load in a temporary table.
        f"GRANT CONNECT, TEMPORARY ON DATABASE {q(database)} TO {q(role)}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC",
        f"REVOKE CREATE ON SCHEMA {schema} FROM {q(role)}",
        f"GRANT USAGE ON SCHEMA {schema} TO {q(role)}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM PUBLIC",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {q(role)}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {q(role)}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {q(role)}",
    ]
    for table, privileges in sorted(grants.tables.items()):
        listed = ", ".join(p for p in ("SELECT", "INSERT", "UPDATE", "DELETE") if p in privileges)
        out.append(f"GRANT {listed} ON {schema}.{q(table)} TO {q(role)}")
    for function in grants.functions:  # a signature, e.g. "f(integer)": written by us, not input
        out.append(f"GRANT EXECUTE ON FUNCTION {schema}.{function} TO {q(role)}")
    return out


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
