"""What a stage's consent view says about a patient, from the versions it has read."""

from __future__ import annotations

import pytest

from genomebus_common.contracts.errors import TransientError
from genomebus_common.contracts.events import ConsentChanged, ResearchUse
from genomebus_common.stagekit.consent_view import ConsentView

from .factories import PSEUDONYM


def version(n: int, *, given: bool = True, withdrawn: bool = False) -> ConsentChanged:
    return ConsentChanged(
        correlation_id=f"C-{n}",
        patient_pseudonym=PSEUDONYM,
        version=n,
        analysis_consent_given=given,
        withdrawn=withdrawn,
        research_use=ResearchUse.OWN_TREATMENT_ONLY if withdrawn else ResearchUse.ALLOWED,
        recorded_by="counsellor",
    )


def test_a_withdrawal_stops_analysis_and_a_new_consent_after_it_allows_it_again() -> None:
    view = ConsentView("unused:9092")
    view.apply(version(1))
    assert view.withdrawn(PSEUDONYM) is None
    view.apply(version(2, given=False, withdrawn=True))
    assert view.withdrawn(PSEUDONYM).version == 2  # type: ignore[union-attr]
    view.apply(version(1))  # a late, older version never overrides
    assert view.withdrawn(PSEUDONYM).version == 2  # type: ignore[union-attr]
    view.apply(version(3))
    assert view.withdrawn(PSEUDONYM) is None


def test_a_consent_rejected_after_it_was_given_stops_analysis_too() -> None:
    """No written analysis consent, no analysis (sundhedsloven § 29): a FHIR "rejected" after
    "active" arrives as analysis_consent_given false without a withdrawal."""
    view = ConsentView("unused:9092")
    view.apply(version(1))
    view.apply(version(2, given=False))
    assert view.withdrawn(PSEUDONYM).version == 2  # type: ignore[union-attr]


async def test_a_view_that_is_not_following_cannot_vouch_for_being_current() -> None:
    with pytest.raises(TransientError, match="not following"):
        await ConsentView("unused:9092").caught_up()


def test_an_event_the_contract_now_refuses_still_counts_for_its_decision() -> None:
    """A withdrawal written before a stricter screen (its reason holds what now looks like a
    national id) must not be skipped by a view reading the topic from the start."""
    import json

    view = ConsentView("unused:9092")
    view.apply(version(1))
    raw = json.loads(version(2, given=False, withdrawn=True).to_bytes())
    raw["reason"] = "patient 0101904ABC withdrew"  # refused by today's contract
    view._read(json.dumps(raw).encode(), offset=7)
    assert view.withdrawn(PSEUDONYM).version == 2  # type: ignore[union-attr]

    view._read(b'{"patient_pseudonym": "someone", "version": 9}', offset=8)  # not sound: skipped
    assert view.latest[PSEUDONYM].version == 2
