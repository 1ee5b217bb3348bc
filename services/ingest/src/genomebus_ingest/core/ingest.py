"""Ingest's use cases: register a sample, take its reads, check them, let consent decide.

A sample moves awaiting_reads -> awaiting_consent -> received, or -> rejected with its reasons,
or -> quarantined when its patient has withdrawn (``states`` has every move). No sample enters
the pipeline without a written analysis consent. The move to received and its SampleReceived
event commit in one transaction (the outbox), so a received sample is always announced and an
announced sample is always recorded. A rejected sample keeps no objects: nothing half-stored
stays behind.

Tracing: a sample's trace begins with the LIS's POST; what happens to it later continues that
trace, linking to the request or event that did it (see ``tracing``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from genomebus_common.contracts.errors import ChecksumMismatch, ObjectNotFound
from genomebus_common.contracts.events import ConsentChanged, ObjectRef, StageProgress
from genomebus_common.contracts.identifiers import Pseudonymiser

from ..ports import (
    Delivered,
    ReadsStore,
    References,
    Relay,
    SampleChanges,
    SampleRepository,
    Tracing,
)
from . import events
from .decisions import Consent, Verdict, consent_decides, decide_consent, judge_reads
from .errors import RegistrationRejected, SampleConflict, SampleNotFound, WrongState
from .fastq import FastqReport, check_pair
from .registration import (
    MATES,
    Mate,
    RegisterSample,
    checked_national_id,
    landing_key_of,
    unknown_reference,
)
from .removal import landing_keys_to_delete, removal_reasons
from .sample import Sample, SampleView, reads_key
from .states import HOLDS_NO_OBJECTS, takes_reads

# The logger's name from before the core was split out: log queries select on it.
log = logging.getLogger("genomebus_ingest.service")


@dataclass
class Ingest:
    samples: SampleRepository
    objects: ReadsStore
    references: References
    pseudonymiser: Pseudonymiser
    relay: Relay | None
    tracing: Tracing
    #: Samples this process is checking now (a check of a large FASTQ pair takes minutes).
    _checking: set[str] = field(default_factory=set, init=False, repr=False)

    # --- registration ------------------------------------------------------------------------

    async def register(self, registration: RegisterSample) -> tuple[SampleView, bool]:
        """(the sample, whether it was created now). Same content again: the same answer."""
        try:
            national_id = checked_national_id(registration)
            reference = await asyncio.to_thread(self.references.find, registration.reference_id)
            if reference is None:
                raise unknown_reference(registration)
        except RegistrationRejected as rejected:
            await self.samples.record_rejection(
                registration.hospital_id, registration.specimen_id, rejected.reasons
            )
            raise

        pseudonym = self.pseudonymiser.pseudonym(national_id)
        fingerprint = registration.fingerprint(pseudonym)
        inserted, held = await self.samples.add(
            Sample(
                registration=registration.kept(),
                patient_pseudonym=pseudonym,
                fingerprint=fingerprint,
                # the POST's span: where this sample's trace begins
                trace_context=self.tracing.carrier(),
            )
        )
        if not inserted and held.fingerprint != fingerprint:
            raise SampleConflict(
                f"sample {registration.specimen_id!r} of {registration.hospital_id} is already "
                "registered with different content"
            )
        view = held.view()
        if registration.reads.from_landing and takes_reads(held.status):
            # first time, or a retry after the object store failed midway
            view = await self._take_from_landing(held)
        return view, inserted

    # --- reads -------------------------------------------------------------------------------

    async def _held(self, sample_id: str, hospital_id: str | None = None) -> Sample:
        sample = await self.samples.find(sample_id, hospital_id)
        if sample is None:
            raise SampleNotFound(f"no sample {sample_id!r} for hospital {hospital_id}")
        return sample

    async def get(self, sample_id: str, hospital_id: str) -> SampleView:
        return (await self._held(sample_id, hospital_id)).view()

    async def put_reads(
        self, sample_id: str, hospital_id: str, mate: Mate, body: BinaryIO
    ) -> SampleView:
        """Store one mate streamed from ``body``; once both are there, check and publish."""
        sample = await self._held(sample_id, hospital_id)
        if sample.holds_good(mate):
            # The same upload again: never overwrite a good file. But finish the check if the
            # first attempt stored the file and then failed (a restart, a lost connection):
            # nothing else would ever move the sample on.
            return await self._check_if_complete(sample_id)
        if not takes_reads(sample.status):
            raise WrongState(f"sample {sample_id} is {sample.status.value}; it takes no more reads")
        with self.tracing.sample_span(
            "ingest.store_reads",
            sample.trace_context,
            sample_id=sample_id,
            mate=mate,
        ):
            return await self._store_reads(sample, mate, body)

    async def _store_reads(self, sample: Sample, mate: Mate, body: BinaryIO) -> SampleView:
        key = reads_key(sample.sample_id, mate)
        declared = sample.registration.reads.declared(mate)
        ref = await asyncio.to_thread(self.objects.put_reads, key, body, declared)
        if not await self.samples.take_reads(sample.sample_id, mate, ref):
            # removed or rejected while the upload ran: keep nothing of it
            await asyncio.to_thread(self.objects.remove_reads, key)
            raise WrongState(f"sample {sample.sample_id} stopped taking reads during the upload")
        return await self._check_if_complete(sample.sample_id)

    async def _take_from_landing(self, sample: Sample) -> SampleView:
        """Copy the named landing objects into place, verifying the declared checksums."""
        registration = sample.registration
        for mate in MATES:
            key = registration.reads.landing_key(mate) or ""
            sha = registration.reads.declared(mate)
            held = await self._held(sample.sample_id, sample.hospital_id)
            if not takes_reads(held.status):
                return held.view()  # a registration sent again after it moved on: nothing to do
            if held.holds_good(mate):
                continue  # copied by an earlier attempt: never overwrite a good file
            not_found = [f"{mate}: landing object {key!r} not found"]
            if not landing_key_of(sample.hospital_id, key):
                # Another hospital's key (or one that climbs out of the caller's prefix) is
                # answered as a missing one, without looking: whether it exists is not the
                # caller's to learn.
                return await self._reject(sample.sample_id, not_found)
            try:
                source = await asyncio.to_thread(self.objects.landing_object, key, sha)
            except ObjectNotFound:
                return await self._reject(sample.sample_id, not_found)
            try:
                ref = await asyncio.to_thread(self._copy, source, reads_key(sample.sample_id, mate))
            except ChecksumMismatch as exc:
                return await self._reject(sample.sample_id, [f"{mate}: {exc}"])
            if not await self.samples.take_reads(sample.sample_id, mate, ref):
                now = await self._held(sample.sample_id, sample.hospital_id)
                if now.status in HOLDS_NO_OBJECTS:
                    # removed or rejected while the copy ran: keep nothing of it (a sample that
                    # moved on holds these very bytes under this key: those stay)
                    await asyncio.to_thread(self.objects.remove_reads, ref.key)
                return now.view()
        return await self._check_if_complete(sample.sample_id)

    def _copy(self, source: ObjectRef, key: str) -> ObjectRef:
        """(blocking) ``source`` into the reads bucket at ``key``, verified as it is copied."""
        with self.objects.open(source) as stream:
            return self.objects.put_reads(key, stream, source.sha256)

    async def _check_if_complete(self, sample_id: str) -> SampleView:
        sample = await self._held(sample_id)
        if not sample.ready_for_check:
            return sample.view()
        if sample_id in self._checking:
            return sample.view()  # a retried request while this process checks it: one is enough
        self._checking.add(sample_id)
        try:
            return await self._check(sample)
        finally:
            self._checking.discard(sample_id)

    def _read_pair(self, sample: Sample) -> FastqReport:
        """(blocking) Check both mates as stored."""
        assert sample.reads_r1 is not None and sample.reads_r2 is not None  # ready_for_check
        with self.objects.open(sample.reads_r1) as r1, self.objects.open(sample.reads_r2) as r2:
            return check_pair(r1, r2)

    async def _check(self, sample: Sample) -> SampleView:
        sample_id = sample.sample_id
        try:
            report = await asyncio.to_thread(self._read_pair, sample)
        except (ChecksumMismatch, ObjectNotFound) as exc:
            return await self._reject(sample_id, [str(exc)])
        verdict = judge_reads(report)
        if verdict.verdict is Verdict.REJECT:
            return await self._reject(sample_id, verdict.reasons)

        async with self.samples.changes() as changes:
            if await changes.pass_check(sample_id, report.read_pairs, report.bases):
                # The hospital now treats this patient: sent in the transaction that says so.
                await changes.publish(events.registered(sample))
                await self._decide(changes, sample.patient_pseudonym, only_sample=sample_id)
        self._notify()
        log.info("sample checked", extra={"sample_id": sample_id, "read_pairs": report.read_pairs})
        return await self.get(sample_id, sample.hospital_id)

    async def _reject(self, sample_id: str, reasons: Sequence[str]) -> SampleView:
        rejected = await self.samples.reject(sample_id, reasons)
        if rejected is None:  # removed meanwhile (its reads are gone, hence the failure): keep that
            return (await self._held(sample_id)).view()
        for mate in MATES:
            await asyncio.to_thread(self.objects.remove_reads, reads_key(sample_id, mate))
        log.warning("sample rejected", extra={"sample_id": sample_id, "reasons": list(reasons)})
        return rejected.view()

    # --- consent -----------------------------------------------------------------------------

    async def apply_consent(self, event: ConsentChanged, delivery: Delivered) -> None:
        """Keep the newest consent version seen, and release or quarantine waiting samples."""
        async with self.samples.consent_inbox(event, delivery) as changes:
            if changes is None:
                return
            # The patient's decision lock before the consent row, in the order _decide takes
            # them: a sample finishing its checks meanwhile would otherwise deadlock with us.
            await changes.lock_patient(event.patient_pseudonym)
            # this event's trace: releases it allows link to it
            if await changes.keep_consent(event, self.tracing.carrier()):
                await self._decide(changes, event.patient_pseudonym)
        self._notify()

    async def apply_progress(self, event: StageProgress, delivery: Delivered) -> None:
        """Record a stage's progress on the sample. Several workers report one sample, in any
        order: a report never takes the count back, and a repeated one changes nothing."""
        await self.samples.record_progress(event)

    async def _decide(
        self, changes: SampleChanges, pseudonym: str, *, only_sample: str | None = None
    ) -> None:
        """Release or quarantine the patient's samples awaiting consent, by the consent held now.

        Runs inside the caller's transaction with the consent held locked, so the decision and
        the consent version it rests on commit together: a withdrawal committing meanwhile
        waits for us, and is then applied to whatever we released.
        """
        # One decision per patient at a time: a first consent (none held yet to lock) and a
        # sample finishing its checks must not miss each other.
        await changes.lock_patient(pseudonym)
        consent = await changes.consent_of(pseudonym)
        if consent is None or not consent_decides(consent):
            return  # no written consent yet: the samples wait
        for sample in await changes.awaiting_consent(pseudonym, only_sample):
            with self.tracing.sample_span(
                "ingest.consent_decision",
                sample.trace_context,
                consent.trace_context,
                sample_id=sample.sample_id,
                consent_version=consent.version,
                consent_withdrawn=consent.withdrawn,
            ):
                await self._decide_one(changes, sample, consent)

    async def _decide_one(self, changes: SampleChanges, sample: Sample, consent: Consent) -> None:
        """Quarantine, hold or release one waiting sample; its SampleReceived goes to the
        outbox inside the sample's trace."""
        decision = decide_consent(consent, sample.priority)
        sample_id = sample.sample_id
        if decision.verdict is Verdict.QUARANTINE:
            await changes.quarantine(sample_id, consent.version, decision.reasons)
            log.warning("sample quarantined", extra={"sample_id": sample_id})
        elif decision.verdict is Verdict.HOLD:
            if await changes.hold(sample_id, consent.version, decision.reasons):
                log.warning("research sample held by consent", extra={"sample_id": sample_id})
        elif decision.verdict is Verdict.RELEASE:
            reference = await asyncio.to_thread(
                self.references.find, sample.registration.reference_id
            )
            if reference is None:
                return  # stays waiting; the reference must come back before it can run
            event = events.released(sample, reference)
            await changes.release(sample_id, event.event_id, consent.version)
            await changes.publish(event)
            log.info(
                "sample released",
                extra={"sample_id": sample_id, "consent_version": consent.version},
            )

    # --- the sweep ---------------------------------------------------------------------------

    async def sweep(self, stale_after_s: float) -> tuple[int, int]:
        """Move on the samples that nothing else would; returns (checks finished, patients
        decided again).

        - Both files stored, the check never finished (the process died during it, and the
          LIS did not send a file again): check now.
        - Waiting for consent although the patient's consent already decides (the reference
          was missing when the consent came, or the decision failed half-way): decide again.
          A research sample held by the patient's restriction waits for a new version, not for
          the sweep.

        Only samples untouched for ``stale_after_s``, so a check or decision running right now
        is left alone (were one run twice, its state guards let only one of them count).
        """
        stuck = await self.samples.stuck_checks(stale_after_s)
        for sample_id in stuck:
            with _logged_and_skipped("sweep: check failed", sample_id):
                await self._check_if_complete(sample_id)
        patients = list(
            dict.fromkeys(
                candidate.patient_pseudonym
                for candidate in await self.samples.consent_candidates(stale_after_s)
                if decide_consent(candidate.consent, candidate.priority).moves_on
            )
        )
        for pseudonym in patients:
            with _logged_and_skipped("sweep: decision failed", pseudonym):
                async with self.samples.changes() as changes:
                    await self._decide(changes, pseudonym)
        if patients:
            self._notify()
        if stuck or patients:
            log.info(
                "sweep moved samples on", extra={"checks": len(stuck), "patients": len(patients)}
            )
        return len(stuck), len(patients)

    # --- removal -----------------------------------------------------------------------------

    async def remove(self, sample_id: str, hospital_id: str, reason: str) -> SampleView:
        """Withdraw a sample: delete its reads here and tell every other store to delete too.

        The removal keeps the DELETE request's own trace (it may come weeks later) and links to
        the sample's trace, so both journeys can be found from either.
        """
        sample = await self._held(sample_id, hospital_id)  # 404 for another hospital's sample
        with self.tracing.linked_span(
            "ingest.remove_sample", sample.trace_context, sample_id=sample_id
        ):
            return await self._remove(sample, hospital_id, reason)

    async def _remove(self, sample: Sample, hospital_id: str, reason: str) -> SampleView:
        sample_id = sample.sample_id
        async with self.samples.changes() as changes:
            removed = await changes.remove(sample_id, removal_reasons(hospital_id, reason))
            if removed is not None:
                await changes.publish(events.removed(removed, hospital_id, reason))
        for mate in MATES:
            await asyncio.to_thread(self.objects.remove_reads, reads_key(sample_id, mate))
        for key in landing_keys_to_delete(sample.registration, hospital_id):
            if not await self.samples.landing_key_in_use(hospital_id, sample_id, key):
                # no other live sample of the hospital still names it
                await asyncio.to_thread(self.objects.remove_landing, key)
        self._notify()
        log.info("sample removed", extra={"sample_id": sample_id})
        return await self.get(sample_id, hospital_id)

    def _notify(self) -> None:
        if self.relay is not None:
            self.relay.notify()


@contextlib.contextmanager
def _logged_and_skipped(what: str, subject: str) -> Iterator[None]:
    """One sample or patient that fails never stops the sweep for the others."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - any failure of one must not stop the others
        log.warning(what, extra={"subject": subject, "error": str(exc)})
