"""Ingest's records in PostgreSQL: samples, refused registrations, the consents it has seen.

Every UPDATE that moves a sample is guarded by the states the core's state machine
(``core.states``) allows the step from, so of two requests racing for one sample only one
moves it. The states are written into the SQL text when this module loads, not passed as
parameters: the partial index on ``awaiting_consent`` serves only a query whose predicate
names that state literally.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from genomebus_common.contracts.events import (
    ConsentChanged,
    Event,
    ObjectRef,
    Priority,
    ResearchUse,
    StageProgress,
)
from genomebus_common.runtime.broker import Delivery
from genomebus_common.runtime.inbox import once
from genomebus_common.runtime.outbox import enqueue

from ..core.decisions import Consent
from ..core.registration import Mate, SampleRegistration
from ..core.sample import Sample, TraceCarrier
from ..core.states import HOLDS_NO_OBJECTS, INITIAL, SampleStatus, Step, sources, target
from ..ports import ConsentCandidate, Delivered

if TYPE_CHECKING:  # asyncpg's classes are generic for the type checker only
    Connection = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]


def _states(states: Collection[SampleStatus]) -> str:
    """``states`` as a SQL list of literals (they are the core's own constants)."""
    return ", ".join(f"'{state.value}'" for state in sorted(states))


def _may(step: Step, column: str = "status") -> str:
    """The guard of ``step``: the row is in a state the step may start from."""
    return f"{column} IN ({_states(sources(step))})"


def _to(step: Step) -> str:
    """The assignment of ``step``'s target state."""
    return f"status = '{target(step).value}'"


_HOLDS_OBJECTS = f"status NOT IN ({_states(HOLDS_NO_OBJECTS)})"


def _json(stored: Any) -> Any:
    """A jsonb column's value (asyncpg hands jsonb over as text)."""
    if stored is None:
        return None
    return json.loads(stored) if isinstance(stored, str) else stored


def _ref(stored: Any) -> ObjectRef | None:
    return ObjectRef.model_validate_json(stored) if stored else None


def sample_of(row: asyncpg.Record) -> Sample:
    carrier = _json(row["trace_context"])
    return Sample(
        registration=SampleRegistration.model_validate_json(row["registration"]),
        patient_pseudonym=row["patient_pseudonym"],
        fingerprint=row["fingerprint"],
        status=SampleStatus(row["status"]),
        reasons=tuple(json.loads(row["reasons"])),
        reads_r1=_ref(row["reads_r1"]),
        reads_r2=_ref(row["reads_r2"]),
        read_pairs=row["read_pairs"],
        read_bases=row["read_bases"],
        event_id=row["event_id"],
        consent_version=row["consent_version"],
        progress=_json(row["progress"]),
        trace_context=dict(carrier) if carrier is not None else None,
    )


def consent_of(row: asyncpg.Record) -> Consent:
    carrier = _json(row.get("trace_context"))
    research_use = row["research_use"]
    return Consent(
        version=row["version"],
        analysis_consent_given=row["analysis_consent_given"],
        withdrawn=row["withdrawn"],
        research_use=ResearchUse(research_use) if research_use is not None else None,
        trace_context=dict(carrier) if carrier is not None else None,
    )


class PostgresChanges:
    """One transaction's work on samples and consents."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def lock_patient(self, pseudonym: str) -> None:
        """Transaction-scoped; taken again by the same transaction, a no-op."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", pseudonym)

    async def consent_of(self, pseudonym: str) -> Consent | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM consents WHERE patient_pseudonym = $1 FOR SHARE", pseudonym
        )
        return consent_of(row) if row is not None else None

    async def keep_consent(self, event: ConsentChanged, trace_context: TraceCarrier) -> bool:
        newer = await self.conn.fetchval(
            """
            INSERT INTO consents AS c (patient_pseudonym, version, analysis_consent_given,
                withdrawn, research_use)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (patient_pseudonym) DO UPDATE
                SET version = EXCLUDED.version,
                    analysis_consent_given = EXCLUDED.analysis_consent_given,
                    withdrawn = EXCLUDED.withdrawn, research_use = EXCLUDED.research_use,
                    updated_at = now()
                WHERE c.version < EXCLUDED.version
            RETURNING true""",
            event.patient_pseudonym,
            event.version,
            event.analysis_consent_given,
            event.withdrawn,
            event.research_use.value,
        )
        if newer:
            await self.conn.execute(
                "UPDATE consents SET trace_context = $2::jsonb WHERE patient_pseudonym = $1",
                event.patient_pseudonym,
                json.dumps(trace_context),
            )
        return bool(newer)

    async def awaiting_consent(self, pseudonym: str, only_sample: str | None) -> list[Sample]:
        rows = await self.conn.fetch(
            f"""
            SELECT * FROM samples WHERE patient_pseudonym = $1 AND {_may(Step.RELEASE)}
                AND ($2::text IS NULL OR sample_id = $2) FOR UPDATE""",
            pseudonym,
            only_sample,
        )
        return [sample_of(row) for row in rows]

    async def pass_check(self, sample_id: str, read_pairs: int, read_bases: int) -> bool:
        return bool(
            await self.conn.fetchval(
                f"""
                UPDATE samples SET {_to(Step.PASS_CHECK)},
                       read_pairs = $2, read_bases = $3, updated_at = now()
                WHERE sample_id = $1 AND {_may(Step.PASS_CHECK)} RETURNING true""",
                sample_id,
                read_pairs,
                read_bases,
            )
        )

    async def hold(self, sample_id: str, consent_version: int, reasons: Sequence[str]) -> bool:
        # The sample is locked (``awaiting_consent``): the guard is in that SELECT.
        changed: str = await self.conn.execute(
            """
            UPDATE samples SET consent_version = $2, reasons = $3::jsonb, updated_at = now()
            WHERE sample_id = $1 AND reasons IS DISTINCT FROM $3::jsonb""",
            sample_id,
            consent_version,
            json.dumps(list(reasons)),
        )
        return changed.endswith(" 1")

    async def release(self, sample_id: str, event_id: uuid.UUID, consent_version: int) -> None:
        await self.conn.execute(
            f"""
            UPDATE samples SET {_to(Step.RELEASE)}, event_id = $2, consent_version = $3,
                updated_at = now() WHERE sample_id = $1 AND {_may(Step.RELEASE)}""",
            sample_id,
            event_id,
            consent_version,
        )

    async def quarantine(
        self, sample_id: str, consent_version: int, reasons: Sequence[str]
    ) -> None:
        await self.conn.execute(
            f"""
            UPDATE samples SET {_to(Step.QUARANTINE)}, consent_version = $2,
                reasons = $3::jsonb, updated_at = now()
            WHERE sample_id = $1 AND {_may(Step.QUARANTINE)}""",
            sample_id,
            consent_version,
            json.dumps(list(reasons)),
        )

    async def remove(self, sample_id: str, reasons: Sequence[str]) -> Sample | None:
        row = await self.conn.fetchrow(
            f"""
            UPDATE samples SET {_to(Step.REMOVE)}, reasons = $2::jsonb, updated_at = now()
            WHERE sample_id = $1 AND {_may(Step.REMOVE)} RETURNING *""",
            sample_id,
            json.dumps(list(reasons)),
        )
        return sample_of(row) if row is not None else None

    async def publish(self, event: Event) -> None:
        await enqueue(self.conn, event)


