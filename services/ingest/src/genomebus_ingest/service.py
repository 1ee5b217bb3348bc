"""Ingest's use cases: register a sample, take its reads, check them, publish it.

A sample moves awaiting_reads -> awaiting_consent -> received, or -> rejected with its
reasons, or -> quarantined when its patient has withdrawn. No sample enters the pipeline
without a written analysis consent. The move to received and its SampleReceived event commit in
one transaction (the outbox), so a received sample is always announced and an announced sample
is always recorded. A rejected sample keeps
no objects: nothing half-stored stays behind.

Tracing: a sample's trace begins with the LIS's POST. Its carrier is stored with the sample, and
what happens to the sample later (its reads stored and checked, its release into the pipeline)
continues that trace, linking to the request or event that did it. Consent is per patient, not
per sample, so it does not own a sample's trace: each consent version held here keeps the trace
of its consent.changed event, and a release links to the trace of the consent version it rests
on (which begins at the consent service's API). So an SRE can go from a sample to the consent
decision that let it in, and the sample's own trace stays one line from POST to "variants ready".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import asyncpg
from opentelemetry import context as otel_context
from opentelemetry import trace

from genomebus_common.contracts.errors import (
    ChecksumMismatch,
    DataConflict,
    ObjectNotFound,
    PermanentError,
)
from genomebus_common.contracts.events import (
    ConsentChanged,
    ObjectRef,
    Priority,
    ResearchUse,
    SampleRegistered,
    SampleRemoved,
    StageProgress,
)
from genomebus_common.contracts.identifiers import InvalidNationalId, Pseudonymiser, parse_cpr
from genomebus_common.runtime.background import BackgroundTask
from genomebus_common.runtime.broker import Delivery
from genomebus_common.runtime.inbox import once
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.outbox import OutboxRelay, enqueue
from genomebus_common.runtime.telemetry import carrier, context_from, links_to, tracer
from genomebus_common.stagekit.reference import ReferenceRegistry

from .domain import (
    Mate,
    RegisterSample,
    SampleRegistration,
    SampleStatus,
    SampleView,
    landing_key_of,
    sample_received,
)
from .fastq import check_pair

log = logging.getLogger(__name__)


class RegistrationRejected(PermanentError):
    """The registration itself is invalid; ``reasons`` lists every problem found."""

    code = "registration_rejected"

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class SampleConflict(DataConflict):
    code = "sample_conflict"


class SampleNotFound(PermanentError):
    code = "sample_not_found"


class WrongState(PermanentError):
    code = "wrong_state"


@dataclass
class Ingest:
    pool: asyncpg.Pool
    store: ObjectStore
    references: ReferenceRegistry
    pseudonymiser: Pseudonymiser
    relay: OutboxRelay | None
    reads_bucket: str
    landing_bucket: str
    #: The service runtime's tracer in production; the global one (often a no-op) otherwise.
    tracer: trace.Tracer = field(default_factory=tracer)
    #: Samples this process is checking now (a check of a large FASTQ pair takes minutes).
    _checking: set[str] = field(default_factory=set, init=False, repr=False)

    @contextlib.contextmanager
    def _sample_span(
        self, name: str, stored: Any, *also_links: Any, **attributes: Any
    ) -> Iterator[trace.Span]:
        """A span in the sample's own trace (``stored`` carrier), linked to the current span
        (the request or event doing the work now) and to ``also_links``."""
        here = otel_context.get_current()
        sample_context = context_from(_carrier_of(stored))
        with self.tracer.start_as_current_span(
            name,
            context=sample_context if sample_context is not None else here,
            links=links_to(
                here if sample_context is not None else None, *map(_carrier_of, also_links)
            ),
            attributes={f"genomebus.{k}": v for k, v in attributes.items() if v is not None},
        ) as span:
            yield span

    # --- registration ------------------------------------------------------------------------

    async def register(self, registration: RegisterSample) -> tuple[SampleView, bool]:
        """(the sample, whether it was created now). Same content again: the same answer."""
        try:
            national_id = parse_cpr(registration.national_id)
        except InvalidNationalId as exc:
            await self._record_rejection(registration, [f"national_id: {exc}"])
            raise RegistrationRejected([f"national_id: {exc}"]) from None
        manifest = await asyncio.to_thread(self.references.find, registration.reference_id)
        if manifest is None:
            reason = f"reference_id: reference {registration.reference_id!r} is not registered"
            await self._record_rejection(registration, [reason])
            raise RegistrationRejected([reason])

        pseudonym = self.pseudonymiser.pseudonym(national_id)
        fingerprint = registration.fingerprint(pseudonym)
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                """
                INSERT INTO samples (sample_id, hospital_id, specimen_id, lis_order_id,
                    patient_pseudonym, priority, fingerprint, registration, status, trace_context)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, 'awaiting_reads', $9::jsonb)
                ON CONFLICT (sample_id) DO NOTHING
                RETURNING true""",
                registration.sample_id,
                registration.hospital_id,
                registration.specimen_id,
                registration.lis_order_id,
                pseudonym,
                registration.priority.value,
                fingerprint,
                registration.kept().model_dump_json(),
                json.dumps(carrier()),  # the POST's span: where this sample's trace begins
            )
            existing = await conn.fetchrow(
                "SELECT * FROM samples WHERE sample_id = $1", registration.sample_id
            )
        if not inserted and existing["fingerprint"] != fingerprint:
            raise SampleConflict(
                f"sample {registration.specimen_id!r} of {registration.hospital_id} is already "
                "registered with different content"
            )
        view = _view(existing)
        taking_from_landing = (
            registration.reads.landing_r1_key and registration.reads.landing_r2_key
        )
        if taking_from_landing and view.status == SampleStatus.AWAITING_READS:
            # first time, or a retry after the object store failed midway
            view = await self._take_from_landing(registration)
        return view, bool(inserted)

    async def _record_rejection(self, registration: RegisterSample, reasons: list[str]) -> None:
        await self.pool.execute(
            "INSERT INTO rejected_registrations (hospital_id, specimen_id, reasons) VALUES ($1, $2, $3::jsonb)",
            registration.hospital_id,
            registration.specimen_id,
            json.dumps(reasons),
        )

    # --- reads -------------------------------------------------------------------------------

    async def get(self, sample_id: str, hospital_id: str) -> SampleView:
        row = await self.pool.fetchrow(
            "SELECT * FROM samples WHERE sample_id = $1 AND hospital_id = $2",
            sample_id,
            hospital_id,
        )
        if row is None:
            raise SampleNotFound(f"no sample {sample_id!r} for hospital {hospital_id}")
        return _view(row)

    async def put_reads(
        self, sample_id: str, hospital_id: str, mate: Mate, body: BinaryIO
    ) -> SampleView:
        """Store one mate streamed from ``body``; once both are there, check and publish."""
        view = await self.get(sample_id, hospital_id)
        stored = await self.pool.fetchval(
            "SELECT registration FROM samples WHERE sample_id = $1", sample_id
        )
        reads = SampleRegistration.model_validate_json(stored).reads
        declared = reads.r1_sha256 if mate == "R1" else reads.r2_sha256
        current = view.reads_r1 if mate == "R1" else view.reads_r2
        if current is not None and current.sha256 == declared:
            # The same upload again: never overwrite a good file. But finish the check if the
            # first attempt stored the file and then failed (a restart, a lost connection):
            # nothing else would ever move the sample on.
            return await self._check_if_complete(sample_id)
        if view.status != SampleStatus.AWAITING_READS:
            raise WrongState(f"sample {sample_id} is {view.status.value}; it takes no more reads")
        stored_trace = await self.pool.fetchval(
            "SELECT trace_context FROM samples WHERE sample_id = $1", sample_id
        )
        with self._sample_span("ingest.store_reads", stored_trace, sample_id=sample_id, mate=mate):
            return await self._store_reads(sample_id, mate, body, declared)

    async def _store_reads(
        self, sample_id: str, mate: Mate, body: BinaryIO, declared: str
    ) -> SampleView:
        key = f"samples/{sample_id}/{mate}.fastq.gz"
        ref = await asyncio.to_thread(
            self.store.put_stream,
            self.reads_bucket,
            key,
            body,
            content_type="application/gzip",
            expected_sha256=declared,
        )
        column = "reads_r1" if mate == "R1" else "reads_r2"
        kept = await self.pool.fetchval(
            f"""
            UPDATE samples SET {column} = $2::jsonb, updated_at = now()
            WHERE sample_id = $1 AND status = 'awaiting_reads' RETURNING true""",
            sample_id,
            ref.model_dump_json(),
        )
        if not kept:  # removed or rejected while the upload ran: keep nothing of it
            await asyncio.to_thread(self.store.remove, self.reads_bucket, key)
            raise WrongState(f"sample {sample_id} stopped taking reads during the upload")
        return await self._check_if_complete(sample_id)

    async def _take_from_landing(self, registration: RegisterSample) -> SampleView:
        """Copy the named landing objects into place, verifying the declared checksums."""
        reads = registration.reads
        for mate, key, sha in (
            ("R1", reads.landing_r1_key, reads.r1_sha256),
            ("R2", reads.landing_r2_key, reads.r2_sha256),
        ):
            held = await self.get(registration.sample_id, registration.hospital_id)
            if held.status != SampleStatus.AWAITING_READS:
                return held  # a registration sent again after this one moved on: nothing to do
            current = held.reads_r1 if mate == "R1" else held.reads_r2
            if current is not None and current.sha256 == sha:
                continue  # copied by an earlier attempt: never overwrite a good file
            not_found = f"{mate}: landing object {key!r} not found"
            if not landing_key_of(registration.hospital_id, key):
                # Another hospital's key (or one that climbs out of the caller's prefix) is
                # answered as a missing one, without looking: whether it exists is not the
                # caller's to learn.
                await self._reject(registration.sample_id, [not_found])
                return await self.get(registration.sample_id, registration.hospital_id)
            try:
                stat = await asyncio.to_thread(self.store.stat, self.landing_bucket, key)
            except ObjectNotFound:
                await self._reject(registration.sample_id, [not_found])
                return await self.get(registration.sample_id, registration.hospital_id)
            source = ObjectRef(bucket=self.landing_bucket, key=key, sha256=sha, size=stat.size)

            def copy(source: ObjectRef = source, mate: str = mate) -> ObjectRef:
                with self.store.open(source) as stream:
                    return self.store.put_stream(
                        self.reads_bucket,
                        f"samples/{registration.sample_id}/{mate}.fastq.gz",
                        stream,  # type: ignore[arg-type]
                        content_type="application/gzip",
                        expected_sha256=sha,
                    )

            try:
                ref = await asyncio.to_thread(copy)
            except ChecksumMismatch as exc:
                await self._reject(registration.sample_id, [f"{mate}: {exc}"])
                return await self.get(registration.sample_id, registration.hospital_id)
            kept = await self.pool.fetchval(
                f"""
                UPDATE samples SET reads_{mate.lower()} = $2::jsonb, updated_at = now()
                WHERE sample_id = $1 AND status = 'awaiting_reads' RETURNING true""",
                registration.sample_id,
                ref.model_dump_json(),
            )
            if not kept:
                now = await self.get(registration.sample_id, registration.hospital_id)
                if now.status in (SampleStatus.REMOVED, SampleStatus.REJECTED):
                    # removed or rejected while the copy ran: keep nothing of it (a sample that
                    # moved on holds these very bytes under this key: those stay)
                    await asyncio.to_thread(self.store.remove, self.reads_bucket, ref.key)
                return now
        return await self._check_if_complete(registration.sample_id)

    async def _check_if_complete(self, sample_id: str) -> SampleView:
        row = await self.pool.fetchrow("SELECT * FROM samples WHERE sample_id = $1", sample_id)
        view = _view(row)
        if view.status != SampleStatus.AWAITING_READS or not (view.reads_r1 and view.reads_r2):
            return view
        if sample_id in self._checking:
            return view  # a retried request while this process checks it already: one is enough
        self._checking.add(sample_id)
        try:
            return await self._check(sample_id, row, view)
        finally:
            self._checking.discard(sample_id)

    async def _check(self, sample_id: str, row: asyncpg.Record, view: SampleView) -> SampleView:

        def check() -> Any:
            with self.store.open(view.reads_r1) as r1, self.store.open(view.reads_r2) as r2:  # type: ignore[arg-type]
                return check_pair(r1, r2)  # type: ignore[arg-type]

        try:
            report = await asyncio.to_thread(check)
        except (ChecksumMismatch, ObjectNotFound) as exc:
            return await self._reject(sample_id, [str(exc)])
        if not report.ok:
            return await self._reject(sample_id, report.problems)

        async with self.pool.acquire() as conn, conn.transaction():
            updated = await conn.fetchval(
                """
                UPDATE samples SET status = 'awaiting_consent', read_pairs = $2, read_bases = $3,
                       updated_at = now()
                WHERE sample_id = $1 AND status = 'awaiting_reads' RETURNING true""",
                sample_id,
                report.read_pairs,
                report.bases,
            )
            if updated:
                # The hospital now treats this patient: consent learns it from this event, sent
                # only once the sample's reads are in and checked (a bare registration naming a
                # stolen national id makes no one a treating hospital), in the transaction that
                # says so.
                await enqueue(
                    conn,
                    SampleRegistered(
                        correlation_id=sample_id,
                        sample_id=sample_id,
                        patient_pseudonym=row["patient_pseudonym"],
                        hospital_id=row["hospital_id"],
                    ),
                )
                await self._decide(conn, row["patient_pseudonym"], only_sample=sample_id)
        if self.relay is not None:
            self.relay.notify()
        log.info("sample checked", extra={"sample_id": sample_id, "read_pairs": report.read_pairs})
        return await self.get(sample_id, row["hospital_id"])

    # --- consent -----------------------------------------------------------------------------

    async def apply_consent(self, event: ConsentChanged, delivery: Delivery) -> None:
        """Keep the newest consent version seen, and release or quarantine waiting samples."""
        async with once(self.pool, "ingest.consent", event, delivery) as conn:
            if conn is None:
                return
            # The patient's decision lock before the consent row, in the order _decide takes
            # them: a sample finishing its checks meanwhile would otherwise deadlock with us.
            await _lock_patient(conn, event.patient_pseudonym)
            newer = await conn.fetchval(
                """
                INSERT INTO consents AS c (patient_pseudonym, version, analysis_consent_given, withdrawn,
                    research_use)
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
                await conn.execute(
                    "UPDATE consents SET trace_context = $2::jsonb WHERE patient_pseudonym = $1",
                    event.patient_pseudonym,
                    json.dumps(carrier()),  # this event's trace: releases it allows link to it
                )
                await self._decide(conn, event.patient_pseudonym)
        if self.relay is not None:
            self.relay.notify()

    async def apply_progress(self, event: StageProgress, delivery: Delivery) -> None:
        """Record a stage's progress on the sample. Several workers report one sample, in any
        order: a report never takes the count back, and a repeated one changes nothing."""
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

    async def _decide(
        self, conn: asyncpg.Connection, pseudonym: str, *, only_sample: str | None = None
    ) -> None:
        """Release or quarantine the patient's samples awaiting consent, by the consent held now.

        Runs inside the caller's transaction with the consent row locked, so the decision and
        the consent version it rests on commit together: a withdrawal committing meanwhile
        waits for us, and is then applied to whatever we released.
        """
        # One decision per patient at a time: a first consent (no row to lock yet) and a sample
        # finishing its checks must not miss each other.
        await _lock_patient(conn, pseudonym)
        consent = await conn.fetchrow(
            "SELECT * FROM consents WHERE patient_pseudonym = $1 FOR SHARE", pseudonym
        )
        if consent is None or not (consent["analysis_consent_given"] or consent["withdrawn"]):
            return  # no written consent yet: the samples wait
        waiting = await conn.fetch(
            """
            SELECT * FROM samples WHERE patient_pseudonym = $1 AND status = 'awaiting_consent'
                AND ($2::text IS NULL OR sample_id = $2) FOR UPDATE""",
            pseudonym,
            only_sample,
        )
        for row in waiting:
            with self._sample_span(
                "ingest.consent_decision",
                row["trace_context"],
                consent["trace_context"],
                sample_id=row["sample_id"],
                consent_version=consent["version"],
                consent_withdrawn=consent["withdrawn"],
            ):
                await self._decide_one(conn, row, consent, pseudonym)

    async def _decide_one(
        self, conn: asyncpg.Connection, row: asyncpg.Record, consent: asyncpg.Record, pseudonym: str
    ) -> None:
        """Quarantine or release one waiting sample; its SampleReceived goes to the outbox
        inside the sample's trace."""
        if consent["withdrawn"]:
            await conn.execute(
                """
                UPDATE samples SET status = 'quarantined', consent_version = $2,
                    reasons = $3::jsonb, updated_at = now() WHERE sample_id = $1""",
                row["sample_id"],
                consent["version"],
                json.dumps([f"consent withdrawn (version {consent['version']}): never processed"]),
            )
            log.warning("sample quarantined", extra={"sample_id": row["sample_id"]})
            return
        if (
            row["priority"] == Priority.RESEARCH.value
            and consent["research_use"] != ResearchUse.ALLOWED.value
        ):
            # Consent applies to the purpose: held with the reason, never processed, until the
            # patient allows research use (the next consent version decides again).
            held = [
                f"held: the patient restricted use to own treatment (consent version "
                f"{consent['version']}); a research sample runs only if research use is allowed"
            ]
            changed = await conn.execute(
                """
                UPDATE samples SET consent_version = $2, reasons = $3::jsonb, updated_at = now()
                WHERE sample_id = $1 AND reasons IS DISTINCT FROM $3::jsonb""",
                row["sample_id"],
                consent["version"],
                json.dumps(held),
            )
            if changed.endswith(" 1"):
                log.warning(
                    "research sample held by consent", extra={"sample_id": row["sample_id"]}
                )
            return
        manifest = await asyncio.to_thread(
            self.references.find,
            SampleRegistration.model_validate_json(row["registration"]).reference_id,
        )
        if manifest is None:
            return  # stays waiting; the reference must come back before it can run
        event = sample_received(
            SampleRegistration.model_validate_json(row["registration"]),
            pseudonym=pseudonym,
            reference=manifest.reference,
            r1=ObjectRef.model_validate_json(row["reads_r1"]),
            r2=ObjectRef.model_validate_json(row["reads_r2"]),
            read_pairs=row["read_pairs"],
            read_bases=row["read_bases"],
        )
        await conn.execute(
            """
            UPDATE samples SET status = 'received', event_id = $2, consent_version = $3,
                updated_at = now() WHERE sample_id = $1""",
            row["sample_id"],
            event.event_id,
            consent["version"],
        )
        await enqueue(conn, event)
        log.info(
            "sample released",
            extra={"sample_id": row["sample_id"], "consent_version": consent["version"]},
        )

    # --- the sweep ---------------------------------------------------------------------------

    async def sweep(self, stale_after_s: float) -> tuple[int, int]:
        """Move on the samples that nothing else would; returns (checks finished, patients
        decided again).

        - Both files stored, the check never finished (the process died during it, and the
          LIS did not send a file again): check now.
        - Waiting for consent although the patient's consent already decides (the reference
          was missing when the consent came, or the decision failed half-way): decide again.

        Only rows untouched for ``stale_after_s``, so a check or decision running right now is
        left alone (were one run twice, its status guards let only one of them count).
        """
        stuck = await self.pool.fetch(
            """
            SELECT sample_id FROM samples
            WHERE status = 'awaiting_reads' AND reads_r1 IS NOT NULL AND reads_r2 IS NOT NULL
              AND updated_at < now() - make_interval(secs => $1)
            ORDER BY updated_at""",
            stale_after_s,
        )
        for row in stuck:
            with _logged_and_skipped("sweep: check failed", row["sample_id"]):
                await self._check_if_complete(row["sample_id"])
        patients = await self.pool.fetch(
            """
            SELECT DISTINCT s.patient_pseudonym FROM samples s
            JOIN consents c ON c.patient_pseudonym = s.patient_pseudonym
            WHERE s.status = 'awaiting_consent' AND (c.analysis_consent_given OR c.withdrawn)
              -- a research sample held by the patient's restriction waits for a new version,
              -- not for the sweep
              AND NOT (s.priority = 'research' AND c.research_use IS DISTINCT FROM 'allowed'
                       AND NOT c.withdrawn)
              AND s.updated_at < now() - make_interval(secs => $1)""",
            stale_after_s,
        )
        for row in patients:
            with _logged_and_skipped("sweep: decision failed", row["patient_pseudonym"]):
                async with self.pool.acquire() as conn, conn.transaction():
                    await self._decide(conn, row["patient_pseudonym"])
        if patients and self.relay is not None:
            self.relay.notify()
        if stuck or patients:
            log.info(
                "sweep moved samples on", extra={"checks": len(stuck), "patients": len(patients)}
            )
        return len(stuck), len(patients)

    async def remove(self, sample_id: str, hospital_id: str, reason: str) -> SampleView:
        """Withdraw a sample: delete its reads here and tell every other store to delete too.

        The removal keeps the DELETE request's own trace (it may come weeks later) and links to
        the sample's trace, so both journeys can be found from either.
        """
        await self.get(sample_id, hospital_id)  # 404 for another hospital's sample
        stored_trace = await self.pool.fetchval(
            "SELECT trace_context FROM samples WHERE sample_id = $1", sample_id
        )
        with self.tracer.start_as_current_span(
            "ingest.remove_sample",
            links=links_to(_carrier_of(stored_trace)),
            attributes={"genomebus.sample_id": sample_id},
        ):
            return await self._remove(sample_id, hospital_id, reason)

    async def _remove(self, sample_id: str, hospital_id: str, reason: str) -> SampleView:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """
                UPDATE samples SET status = 'removed', reasons = $2::jsonb, updated_at = now()
                WHERE sample_id = $1 AND status <> 'removed' RETURNING *""",
                sample_id,
                json.dumps([f"removed by {hospital_id}: {reason}"]),
            )
            if row is not None:
                await enqueue(
                    conn,
                    SampleRemoved(
                        correlation_id=sample_id,
                        sample_id=sample_id,
                        patient_pseudonym=row["patient_pseudonym"],
                        hospital_id=hospital_id,
                        reason=reason,
                        requested_by=hospital_id,
                    ),
                )
        for mate in ("R1", "R2"):
            await asyncio.to_thread(
                self.store.remove, self.reads_bucket, f"samples/{sample_id}/{mate}.fastq.gz"
            )
        # The originals the LIS left in the landing bucket go too (only under its own prefix:
        # a registration never takes any other key).
        stored = await self.pool.fetchval(
            "SELECT registration FROM samples WHERE sample_id = $1", sample_id
        )
        reads = SampleRegistration.model_validate_json(stored).reads
        for key in (reads.landing_r1_key, reads.landing_r2_key):
            if not key or not landing_key_of(hospital_id, key):
                continue
            shared = await self.pool.fetchval(
                """
                SELECT true FROM samples WHERE hospital_id = $1 AND sample_id <> $2
                  AND status NOT IN ('removed', 'rejected')
                  AND $3 IN (registration->'reads'->>'landing_r1_key',
                             registration->'reads'->>'landing_r2_key')
                LIMIT 1""",
                hospital_id,
                sample_id,
                key,
            )
            if not shared:  # another live sample of the hospital still names it: it stays
                await asyncio.to_thread(self.store.remove, self.landing_bucket, key)
        if self.relay is not None:
            self.relay.notify()
        log.info("sample removed", extra={"sample_id": sample_id})
        return await self.get(sample_id, hospital_id)

    async def _reject(self, sample_id: str, reasons: list[str]) -> SampleView:
        row = await self.pool.fetchrow(
            """
            UPDATE samples SET status = 'rejected', reasons = $2::jsonb, reads_r1 = NULL,
                reads_r2 = NULL, updated_at = now()
            WHERE sample_id = $1 AND status = 'awaiting_reads' RETURNING *""",
            sample_id,
            json.dumps(reasons),
        )
        if row is None:  # removed meanwhile (its reads are gone, hence the failure): keep that
            row = await self.pool.fetchrow("SELECT * FROM samples WHERE sample_id = $1", sample_id)
            return _view(row)
        for mate in ("R1", "R2"):
            await asyncio.to_thread(
                self.store.remove, self.reads_bucket, f"samples/{sample_id}/{mate}.fastq.gz"
            )
        log.warning("sample rejected", extra={"sample_id": sample_id, "reasons": reasons})
        return _view(row)


