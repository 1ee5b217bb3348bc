"""FHIR R4 Consent resources as a hospital EHR sends them."""

from __future__ import annotations

from typing import Any

from genomebus_consent.core.fhir import (
    ACT_REASON,
    CPR_SYSTEM,
    EXT_RECORDED_BY,
    EXT_SECONDARY_FINDINGS,
    LOINC,
    SCOPE_SYSTEM,
)


def research_deny_consent(national_id: str, **overrides: Any) -> dict[str, Any]:
    """Active treatment consent to the analysis; research use denied (own treatment only)."""
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": "treatment"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": {"identifier": {"system": CPR_SYSTEM, "value": national_id}},
        "dateTime": "2026-03-02T10:15:00+01:00",
        "sourceAttachment": {
            "contentType": "application/pdf",
            "url": "https://ehr.rh.example/documents/consent-0042.pdf",
            "title": "Samtykke til genomanalyse",
        },
        "extension": [
            {"url": EXT_SECONDARY_FINDINGS, "valueCode": "do_not_report"},
            {"url": EXT_RECORDED_BY, "valueString": "Dr. B. Hansen"},
        ],
        "provision": {
            "type": "permit",
            "provision": [{"type": "deny", "purpose": [{"system": ACT_REASON, "code": "HRESCH"}]}],
        },
    }
    resource.update(overrides)
    return resource
