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

from genomebus_common.contracts.errors import DataConflict, GenomebusError, PermanentError
from genomebus_common.contracts.events import SampleRegistered
from genomebus_common.contracts.identifiers import InvalidNationalId, Pseudonymiser, parse_cpr
from genomebus_common.runtime.failures import from_asyncpg_error
from genomebus_common.runtime.outbox import OutboxRelay, enqueue

from .access import (
    Client,
    ClientKind,
    PatientRecord,
    lifts_restriction_without_right,
    may_read,
    may_write,
)
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


# One text for "none recorded" and "not yours to see": the two must not be told apart.
NOT_FOUND = (
    "no consent recorded for this patient that this client may see or change (a hospital "
    "acts for patients it has registered a sample of: a registration reaches consent within "
    "seconds, then retry)"
)


class RestrictionNotYours(PermanentError):
    """A hospital tried to lift a research restriction only the patient (or the hospital that
    recorded it) may lift. Only a treating client ever gets this answer."""

    code = "restriction_not_yours"


class PortalOnly(PermanentError):
    code = "portal_only"


@dataclass(frozen=True)
class Recorded:
    version: ConsentVersion
    created: bool  # False: an Idempotency-Key retry, answered with the version it created


@dataclass
class ConsentService:
    pool: asyncpg.Pool
    pseudonymiser: Pseudonymiser
    relay: OutboxRelay | None = None
    portal_clients: frozenset[str] = frozenset({"portal"})

    def client(self, client_id: str) -> Client:
        kind = ClientKind.PORTAL if client_id in self.portal_clients else ClientKind.HOSPITAL
        return Client(client_id, kind)

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
                        await _log(
                            conn,
                            pseudonym,
                            self.client(client),
                            "record",
                            "allowed",
                            f"record consent ({source}), replayed",
                        )
                        return Recorded(replay, created=False)
                await _lock(conn, f"patient:{pseudonym}")
                current = await conn.fetchrow(
                    """
                    SELECT * FROM consent_versions WHERE patient_pseudonym = $1
                    ORDER BY version DESC LIMIT 1""",
                    pseudonym,
                )
                who = self.client(client)
                patient = await self._patient(conn, pseudonym, current)
                purpose = f"record consent ({source})"
                if not may_write(who, patient):
                    raise _Refused(ConsentNotFound(NOT_FOUND))
                facts = (
                    change if isinstance(change, ConsentFacts) else change.apply(_facts(current))
                )
                if problems := rule_violations(facts):
                    raise ConsentRejected(problems)
                if lifts_restriction_without_right(who, patient, facts.research_use):
                    raise _Refused(
                        RestrictionNotYours(
                            "the patient restricted research use; only the patient (through the "
                            "citizens' portal) or the hospital that recorded the restriction may lift it"
                        )
                    )
                await _log(conn, pseudonym, who, "record", "allowed", purpose)
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
        except _Refused as refused:
            # the transaction is rolled back; the refusal is logged on its own
            await _log(
                self.pool,
                pseudonym,
                self.client(client),
                "record",
                "refused",
                f"record consent ({source})",
            )
            raise refused.error from None
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
        """Every version of the patient's consent, oldest first: for the portal and the
        patient's treating hospitals; anyone else is told none is recorded."""
        who = self.client(client)
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT * FROM consent_versions WHERE patient_pseudonym = $1 ORDER BY version",
                pseudonym,
            )
            patient = await self._patient(conn, pseudonym, rows[-1] if rows else None)
            allowed = bool(rows) and may_read(who, patient)
            await _log(
                conn,
                pseudonym,
                who,
                "read_history",
                "allowed" if allowed else "refused",
                "read consent history",
            )
        if not allowed:
            raise ConsentNotFound(NOT_FOUND)
        log.info("consent history read", extra={"patient_pseudonym": pseudonym, "client": client})
        versions = [_version(r) for r in rows]
        return ConsentHistory(
            patient_pseudonym=pseudonym, current_version=versions[-1].version, versions=versions
        )

    async def sample_registered(self, event: SampleRegistered) -> None:
        """A hospital registered a sample of the patient: it treats the patient from now on."""
        async with self.pool.acquire() as conn, conn.transaction():
            became = await conn.fetchval(
                """
                INSERT INTO treating_hospitals (patient_pseudonym, hospital_id, first_sample_id)
                VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true""",
                event.patient_pseudonym,
                event.hospital_id,
                event.sample_id,
            )
            if became:  # the patient sees who claims to treat them, in the same log as reads
                await _log(
                    conn,
                    event.patient_pseudonym,
                    Client(event.hospital_id, ClientKind.HOSPITAL),
                    "became_treating",
                    "allowed",
                    f"registered sample {event.sample_id}",
                )

    async def access_log(
        self, pseudonym: str, *, client: str, limit: int = 500
    ) -> list[dict[str, object]]:
        """Who read or changed the patient's consent, newest first: for the portal only."""
        who = self.client(client)
        if who.kind is not ClientKind.PORTAL:
            raise PortalOnly("the access log is for the patient, through the citizens' portal")
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """
                SELECT client_id, client_kind, action, outcome, purpose, at
                FROM consent_access_log WHERE patient_pseudonym = $1
                ORDER BY at DESC, id DESC LIMIT $2""",
                pseudonym,
                limit,
            )
            await _log(
                conn, pseudonym, who, "read_access_log", "allowed", "patient reads who looked"
            )
        return [dict(row) for row in rows]

    async def _patient(
        self, conn: asyncpg.Connection, pseudonym: str, current: asyncpg.Record | None
    ) -> PatientRecord:
        treating = await conn.fetchval(
            "SELECT array_agg(hospital_id) FROM treating_hospitals WHERE patient_pseudonym = $1",
            pseudonym,
        )
        if current is None:
            return PatientRecord(False, frozenset(), frozenset(treating or ()), None, False)
        recorders = await conn.fetchval(
            "SELECT array_agg(DISTINCT recorded_by_client) FROM consent_versions WHERE patient_pseudonym = $1",
            pseudonym,
        )
        restricting: list[str] = []
        if current["research_use"] == "own_treatment_only":
            # who recorded the current restriction: every restricted version since the last
            # one that allowed research use (the first started it; the portal confirming it
            # later makes it the patient's own)
            restricting = (
                await conn.fetchval(
                    """
                SELECT array_agg(recorded_by_client ORDER BY version) FROM consent_versions
                WHERE patient_pseudonym = $1 AND research_use = 'own_treatment_only'
                  AND version > coalesce((SELECT max(version) FROM consent_versions
                                          WHERE patient_pseudonym = $1 AND research_use = 'allowed'), 0)""",
                    pseudonym,
                )
                or []
            )
        return PatientRecord(
            has_versions=True,
            recorded_by=frozenset(recorders or ()),
            treating=frozenset(treating or ()),
            restricted_by=restricting[0] if restricting else None,
            restricted_by_portal=any(client in self.portal_clients for client in restricting),
        )


class _Refused(Exception):
    """Leaves the transaction (rolled back), to log the refusal and raise ``error``."""

    def __init__(self, error: GenomebusError) -> None:
        self.error = error


async def _log(
    conn: asyncpg.Connection | asyncpg.Pool,
    pseudonym: str,
    client: Client,
    action: str,
    outcome: str,
    purpose: str,
) -> None:
    await conn.execute(
        """
        INSERT INTO consent_access_log (patient_pseudonym, client_id, client_kind, action, outcome, purpose)
        VALUES ($1, $2, $3, $4, $5, $6)""",
        pseudonym,
        client.id,
        client.kind.value,
        action,
        outcome,
        purpose,
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
