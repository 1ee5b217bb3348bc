"""The two ConfigMap formats: the forecast the controller reads, the table it writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genomebus_heat.core.demand import ForecastError, parse_forecast
from genomebus_heat.core.recovery import LABEL, RECOVERY_KEY, fraction_from_label, recovery_table


def cm(points: list[dict[str, object]], capacity: str = "400") -> dict[str, str]:
    return {"forecast.json": json.dumps(points), "capacity_kw": capacity}


def test_forecast_points_hold_until_the_next_and_the_last_for_an_hour() -> None:
    f = parse_forecast(
        cm(
            [
                # Out of order and in two offsets: sorted by instant.
                {"start": "2026-11-26T08:00:00+01:00", "demand_kw": 400},  # 07:00Z
                {"start": "2026-11-26T06:00:00Z", "demand_kw": 100.0},
            ]
        )
    )
    at = lambda h, m=0: datetime(2026, 11, 26, h, m, tzinfo=UTC)  # noqa: E731 - a short clock for the table below
    assert f.demand_at(at(5, 59)) is None  # before the forecast
    assert f.demand_at(at(6)) == 0.25
    assert f.demand_at(at(6, 59)) == 0.25
    assert f.demand_at(at(7)) == 1.0
    assert f.demand_at(at(7, 59)) == 1.0
    assert f.demand_at(at(8)) is None  # the last point has run out: stale


def test_demand_beyond_capacity_is_clamped() -> None:
    f = parse_forecast(cm([{"start": "2026-11-26T06:00:00Z", "demand_kw": 900}]))
    assert f.demand_at(datetime(2026, 11, 26, 6, 30, tzinfo=UTC)) == 1.0


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"capacity_kw": "400"}, "no forecast.json"),
        ({"forecast.json": "[]"}, "no capacity_kw"),
        (cm([], capacity="0"), "above 0"),
        (cm([], capacity="lots"), "not a number"),
        ({"forecast.json": "{", "capacity_kw": "1"}, "not JSON"),
        ({"forecast.json": '{"a": 1}', "capacity_kw": "1"}, "list"),
        (cm([{"start": "2026-11-26T06:00:00", "demand_kw": 1}]), "no UTC offset"),
        (cm([{"start": "tomorrow", "demand_kw": 1}]), "not an ISO time"),
        (cm([{"start": "2026-11-26T06:00:00Z", "demand_kw": -1}]), "negative"),
        (cm([{"start": "2026-11-26T06:00:00Z", "demand_kw": "NaN"}]), "not finite"),
        (cm([{"start": "2026-11-26T06:00:00Z", "demand_kw": True}]), "not a number"),
        (cm([{"start": "2026-11-26T06:00:00Z"}]), "needs start and demand_kw"),
        (
            cm(
                [
                    {"start": "2026-11-26T06:00:00Z", "demand_kw": 1},
                    {"start": "2026-11-26T07:00:00+01:00", "demand_kw": 2},
                ]
            ),
            "second point",
        ),
    ],
)
def test_unusable_forecasts_say_what_is_wrong(data: dict[str, str], complaint: str) -> None:
    with pytest.raises(ForecastError, match=complaint):
        parse_forecast(data)


@given(
    st.lists(
        st.tuples(st.integers(0, 200), st.floats(0, 1e6, allow_nan=False)),
        min_size=1,
        max_size=30,
        unique_by=lambda p: p[0],
    ),
    st.floats(0.1, 1e6),
    st.integers(-60, 260 * 60),
)
def test_normalised_demand_is_always_between_0_and_1(
    points: list[tuple[int, float]],
    capacity: float,
    minute: int,
) -> None:
    t0 = datetime(2026, 11, 26, tzinfo=UTC)
    f = parse_forecast(
        cm(
            [{"start": (t0 + timedelta(hours=h)).isoformat(), "demand_kw": d} for h, d in points],
            capacity=repr(capacity),
        )
    )
    value = f.demand_at(t0 + timedelta(minutes=minute))
    assert value is None or 0.0 <= value <= 1.0


def node(name: str, fraction: str | None = None) -> dict[str, object]:
    labels = {"kubernetes.io/hostname": name} | ({LABEL: fraction} if fraction is not None else {})
    return {"metadata": {"name": name, "labels": labels}}


def test_recovery_table_from_node_labels() -> None:
    table = recovery_table(
        [
            node("water-1", "0.85"),
            node("air-1"),  # unlabelled: no heat reused
            node("typo-1", "0,85"),  # invalid: 0.0 and a problem to log
            node("over-1", "1.7"),  # clamped
            node("under-1", "-0.2"),
            node("nan-1", "nan"),
            node("inf-1", "inf"),
            node("spaces-1", " 0.5 "),
            {"metadata": {"name": "bare-1"}},  # no labels at all
        ]
    )
    assert table.fractions == {
        "water-1": 0.85,
        "air-1": 0.0,
        "typo-1": 0.0,
        "over-1": 1.0,
        "under-1": 0.0,
        "nan-1": 0.0,
        "inf-1": 0.0,
        "spaces-1": 0.5,
        "bare-1": 0.0,
    }
    flagged = {p.split(":")[0] for p in table.problems}
    assert flagged == {"node typo-1", "node over-1", "node under-1", "node nan-1", "node inf-1"}


def test_rendered_table_is_what_energy_settings_read_and_is_stable(tmp_path) -> None:
    from genomebus_common.runtime.settings import EnergySettings

    a = recovery_table([node("b", "0.5"), node("a", "0.25")]).render()
    b = recovery_table([node("a", "0.25"), node("b", "0.5")]).render()
    assert a == b, "node order must not change the ConfigMap (no needless writes)"
    path = tmp_path / RECOVERY_KEY
    path.write_text(a)
    for name, expected in (("a", 0.25), ("b", 0.5)):
        energy = EnergySettings(
            node_name=name, heat_recovery_file=str(path), heat_recovery_fraction=0.9
        )
        assert energy.recovery_fraction() == expected


@given(st.text(max_size=12) | st.floats(allow_nan=True, allow_infinity=True).map(repr))
def test_any_label_value_gives_a_fraction_in_0_1(value: str) -> None:
    fraction, _ = fraction_from_label(value)
    assert 0.0 <= fraction <= 1.0
