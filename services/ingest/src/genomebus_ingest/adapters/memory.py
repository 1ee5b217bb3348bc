"""Every port of ingest in memory, for fast tests of the core: no database, bucket or broker.

Each move is guarded by the core's state machine, as the SQL guards are, so a test sees the
same refusals a race would meet in PostgreSQL. One lock stands in for every transaction, and a
failure inside one puts back what it changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import BinaryIO

from genomebus_common.contracts.errors import ChecksumMismatch, ObjectNotFound
from genomebus_common.contracts.events import (
    ConsentChanged,
    Event,
    ObjectRef,
    ReferenceGenome,
    StageProgress,
)

from ..core.decisions import Consent, is_newer
from ..core.registration import Mate
from ..core.sample import Sample, TraceCarrier
from ..core.states import HOLDS_NO_OBJECTS, SampleStatus, Step, allows, target
from ..ports import ConsentCandidate, Delivered


class MemoryChanges:
    """A 'transaction' of ``MemorySamples``: events it publishes land in the outbox at once."""

    def __init__(self, db: MemorySamples) -> None:
        self.db = db

    def _move(self, sample_id: str, step: Step, **changes: object) -> Sample | None:
        return self.db.move(sample_id, step, **changes)

    async def lock_patient(self, pseudonym: str) -> None:
        self.db.locked_patients.append(pseudonym)

    async def consent_of(self, pseudonym: str) -> Consent | None:
        return self.db.consents.get(pseudonym)

    async def keep_consent(self, event: ConsentChanged, trace_context: TraceCarrier) -> bool:
        if not is_newer(self.db.consents.get(event.patient_pseudonym), event.version):
            return False
        self.db.consents[event.patient_pseudonym] = Consent(
            version=event.version,
            analysis_consent_given=event.analysis_consent_given,
            withdrawn=event.withdrawn,
            research_use=event.research_use,
            trace_context=trace_context,
        )
        return True

    async def awaiting_consent(self, pseudonym: str, only_sample: str | None) -> list[Sample]:
        return [
            s
            for s in self.db.samples.values()
            if s.patient_pseudonym == pseudonym
            and allows(s.status, Step.RELEASE)
            and only_sample in (None, s.sample_id)
        ]

    async def pass_check(self, sample_id: str, read_pairs: int, read_bases: int) -> bool:
        moved = self._move(sample_id, Step.PASS_CHECK, read_pairs=read_pairs, read_bases=read_bases)
        return moved is not None

    async def hold(self, sample_id: str, consent_version: int, reasons: Sequence[str]) -> bool:
        if self.db.samples[sample_id].reasons == tuple(reasons):
            return False
        moved = self._move(
            sample_id, Step.HOLD, consent_version=consent_version, reasons=tuple(reasons)
        )
        return moved is not None

    async def release(self, sample_id: str, event_id: uuid.UUID, consent_version: int) -> None:
        self._move(sample_id, Step.RELEASE, event_id=event_id, consent_version=consent_version)

    async def quarantine(
        self, sample_id: str, consent_version: int, reasons: Sequence[str]
    ) -> None:
        self._move(
            sample_id, Step.QUARANTINE, consent_version=consent_version, reasons=tuple(reasons)
        )

    async def remove(self, sample_id: str, reasons: Sequence[str]) -> Sample | None:
        return self._move(sample_id, Step.REMOVE, reasons=tuple(reasons))

    async def publish(self, event: Event) -> None:
        self.db.outbox.append(event)


class MemorySamples:
    """``SampleRepository`` in dictionaries; ``outbox`` holds what was published, in order."""

    def __init__(self) -> None:
        self.samples: dict[str, Sample] = {}
        self.consents: dict[str, Consent] = {}
        self.rejections: list[tuple[str, str, tuple[str, ...]]] = []
        self.outbox: list[Event] = []
        self.inbox: set[uuid.UUID] = set()
        self.locked_patients: list[str] = []
        #: Sample ids the sweep finds untouched long enough (tests say which).
        self.stale: set[str] = set()
        self._lock = asyncio.Lock()

    def move(self, sample_id: str, step: Step, **changes: object) -> Sample | None:
        """``step`` if the state machine allows it from where the sample is (the SQL guard)."""
        sample = self.samples.get(sample_id)
        if sample is None or not allows(sample.status, step):
            return None
        moved = dataclasses.replace(sample, status=target(step), **changes)  # type: ignore[arg-type]  # changes are Sample fields, as in the SQL's SET
        self.samples[sample_id] = moved
        return moved

    @contextlib.contextmanager
    def _atomic(self) -> Iterator[None]:
        """All of a transaction's changes, or none of them: a failure half-way puts back what
        it had changed, as PostgreSQL's rollback does (an event never leaves without its state
        move, nor a state move without its event)."""
        saved = (dict(self.samples), dict(self.consents), list(self.outbox), set(self.inbox))
        try:
            yield
        except BaseException:
            self.samples, self.consents, self.outbox, self.inbox = saved
            raise

    @contextlib.asynccontextmanager
    async def changes(self) -> AsyncIterator[MemoryChanges]:
        async with self._lock:
            with self._atomic():
                yield MemoryChanges(self)

    @contextlib.asynccontextmanager
    async def consent_inbox(
        self, event: ConsentChanged, delivery: Delivered
    ) -> AsyncIterator[MemoryChanges | None]:
        async with self._lock:
            if event.event_id in self.inbox:
                yield None
                return
            with self._atomic():
                self.inbox.add(event.event_id)
                yield MemoryChanges(self)

    async def add(self, sample: Sample) -> tuple[bool, Sample]:
        if sample.sample_id in self.samples:
            return False, self.samples[sample.sample_id]
        self.samples[sample.sample_id] = sample
        return True, sample

    async def record_rejection(
        self, hospital_id: str, specimen_id: str, reasons: Sequence[str]
    ) -> None:
        self.rejections.append((hospital_id, specimen_id, tuple(reasons)))

    async def find(self, sample_id: str, hospital_id: str | None = None) -> Sample | None:
        sample = self.samples.get(sample_id)
        if sample is None or hospital_id not in (None, sample.hospital_id):
            return None
        return sample

    async def take_reads(self, sample_id: str, mate: Mate, ref: ObjectRef) -> bool:
        field = "reads_r1" if mate == "R1" else "reads_r2"
        return self.move(sample_id, Step.TAKE_READS, **{field: ref}) is not None

    async def reject(self, sample_id: str, reasons: Sequence[str]) -> Sample | None:
        return self.move(
            sample_id, Step.REJECT, reasons=tuple(reasons), reads_r1=None, reads_r2=None
        )

    async def record_progress(self, event: StageProgress) -> None:
        sample = self.samples.get(event.sample_id)
        if sample is None:
            return
        progress = dict(sample.progress or {})
        if progress.get(event.stage.value, {}).get("done", -1) >= event.units_done:
            return
        progress[event.stage.value] = {
            "done": event.units_done,
            "total": event.units_total,
            "unit_kind": event.unit_kind,
        }
        self.samples[event.sample_id] = dataclasses.replace(sample, progress=progress)

    async def stuck_checks(self, stale_after_s: float) -> list[str]:
        return [
            s.sample_id
            for s in self.samples.values()
            if s.ready_for_check and s.sample_id in self.stale
        ]

    async def consent_candidates(self, stale_after_s: float) -> list[ConsentCandidate]:
        return [
            ConsentCandidate(s.patient_pseudonym, s.priority, self.consents[s.patient_pseudonym])
            for s in self.samples.values()
            if allows(s.status, Step.RELEASE)
            and s.sample_id in self.stale
            and s.patient_pseudonym in self.consents
        ]

    async def landing_key_in_use(self, hospital_id: str, other_than: str, key: str) -> bool:
        return any(
            s.hospital_id == hospital_id
            and s.sample_id != other_than
            and s.status not in HOLDS_NO_OBJECTS
            and key in (s.registration.reads.landing_r1_key, s.registration.reads.landing_r2_key)
            for s in self.samples.values()
        )

    async def count_by_status(self) -> dict[SampleStatus, int]:
        counts: dict[SampleStatus, int] = {}
        for sample in self.samples.values():
            counts[sample.status] = counts.get(sample.status, 0) + 1
        return counts


class MemoryReads:
    """``ReadsStore`` in dictionaries: ``reads`` and ``landing`` map keys to bytes."""

    READS, LANDING = "reads", "landing"

    def __init__(self) -> None:
        self.reads: dict[str, bytes] = {}
        self.landing: dict[str, bytes] = {}

    #: Test reads are kilobytes; anything near this is a test gone wrong, not a sample.
    MAX_BYTES = 64 * 1024 * 1024

    def put_reads(self, key: str, stream: BinaryIO, expected_sha256: str) -> ObjectRef:
        data = stream.read(self.MAX_BYTES + 1)  # bounded before it is held, as S3 streams it
        if len(data) > self.MAX_BYTES:
            raise ValueError(f"{key}: more than {self.MAX_BYTES:,} bytes for an in-memory store")
        sha = hashlib.sha256(data).hexdigest()
        if sha != expected_sha256:
            raise ChecksumMismatch(f"{key}: SHA-256 is {sha}, expected {expected_sha256}")
        self.reads[key] = data
        return ObjectRef(bucket=self.READS, key=key, sha256=sha, size=len(data))

    def remove_reads(self, key: str) -> None:
        self.reads.pop(key, None)

    def landing_object(self, key: str, sha256: str) -> ObjectRef:
        if key not in self.landing:
            raise ObjectNotFound(f"{self.LANDING}/{key}")
        return ObjectRef(bucket=self.LANDING, key=key, sha256=sha256, size=len(self.landing[key]))

    def remove_landing(self, key: str) -> None:
        self.landing.pop(key, None)

    @contextlib.contextmanager
    def open(self, ref: ObjectRef) -> Iterator[BinaryIO]:
        objects = self.reads if ref.bucket == self.READS else self.landing
        if ref.key not in objects:
            raise ObjectNotFound(f"{ref.bucket}/{ref.key}")
        data = objects[ref.key]
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise ChecksumMismatch(f"{ref.bucket}/{ref.key} is not the object recorded")
        yield io.BytesIO(data)


class MemoryReferences:
    """``References``: the genomes in ``known``, by id."""

    def __init__(self, *known: ReferenceGenome) -> None:
        self.known = {reference.id: reference for reference in known}

    def find(self, reference_id: str) -> ReferenceGenome | None:
        return self.known.get(reference_id)


class CountingRelay:
    """``Relay`` that counts how often it was told to publish."""

    def __init__(self) -> None:
        self.notified = 0

    def notify(self) -> None:
        self.notified += 1