async def _lock_patient(conn: asyncpg.Connection, pseudonym: str) -> None:
    """The patient's decision lock (transaction-scoped; taken again by the same transaction, a
    no-op). Always before the patient's consents row, never after."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", pseudonym)


@contextlib.contextmanager
def _logged_and_skipped(what: str, subject: str) -> Iterator[None]:
    """One sample or patient that fails never stops the sweep for the others."""
    try:
        yield
    except Exception as exc:
        log.warning(what, extra={"subject": subject, "error": str(exc)})


class Sweeper(BackgroundTask):
    """Runs ``Ingest.sweep`` every ``interval_s`` while the service runs (a ``BrokerWorker``)."""

    name = "ingest-sweep"

    def __init__(self, ingest: Ingest, *, interval_s: float, stale_after_s: float) -> None:
        self.ingest = ingest
        self.interval_s = interval_s
        self.stale_after_s = stale_after_s

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.ingest.sweep(self.stale_after_s)
            except Exception as exc:  # the next round may succeed; never stop sweeping
                log.warning("sweep failed; will retry", extra={"error": str(exc)})


def _carrier_of(stored: Any) -> dict[str, str] | None:
    """A carrier from a jsonb column (asyncpg hands jsonb over as text)."""
    if stored is None:
        return None
    return json.loads(stored) if isinstance(stored, str) else dict(stored)


def _view(row: asyncpg.Record) -> SampleView:
    status = SampleStatus(row["status"])
    sample_id = row["sample_id"]
    return SampleView(
        sample_id=sample_id,
        hospital_id=row["hospital_id"],
        specimen_id=row["specimen_id"],
        lis_order_id=row["lis_order_id"],
        priority=row["priority"],
        status=status,
        reasons=json.loads(row["reasons"]),
        read_pairs=row["read_pairs"],
        reads_r1=ObjectRef.model_validate_json(row["reads_r1"]) if row["reads_r1"] else None,
        reads_r2=ObjectRef.model_validate_json(row["reads_r2"]) if row["reads_r2"] else None,
        event_id=row["event_id"],
        consent_version=row["consent_version"],
        progress=_carrier_of(row["progress"]),
        upload={
            mate: f"/v1/samples/{sample_id}/reads/{mate}"
            for mate in ("R1", "R2")
            if row[f"reads_{mate.lower()}"] is None
        }
        if status == SampleStatus.AWAITING_READS
        else None,
    )
