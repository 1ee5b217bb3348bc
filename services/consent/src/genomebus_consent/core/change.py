"""What a consent change does: the patient's next version, or the reason it is refused.

A change is a full version (``ConsentFacts``) or a change of research use alone, applied to the
current version. Decided in this order, so a refusal never tells more than it may: a client that
may not write learns nothing about the patient's consent; then the version must keep the rules;
then a research restriction is lifted only by whoever may lift it.
"""

from __future__ import annotations

from genomebus_common.contracts.identifiers import InvalidNationalId, Pseudonymiser, parse_cpr

from .access import Client, PatientRecord, lifts_restriction_without_right, may_write
from .errors import NOT_FOUND, ConsentNotFound, ConsentRejected, Refused, RestrictionNotYours
from .model import ConsentFacts, ResearchUseChange, rule_violations

Change = ConsentFacts | ResearchUseChange


def pseudonym_of(national_id: str, pseudonymiser: Pseudonymiser) -> str:
    """Check the national id and replace it by the patient's pseudonym (shared with ingest)."""
    try:
        checked = parse_cpr(national_id)
    except InvalidNationalId as exc:
        raise ConsentRejected([f"national_id: {exc}"]) from None
    return pseudonymiser.pseudonym(checked)


def check_request(change: Change) -> None:
    """Refuse a full version that breaks a rule before anything is looked up or locked."""
    if isinstance(change, ConsentFacts) and (problems := rule_violations(change)):
        raise ConsentRejected(problems)


def next_facts(
    change: Change, current: ConsentFacts | None, *, who: Client, patient: PatientRecord
) -> ConsentFacts:
    """The content of the patient's next version; raises ``Refused`` (logged as refused) or
    ``ConsentRejected`` (an invalid change)."""
    if not may_write(who, patient):
        raise Refused(ConsentNotFound(NOT_FOUND))
    facts = change if isinstance(change, ConsentFacts) else change.apply(current)
    if problems := rule_violations(facts):
        raise ConsentRejected(problems)
    if lifts_restriction_without_right(who, patient, facts.research_use):
        raise Refused(
            RestrictionNotYours(
                "the patient restricted research use; only the patient (through the "
                "citizens' portal) or the hospital that recorded the restriction may lift it"
            )
        )
    return facts