class PostgresSamples:
    """``SampleRepository`` on ingest's database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @contextlib.asynccontextmanager
    async def changes(self) -> AsyncIterator[PostgresChanges]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield PostgresChanges(conn)

    @contextlib.asynccontextmanager
    async def consent_inbox(
        self, event: ConsentChanged, delivery: Delivered
    ) -> AsyncIterator[PostgresChanges | None]:
        # the inbox's key is where the event was delivered
        where = Delivery(delivery.topic, delivery.partition, delivery.offset, key=None)
        async with once(self.pool, "ingest.consent", event, where) as conn:
            yield PostgresChanges(conn) if conn is not None else None

    async def add(self, sample: Sample) -> tuple[bool, Sample]:
        registration = sample.registration
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                f"""
                INSERT INTO samples (sample_id, hospital_id, specimen_id, lis_order_id,
                    patient_pseudonym, priority, fingerprint, registration, status, trace_context)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, '{INITIAL.value}', $9::jsonb)
                ON CONFLICT (sample_id) DO NOTHING
                RETURNING true""",
                sample.sample_id,
                registration.hospital_id,
                registration.specimen_id,
                registration.lis_order_id,
                sample.patient_pseudonym,
                registration.priority.value,
                sample.fingerprint,
                registration.model_dump_json(),
                json.dumps(sample.trace_context),
            )
            existing = await conn.fetchrow(
                "SELECT * FROM samples WHERE sample_id = $1", sample.sample_id
            )
        assert existing is not None  # inserted now, or there already: ingest deletes no rows
        return bool(inserted), sample_of(existing)

    async def record_rejection(
        self, hospital_id: str, specimen_id: str, reasons: Sequence[str]
    ) -> None:
        await self.pool.execute(
            """
            INSERT INTO rejected_registrations (hospital_id, specimen_id, reasons)
            VALUES ($1, $2, $3::jsonb)""",
            hospital_id,
            specimen_id,
            json.dumps(list(reasons)),
        )

    async def find(self, sample_id: str, hospital_id: str | None = None) -> Sample | None:
        if hospital_id is None:
            row = await self.pool.fetchrow("SELECT * FROM samples WHERE sample_id = $1", sample_id)
        else:
            row = await self.pool.fetchrow(
                "SELECT * FROM samples WHERE sample_id = $1 AND hospital_id = $2",
                sample_id,
                hospital_id,
            )
        return sample_of(row) if row is not None else None

    async def take_reads(self, sample_id: str, mate: Mate, ref: ObjectRef) -> bool:
        column = "reads_r1" if mate == "R1" else "reads_r2"
        return bool(
            await self.pool.fetchval(
                f"""
                UPDATE samples SET {column} = $2::jsonb, updated_at = now()
                WHERE sample_id = $1 AND {_may(Step.TAKE_READS)} RETURNING true""",
                sample_id,
                ref.model_dump_json(),
            )
        )

    async def reject(self, sample_id: str, reasons: Sequence[str]) -> Sample | None:
        row = await self.pool.fetchrow(
            f"""
            UPDATE samples SET {_to(Step.REJECT)}, reasons = $2::jsonb, reads_r1 = NULL,
                reads_r2 = NULL, updated_at = now()
            WHERE sample_id = $1 AND {_may(Step.REJECT)} RETURNING *""",
            sample_id,
            json.dumps(list(reasons)),
        )
        return sample_of(row) if row is not None else None

    async def record_progress(self, event: StageProgress) -> None:
        await self.pool.execute(
            """
            UPDATE samples
               SET progress = jsonb_set(coalesce(progress, '{}'::jsonb), ARRAY[$2::text],
                                        jsonb_build_object('done', $3::int, 'total', $4::int,
                                                           'unit_kind', $5::text))
             WHERE sample_id = $1
               AND coalesce((progress -> $2::text ->> 'done')::int, -1) < $3::int""",
            event.sample_id,
            event.stage.value,
            event.units_done,
            event.units_total,
            event.unit_kind,
        )

    async def stuck_checks(self, stale_after_s: float) -> list[str]:
        rows = await self.pool.fetch(
            f"""
            SELECT sample_id FROM samples
            WHERE {_may(Step.PASS_CHECK)} AND reads_r1 IS NOT NULL AND reads_r2 IS NOT NULL
              AND updated_at < now() - make_interval(secs => $1)
            ORDER BY updated_at""",
            stale_after_s,
        )
        return [row["sample_id"] for row in rows]

    async def consent_candidates(self, stale_after_s: float) -> list[ConsentCandidate]:
        rows = await self.pool.fetch(
            f"""
            SELECT DISTINCT s.patient_pseudonym, s.priority, c.version,
                   c.analysis_consent_given, c.withdrawn, c.research_use
            FROM samples s JOIN consents c ON c.patient_pseudonym = s.patient_pseudonym
            WHERE {_may(Step.RELEASE, "s.status")}
              -- only a consent that decides something: the core picks among these
              -- (``decide_consent(...).moves_on``), but a patient whose consent cannot move
              -- a sample, or whose research sample a restriction holds, is not even read
              AND (c.analysis_consent_given OR c.withdrawn)
              AND NOT (s.priority = 'research' AND c.research_use IS DISTINCT FROM 'allowed'
                       AND NOT c.withdrawn)
              AND s.updated_at < now() - make_interval(secs => $1)""",
            stale_after_s,
        )
        return [
            ConsentCandidate(row["patient_pseudonym"], Priority(row["priority"]), consent_of(row))
            for row in rows
        ]

    async def landing_key_in_use(self, hospital_id: str, other_than: str, key: str) -> bool:
        return bool(
            await self.pool.fetchval(
                f"""
                SELECT true FROM samples WHERE hospital_id = $1 AND sample_id <> $2
                  AND {_HOLDS_OBJECTS}
                  AND $3 IN (registration->'reads'->>'landing_r1_key',
                             registration->'reads'->>'landing_r2_key')
                LIMIT 1""",
                hospital_id,
                other_than,
                key,
            )
        )

    async def count_by_status(self) -> dict[SampleStatus, int]:
        """One grouped count over the status index, under a statement timeout, so a scrape
        costs at most that however many samples there are."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL statement_timeout = '1500ms'")
            rows = await conn.fetch("SELECT status, count(*) AS n FROM samples GROUP BY status")
        return {SampleStatus(row["status"]): row["n"] for row in rows}

    async def ping(self) -> bool:
        return bool(await self.pool.fetchval("SELECT true"))
