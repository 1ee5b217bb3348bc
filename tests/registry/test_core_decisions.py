"""The registry's decisions without PostgreSQL: what a load does with its blocks at commit, how
loads and removals are audited, who may ask what, and how a sample's energy is summed up."""

from __future__ import annotations

import pytest

from genomebus_common.contracts.events import EnergyEstimate
from genomebus_registry.core import access
from genomebus_registry.core.access import Caller, ConsentForbids, PatientNotFound, RoleForbidden
from genomebus_registry.core.consent import ConsentState
from genomebus_registry.core.energy import ALIGNMENT, CALLING, sample_energy
from genomebus_registry.core.loading import (
    BlocksStep,
    blocks_at_commit,
    load_audit,
    ready_event_id,
    removal_outcome,
)

RESEARCHER = Caller("researcher", "research", None, "study")
HOSPITAL = Caller("rh-lis", "hospital", "RH", "care")
PORTAL = Caller("citizen-portal", "portal", None, "own log")


@pytest.mark.parametrize(
    ("forbids", "written", "step"),
    [
        (None, False, BlocksStep.WRITE),  # consent came back after the early look
        ("consent withdrawn (version 2)", True, BlocksStep.DELETE),  # withdrawn meanwhile
        (None, True, BlocksStep.KEEP),
        ("consent withdrawn (version 2)", False, BlocksStep.KEEP),
    ],
)
def test_the_consent_at_commit_decides_the_blocks(
    forbids: str | None, written: bool, step: BlocksStep
) -> None:
    assert blocks_at_commit(forbids, written=written) is step


def test_a_load_is_audited_as_loaded_or_quarantined_with_the_reason() -> None:
    assert load_audit(None) == ("sample.loaded", "loaded")
    why = ConsentState(3, True, "allowed", True).forbids_use
    assert why == "consent withdrawn (version 3)"
    assert load_audit(why) == ("sample.quarantined", why)


def test_a_removal_says_whether_it_removed_found_removed_or_never_saw() -> None:
    assert removal_outcome(marked=True, known=True) == "removed"
    assert removal_outcome(marked=False, known=True) == "already_removed"
    assert removal_outcome(marked=False, known=False) == "not_loaded_here"


def test_a_sample_and_its_vcf_are_announced_under_one_id() -> None:
    first = ready_event_id("S-1", "ab" * 32)
    assert first == ready_event_id("S-1", "ab" * 32)
    assert first != ready_event_id("S-1", "cd" * 32)
    assert first != ready_event_id("S-2", "ab" * 32)


def test_each_role_is_refused_what_is_not_its_own() -> None:
    assert access.research_refusal(RESEARCHER) is None
    for caller in (HOSPITAL, PORTAL):
        refused = access.research_refusal(caller)
        assert refused is not None and isinstance(refused.error, RoleForbidden)
        assert refused.outcome == "denied: role_forbidden" and refused.patients == []
    assert access.treating_hospital_refusal(HOSPITAL, "the patient view") is None
    no_hospital = Caller("lis", "hospital", None, "care")
    refused = access.treating_hospital_refusal(no_hospital, "the patient view")
    assert (
        refused is not None and str(refused.error) == "the patient view is for treating hospitals"
    )
    assert access.portal_refusal(PORTAL) is None
    assert access.portal_refusal(HOSPITAL) is not None


def test_another_hospital_is_told_not_found() -> None:
    refused = access.not_treating(HOSPITAL, "pk1_x")
    assert isinstance(refused.error, PatientNotFound)
    assert refused.outcome == "denied: patient_not_found"


@pytest.mark.parametrize(
    ("consent", "why"),
    [
        (ConsentState(None, None, None, None), "no consent on record"),
        (ConsentState(2, True, "allowed", True), "consent withdrawn (version 2)"),
        (ConsentState(2, False, "allowed", False), "no analysis consent (version 2)"),
    ],
)
def test_treatment_needs_consent_that_allows_use(consent: ConsentState, why: str) -> None:
    refused = access.treatment_consent_refusal(consent, "pk1_x")
    assert refused is not None and isinstance(refused.error, ConsentForbids)
    assert str(refused.error) == f"the patient's data may not be used: {why}"
    assert refused.patients == ["pk1_x"]  # the refusal is about this patient: audited so


def test_treatment_ignores_research_restrictions() -> None:
    own_treatment_only = ConsentState(4, True, "own_treatment_only", False)
    assert access.treatment_consent_refusal(own_treatment_only, "pk1_x") is None


def test_a_sample_energy_names_the_stages_still_missing() -> None:
    calling = EnergyEstimate(
        method="cpu-time",
        cpu_seconds=3600.0,
        wall_seconds=600.0,
        watts_per_core=10.0,
        kwh=0.01,
        heat_recovery_fraction=0.5,
        heat_recovered_kwh=0.005,
    )
    answer = sample_energy("S-1", {CALLING: calling})
    assert answer.estimate is True
    assert [s.stage for s in answer.stages] == [CALLING]
    assert answer.missing_stages == [ALIGNMENT]
    assert answer.total is not None and answer.total.kwh == pytest.approx(0.01)
    assert sample_energy("S-1", {}).total is None
