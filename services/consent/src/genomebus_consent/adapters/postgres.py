"""The consent store on PostgreSQL: the SQL of every use case, and its outbox.

Locks are transaction-scoped advisory locks on a name (a hash collision only serialises, never
breaks). Driver errors leave as the genomebus error tree (``from_asyncpg_error``): a failover or
a deadlock is transient, and the HTTP and Kafka adapters answer accordingly.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from genomebus_common.contracts.events import ConsentChanged
from genomebus_common.runtime.failures import database_errors
from genomebus_common.runtime.outbox import enqueue
from genomebus_common.runtime.pgtypes import Connection

from ..core.model import ConsentVersion
from ..ports import AccessEntry, AccessLogEntry, IdempotencyRecord, NewVersion


@dataclass
class PostgresConsentStore:
    pool: asyncpg.Pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        with database_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                yield PostgresTransaction(conn)

    async def log_access(self, entry: AccessEntry) -> None:
        await _log(self.pool, entry)


@dataclass
class PostgresTransaction:
    conn: Connection

    async def lock_idempotency_key(self, client: str, key: str) -> None:
        await _lock(self.conn, f"idempotency:{client}:{key}")

    async def idempotency_record(self, client: str, key: str) -> IdempotencyRecord | None:
        hit = await self.conn.fetchrow(
            "SELECT * FROM idempotency_keys WHERE client_id = $1 AND idempotency_key = $2",
            client,
            key,
        )
        if hit is None:
            return None
        return IdempotencyRecord(hit["fingerprint"], hit["patient_pseudonym"], hit["version"])

    async def lock_patient(self, pseudonym: str) -> None:
        await _lock(self.conn, f"patient:{pseudonym}")

    async def version(self, pseudonym: str, number: int) -> ConsentVersion:
        row = await self.conn.fetchrow(
            "SELECT * FROM consent_versions WHERE patient_pseudonym = $1 AND version = $2",
            pseudonym,
            number,
        )
        return _version(row)

    async def current_version(self, pseudonym: str) -> ConsentVersion | None:
        row = await self.conn.fetchrow(
            """
            SELECT * FROM consent_versions WHERE patient_pseudonym = $1
            ORDER BY version DESC LIMIT 1""",
            pseudonym,
        )
        return None if row is None else _version(row)

    async def versions(self, pseudonym: str) -> list[ConsentVersion]:
        rows = await self.conn.fetch(
            "SELECT * FROM consent_versions WHERE patient_pseudonym = $1 ORDER BY version",
            pseudonym,
        )
        return [_version(row) for row in rows]

    async def treating_hospitals(self, pseudonym: str) -> frozenset[str]:
        treating = await self.conn.fetchval(
            "SELECT array_agg(hospital_id) FROM treating_hospitals WHERE patient_pseudonym = $1",
            pseudonym,
        )
        return frozenset(treating or ())

    async def recorders(self, pseudonym: str) -> frozenset[str]:
        recorders = await self.conn.fetchval(
            """
            SELECT array_agg(DISTINCT recorded_by_client) FROM consent_versions
            WHERE patient_pseudonym = $1""",
            pseudonym,
        )
        return frozenset(recorders or ())

    async def restriction_recorders(self, pseudonym: str) -> list[str]:
        restricting: list[str] | None = await self.conn.fetchval(
            """
            SELECT array_agg(recorded_by_client ORDER BY version) FROM consent_versions
            WHERE patient_pseudonym = $1 AND research_use = 'own_treatment_only'
              AND version > coalesce((SELECT max(version) FROM consent_versions
                                      WHERE patient_pseudonym = $1
                                        AND research_use = 'allowed'), 0)""",
            pseudonym,
        )
        return restricting or []

    async def add_version(self, new: NewVersion) -> ConsentVersion:
        facts = new.facts
        row = await self.conn.fetchrow(
            """
            INSERT INTO consent_versions (patient_pseudonym, version,
                analysis_consent_given, consent_document, consent_date,
                secondary_findings, research_use, withdrawn, recorded_by,
                recorded_by_client, reason, source, event_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            RETURNING *""",
            new.pseudonym,
            new.number,
            facts.analysis_consent_given,
            facts.consent_document,
            facts.consent_date,
            facts.secondary_findings.value if facts.secondary_findings else None,
            facts.research_use.value,
            facts.withdrawn,
            facts.recorded_by,
            new.client,
            facts.reason,
            new.source,
            new.event_id,
        )
        return _version(row)

    async def add_idempotency_key(self, client: str, key: str, record: IdempotencyRecord) -> None:
        await self.conn.execute(
            """
            INSERT INTO idempotency_keys (client_id, idempotency_key, fingerprint,
                patient_pseudonym, version)
            VALUES ($1, $2, $3, $4, $5)""",
            client,
            key,
            record.fingerprint,
            record.patient_pseudonym,
            record.version,
        )

    async def add_treating(self, pseudonym: str, hospital: str, sample_id: str) -> bool:
        became = await self.conn.fetchval(
            """
            INSERT INTO treating_hospitals (patient_pseudonym, hospital_id, first_sample_id)
            VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true""",
            pseudonym,
            hospital,
            sample_id,
        )
        return bool(became)

    async def access_log(self, pseudonym: str, limit: int) -> list[AccessLogEntry]:
        rows = await self.conn.fetch(
            """
            SELECT client_id, client_kind, action, outcome, purpose, at
            FROM consent_access_log WHERE patient_pseudonym = $1
            ORDER BY at DESC, id DESC LIMIT $2""",
            pseudonym,
            limit,
        )
        return [
            AccessLogEntry(
                client_id=row["client_id"],
                client_kind=row["client_kind"],
                action=row["action"],
                outcome=row["outcome"],
                purpose=row["purpose"],
                at=row["at"],
            )
            for row in rows
        ]

    async def log_access(self, entry: AccessEntry) -> None:
        await _log(self.conn, entry)

    async def publish(self, event: ConsentChanged) -> None:
        await enqueue(self.conn, event)


async def _log(conn: Connection | asyncpg.Pool, entry: AccessEntry) -> None:
    await conn.execute(
        """
        INSERT INTO consent_access_log (patient_pseudonym, client_id, client_kind, action,
            outcome, purpose)
        VALUES ($1, $2, $3, $4, $5, $6)""",
        entry.pseudonym,
        entry.client.id,
        entry.client.kind.value,
        entry.action,
        entry.outcome,
        entry.purpose,
    )


async def _lock(conn: Connection, name: str) -> None:
    """A transaction-scoped lock on ``name`` (a hash collision only serialises, never breaks)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", name)


def _version(row: asyncpg.Record | None) -> ConsentVersion:
    if row is None:  # asked only for a version an idempotency key or an INSERT names
        raise LookupError("the consent version is not in consent_versions")
    return ConsentVersion.model_validate(dict(row))
