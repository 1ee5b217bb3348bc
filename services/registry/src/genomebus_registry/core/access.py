"""Who may ask what: the roles' rules, and the refusals that are audited like answers.

Every question is answered or refused inside one audited transaction, so a refusal is an
``Outcome`` too (with the patients it concerned), never an exception that skips the audit row.
A hospital asking about a patient or sample it did not send is told "not found", never whether
the patient or sample exists elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Never, TypeVar

from genomebus_common.contracts.errors import GenomebusError, PermanentError

from .consent import ConsentState


class PatientNotFound(PermanentError):
    """Not a patient of the caller's hospital (whether or not the patient exists elsewhere)."""

    code = "patient_not_found"


class SampleNotFound(PermanentError):
    """Not a sample of the caller's hospital (whether or not it exists elsewhere)."""

    code = "sample_not_found"


class ConsentForbids(PermanentError):
    """The patient's consent does not allow this use of the data (withdrawn, or none known)."""

    code = "consent_forbids"


class RoleForbidden(PermanentError):
    code = "role_forbidden"


@dataclass(frozen=True)
class Caller:
    """Who asks and why: written into every audit row."""

    client_id: str
    role: str
    hospital_id: str | None
    purpose: str


#: What an answer holds (an AlleleAnswer, a RegionAnswer...).
R = TypeVar("R", covariant=True)


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """What one question ends in: an answer, or a refusal, and the patients it touched."""

    result: R | None
    patients: list[str]
    outcome: str = "answered"
    error: GenomebusError | None = None


def denied(error: GenomebusError, patients: list[str] | None = None) -> Outcome[Never]:
    """A refusal, audited as ``denied: <code>``."""
    return Outcome(None, patients or [], outcome=f"denied: {error.code}", error=error)


def research_refusal(caller: Caller) -> Outcome[Never] | None:
    """Research counts are for research clients only."""
    if caller.role != "research":
        return denied(RoleForbidden("research queries need a research client"))
    return None


def treating_hospital_refusal(caller: Caller, what: str) -> Outcome[Never] | None:
    """A treatment view (``what``) is for a hospital client that names its hospital."""
    if caller.role != "hospital" or not caller.hospital_id:
        return denied(RoleForbidden(f"{what} is for treating hospitals"))
    return None


def portal_refusal(caller: Caller) -> Outcome[Never] | None:
    """A patient's access log is for the citizens' portal only."""
    if caller.role != "portal":
        return denied(RoleForbidden("the access log is for the citizens' portal"))
    return None


def not_treating(caller: Caller, pseudonym: str) -> Outcome[Never]:
    """The hospital sent none of the patient's samples in use: "not found"."""
    return denied(PatientNotFound(f"no patient {pseudonym} among {caller.hospital_id}'s samples"))


def unknown_sample(caller: Caller, sample_id: str) -> Outcome[Never]:
    """The hospital did not send the sample: "not found"."""
    return denied(SampleNotFound(f"no sample {sample_id} among {caller.hospital_id}'s samples"))


def treatment_consent_refusal(consent: ConsentState, pseudonym: str) -> Outcome[Never] | None:
    """The treating hospital's view needs consent on record that allows use: research
    restrictions do not apply (this is the patient's own treatment), a withdrawal does."""
    if consent.version is None or consent.forbids_use:
        why = consent.forbids_use or "no consent on record"
        return denied(ConsentForbids(f"the patient's data may not be used: {why}"), [pseudonym])
    return None
