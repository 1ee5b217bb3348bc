"""The consent access decisions, pure."""

from __future__ import annotations

from genomebus_common.contracts.events import ResearchUse
from genomebus_consent.core.access import (
    Client,
    ClientKind,
    PatientRecord,
    lifts_restriction_without_right,
    may_read,
    may_write,
)

RH, OUH, PORTAL = (
    Client("RH", ClientKind.HOSPITAL),
    Client("OUH", ClientKind.HOSPITAL),
    Client("portal", ClientKind.PORTAL),
)
NEW = PatientRecord(False, frozenset(), frozenset(), None, False)
REGISTERED_AT_OUH = PatientRecord(False, frozenset(), frozenset({"OUH"}), None, False)
RH_PATIENT = PatientRecord(True, frozenset({"RH"}), frozenset({"RH"}), None, False)
RESTRICTED_BY_RH = PatientRecord(True, frozenset({"RH"}), frozenset(), "RH", False)
RESTRICTED_BY_PATIENT = PatientRecord(
    True, frozenset({"RH", "portal"}), frozenset({"RH"}), "portal", True
)


def test_hospitals_read_and_write_only_for_patients_they_treat() -> None:
    assert not may_write(RH, NEW) and not may_read(RH, NEW)  # registered no sample of the patient
    assert may_write(OUH, REGISTERED_AT_OUH) and not may_write(RH, REGISTERED_AT_OUH)
    assert may_write(RH, RH_PATIENT) and not may_write(OUH, RH_PATIENT)
    assert may_read(RH, RH_PATIENT) and not may_read(OUH, RH_PATIENT)
    assert may_read(PORTAL, RH_PATIENT) and may_write(PORTAL, RH_PATIENT)


def test_who_may_lift_a_research_restriction() -> None:
    allowed = ResearchUse.ALLOWED
    assert not lifts_restriction_without_right(RH, RESTRICTED_BY_RH, allowed)
    assert lifts_restriction_without_right(OUH, RESTRICTED_BY_RH, allowed)
    assert lifts_restriction_without_right(RH, RESTRICTED_BY_PATIENT, allowed)
    assert not lifts_restriction_without_right(PORTAL, RESTRICTED_BY_PATIENT, allowed)
    assert not lifts_restriction_without_right(
        RH, RESTRICTED_BY_PATIENT, ResearchUse.OWN_TREATMENT_ONLY
    )
