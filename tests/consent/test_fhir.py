"""FHIR Consent mapping without infrastructure: codes are checked, refusals name the element."""

from __future__ import annotations

import pytest

from genomebus_common.contracts.events import ResearchUse, SecondaryFindings
from genomebus_consent.core.errors import ConsentRejected
from genomebus_consent.core.fhir import ACT_REASON, SCOPE_SYSTEM, from_fhir
from genomebus_consent.core.model import ConsentFacts, ResearchUseChange

from .fhir_data import research_deny_consent

CPR = "070761-4285"


def rejected(resource: dict) -> list[str]:
    with pytest.raises(ConsentRejected) as caught:
        from_fhir(resource, client="RH")
    assert CPR not in str(caught.value) and CPR.replace("-", "") not in str(caught.value)
    return caught.value.reasons


def test_research_deny_maps_to_own_treatment_only() -> None:
    asked = from_fhir(research_deny_consent(CPR), client="RH")
    assert asked.national_id == CPR
    assert CPR not in repr(asked)
    facts = asked.change
    assert isinstance(facts, ConsentFacts)
    assert facts.analysis_consent_given and not facts.withdrawn
    assert facts.research_use == ResearchUse.OWN_TREATMENT_ONLY
    assert facts.secondary_findings == SecondaryFindings.DO_NOT_REPORT
    assert facts.consent_document == "https://ehr.rh.example/documents/consent-0042.pdf"
    assert facts.consent_date is not None and facts.consent_date.utcoffset() is not None
    assert facts.recorded_by == "Dr. B. Hansen"


def test_research_permit_and_withdrawal() -> None:
    permit = research_deny_consent(CPR)
    permit["provision"]["provision"][0]["type"] = "permit"
    assert from_fhir(permit, client="RH").change.research_use == ResearchUse.ALLOWED

    withdrawal = research_deny_consent(CPR, status="inactive")
    facts = from_fhir(withdrawal, client="RH").change
    assert isinstance(facts, ConsentFacts)
    assert facts.withdrawn and not facts.analysis_consent_given


def test_research_scope_changes_research_use_alone() -> None:
    resource = research_deny_consent(
        CPR,
        scope={"coding": [{"system": SCOPE_SYSTEM, "code": "research"}]},
        provision={"type": "permit"},
    )
    change = from_fhir(resource, client="portal").change
    assert isinstance(change, ResearchUseChange) and change.research_use == ResearchUse.ALLOWED


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"scope": {"coding": [{"system": SCOPE_SYSTEM, "code": "adr"}]}},
            "Consent.scope.coding[0].code",
        ),
        ({"status": "draft"}, "Consent.status"),
        ({"status": "entered-in-error"}, "Consent.status"),
        (
            {"category": [{"coding": [{"system": "http://loinc.org", "code": "1-1"}]}]},
            "Consent.category",
        ),
        (
            {"patient": {"identifier": {"system": "urn:oid:1.2.208.176.1.1", "value": CPR}}},
            "Consent.patient.identifier.system",
        ),
        (
            {
                "provision": {
                    "type": "permit",
                    "provision": [
                        {"type": "deny", "purpose": [{"system": ACT_REASON, "code": "XYZ"}]}
                    ],
                }
            },
            "Consent.provision.provision[0].purpose[0]",
        ),
        ({"provision": {"type": "maybe"}}, "Consent.provision.type"),
        ({"sourceAttachment": None}, "Consent.sourceAttachment|sourceReference"),
        ({"dateTime": None}, "Consent.dateTime"),
        (
            {"extension": []},
            "Consent.extension(https://genomebus.dk/fhir/StructureDefinition/consent/secondary-findings)",
        ),
    ],
)
def test_a_code_not_accepted_is_refused_naming_the_element(change: dict, named: str) -> None:
    resource = {k: v for k, v in {**research_deny_consent(CPR), **change}.items() if v is not None}
    reasons = rejected(resource)
    assert any(r.startswith(named + ":") for r in reasons), reasons


def test_structure_errors_and_non_consents_are_refused() -> None:
    assert rejected({"resourceType": "Patient"})[0].startswith("resourceType:")
    reasons = rejected({"resourceType": "Consent", "status": "active"})
    assert any(r.startswith("Consent.scope") for r in reasons), reasons
    assert any(r.startswith("Consent.category") for r in reasons), reasons
