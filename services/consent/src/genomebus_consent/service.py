"""Consent's use cases: record a new consent version, read a patient's history.

A change never overwrites: it is a new version, numbered under a per-patient lock so two
concurrent changes cannot take the same number, and its ConsentChanged event is written to the
outbox in the same transaction (a recorded version is always announced, and an announced one
always recorded). The national id is parsed and pseudonymised first and goes no further.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from genomebus_common.errors import DataConflict, GenomebusError, PermanentError, from_asyncpg_error
from genomebus_common.identifiers import InvalidNationalId, Pseudonymiser, parse_cpr
from genomebus_common.outbox import OutboxRelay, enqueue

from .domain import (
    ConsentFacts,
    ConsentHistory,
    ConsentRejected,
    ConsentVersion,
    ResearchUseChange,
    consent_changed,
    rule_violations,
)

log = logging.getLogger(__name__)

Change = ConsentFacts | ResearchUseChange


class IdempotencyConflict(DataConflict):
    """An Idempotency-Key reused for a different request: replaying it would be a lie."""

    code = "idempotency_conflict"


class ConsentNotFound(PermanentError):
    code = "consent_not_found"


@dataclass(frozen=True)
class Recorded:
    version: ConsentVersion
    created: bool  # False: an Idempotency-Key retry, answered with the version it created


@dataclass
class ConsentService:
    pool: asyncpg.Pool
    pseudonymiser: Pseudonymiser
    relay: OutboxRelay | None = None

    def pseudonym_of(self, national_id: str) -> str:
        """Check the national id and replace it by the patient's pseudonym (shared with ingest)."""
        try:
            checked = parse_cpr(national_id)
        except InvalidNationalId as exc:
            raise ConsentRejected([f"national_id: {exc}"]) from None
        return self.pseudonymiser.pseudonym(checked)

    async def record(
        self,
        national_id: str,
        change: Change,
        *,
        client: str,
        source: str,
        idempotency_key: str | None = None,
    ) -> Recorded:
        """Record ``change`` as the patient's next version and announce it."""
        pseudonym = self.pseudonym_of(national_id)
        if isinstance(change, ConsentFacts) and (problems := rule_violations(change)):
            raise ConsentRejected(problems)
        fingerprint = change.fingerprint(pseudonym, source)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if idempotency_key is not None:
                    # Key first, patient second, always: two locks, one order, no deadlock.
                    await _lock(conn, f"idempotency:{client}:{idempotency_key}")
                    replay = await self._replay(conn, client, idempotency_key, fingerprint)
                    if replay is not None:
                        return Recorded(replay, created=False)
                await _lock(conn, f"patient:{pseudonym}")
                current = await conn.fetchrow(
                    """
                    SELECT * FROM consent_versions WHERE patient_pseudonym = $1
                    ORDER BY version DESC LIMIT 1""",
                    pseudonym,
                )
                facts = (
                    change if isinstance(change, ConsentFacts) else change.apply(_facts(current))
                )
                if problems := rule_violations(facts):
                    raise ConsentRejected(problems)
                number = (current["version"] if current else 0) + 1
                event = consent_changed(facts, pseudonym=pseudonym, version=number)
                row = await conn.fetchrow(
                    """
                    INSERT INTO consent_versions (patient_pseudonym, version,
                        analysis_consent_given, consent_document, consent_date,
                        secondary_findings, research_use, withdrawn, recorded_by,
                        recorded_by_client, reason, source, event_id)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                    RETURNING *""",
                    pseudonym,
                    number,
                    facts.analysis_consent_given,
                    facts.consent_document,
                    facts.consent_date,
                    facts.secondary_findings.value if facts.secondary_findings else None,
                    facts.research_use.value,
                    facts.withdrawn,
                    facts.recorded_by,
                    client,
                    facts.reason,
                    source,
                    event.event_id,
                )
                if idempotency_key is not None:
                    await conn.execute(
                        """
                        INSERT INTO idempotency_keys (client_id, idempotency_key, fingerprint,
                            patient_pseudonym, version)
                        VALUES ($1, $2, $3, $4, $5)""",
                        client,
                        idempotency_key,
                        fingerprint,
                        pseudonym,
                        number,
                    )
                await enqueue(conn, event)
        except GenomebusError:
            raise
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise from_asyncpg_error(exc) from exc
        if self.relay is not None:
            self.relay.notify()
        log.info(
            "consent version recorded",
            extra={"patient_pseudonym": pseudonym, "version": number, "client": client},
        )
        return Recorded(_version(row), created=True)

    async def _replay(
        self, conn: asyncpg.Connection, client: str, key: str, fingerprint: str
    ) -> ConsentVersion | None:
        hit = await conn.fetchrow(
            "SELECT * FROM idempotency_keys WHERE client_id = $1 AND idempotency_key = $2",
            client,
            key,
        )
        if hit is None:
            return None
        if hit["fingerprint"] != fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used for a different consent change; "
                "use a new key for a new change"
            )
        row = await conn.fetchrow(
            "SELECT * FROM consent_versions WHERE patient_pseudonym = $1 AND version = $2",
            hit["patient_pseudonym"],
            hit["version"],
        )
        return _version(row)

    async def history(self, pseudonym: str, *, client: str) -> ConsentHistory:
        """Every version of the patient's consent, oldest first."""
        rows = await self.pool.fetch(
            "SELECT * FROM consent_versions WHERE patient_pseudonym = $1 ORDER BY version",
            pseudonym,
        )
        if not rows:
            raise ConsentNotFound("no consent is recorded for this patient")
        log.info("consent history read", extra={"patient_pseudonym": pseudonym, "client": client})
        versions = [_version(r) for r in rows]
        return ConsentHistory(
            patient_pseudonym=pseudonym, current_version=versions[-1].version, versions=versions
        )


async def _lock(conn: asyncpg.Connection, name: str) -> None:
    """A transaction-scoped lock on ``name`` (a hash collision only serialises, never breaks)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", name)


def _facts(row: asyncpg.Record | None) -> ConsentFacts | None:
    if row is None:
        return None
    return ConsentFacts.model_validate({name: row[name] for name in ConsentFacts.model_fields})


def _version(row: asyncpg.Record) -> ConsentVersion:
    return ConsentVersion.model_validate(dict(row))
