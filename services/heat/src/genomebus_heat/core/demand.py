"""The heat-demand signal: the district-heating forecast as the ConfigMap carries it.

ConfigMap ``genomebus-heat-demand`` (written by whoever imports the district-heating forecast):

- key ``forecast.json``: a JSON list of points ``{"start": "2026-11-26T06:00:00+01:00",
  "demand_kw": 310.0}``. A point holds from its start until the next point's start; the last
  one for ``LAST_POINT_HOLDS`` (one hour, the usual forecast step). Times must carry an offset
  (``Z`` or ``+01:00``): Danish local time jumps twice a year and a naive time is ambiguous.
- key ``capacity_kw``: the heat (kW) the district network can take from the compute centre, the
  demand at which research runs at its full ceiling.

The controller uses the normalised demand ``clamp(demand_kw / capacity_kw, 0, 1)``. Before the
first point or after the last one has run out the forecast says nothing about now, and the
controller holds the ceiling rather than guess (the wait bound still applies).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

FORECAST_KEY = "forecast.json"
CAPACITY_KEY = "capacity_kw"
LAST_POINT_HOLDS = timedelta(hours=1)


class ForecastError(ValueError):
    """The demand ConfigMap is there but unusable; the message says what to fix."""


@dataclass(frozen=True)
class Forecast:
    """Heat demand over time, sorted by start; ``demand_at`` answers for one instant."""

    starts: tuple[datetime, ...]
    demand_kw: tuple[float, ...]
    capacity_kw: float

    def demand_at(self, now: datetime) -> float | None:
        """Normalised demand (0..1) in force at ``now``, or None when no point covers it."""
        i = bisect_right(self.starts, now) - 1
        if i < 0:
            return None
        if i == len(self.starts) - 1 and now >= self.starts[i] + LAST_POINT_HOLDS:
            return None
        return min(1.0, max(0.0, self.demand_kw[i] / self.capacity_kw))


def _number(value: object, what: str) -> float:
    if isinstance(value, bool):  # json true is an int to Python; it is no demand figure
        raise ForecastError(f"{what} is not a number: {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]  # any JSON value; float() says which
    except (TypeError, ValueError):
        raise ForecastError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise ForecastError(f"{what} is not finite: {value!r}")
    return number


def parse_forecast(data: Mapping[str, str]) -> Forecast:
    """The forecast in a ConfigMap's ``data``; raises ForecastError naming the bad part."""
    if FORECAST_KEY not in data:
        raise ForecastError(f"no {FORECAST_KEY} key")
    if CAPACITY_KEY not in data:
        raise ForecastError(f"no {CAPACITY_KEY} key")
    capacity = _number(data[CAPACITY_KEY].strip(), CAPACITY_KEY)
    if capacity <= 0:
        raise ForecastError(f"{CAPACITY_KEY} must be above 0, not {capacity}")
    try:
        raw = json.loads(data[FORECAST_KEY])
    except ValueError as exc:
        raise ForecastError(f"{FORECAST_KEY} is not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise ForecastError(f"{FORECAST_KEY} must be a JSON list of points")
    points: dict[datetime, float] = {}
    for n, point in enumerate(raw):
        if not isinstance(point, dict) or "start" not in point or "demand_kw" not in point:
            raise ForecastError(f"point {n} needs start and demand_kw: {point!r}")
        try:
            start = datetime.fromisoformat(str(point["start"]))
        except ValueError:
            raise ForecastError(
                f"point {n}: start is not an ISO time: {point['start']!r}"
            ) from None
        if start.tzinfo is None or start.utcoffset() is None:
            raise ForecastError(f"point {n}: start {point['start']!r} has no UTC offset")
        demand = _number(point["demand_kw"], f"point {n}: demand_kw")
        if demand < 0:
            raise ForecastError(f"point {n}: demand_kw is negative ({demand})")
        if start in points:
            raise ForecastError(f"point {n}: a second point starts at {point['start']}")
        points[start] = demand
    ordered = sorted(points.items())
    return Forecast(
        starts=tuple(s for s, _ in ordered),
        demand_kw=tuple(d for _, d in ordered),
        capacity_kw=capacity,
    )
