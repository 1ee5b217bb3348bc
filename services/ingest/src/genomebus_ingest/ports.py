"""What ingest's core needs from the world: its records, its objects, references, the outbox.

Protocols only; ``adapters`` has PostgreSQL, S3 and in-memory implementations. The object store
and reference ports are blocking, as the clients behind them are: the core calls them in a
worker thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from genomebus_common.contracts.events import (
    ConsentChanged,
    Event,
    ObjectRef,
    Priority,
    ReferenceGenome,
    StageProgress,
)

from .core.decisions import Consent
from .core.registration import Mate
from .core.sample import Sample, TraceCarrier
from .core.states import SampleStatus


class Delivered(Protocol):
    """Where a consumed event came from (the broker's ``Delivery``): the inbox's key."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


@dataclass(frozen=True)
class ConsentCandidate:
    """A patient with samples awaiting consent, the priority of some of them, and the
    consent held: the sweep asks the core whether it moves them on."""

    patient_pseudonym: str
    priority: Priority
    consent: Consent


class SampleChanges(Protocol):
    """Work on samples inside one transaction: a sample's move and its event commit together."""

    async def lock_patient(self, pseudonym: str) -> None:
        """One decision per patient at a time (until the transaction ends). Always before the
        patient's consent, never after."""

    async def consent_of(self, pseudonym: str) -> Consent | None:
        """The consent held, kept from changing until the transaction ends."""

    async def keep_consent(self, event: ConsentChanged, trace_context: TraceCarrier) -> bool:
        """Hold the event's version if it is newer than the one held; True if it was."""

    async def awaiting_consent(self, pseudonym: str, only_sample: str | None) -> list[Sample]:
        """The patient's samples awaiting consent, locked until the transaction ends."""

    async def pass_check(self, sample_id: str, read_pairs: int, read_bases: int) -> bool:
        """``Step.PASS_CHECK``; False if the sample was no longer awaiting its check."""

    async def hold(self, sample_id: str, consent_version: int, reasons: Sequence[str]) -> bool:
        """``Step.HOLD`` with these reasons; False if it was already held for them."""

    async def release(self, sample_id: str, event_id: uuid.UUID, consent_version: int) -> None:
        """``Step.RELEASE`` (of a sample locked by ``awaiting_consent``)."""

    async def quarantine(
        self, sample_id: str, consent_version: int, reasons: Sequence[str]
    ) -> None:
        """``Step.QUARANTINE`` (of a sample locked by ``awaiting_consent``)."""

    async def remove(self, sample_id: str, reasons: Sequence[str]) -> Sample | None:
        """``Step.REMOVE``; None if it was removed already."""

    async def publish(self, event: Event) -> None:
        """Put ``event`` in the outbox, to be published once the transaction commits."""


class SampleRepository(Protocol):
    """Ingest's records: samples, refused registrations, consents held."""

    def changes(self) -> AbstractAsyncContextManager[SampleChanges]:
        """A transaction."""

    def consent_inbox(
        self, event: ConsentChanged, delivery: Delivered
    ) -> AbstractAsyncContextManager[SampleChanges | None]:
        """A transaction that records the event as applied; None if it was already."""

    async def add(self, sample: Sample) -> tuple[bool, Sample]:
        """Insert ``sample`` unless one with its id exists: (inserted, the sample held)."""

    async def record_rejection(
        self, hospital_id: str, specimen_id: str, reasons: Sequence[str]
    ) -> None: ...

    async def find(self, sample_id: str, hospital_id: str | None = None) -> Sample | None:
        """The sample, if it exists (and belongs to ``hospital_id`` when given)."""

    async def take_reads(self, sample_id: str, mate: Mate, ref: ObjectRef) -> bool:
        """``Step.TAKE_READS``; False if the sample no longer takes reads."""

    async def reject(self, sample_id: str, reasons: Sequence[str]) -> Sample | None:
        """``Step.REJECT`` (its reads forgotten); None if the sample had moved on."""

    async def record_progress(self, event: StageProgress) -> None:
        """A stage's units done; never lower than a count already held."""

    async def stuck_checks(self, stale_after_s: float) -> list[str]:
        """Samples with both mates stored whose check never finished, untouched this long."""

    async def consent_candidates(self, stale_after_s: float) -> list[ConsentCandidate]:
        """Samples awaiting consent, untouched this long, of patients with a consent held."""

    async def landing_key_in_use(self, hospital_id: str, other_than: str, key: str) -> bool:
        """Another sample of the hospital that still holds objects names this landing key."""

    async def count_by_status(self) -> dict[SampleStatus, int]: ...


class ReadsStore(Protocol):
    """The reads bucket and the landing bucket (blocking calls)."""

    def put_reads(self, key: str, stream: BinaryIO, expected_sha256: str) -> ObjectRef:
        """Store a gzip FASTQ; ``ChecksumMismatch`` (and nothing kept) if it is not the one
        declared."""

    def remove_reads(self, key: str) -> None: ...

    def landing_object(self, key: str, sha256: str) -> ObjectRef:
        """The landing object (``ObjectNotFound`` if there is none), declared as ``sha256``."""

    def remove_landing(self, key: str) -> None: ...

    def open(self, ref: ObjectRef) -> AbstractContextManager[BinaryIO]:
        """A stream of the object that raises ``ChecksumMismatch`` at its end if it is not
        ``ref``."""


class References(Protocol):
    """Registered reference genomes (a blocking call)."""

    def find(self, reference_id: str) -> ReferenceGenome | None: ...


SpanAttribute = str | int | bool | None


class Tracing(Protocol):
    """The sample's own trace: begun by its POST, continued by whatever works on it later."""

    def carrier(self) -> TraceCarrier:
        """The current trace position, to store with a row another task picks up later."""

    def sample_span(
        self,
        name: str,
        stored: TraceCarrier | None,
        *also_links: TraceCarrier | None,
        **attributes: SpanAttribute,
    ) -> AbstractContextManager[None]:
        """A span in the sample's trace (``stored``), linked to the current span (the request
        or event doing the work now) and to ``also_links``."""

    def linked_span(
        self, name: str, stored: TraceCarrier | None, **attributes: SpanAttribute
    ) -> AbstractContextManager[None]:
        """A span of the current trace (a request's) that links to the sample's trace."""


class Relay(Protocol):
    """The outbox relay: publish soon, something was just committed."""

    def notify(self) -> None: ...
