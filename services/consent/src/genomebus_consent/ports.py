"""What consent's use cases need from the outside: a store that holds versions, the patient's
treating hospitals, idempotency keys, the access log and the outbox, used one transaction at a
time; and a way to wake the outbox relay after a commit.

Everything a use case does in one transaction commits together or not at all: a recorded
version is always announced (its event is in the outbox) and logged in the access log.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from typing_extensions import TypedDict  # pydantic (the API's schema) needs it on 3.11

from genomebus_common.contracts.events import ConsentChanged

from .core.access import Client
from .core.model import ConsentFacts, ConsentVersion


@dataclass(frozen=True)
class AccessEntry:
    """One line of the patient's access log: who did what to their consent, and the outcome."""

    pseudonym: str
    client: Client
    action: str  # record, read_history, read_access_log, became_treating
    outcome: str  # allowed, refused
    purpose: str


class AccessLogEntry(TypedDict):
    """An access-log line as the patient reads it (the HTTP API answers with these)."""

    client_id: str
    client_kind: str
    action: str
    outcome: str
    purpose: str
    at: datetime


@dataclass(frozen=True)
class IdempotencyRecord:
    """What a client's Idempotency-Key stands for: a request's content and the version it made."""

    fingerprint: str
    patient_pseudonym: str
    version: int


@dataclass(frozen=True)
class NewVersion:
    """A version to append: its content and where it came from."""

    pseudonym: str
    number: int
    facts: ConsentFacts
    client: str
    source: str
    event_id: uuid.UUID


class ConsentTransaction(Protocol):
    """The store inside one transaction."""

    async def lock_idempotency_key(self, client: str, key: str) -> None:
        """Hold the key until the transaction ends (taken before the patient's lock)."""

    async def idempotency_record(self, client: str, key: str) -> IdempotencyRecord | None: ...

    async def lock_patient(self, pseudonym: str) -> None:
        """Hold the patient until the transaction ends: one version number per change."""

    async def version(self, pseudonym: str, number: int) -> ConsentVersion: ...

    async def current_version(self, pseudonym: str) -> ConsentVersion | None: ...

    async def versions(self, pseudonym: str) -> list[ConsentVersion]:
        """Every version of the patient's consent, oldest first."""

    async def treating_hospitals(self, pseudonym: str) -> frozenset[str]: ...

    async def recorders(self, pseudonym: str) -> frozenset[str]:
        """The clients that recorded any version of the patient's consent."""

    async def restriction_recorders(self, pseudonym: str) -> list[str]:
        """The clients of every restricted version since the last one that allowed research
        use, oldest first."""

    async def add_version(self, new: NewVersion) -> ConsentVersion: ...

    async def add_idempotency_key(self, client: str, key: str, record: IdempotencyRecord) -> None:
        """Remember what the key stands for."""

    async def add_treating(self, pseudonym: str, hospital: str, sample_id: str) -> bool:
        """Record that ``hospital`` treats the patient; False if it already did."""

    async def access_log(self, pseudonym: str, limit: int) -> list[AccessLogEntry]:
        """The patient's access log, newest first."""

    async def log_access(self, entry: AccessEntry) -> None: ...

    async def publish(self, event: ConsentChanged) -> None:
        """Announce ``event`` once this transaction commits (the outbox)."""


class ConsentStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[ConsentTransaction]:
        """One transaction: committed when the block ends, rolled back when it raises."""

    async def log_access(self, entry: AccessEntry) -> None:
        """Log on its own, outside any transaction (a refusal, after its rollback)."""


class OutboxWakeup(Protocol):
    def notify(self) -> None:
        """Something was just committed to the outbox: publish it soon."""
