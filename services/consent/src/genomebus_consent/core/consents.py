"""Consent's use cases: record a new consent version, read a patient's history and access log,
and learn which hospital treats which patient.

A change never overwrites: it is a new version, numbered under a per-patient lock so two
concurrent changes cannot take the same number, and its ConsentChanged event is published
through the outbox in the same transaction (a recorded version is always announced, and an
announced one always recorded). The national id is parsed and pseudonymised first and goes no
further. Every read and write of a patient's consent, allowed or refused, is in the patient's
access log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from genomebus_common.contracts.events import ResearchUse, SampleRegistered
from genomebus_common.contracts.identifiers import Pseudonymiser

from ..ports import (
    AccessEntry,
    AccessLogEntry,
    ConsentStore,
    ConsentTransaction,
    IdempotencyRecord,
    NewVersion,
    OutboxWakeup,
)
from .access import Client, ClientKind, PatientRecord, client_of, may_read, patient_record
from .change import Change, check_request, next_facts, pseudonym_of
from .errors import NOT_FOUND, ConsentNotFound, IdempotencyConflict, PortalOnly, Refused
from .model import ConsentHistory, ConsentVersion, consent_changed

# The name it logged under before the move: log queries select on it.
log = logging.getLogger("genomebus_consent.service")


@dataclass(frozen=True)
class Recorded:
    version: ConsentVersion
    created: bool  # False: an Idempotency-Key retry, answered with the version it created


@dataclass
class ConsentService:
    store: ConsentStore
    pseudonymiser: Pseudonymiser
    relay: OutboxWakeup | None = None
    portal_clients: frozenset[str] = frozenset({"portal"})

    def client(self, client_id: str) -> Client:
        return client_of(client_id, self.portal_clients)

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
        pseudonym = pseudonym_of(national_id, self.pseudonymiser)
        check_request(change)
        fingerprint = change.fingerprint(pseudonym, source)
        who = self.client(client)
        purpose = f"record consent ({source})"
        try:
            async with self.store.transaction() as tx:
                if idempotency_key is not None:
                    # Key first, patient second, always: two locks, one order, no deadlock.
                    await tx.lock_idempotency_key(client, idempotency_key)
                    replay = await _replay(tx, client, idempotency_key, fingerprint)
                    if replay is not None:
                        await tx.log_access(
                            AccessEntry(pseudonym, who, "record", "allowed", f"{purpose}, replayed")
                        )
                        return Recorded(replay, created=False)
                await tx.lock_patient(pseudonym)
                current = await tx.current_version(pseudonym)
                patient = await self._patient(tx, pseudonym, current)
                facts = next_facts(
                    change, current.facts() if current else None, who=who, patient=patient
                )
                await tx.log_access(AccessEntry(pseudonym, who, "record", "allowed", purpose))
                number = (current.version if current else 0) + 1
                event = consent_changed(facts, pseudonym=pseudonym, version=number)
                version = await tx.add_version(
                    NewVersion(pseudonym, number, facts, client, source, event.event_id)
                )
                if idempotency_key is not None:
                    await tx.add_idempotency_key(
                        client, idempotency_key, IdempotencyRecord(fingerprint, pseudonym, number)
                    )
                await tx.publish(event)
        except Refused as refused:
            # the transaction is rolled back; the refusal is logged on its own
            await self.store.log_access(AccessEntry(pseudonym, who, "record", "refused", purpose))
            raise refused.error from None
        if self.relay is not None:
            self.relay.notify()
        log.info(
            "consent version recorded",
            extra={"patient_pseudonym": pseudonym, "version": number, "client": client},
        )
        return Recorded(version, created=True)

    async def history(self, pseudonym: str, *, client: str) -> ConsentHistory:
        """Every version of the patient's consent, oldest first: for the portal and the
        patient's treating hospitals; anyone else is told none is recorded."""
        who = self.client(client)
        async with self.store.transaction() as tx:
            versions = await tx.versions(pseudonym)
            patient = await self._patient(tx, pseudonym, versions[-1] if versions else None)
            allowed = bool(versions) and may_read(who, patient)
            outcome = "allowed" if allowed else "refused"
            await tx.log_access(
                AccessEntry(pseudonym, who, "read_history", outcome, "read consent history")
            )
        if not allowed:
            raise ConsentNotFound(NOT_FOUND)
        log.info("consent history read", extra={"patient_pseudonym": pseudonym, "client": client})
        return ConsentHistory(
            patient_pseudonym=pseudonym, current_version=versions[-1].version, versions=versions
        )

    async def sample_registered(self, event: SampleRegistered) -> None:
        """A hospital registered a sample of the patient: it treats the patient from now on."""
        async with self.store.transaction() as tx:
            became = await tx.add_treating(
                event.patient_pseudonym, event.hospital_id, event.sample_id
            )
            if became:  # the patient sees who claims to treat them, in the same log as reads
                await tx.log_access(
                    AccessEntry(
                        event.patient_pseudonym,
                        Client(event.hospital_id, ClientKind.HOSPITAL),
                        "became_treating",
                        "allowed",
                        f"registered sample {event.sample_id}",
                    )
                )

    async def access_log(
        self, pseudonym: str, *, client: str, limit: int = 500
    ) -> list[AccessLogEntry]:
        """Who read or changed the patient's consent, newest first: for the portal only."""
        who = self.client(client)
        if who.kind is not ClientKind.PORTAL:
            raise PortalOnly("the access log is for the patient, through the citizens' portal")
        async with self.store.transaction() as tx:
            entries = await tx.access_log(pseudonym, limit)
            await tx.log_access(
                AccessEntry(
                    pseudonym, who, "read_access_log", "allowed", "patient reads who looked"
                )
            )
        return entries

    async def _patient(
        self, tx: ConsentTransaction, pseudonym: str, current: ConsentVersion | None
    ) -> PatientRecord:
        treating = await tx.treating_hospitals(pseudonym)
        if current is None:
            return patient_record(
                treating=treating,
                recorders=None,
                restricting=(),
                portal_clients=self.portal_clients,
            )
        recorders = await tx.recorders(pseudonym)
        restricting: list[str] = []
        if current.research_use is ResearchUse.OWN_TREATMENT_ONLY:
            restricting = await tx.restriction_recorders(pseudonym)
        return patient_record(
            treating=treating,
            recorders=recorders,
            restricting=restricting,
            portal_clients=self.portal_clients,
        )


async def _replay(
    tx: ConsentTransaction, client: str, key: str, fingerprint: str
) -> ConsentVersion | None:
    """The version a first request with this key made, or None for a new key."""
    hit = await tx.idempotency_record(client, key)
    if hit is None:
        return None
    if hit.fingerprint != fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used for a different consent change; "
            "use a new key for a new change"
        )
    return await tx.version(hit.patient_pseudonym, hit.version)
