"""A sample's state machine: which step may move a sample from which state, and to where.

The database adapter guards every UPDATE with the sources listed here (two requests racing for
one sample: only one of them moves it), so this table, not the SQL, says what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class SampleStatus(StrEnum):
    AWAITING_READS = "awaiting_reads"
    AWAITING_CONSENT = "awaiting_consent"  # checked and stored; waits for a written consent
    RECEIVED = "received"  # released into the pipeline
    REJECTED = "rejected"  # bad input: reasons say why; no objects kept
    QUARANTINED = "quarantined"  # the patient has withdrawn: kept, never processed
    REMOVED = "removed"  # the hospital withdrew it: reads deleted, sample.removed published


class Step(StrEnum):
    """What can happen to a sample."""

    TAKE_READS = "take_reads"  # one mate stored (stays awaiting its other mate or the check)
    PASS_CHECK = "pass_check"  # both mates stored and sound: now waits for consent
    REJECT = "reject"  # bad input: the reads go
    HOLD = "hold"  # a research sample of a patient who restricted use: waits, with the reason
    RELEASE = "release"  # into the pipeline, with its SampleReceived
    QUARANTINE = "quarantine"  # the patient withdrew: kept, never processed
    REMOVE = "remove"  # the hospital withdrew it


@dataclass(frozen=True)
class Transition:
    sources: frozenset[SampleStatus]
    target: SampleStatus


_ALL = frozenset(SampleStatus)
S = SampleStatus

#: Where a registered sample starts.
INITIAL = S.AWAITING_READS

TRANSITIONS: MappingProxyType[Step, Transition] = MappingProxyType(
    {
        Step.TAKE_READS: Transition(frozenset({S.AWAITING_READS}), S.AWAITING_READS),
        Step.PASS_CHECK: Transition(frozenset({S.AWAITING_READS}), S.AWAITING_CONSENT),
        Step.REJECT: Transition(frozenset({S.AWAITING_READS}), S.REJECTED),
        Step.HOLD: Transition(frozenset({S.AWAITING_CONSENT}), S.AWAITING_CONSENT),
        Step.RELEASE: Transition(frozenset({S.AWAITING_CONSENT}), S.RECEIVED),
        Step.QUARANTINE: Transition(frozenset({S.AWAITING_CONSENT}), S.QUARANTINED),
        # Removal is always possible, once.
        Step.REMOVE: Transition(_ALL - {S.REMOVED}, S.REMOVED),
    }
)

#: States whose sample keeps no objects: their reads are gone (or were never kept).
HOLDS_NO_OBJECTS = frozenset({S.REJECTED, S.REMOVED})


def sources(step: Step) -> frozenset[SampleStatus]:
    """The states ``step`` may start from."""
    return TRANSITIONS[step].sources


def target(step: Step) -> SampleStatus:
    return TRANSITIONS[step].target


def allows(status: SampleStatus, step: Step) -> bool:
    return status in TRANSITIONS[step].sources


def takes_reads(status: SampleStatus) -> bool:
    return allows(status, Step.TAKE_READS)
