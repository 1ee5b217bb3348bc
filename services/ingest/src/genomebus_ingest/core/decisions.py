"""What a check or a consent means for a sample: release, wait, hold, quarantine or reject.

No sample enters the pipeline without a written analysis consent; a withdrawal quarantines;
consent applies to the purpose, so a research sample runs only if research use is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from genomebus_common.contracts.events import Priority, ResearchUse

from .fastq import FastqReport
from .sample import TraceCarrier
from .states import Step


@dataclass(frozen=True)
class Consent:
    """The newest consent version ingest has seen for a patient."""

    version: int
    analysis_consent_given: bool
    withdrawn: bool
    #: ``None`` for versions recorded before research use was asked: read as restricted.
    research_use: ResearchUse | None
    #: The trace of the consent.changed event it came from: a release links to it.
    trace_context: TraceCarrier | None = None


class Verdict(StrEnum):
    ACCEPT = "accept"  # the reads are sound: the sample waits for consent
    REJECT = "reject"
    WAIT = "wait"  # nothing decides yet
    HOLD = "hold"
    RELEASE = "release"
    QUARANTINE = "quarantine"


_STEP_OF = {
    Verdict.ACCEPT: Step.PASS_CHECK,
    Verdict.REJECT: Step.REJECT,
    Verdict.HOLD: Step.HOLD,
    Verdict.RELEASE: Step.RELEASE,
    Verdict.QUARANTINE: Step.QUARANTINE,
}


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...] = ()

    @property
    def step(self) -> Step | None:
        """The state machine's step this decision takes (``None``: the sample stays)."""
        return _STEP_OF.get(self.verdict)

    @property
    def moves_on(self) -> bool:
        """The sample leaves ``awaiting_consent``: what the sweep looks for."""
        return self.verdict in (Verdict.RELEASE, Verdict.QUARANTINE)


def consent_decides(consent: Consent | None) -> bool:
    """A written consent or a withdrawal is known: the patient's samples can be decided."""
    return consent is not None and (consent.analysis_consent_given or consent.withdrawn)


def is_newer(held: Consent | None, version: int) -> bool:
    """Only a newer version replaces the one held (events may come again, or late)."""
    return held is None or held.version < version


def decide_consent(consent: Consent | None, priority: Priority) -> Decision:
    """What the patient's consent means for one sample awaiting it."""
    if consent is None or not consent_decides(consent):
        return Decision(Verdict.WAIT)  # no written consent yet: the samples wait
    if consent.withdrawn:
        return Decision(
            Verdict.QUARANTINE,
            (f"consent withdrawn (version {consent.version}): never processed",),
        )
    if priority == Priority.RESEARCH and consent.research_use != ResearchUse.ALLOWED:
        # Consent applies to the purpose: held with the reason, never processed, until the
        # patient allows research use (the next consent version decides again).
        return Decision(
            Verdict.HOLD,
            (
                f"held: the patient restricted use to own treatment (consent version "
                f"{consent.version}); a research sample runs only if research use is allowed",
            ),
        )
    return Decision(Verdict.RELEASE)


def judge_reads(report: FastqReport) -> Decision:
    """A sound pair goes on to wait for consent; any problem rejects the sample."""
    if not report.ok:
        return Decision(Verdict.REJECT, tuple(report.problems))
    return Decision(Verdict.ACCEPT)
