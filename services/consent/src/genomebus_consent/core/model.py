"""What a consent is, the rules a new version must satisfy, and how it becomes an event.

A version is a full snapshot of the patient's choices (sundhedsloven § 29): whether a written
consent to the comprehensive genetic analysis is given (with its document and date), how
secondary findings are handled, and whether the genetic data may be used for research or only
for the patient's own treatment. A withdrawal is a version too. Every entry point (the plain
JSON API, FHIR) ends in ``ConsentFacts`` and passes ``rule_violations``; the rules live here once.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from genomebus_common.contracts.events import (
    ConsentChanged,
    PatientPseudonym,
    Producer,
    ResearchUse,
    SafeText,
    SecondaryFindings,
    new_id,
)

from .errors import ConsentRejected

PRODUCER = Producer(service="consent", version="0.1.0")

ShortText = Annotated[SafeText, Field(min_length=1, max_length=500)]
# A clock a few minutes ahead at a hospital must not make a consent signed "now" invalid.
_CLOCK_SKEW = timedelta(minutes=10)


def as_aware(value: datetime | date) -> datetime:
    """A date alone means that day (kept as midnight UTC, so the calendar day never shifts)."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(0), tzinfo=UTC)


class ConsentFacts(BaseModel):
    """One consent version's content, as stored and published: no national id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    analysis_consent_given: bool = Field(
        description="The patient consented in writing to the comprehensive genetic analysis."
    )
    consent_document: ShortText | None = Field(
        None, description="Reference to the signed consent form (document id or URL)."
    )
    consent_date: datetime | None = Field(
        None, description="When the consent was signed (ISO 8601 with time zone, or a date)."
    )
    secondary_findings: SecondaryFindings | None = Field(
        None, description="Whether secondary (incidental) findings are reported to the patient."
    )
    research_use: ResearchUse = Field(
        description="'allowed', or 'own_treatment_only' when the patient restricts the data."
    )
    withdrawn: bool = Field(False, description="This version withdraws the consent.")
    recorded_by: ShortText = Field(description="Who recorded the change (free text, e.g. a name).")
    reason: ShortText | None = Field(None, description="Why the consent changed.")

    @field_validator("consent_date", mode="before")
    @classmethod
    def _date_or_datetime(cls, value: object) -> object:
        if isinstance(value, str) and len(value) == 10:  # "YYYY-MM-DD": a date alone
            try:
                return as_aware(date.fromisoformat(value))
            except ValueError:
                return value  # let the datetime parser say what is wrong
        if isinstance(value, date) and not isinstance(value, datetime):
            return as_aware(value)
        return value

    @field_validator("consent_date")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("consent_date needs a time zone (e.g. 2026-03-01T10:00:00+01:00)")
        return value

    def facts(self) -> ConsentFacts:
        """The consent content alone, without what a subclass adds (a national id, a version's
        number and provenance)."""
        return ConsentFacts.model_validate(self.model_dump(include=set(ConsentFacts.model_fields)))

    def fingerprint(self, pseudonym: str, source: str) -> str:
        """Identity of a request's content, without the national id: a retry vs a reused key."""
        content = {"facts": self.model_dump(mode="json"), "patient": pseudonym, "source": source}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class RecordConsent(ConsentFacts):
    """A new consent version as a hospital or the citizen portal sends it."""

    national_id: str = Field(
        description="CPR number (DDMMYY-SSSS) or replacement number. Never stored, logged or "
        "echoed: consent turns it into the patient's pseudonym at once.",
        repr=False,
    )


class ResearchUseChange(BaseModel):
    """A change of research use alone (a research-scope FHIR Consent): the rest carries over.

    A version is always a full snapshot, so this is applied to the patient's current version
    under the same lock that assigns the new version number.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    research_use: ResearchUse
    recorded_by: ShortText
    reason: ShortText | None = None

    def apply(self, current: ConsentFacts | None) -> ConsentFacts:
        if current is None:
            reason = (
                "scope: a research-only change needs a recorded consent to change, and this "
                "patient has none yet (record the analysis consent first)"
            )
            raise ConsentRejected([reason])
        return current.model_copy(
            update={
                "research_use": self.research_use,
                "recorded_by": self.recorded_by,
                "reason": self.reason,
            }
        )

    def fingerprint(self, pseudonym: str, source: str) -> str:
        content = {"research": self.model_dump(mode="json"), "patient": pseudonym, "source": source}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def rule_violations(facts: ConsentFacts, *, now: datetime | None = None) -> list[str]:
    """Every rule a version breaks, each naming its field; empty when the version is valid."""
    now = now or datetime.now(UTC)
    problems: list[str] = []
    if facts.withdrawn:
        if facts.analysis_consent_given:
            problems.append(
                "analysis_consent_given: a withdrawal cannot also give analysis consent "
                "(send false)"
            )
        if facts.research_use == ResearchUse.ALLOWED:
            problems.append(
                "research_use: a withdrawn consent allows no research use (send own_treatment_only)"
            )
    elif facts.analysis_consent_given:
        if not facts.consent_document:
            problems.append(
                "consent_document: a written analysis consent needs a reference to the signed "
                "document (sundhedsloven § 29)"
            )
        if facts.consent_date is None:
            problems.append("consent_date: a written analysis consent needs the date it was signed")
        if facts.secondary_findings is None:
            problems.append(
                "secondary_findings: the patient's choice is required with an analysis consent "
                "(report or do_not_report)"
            )
    if facts.consent_date is not None and facts.consent_date > now + _CLOCK_SKEW:
        problems.append("consent_date: lies in the future")
    return problems


class ConsentVersion(ConsentFacts):
    """One recorded version, as the API returns it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    patient_pseudonym: PatientPseudonym
    version: int
    recorded_by_client: str = Field(description="The authenticated client that recorded it.")
    recorded_at: datetime
    source: str = Field(description="'api' or 'fhir': how the version arrived.")
    event_id: uuid.UUID = Field(description="The consent.changed event announcing it.")


class ConsentHistory(BaseModel):
    """A patient's consent, every version oldest first; the last one is in force."""

    patient_pseudonym: PatientPseudonym
    current_version: int
    versions: list[ConsentVersion]


def consent_changed(facts: ConsentFacts, *, pseudonym: str, version: int) -> ConsentChanged:
    """The event announcing a version; one consent change is one journey (its correlation id)."""
    return ConsentChanged(
        # not the pseudonym: its hex may hold ten digits that look like a CPR number
        correlation_id=new_id(f"consent.v{version}."),
        producer=PRODUCER,
        patient_pseudonym=pseudonym,
        version=version,
        analysis_consent_given=facts.analysis_consent_given,
        consent_document=facts.consent_document,
        consent_date=facts.consent_date,
        secondary_findings=facts.secondary_findings,
        research_use=facts.research_use,
        withdrawn=facts.withdrawn,
        recorded_by=facts.recorded_by,
        reason=facts.reason,
    )
