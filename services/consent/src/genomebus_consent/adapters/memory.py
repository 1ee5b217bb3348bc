"""The consent store in memory: the same behaviour as PostgreSQL's for one process, for fast
tests of the use cases. A transaction works on a copy and commits it at the end, so a refusal
or an error leaves nothing behind, as a rollback does. Locks are not needed: its methods never
suspend, so one use case's transaction runs to its end before another task's begins.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from genomebus_common.contracts.events import ConsentChanged, ResearchUse

from ..core.model import ConsentVersion
from ..ports import AccessEntry, AccessLogEntry, IdempotencyRecord, NewVersion


@dataclass
class MemoryState:
    versions: dict[str, list[ConsentVersion]] = field(default_factory=dict)
    treating: dict[str, dict[str, str]] = field(default_factory=dict)  # hospital -> 1st sample
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    access_log: dict[str, list[AccessLogEntry]] = field(default_factory=dict)  # oldest first
    outbox: list[ConsentChanged] = field(default_factory=list)


@dataclass
class MemoryConsentStore:
    state: MemoryState = field(default_factory=MemoryState)
    commits: int = 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryTransaction]:
        tx = MemoryTransaction(copy.deepcopy(self.state))
        yield tx  # an exception leaves the copy behind: rolled back
        self.state = tx.state
        self.commits += 1

    async def log_access(self, entry: AccessEntry) -> None:
        _log(self.state, entry)

    @property
    def published(self) -> list[ConsentChanged]:
        """The committed outbox: what the relay would publish, in order."""
        return self.state.outbox

    def log_of(self, pseudonym: str) -> list[tuple[str, str, str]]:
        """(client, action, outcome) of the patient's access log, oldest first."""
        return [
            (e["client_id"], e["action"], e["outcome"])
            for e in self.state.access_log.get(pseudonym, [])
        ]


@dataclass
class MemoryTransaction:
    state: MemoryState

    async def lock_idempotency_key(self, client: str, key: str) -> None:
        return None

    async def idempotency_record(self, client: str, key: str) -> IdempotencyRecord | None:
        return self.state.idempotency.get((client, key))

    async def lock_patient(self, pseudonym: str) -> None:
        return None

    async def version(self, pseudonym: str, number: int) -> ConsentVersion:
        return next(v for v in self.state.versions[pseudonym] if v.version == number)

    async def current_version(self, pseudonym: str) -> ConsentVersion | None:
        versions = self.state.versions.get(pseudonym)
        return versions[-1] if versions else None

    async def versions(self, pseudonym: str) -> list[ConsentVersion]:
        return list(self.state.versions.get(pseudonym, []))

    async def treating_hospitals(self, pseudonym: str) -> frozenset[str]:
        return frozenset(self.state.treating.get(pseudonym, {}))

    async def recorders(self, pseudonym: str) -> frozenset[str]:
        return frozenset(v.recorded_by_client for v in self.state.versions.get(pseudonym, []))

    async def restriction_recorders(self, pseudonym: str) -> list[str]:
        run: list[str] = []
        for version in self.state.versions.get(pseudonym, []):
            if version.research_use is ResearchUse.ALLOWED:
                run = []
            else:
                run.append(version.recorded_by_client)
        return run

    async def add_version(self, new: NewVersion) -> ConsentVersion:
        versions = self.state.versions.setdefault(new.pseudonym, [])
        if any(v.version == new.number for v in versions):  # the primary key
            raise AssertionError(f"version {new.number} of {new.pseudonym} exists")
        version = ConsentVersion(
            **new.facts.model_dump(),
            patient_pseudonym=new.pseudonym,
            version=new.number,
            recorded_by_client=new.client,
            recorded_at=datetime.now(UTC),
            source=new.source,
            event_id=new.event_id,
        )
        versions.append(version)
        return version

    async def add_idempotency_key(self, client: str, key: str, record: IdempotencyRecord) -> None:
        self.state.idempotency[(client, key)] = record

    async def add_treating(self, pseudonym: str, hospital: str, sample_id: str) -> bool:
        hospitals = self.state.treating.setdefault(pseudonym, {})
        if hospital in hospitals:
            return False
        hospitals[hospital] = sample_id
        return True

    async def access_log(self, pseudonym: str, limit: int) -> list[AccessLogEntry]:
        return list(reversed(self.state.access_log.get(pseudonym, [])))[:limit]

    async def log_access(self, entry: AccessEntry) -> None:
        _log(self.state, entry)

    async def publish(self, event: ConsentChanged) -> None:
        self.state.outbox.append(event)


def _log(state: MemoryState, entry: AccessEntry) -> None:
    state.access_log.setdefault(entry.pseudonym, []).append(
        AccessLogEntry(
            client_id=entry.client.id,
            client_kind=entry.client.kind.value,
            action=entry.action,
            outcome=entry.outcome,
            purpose=entry.purpose,
            at=datetime.now(UTC),
        )
    )
