"""The control rule on synthetic series: bounds, the wait bound, hysteresis, demand direction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genomebus_heat.core.decision import Bounds, Decision, decide
from genomebus_heat.core.demand import Forecast

T0 = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
BOUNDS = Bounds(min_replicas=1, max_replicas=6, escalate_after_s=3600, hold_s=900)


def flat(demand: float, capacity: float = 100.0) -> Forecast:
    """A forecast with one demand (0..1 of capacity) for the whole day around T0."""
    starts = tuple(T0 + timedelta(hours=h) for h in range(-1, 48))
    return Forecast(starts, tuple(demand * capacity for _ in starts), capacity)


bounds_st = st.builds(
    lambda lo, span, esc, hold, db: Bounds(lo, min(6, lo + span), esc, hold, db),
    st.integers(1, 6),
    st.integers(0, 5),
    st.floats(0, 48 * 3600),
    st.floats(0, 3 * 3600),
    st.floats(0, 0.9),
)
demand_st = st.none() | st.floats(0, 1.5)  # above 1: demand beyond capacity, clamped
wait_st = st.none() | st.floats(0, 72 * 3600)
ceiling_st = st.none() | st.integers(-2, 12)


@given(bounds_st, demand_st, wait_st, ceiling_st, st.none() | st.floats(0, 7200))
def test_ceiling_is_always_within_bounds(
    bounds: Bounds,
    demand: float | None,
    wait: float | None,
    current: int | None,
    changed_ago: float | None,
) -> None:
    last = None if changed_ago is None else T0 - timedelta(seconds=changed_ago)
    forecast = None if demand is None else flat(demand)
    d = decide(T0, forecast, wait, current, bounds, last_change_at=last)
    assert bounds.min_replicas <= d.ceiling <= bounds.max_replicas
    assert d.reason


@given(bounds_st, demand_st, st.floats(0, 48 * 3600), ceiling_st, st.none() | st.floats(0, 7200))
def test_over_age_backlog_always_gets_the_maximum(
    bounds: Bounds,
    demand: float | None,
    extra: float,
    current: int | None,
    changed_ago: float | None,
) -> None:
    last = None if changed_ago is None else T0 - timedelta(seconds=changed_ago)
    forecast = None if demand is None else flat(demand)
    wait = bounds.escalate_after_s + extra
    d = decide(T0, forecast, wait, current, bounds, last_change_at=last)
    assert d.ceiling == bounds.max_replicas
    assert d.escalated and d.restart_hold  # an escalation also restarts the window


def test_escalation_ignores_the_hysteresis_window_and_zero_demand() -> None:
    d = decide(T0, flat(0.0), 3600.0, 1, BOUNDS, last_change_at=T0 - timedelta(seconds=5))
    assert d.ceiling == 6 and d.escalated
    assert "regardless of heat demand" in d.reason


def test_young_backlog_does_not_escalate() -> None:
    d = decide(T0, flat(0.0), 3599.0, 1, BOUNDS)
    assert d.ceiling == 1 and not d.escalated


@given(
    bounds_st, st.floats(0, 1), st.floats(0, 1), st.integers(1, 6), st.none() | st.floats(0, 7200)
)
def test_more_demand_never_means_less_research_capacity(
    bounds: Bounds,
    d1: float,
    d2: float,
    current: int,
    changed_ago: float | None,
) -> None:
    low, high = sorted((d1, d2))
    current = bounds.clamp(current)
    last = None if changed_ago is None else T0 - timedelta(seconds=changed_ago)
    a = decide(T0, flat(low), None, current, bounds, last_change_at=last)
    b = decide(T0, flat(high), None, current, bounds, last_change_at=last)
    assert a.ceiling <= b.ceiling


def test_high_demand_raises_straight_to_the_target() -> None:
    d = decide(T0, flat(1.0), None, 2, BOUNDS)
    assert d.ceiling == 6 and "raising 2 -> 6" in d.reason


def test_low_demand_lowers_one_step_per_window() -> None:
    d = decide(T0, flat(0.0), None, 6, BOUNDS)
    assert d.ceiling == 5 and d.restart_hold
    # Within the window nothing moves; after it, the next step.
    held = decide(T0 + timedelta(seconds=899), flat(0.0), None, 5, BOUNDS, last_change_at=T0)
    assert held.ceiling == 5 and "hysteresis" in held.reason
    later = decide(T0 + timedelta(seconds=900), flat(0.0), None, 5, BOUNDS, last_change_at=T0)
    assert later.ceiling == 4


def test_demand_maps_linearly_between_min_and_max() -> None:
    # 1 + 0.5 x 5 = 3.5 -> 4 (half up, not to even)
    assert decide(T0, flat(0.5), None, None, BOUNDS).ceiling == 4
    assert decide(T0, flat(0.0), None, None, BOUNDS).ceiling == 1
    assert decide(T0, flat(1.0), None, None, BOUNDS).ceiling == 6
    assert decide(T0, flat(3.0), None, None, BOUNDS).ceiling == 6  # beyond capacity


def test_deadband_keeps_a_ceiling_the_target_only_just_leaves() -> None:
    # target 1 + 0.34 x 5 = 2.7 rounds to 3, but is within 0.5 + 0.25 of 2: hold.
    held = decide(T0, flat(0.34), None, 2, BOUNDS)
    assert held.ceiling == 2 and "deadband" in held.reason
    # 1 + 0.37 x 5 = 2.85: beyond the deadband, raise.
    assert decide(T0, flat(0.37), None, 2, BOUNDS).ceiling == 3
    # Same the other way: 1.3 stays at 2, 1.15 goes down.
    assert decide(T0, flat(0.06), None, 2, BOUNDS).ceiling == 2
    assert decide(T0, flat(0.03), None, 2, BOUNDS).ceiling == 1


def test_no_forecast_holds_and_unknown_ceiling_gets_the_maximum() -> None:
    assert decide(T0, None, None, 3, BOUNDS).ceiling == 3
    assert decide(T0, None, 10.0, None, BOUNDS).ceiling == 6
    stale = Forecast((T0 - timedelta(hours=3),), (100.0,), 100.0)
    d = decide(T0, stale, None, 2, BOUNDS)
    assert d.ceiling == 2 and d.demand is None and "no heat forecast" in d.reason


def test_out_of_bounds_ceiling_is_corrected_inside_the_window() -> None:
    d = decide(T0, flat(1.0), None, 10, BOUNDS, last_change_at=T0)
    assert d.ceiling == 6 and "outside bounds" in d.reason
    d = decide(T0, None, None, 0, BOUNDS, last_change_at=T0)
    assert d.ceiling == 1


def test_bounds_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        Bounds(0, 6, 10)
    with pytest.raises(ValueError):
        Bounds(4, 3, 10)


@settings(max_examples=200)
@given(
    bounds_st,
    st.lists(
        st.tuples(st.floats(1, 1800), st.floats(0, 1), st.none() | st.floats(0, 72 * 3600)),
        min_size=2,
        max_size=60,
    ),
)
def test_no_demand_change_within_the_hysteresis_window(
    bounds: Bounds,
    series: list[tuple[float, float, float | None]],
) -> None:
    """Run the controller over a random series, keeping its state as the ScaledObject would.
    Every change not forced by the wait bound comes at least hold_s after the last change or
    escalation, so the ceiling cannot flap on a jittery forecast."""
    now = T0
    current: int | None = bounds.max_replicas
    hold_from: datetime | None = None
    for step_s, demand, wait in series:
        now += timedelta(seconds=step_s)
        d: Decision = decide(now, flat(demand), wait, current, bounds, last_change_at=hold_from)
        if d.ceiling != current and not d.escalated:
            assert hold_from is None or (now - hold_from).total_seconds() >= bounds.hold_s
            if current is not None and d.ceiling < current:
                assert d.ceiling == current - 1  # down one step at a time
        if d.ceiling != current:
            assert d.restart_hold
        if d.restart_hold:
            hold_from = now
        current = d.ceiling
