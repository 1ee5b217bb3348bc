"""What a consent or a check decides for one sample."""

from __future__ import annotations

import pytest

from genomebus_common.contracts.events import Priority, ResearchUse
from genomebus_ingest.core.decisions import (
    Consent,
    Verdict,
    consent_decides,
    decide_consent,
    is_newer,
    judge_reads,
)
from genomebus_ingest.core.fastq import FastqReport
from genomebus_ingest.core.states import Step


def consent(
    *,
    given: bool = True,
    withdrawn: bool = False,
    research_use: ResearchUse | None = ResearchUse.ALLOWED,
    version: int = 3,
) -> Consent:
    return Consent(version, given, withdrawn, research_use)


@pytest.mark.parametrize("priority", list(Priority))
def test_without_a_written_consent_every_sample_waits(priority: Priority) -> None:
    for held in (None, consent(given=False)):
        decision = decide_consent(held, priority)
        assert decision.verdict is Verdict.WAIT and decision.step is None
        assert not decision.moves_on and not consent_decides(held)


@pytest.mark.parametrize("given", [True, False])
@pytest.mark.parametrize("priority", list(Priority))
def test_a_withdrawal_quarantines_whatever_else_the_consent_says(
    given: bool, priority: Priority
) -> None:
    decision = decide_consent(consent(given=given, withdrawn=True), priority)
    assert decision.verdict is Verdict.QUARANTINE and decision.step is Step.QUARANTINE
    assert decision.reasons == ("consent withdrawn (version 3): never processed",)
    assert decision.moves_on


@pytest.mark.parametrize("research_use", [ResearchUse.OWN_TREATMENT_ONLY, None])
def test_a_research_sample_is_held_unless_research_use_is_allowed(
    research_use: ResearchUse | None,
) -> None:
    decision = decide_consent(consent(research_use=research_use), Priority.RESEARCH)
    assert decision.verdict is Verdict.HOLD and decision.step is Step.HOLD
    assert "consent version 3" in decision.reasons[0] and not decision.moves_on
    allowed = decide_consent(consent(research_use=ResearchUse.ALLOWED), Priority.RESEARCH)
    assert allowed.verdict is Verdict.RELEASE


@pytest.mark.parametrize("priority", [p for p in Priority if p is not Priority.RESEARCH])
def test_a_clinical_sample_runs_on_a_consent_restricted_to_treatment(priority: Priority) -> None:
    decision = decide_consent(consent(research_use=ResearchUse.OWN_TREATMENT_ONLY), priority)
    assert decision.verdict is Verdict.RELEASE and decision.step is Step.RELEASE
    assert decision.moves_on and decision.reasons == ()


def test_only_a_newer_consent_version_replaces_the_one_held() -> None:
    assert is_newer(None, 1)
    assert is_newer(consent(version=2), 3)
    assert not is_newer(consent(version=3), 3)
    assert not is_newer(consent(version=4), 3)


def test_sound_reads_pass_and_any_problem_rejects_with_all_reasons() -> None:
    assert judge_reads(FastqReport(read_pairs=5)).step is Step.PASS_CHECK
    bad = judge_reads(FastqReport(problems=["R1: record 2: empty sequence", "no reads"]))
    assert bad.verdict is Verdict.REJECT and bad.step is Step.REJECT
    assert bad.reasons == ("R1: record 2: empty sequence", "no reads")
