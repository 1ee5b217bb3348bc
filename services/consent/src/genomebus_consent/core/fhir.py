"""FHIR R4 Consent -> the same consent change the JSON API takes.

Parsed with ``fhir.resources.R4B``: fhir.resources 8 (the pydantic 2 line) ships R5 and R4B,
not R4, and R4B's Consent is R4's element for element (R5 reshaped it). The library checks
structure and data types, not code values, so every code we act on is checked here, and each
refusal names the element (``Consent.scope.coding[0].code``) and what would be accepted.

What is read, and how:

- ``status``: active (consent given), rejected (consent refused), inactive (consent withdrawn).
- ``scope`` (consentscope): ``treatment`` is the consent to the genetic analysis, a full
  version; ``research`` changes research use alone, the rest of the current version carries over.
- ``category``: LOINC 59284-0 (patient consent) or consentcategorycodes ``research``.
- ``patient.identifier``: system urn:oid:1.2.208.176.1.2 (CPR); the value is pseudonymised.
- ``dateTime``: when it was signed. ``sourceAttachment`` (url, else title) or
  ``sourceReference`` (reference, else identifier value): the written document.
- ``provision``: a provision (at any depth) whose ``purpose`` is v3-ActReason HRESCH says
  permit or deny for research; in a research-scope Consent the top provision's type says it.
- extensions ``{EXT}/secondary-findings`` (valueCode report | do_not_report),
  ``{EXT}/recorded-by`` and ``{EXT}/reason`` (valueString); recorded-by falls back to
  ``organization[0].display``, then to the client id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.consent import Consent, ConsentProvision
from pydantic import TypeAdapter, ValidationError

from genomebus_common.contracts.events import ResearchUse, SafeText, SecondaryFindings

from .errors import ConsentRejected
from .model import ConsentFacts, ResearchUseChange, as_aware, rule_violations

CPR_SYSTEM = "urn:oid:1.2.208.176.1.2"
SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
LOINC = "http://loinc.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentcategorycodes"
EXT = "https://genomebus.dk/fhir/StructureDefinition/consent"
EXT_SECONDARY_FINDINGS = f"{EXT}/secondary-findings"
EXT_RECORDED_BY = f"{EXT}/recorded-by"
EXT_REASON = f"{EXT}/reason"

STATUSES = ("active", "rejected", "inactive")
SCOPES = ("treatment", "research")
CATEGORIES = ((LOINC, "59284-0"), (CATEGORY_SYSTEM, "research"))
PURPOSES = ((ACT_REASON, "HRESCH"), (ACT_REASON, "TREAT"))

# Where each of our fields lives in a FHIR Consent: rule violations name the FHIR element.
_FHIR_PATH = {
    "analysis_consent_given": "Consent.status",
    "consent_document": "Consent.sourceAttachment|sourceReference",
    "consent_date": "Consent.dateTime",
    "secondary_findings": f"Consent.extension({EXT_SECONDARY_FINDINGS})",
    "research_use": "Consent.provision (purpose HRESCH)",
    "withdrawn": "Consent.status",
    "recorded_by": f"Consent.extension({EXT_RECORDED_BY})",
    "reason": f"Consent.extension({EXT_REASON})",
    "scope": "Consent.scope",
}
_SAFE = TypeAdapter(SafeText)


@dataclass(frozen=True)
class FhirConsent:
    """What a FHIR Consent asks for: whose consent (national id, unparsed) and which change."""

    national_id: str = field(repr=False)
    change: ConsentFacts | ResearchUseChange


def _shown(value: object) -> str:
    """A submitted value safe to echo: never anything shaped like a national id."""
    text = str(value)[:80]
    try:
        return repr(_SAFE.validate_python(text))
    except ValidationError:
        return "(a value shaped like a national id)"


def _message(text: str) -> str:
    """A parser's message, unless it quotes something shaped like a national id."""
    try:
        return _SAFE.validate_python(text)
    except ValidationError:
        return "invalid value"


def _coding(system: str | None, code: str | None) -> str:
    return f"{_shown(system)}|{_shown(code)}"


def _fhir_field(reason: str) -> str:
    """Rename the leading ``field:`` of a rule violation to the FHIR element it came from."""
    name, sep, rest = reason.partition(":")
    return f"{_FHIR_PATH[name]}:{rest}" if sep and name in _FHIR_PATH else reason


