"""What one steering round reads from the ScaledObject and what it writes back, decided apart
from the API calls: the bounds (the floor raised to KEDA's own minimum), the decision when the
backlog cannot be measured, and whether and how to patch.

Where the hysteresis window began is kept on the ScaledObject itself (annotation
``genomebus.dk/heat-hold-from``), so a restarted controller, or a second one during a rolling
update, honours the window instead of starting afresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .decision import Bounds, Decision

HOLD_FROM_ANNOTATION = "genomebus.dk/heat-hold-from"
REASON_ANNOTATION = "genomebus.dk/heat-reason"


def parse_time(value: str | None) -> datetime | None:
    """An annotation's time, or None when absent, unreadable or without an offset."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def replica_count(value: Any) -> int | None:
    """A replica count from the ScaledObject's spec; anything but an int (a bool) is none."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Limits:
    """The configured limits of the ceiling and of how fast it moves."""

    min_replicas: int
    max_replicas: int
    escalate_after_s: float
    hold_s: float
    deadband_replicas: float

    def bounds(self, scaled_object_min: int | None) -> Bounds:
        """The bounds, with the floor raised to the ScaledObject's own minimum (KEDA refuses a
        maxReplicaCount below minReplicaCount), but never above the maximum."""
        low = self.min_replicas
        if scaled_object_min is not None and scaled_object_min > low:
            low = min(scaled_object_min, self.max_replicas)
        return Bounds(
            min_replicas=low,
            max_replicas=self.max_replicas,
            escalate_after_s=self.escalate_after_s,
            hold_s=self.hold_s,
            deadband_replicas=self.deadband_replicas,
        )


def unmeasured(bounds: Bounds, error: Exception | None) -> Decision:
    """Unknown backlog: a research sample might be near its wait bound, so err towards capacity
    (KEDA still scales on lag underneath); the round still counts as failed."""
    return Decision(
        ceiling=bounds.max_replicas,
        reason=f"research backlog could not be measured ({error}): ceiling at "
        "the maximum so that no research sample outwaits its bound",
        escalated=True,
        restart_hold=True,
    )


def patch_annotations(
    decision: Decision, current: int | None, now: datetime
) -> dict[str, str] | None:
    """The annotations to patch with the ceiling, or None when the ScaledObject stays as it is
    (the ceiling unchanged and the window not restarted)."""
    if decision.ceiling == current and not decision.restart_hold:
        return None
    annotations = {REASON_ANNOTATION: decision.reason}
    if decision.restart_hold:
        annotations[HOLD_FROM_ANNOTATION] = now.isoformat()
    return annotations


def hold_from(annotations: Mapping[str, str]) -> datetime | None:
    """When the current hysteresis window began, as the ScaledObject records it."""
    return parse_time(annotations.get(HOLD_FROM_ANNOTATION))
