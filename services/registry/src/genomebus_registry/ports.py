"""What the registry's parts need of each other, as protocols: the HTTP router asks
``RegistryQueries``, the Kafka subscribers hand events to ``RegistryEvents``, and a load
downloads its VCF from a ``VcfStore`` and wakes the outbox through a ``Notifier``. Tests put
in-memory versions in their place (tests/registry/memory.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from genomebus_common.contracts.events import (
    ConsentChanged,
    ObjectRef,
    SampleAligned,
    SampleRemoved,
    VariantsCalled,
)
from genomebus_common.runtime.broker import Delivery

from .core.access import Caller
from .core.access_log import AccessLog
from .core.answers import AlleleAnswer, PatientVariants, RegionAnswer
from .core.cursors import AccessCursor, PatientCursor, RegionCursor
from .core.energy import SampleEnergy


class VcfStore(Protocol):
    """Where called VCFs are (S3): a load downloads its VCF and index into a scratch folder."""

    def download(self, ref: ObjectRef, path: Path) -> Path: ...


class Notifier(Protocol):
    """Wakes the outbox relay once a transaction enqueued an event."""

    def notify(self) -> None: ...


class RegistryQueries(Protocol):
    """The questions the API answers, each audited whether answered or refused."""

    async def allele(
        self, caller: Caller, chrom: str, pos: int, ref: str, alt: str
    ) -> AlleleAnswer: ...

    async def region(
        self,
        caller: Caller,
        chrom: str,
        start: int,
        end: int,
        *,
        limit: int,
        after: RegionCursor | None,
    ) -> RegionAnswer: ...

    async def patient_variants(
        self, caller: Caller, pseudonym: str, *, limit: int, after: PatientCursor | None
    ) -> PatientVariants: ...

    async def sample_energy(self, caller: Caller, sample_id: str) -> SampleEnergy: ...

    async def access_log(
        self, caller: Caller, pseudonym: str, *, limit: int, after: AccessCursor | None
    ) -> AccessLog: ...


class RegistryEvents(Protocol):
    """The events the registry applies, each once (an inbox row commits with its effect)."""

    async def variants_called(self, event: VariantsCalled, delivery: Delivery) -> None: ...

    async def consent_changed(self, event: ConsentChanged, delivery: Delivery) -> None: ...

    async def sample_removed(self, event: SampleRemoved, delivery: Delivery) -> None: ...

    async def sample_aligned(self, event: SampleAligned, delivery: Delivery) -> None: ...