def from_fhir(body: Any, *, client: str) -> FhirConsent:
    """Map a FHIR R4 Consent (parsed JSON) to a consent change, or say everything wrong with it."""
    if not isinstance(body, dict) or body.get("resourceType") != "Consent":
        raise ConsentRejected(["resourceType: must be 'Consent' (a FHIR R4 Consent resource)"])
    try:
        consent = Consent.model_validate(body)
    except ValidationError as exc:
        raise ConsentRejected(
            [
                "Consent."
                + ".".join(str(p) for p in e["loc"] if p != "root")
                + f": {_message(e['msg'])}"
                for e in exc.errors()
            ]
        ) from None

    problems: list[str] = []
    status = _status(consent, problems)
    scope = _scope(consent, problems)
    _category(consent, problems)
    national_id = _national_id(consent, problems)
    research = _research(consent, scope, problems)
    extensions = _extensions(consent, problems)
    if problems:
        raise ConsentRejected(problems)

    recorded_by = extensions.get("recorded_by") or _organisation(consent) or f"{client} (FHIR)"
    if status == "active" and scope == "research" and research is None:
        problems.append(
            "Consent.provision.type: a research-scope Consent must permit or deny (required)"
        )
    if status == "active" and scope == "treatment" and research is None:
        problems.append(
            "Consent.provision: state research use: a provision with purpose "
            f"{ACT_REASON}|HRESCH and type permit or deny"
        )
    if problems:
        raise ConsentRejected(problems)

    research_use = ResearchUse.ALLOWED if research == "permit" else ResearchUse.OWN_TREATMENT_ONLY
    try:
        if scope == "research":
            change: ConsentFacts | ResearchUseChange = ResearchUseChange(
                research_use=research_use if status == "active" else ResearchUse.OWN_TREATMENT_ONLY,
                recorded_by=recorded_by,
                reason=extensions.get("reason"),
            )
        else:
            change = ConsentFacts(
                analysis_consent_given=status == "active",
                consent_document=_document(consent),
                consent_date=_date(consent, problems),
                secondary_findings=_secondary_findings(extensions),
                research_use=research_use,
                withdrawn=status == "inactive",
                recorded_by=recorded_by,
                reason=extensions.get("reason"),
            )
    except ValidationError as exc:
        raise ConsentRejected(
            [
                _fhir_field(f"{e['loc'][0] if e['loc'] else 'body'}: {e['msg']}")
                for e in exc.errors()
            ]
        ) from None
    if problems:
        raise ConsentRejected(problems)
    if isinstance(change, ConsentFacts) and (violations := rule_violations(change)):
        raise ConsentRejected([_fhir_field(v) for v in violations])
    return FhirConsent(national_id=national_id, change=change)


def _status(consent: Consent, problems: list[str]) -> str:
    if consent.status in STATUSES:
        return consent.status
    why = {
        "draft": "a draft is not a decision",
        "proposed": "a proposal is not a decision",
        "entered-in-error": "versions are never removed; record a new version that corrects it",
    }.get(consent.status or "", "not a consent state code")
    problems.append(
        f"Consent.status: {_shown(consent.status)} is not accepted ({why}); accepted: "
        "active (consent given), rejected (consent refused), inactive (consent withdrawn)"
    )
    return ""


def _scope(consent: Consent, problems: list[str]) -> str:
    codings = list(enumerate(consent.scope.coding or []))
    ours = [(i, c) for i, c in codings if c.system == SCOPE_SYSTEM]
    if not ours:
        problems.append(
            f"Consent.scope.coding: needs a coding with system {SCOPE_SYSTEM} "
            f"(code {' or '.join(SCOPES)})"
        )
        return ""
    index, coding = ours[0]
    if coding.code not in SCOPES:
        problems.append(
            f"Consent.scope.coding[{index}].code: {_shown(coding.code)} is not accepted; "
            f"accepted: {', '.join(SCOPES)}"
        )
        return ""
    return coding.code


def _category(consent: Consent, problems: list[str]) -> None:
    seen = [(c.system, c.code) for concept in consent.category or [] for c in concept.coding or []]
    if not any(pair in CATEGORIES for pair in seen):
        got = ", ".join(_coding(s, c) for s, c in seen) or "no coding"
        accepted = ", ".join(f"{s}|{c}" for s, c in CATEGORIES)
        problems.append(f"Consent.category: {got} is not accepted; accepted: {accepted}")


