"""Who may read and change a patient's consent: the decisions, pure.

Two kinds of client. A hospital acts for the patients it treats: those it has registered a
sample of (ingest's ``sample.registered``), or recorded a consent version for. The citizens'
portal acts for the patient and may do everything for the patient it authenticated.

- A hospital that does not treat a patient gets, for a read and for a write alike, the answer a
  patient without any consent gets: 404. It cannot tell a consented, withdrawn or unknown
  national id apart, by reading or by writing.
- A research restriction (``own_treatment_only``) the patient set through the portal is lifted
  only through the portal. One a hospital recorded may be lifted by that hospital (it recorded
  the patient's choice) or through the portal; never by another hospital.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from genomebus_common.contracts.events import ResearchUse


class ClientKind(StrEnum):
    HOSPITAL = "hospital"
    PORTAL = "portal"


@dataclass(frozen=True)
class Client:
    id: str
    kind: ClientKind


@dataclass(frozen=True)
class PatientRecord:
    """What the decisions need to know of the patient's consent so far."""

    has_versions: bool
    recorded_by: frozenset[str]  # client ids that recorded a version
    treating: frozenset[str]  # hospitals that registered a sample of the patient
    restricted_by: str | None  # the client that set the current research restriction, if any
    restricted_by_portal: bool


def treats(client: Client, patient: PatientRecord) -> bool:
    return client.kind is ClientKind.PORTAL or client.id in patient.treating | patient.recorded_by


def may_read(client: Client, patient: PatientRecord) -> bool:
    return treats(client, patient)


def may_write(client: Client, patient: PatientRecord) -> bool:
    """Whether the client may record a version at all: the same clients as may read, whether
    or not a version exists yet (so the answer tells nothing about one)."""
    return treats(client, patient)


def lifts_restriction_without_right(
    client: Client, patient: PatientRecord, research_use: ResearchUse
) -> bool:
    """True if this version would lift a research restriction the client may not lift."""
    if research_use is not ResearchUse.ALLOWED or patient.restricted_by is None:
        return False
    if client.kind is ClientKind.PORTAL:
        return False
    return patient.restricted_by_portal or patient.restricted_by != client.id


def client_of(client_id: str, portal_clients: frozenset[str]) -> Client:
    """The authenticated client, as the decisions see it: the portal, or a hospital."""
    kind = ClientKind.PORTAL if client_id in portal_clients else ClientKind.HOSPITAL
    return Client(client_id, kind)


def patient_record(
    *,
    treating: frozenset[str],
    recorders: frozenset[str] | None,
    restricting: Sequence[str],
    portal_clients: frozenset[str],
) -> PatientRecord:
    """The patient as the decisions need it; ``recorders`` is None while no version exists.

    ``restricting``: the clients that recorded the current research restriction, oldest first
    (every restricted version since the last one that allowed research use). The first started
    it; the portal confirming it later makes it the patient's own.
    """
    if recorders is None:
        return PatientRecord(False, frozenset(), treating, None, False)
    return PatientRecord(
        has_versions=True,
        recorded_by=recorders,
        treating=treating,
        restricted_by=restricting[0] if restricting else None,
        restricted_by_portal=any(client in portal_clients for client in restricting),
    )
