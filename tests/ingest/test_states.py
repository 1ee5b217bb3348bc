"""The sample's state machine: every step from every state, allowed or refused, written out
here independently of the table in ``core.states``."""

from __future__ import annotations

import itertools

import pytest

from genomebus_ingest.core.states import (
    HOLDS_NO_OBJECTS,
    INITIAL,
    TRANSITIONS,
    SampleStatus,
    Step,
    allows,
    sources,
    takes_reads,
    target,
)

S = SampleStatus

#: (step, the states it may start from, where it leads): the specification.
EXPECTED: dict[Step, tuple[set[SampleStatus], SampleStatus]] = {
    Step.TAKE_READS: ({S.AWAITING_READS}, S.AWAITING_READS),
    Step.PASS_CHECK: ({S.AWAITING_READS}, S.AWAITING_CONSENT),
    Step.REJECT: ({S.AWAITING_READS}, S.REJECTED),
    Step.HOLD: ({S.AWAITING_CONSENT}, S.AWAITING_CONSENT),
    Step.RELEASE: ({S.AWAITING_CONSENT}, S.RECEIVED),
    Step.QUARANTINE: ({S.AWAITING_CONSENT}, S.QUARANTINED),
    Step.REMOVE: (set(S) - {S.REMOVED}, S.REMOVED),
}


def test_every_step_is_specified() -> None:
    assert set(TRANSITIONS) == set(Step) == set(EXPECTED)


@pytest.mark.parametrize(("status", "step"), list(itertools.product(S, Step)))
def test_each_step_from_each_state(status: SampleStatus, step: Step) -> None:
    allowed_from, leads_to = EXPECTED[step]
    assert allows(status, step) is (status in allowed_from)
    assert target(step) is leads_to
    assert sources(step) == allowed_from


def test_nothing_leaves_a_final_state_but_a_removal() -> None:
    for final in (S.RECEIVED, S.REJECTED, S.QUARANTINED):
        assert [step for step in Step if allows(final, step)] == [Step.REMOVE]
    assert not any(allows(S.REMOVED, step) for step in Step)


def test_only_a_sample_awaiting_reads_takes_them() -> None:
    assert [s for s in S if takes_reads(s)] == [S.AWAITING_READS]
    assert INITIAL is S.AWAITING_READS


def test_the_states_without_objects_are_the_rejected_and_the_removed() -> None:
    assert {S.REJECTED, S.REMOVED} == HOLDS_NO_OBJECTS


def test_the_sql_guards_name_the_states_literally() -> None:
    """The partial index on awaiting_consent serves only a predicate that names the state in the
    SQL text; the guards are generated from the table, so pin what they generate."""
    from genomebus_ingest.adapters.postgres import _may

    assert _may(Step.RELEASE) == "status IN ('awaiting_consent')"
    assert _may(Step.QUARANTINE, "s.status") == "s.status IN ('awaiting_consent')"
    assert _may(Step.TAKE_READS) == "status IN ('awaiting_reads')"
    assert "'removed'" not in _may(Step.REMOVE)