def _national_id(consent: Consent, problems: list[str]) -> str:
    identifier = consent.patient.identifier if consent.patient else None
    if identifier is None:
        problems.append(
            f"Consent.patient.identifier: required, with system {CPR_SYSTEM} (CPR) and the "
            "national id as value"
        )
        return ""
    if identifier.system != CPR_SYSTEM:
        problems.append(
            f"Consent.patient.identifier.system: {_shown(identifier.system)} is not accepted; "
            f"must be {CPR_SYSTEM} (CPR)"
        )
    if not identifier.value:
        problems.append("Consent.patient.identifier.value: required (the CPR number)")
    return identifier.value or ""


def _provisions(
    provision: ConsentProvision | None, path: str
) -> list[tuple[str, ConsentProvision]]:
    if provision is None:
        return []
    found = [(path, provision)]
    for i, nested in enumerate(provision.provision or []):
        found.extend(_provisions(nested, f"{path}.provision[{i}]"))
    return found


def _research(consent: Consent, scope: str, problems: list[str]) -> str | None:
    """'permit' or 'deny' for research, None when the Consent does not say."""
    decisions: set[str] = set()
    for path, provision in _provisions(consent.provision, "Consent.provision"):
        if provision.type not in (None, "permit", "deny"):
            problems.append(
                f"{path}.type: {_shown(provision.type)} is not accepted; accepted: permit, deny"
            )
            continue
        research = False
        for j, coding in enumerate(provision.purpose or []):
            if (coding.system, coding.code) not in PURPOSES:
                accepted = ", ".join(f"{s}|{c}" for s, c in PURPOSES)
                problems.append(
                    f"{path}.purpose[{j}]: {_coding(coding.system, coding.code)} is not "
                    f"accepted; accepted: {accepted}"
                )
            research = research or coding.code == "HRESCH"
        if research:
            if provision.type is None:
                problems.append(f"{path}.type: required on a research provision (permit or deny)")
            else:
                decisions.add(provision.type)
        elif path == "Consent.provision" and scope == "research" and provision.type:
            decisions.add(provision.type)
        elif (
            path == "Consent.provision" and provision.type == "deny" and consent.status == "active"
        ):
            problems.append(
                "Consent.provision.type: 'deny' without a purpose denies the whole consent; send "
                "status 'rejected' to refuse the analysis, or add purpose HRESCH to deny research"
            )
    if len(decisions) > 1:
        problems.append("Consent.provision: both permits and denies research; say one")
        return None
    return decisions.pop() if decisions else None


def _extensions(consent: Consent, problems: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for i, ext in enumerate(consent.extension or []):
        if ext.url == EXT_SECONDARY_FINDINGS:
            if ext.valueCode not in ("report", "do_not_report"):
                problems.append(
                    f"Consent.extension[{i}].valueCode: {_shown(ext.valueCode)} is not accepted "
                    "for secondary findings; accepted: report, do_not_report"
                )
            else:
                found["secondary_findings"] = ext.valueCode
        elif ext.url in (EXT_RECORDED_BY, EXT_REASON):
            if not ext.valueString:
                problems.append(f"Consent.extension[{i}].valueString: required for {ext.url}")
            else:
                found["recorded_by" if ext.url == EXT_RECORDED_BY else "reason"] = ext.valueString
    return found


def _secondary_findings(extensions: dict[str, str]) -> SecondaryFindings | None:
    code = extensions.get("secondary_findings")  # checked by _extensions
    return SecondaryFindings(code) if code else None


def _organisation(consent: Consent) -> str | None:
    organisations = consent.organization or []
    return organisations[0].display if organisations and organisations[0].display else None


def _document(consent: Consent) -> str | None:
    attachment = consent.sourceAttachment
    if attachment is not None:
        return str(attachment.url) if attachment.url else attachment.title
    reference = consent.sourceReference
    if reference is not None:
        return reference.reference or (reference.identifier.value if reference.identifier else None)
    return None


def _date(consent: Consent, problems: list[str]) -> datetime | None:
    # typed as a datetime, but a partial date ("2026", "2026-03") is parsed as a str
    value: object = consent.dateTime
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            problems.append("Consent.dateTime: a time needs a time zone (e.g. +01:00)")
            return None
        return value
    if isinstance(value, date):
        return as_aware(value)
    problems.append("Consent.dateTime: needs at least a full date (YYYY-MM-DD)")
    return None
