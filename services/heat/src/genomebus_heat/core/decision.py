"""The control rule, pure: from heat demand, research backlog age and the current ceiling to a
new ceiling and the reason for it. No I/O, so every rule below is tested on synthetic series.

In order of precedence:

1. Wait bound. When the oldest research sample still waiting is at least ``escalate_after_s``
   old, the ceiling goes to the maximum at once, whatever the heat demand: reusing heat is a
   bonus, a research sample waiting past its limit is a broken promise. An escalation also
   restarts the hysteresis window, so capacity is not withdrawn the moment the backlog drains.
2. Bounds. A ceiling outside [min, max] (or none at all) is corrected at once.
3. No forecast for now: hold the ceiling (a guess in either direction is worse than standing
   still, and rule 1 still guards the wait).
4. Demand. The target is ``min + demand x (max - min)``, rounded. It must move further than
   rounding plus ``deadband_replicas`` from the current ceiling, and the last change (or
   escalation) must be at least ``hold_s`` ago. Then the ceiling rises straight to the target
   (heat is wanted now) but falls one replica per window, because a lower ceiling can stop a
   pod that is hours into an alignment, and that work is redone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from .demand import Forecast


@dataclass(frozen=True)
class Bounds:
    """What the ceiling may be and how fast it may move."""

    min_replicas: int
    max_replicas: int
    escalate_after_s: float
    hold_s: float = 900.0
    deadband_replicas: float = 0.25

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"need 1 <= min <= max, got {self.min_replicas}..{self.max_replicas}")
        if self.hold_s < 0 or not 0 <= self.deadband_replicas < 1 or self.escalate_after_s < 0:
            raise ValueError("hold_s, escalate_after_s must be >= 0 and deadband in [0, 1)")

    def clamp(self, ceiling: int) -> int:
        return min(self.max_replicas, max(self.min_replicas, ceiling))


@dataclass(frozen=True)
class Decision:
    """The ceiling to have and why; ``restart_hold`` says the hysteresis window starts now."""

    ceiling: int
    reason: str
    demand: float | None = None
    escalated: bool = False
    restart_hold: bool = False


def _round_half_up(x: float) -> int:
    """Python's round() goes to even (2.5 -> 2); a controller should not depend on parity."""
    return math.floor(x + 0.5)


def decide(
    now: datetime,
    forecast: Forecast | None,
    oldest_wait_s: float | None,
    current_ceiling: int | None,
    bounds: Bounds,
    *,
    last_change_at: datetime | None = None,
) -> Decision:
    """The ceiling for this round (see the module docstring for the rule)."""
    lo, hi = bounds.min_replicas, bounds.max_replicas
    demand = forecast.demand_at(now) if forecast is not None else None

    if oldest_wait_s is not None and oldest_wait_s >= bounds.escalate_after_s:
        action = "staying at maximum" if current_ceiling == hi else f"{current_ceiling} -> {hi}"
        return Decision(
            hi,
            f"oldest waiting research sample is {oldest_wait_s:.0f}s old (escalation at "
            f"{bounds.escalate_after_s:.0f}s): {action}, regardless of heat demand",
            demand,
            escalated=True,
            restart_hold=True,
        )

    target_exact = None if demand is None else lo + demand * (hi - lo)
    target = None if target_exact is None else _round_half_up(target_exact)

    if current_ceiling is None or not lo <= current_ceiling <= hi:
        if target is not None:
            new, why = bounds.clamp(target), f"heat demand {demand:.2f}"
        elif current_ceiling is None:
            new, why = hi, "no heat forecast for now, so not starving research"
        else:
            new, why = bounds.clamp(current_ceiling), "no heat forecast for now"
        was = "no ceiling set" if current_ceiling is None else f"ceiling {current_ceiling}"
        return Decision(
            new,
            f"{was}, outside bounds {lo}..{hi}: set to {new} ({why})",
            demand,
            restart_hold=True,
        )

    if target is None or target_exact is None or demand is None:
        return Decision(current_ceiling, "no heat forecast covers now: holding", None)

    if target == current_ceiling:
        return Decision(
            current_ceiling, f"heat demand {demand:.2f}: target {target} already set", demand
        )
    if abs(target_exact - current_ceiling) < 0.5 + bounds.deadband_replicas:
        return Decision(
            current_ceiling,
            f"heat demand {demand:.2f}: target {target_exact:.2f} within the deadband of "
            f"{current_ceiling}: holding",
            demand,
        )
    if last_change_at is not None:
        since = (now - last_change_at).total_seconds()
        if since < bounds.hold_s:
            return Decision(
                current_ceiling,
                f"heat demand {demand:.2f} wants {target}, but the last change or escalation "
                f"was {since:.0f}s ago (hysteresis window {bounds.hold_s:.0f}s): holding",
                demand,
            )
    if target > current_ceiling:
        return Decision(
            target,
            f"heat demand {demand:.2f}: raising {current_ceiling} -> {target}",
            demand,
            restart_hold=True,
        )
    new = current_ceiling - 1
    return Decision(
        new,
        f"heat demand {demand:.2f} wants {target}: lowering {current_ceiling} -> {new} "
        "(one step per window)",
        demand,
        restart_hold=True,
    )
