"""One control round, and the loop that repeats it.

A round has two independent parts, each with its own error handling, so a broken forecast or a
Kafka outage never stops the recovery table from following the nodes, and the reverse:

- steer: read the ScaledObject, the forecast and the research backlog, ``decide``, and patch
  ``spec.maxReplicaCount`` when the ceiling changes;
- recovery: list the nodes, rebuild ``recovery.json``, write the ConfigMap when it differs.

Where the hysteresis window began is kept on the ScaledObject itself (annotation
``genomebus.dk/heat-hold-from``), so a restarted controller, or a second one during a rolling
update, honours the window instead of starting afresh. Any error in a part is logged and the
part is tried again next round: a transient API error must not become a crash loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka.errors import KafkaError

from .backlog import Backlog, BacklogError, BacklogProbe
from .config import HeatSettings
from .decision import Bounds, Decision, decide
from .demand import Forecast, ForecastError, parse_forecast
from .kube import KubeClient, KubeError
from .recovery import RECOVERY_KEY, recovery_table

log = logging.getLogger(__name__)

HOLD_FROM_ANNOTATION = "genomebus.dk/heat-hold-from"
REASON_ANNOTATION = "genomebus.dk/heat-reason"
# Failures expected in operation: logged in one line. Anything else also gets its traceback.
EXPECTED_ERRORS = (OSError, TimeoutError, httpx.HTTPError, KubeError, BacklogError, KafkaError)
MANAGED_BY = {"app.kubernetes.io/managed-by": "genomebus-heat"}


@dataclass
class PartStatus:
    """Outcome of the last attempt at one part of the round (for /readyz and the tests)."""

    ok: bool = False
    at: float | None = None  # monotonic
    error: str | None = None


@dataclass
class RoundStatus:
    steer: PartStatus = field(default_factory=PartStatus)
    recovery: PartStatus = field(default_factory=PartStatus)
    last_decision: Decision | None = None
    rounds: int = 0
    last_round_end: float | None = None  # monotonic


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class HeatController:
    """Steers the research lane's ceiling and keeps the recovery table; see the module doc."""

    def __init__(
        self,
        settings: HeatSettings,
        kube: KubeClient,
        probe: BacklogProbe,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.probe = probe
        self.clock = clock
        self.status = RoundStatus()

    def bounds(self, scaled_object_min: int | None) -> Bounds:
        """The configured bounds, with the floor raised to the ScaledObject's own minimum:
        KEDA refuses a maxReplicaCount below minReplicaCount."""
        s = self.settings
        low = s.heat_min_replicas
        if scaled_object_min is not None and scaled_object_min > low:
            if scaled_object_min > s.heat_max_replicas:
                log.warning(
                    "ScaledObject minReplicaCount is above GENOMEBUS_HEAT_MAX_REPLICAS; the "
                    "ceiling stays at the maximum",
                    extra={"min_replica_count": scaled_object_min},
                )
            low = min(scaled_object_min, s.heat_max_replicas)
        return Bounds(
            min_replicas=low,
            max_replicas=s.heat_max_replicas,
            escalate_after_s=s.escalate_after_s,
            hold_s=s.heat_hold_s,
            deadband_replicas=s.heat_deadband_replicas,
        )

    async def read_forecast(self) -> Forecast | None:
        """The forecast, or None (logged) when the ConfigMap is missing or unusable."""
        s = self.settings
        cm = await self.kube.get_configmap(s.heat_namespace, s.heat_demand_configmap)
        if cm is None:
            log.warning(
                "no heat-demand ConfigMap: holding the ceiling",
                extra={"configmap": s.heat_demand_configmap, "namespace": s.heat_namespace},
            )
            return None
        try:
            return parse_forecast(cm.get("data") or {})
        except ForecastError as exc:
            log.warning(
                "heat-demand ConfigMap unusable: holding the ceiling",
                extra={"configmap": s.heat_demand_configmap, "error": str(exc)},
            )
            return None

    async def steer(self) -> Decision:
        s = self.settings
        scaled = await self.kube.get_scaled_object(s.heat_namespace, s.heat_scaledobject)
        spec = scaled.get("spec") or {}
        annotations = (scaled.get("metadata") or {}).get("annotations") or {}
        current = _int_or_none(spec.get("maxReplicaCount"))
        forecast = await self.read_forecast()
        bounds = self.bounds(_int_or_none(spec.get("minReplicaCount")))
        now = self.clock()
        backlog: Backlog | None = None
        probe_error: Exception | None = None
        try:
            backlog = await self.probe.measure()
        except Exception as exc:  # noqa: BLE001 - any failure leaves the backlog unknown
            probe_error = exc
        if backlog is None:
            # Unknown backlog: a research sample might be near its wait bound, so err towards
            # capacity (KEDA still scales on lag underneath); the round still counts as failed.
            decision = Decision(
                ceiling=bounds.max_replicas,
                reason=f"research backlog could not be measured ({probe_error}): ceiling at "
                "the maximum so that no research sample outwaits its bound",
                escalated=True,
                restart_hold=True,
            )
        else:
            decision = decide(
                now,
                forecast,
                backlog.oldest_wait_s,
                current,
                bounds,
                last_change_at=_parse_time(annotations.get(HOLD_FROM_ANNOTATION)),
            )
        changed = decision.ceiling != current
        if changed or decision.restart_hold:
            new_annotations = {REASON_ANNOTATION: decision.reason}
            if decision.restart_hold:
                new_annotations[HOLD_FROM_ANNOTATION] = now.isoformat()
            await self.kube.patch_scaled_object(
                s.heat_namespace,
                s.heat_scaledobject,
                max_replicas=decision.ceiling,
                annotations=new_annotations,
            )
        if probe_error is not None:
            raise probe_error
        assert backlog is not None
        oldest = backlog.oldest_wait_s
        log.info(
            f"research ceiling {decision.ceiling}"
            f"{f' (was {current})' if changed else ' (unchanged)'}: {decision.reason}",
            extra={
                "ceiling": decision.ceiling,
                "previous_ceiling": current,
                "changed": changed,
                "reason": decision.reason,
                "escalated": decision.escalated,
                "demand": decision.demand,
                "oldest_wait_s": None if oldest is None else round(oldest, 1),
                "research_waiting": backlog.waiting,
                "scaledobject": s.heat_scaledobject,
            },
        )
        return decision

    async def sync_recovery(self) -> bool:
        """Write the recovery table when it differs from the ConfigMap; True when written."""
        s = self.settings
        table = recovery_table(await self.kube.list_nodes())
        for problem in table.problems:
            log.warning(
                "heat-recovery label unusable, using 0.0 or the clamped value",
                extra={"problem": problem},
            )
        rendered = table.render()
        cm = await self.kube.get_configmap(s.heat_namespace, s.heat_recovery_configmap)
        if cm is None:
            await self.kube.create_configmap(
                s.heat_namespace, s.heat_recovery_configmap, {RECOVERY_KEY: rendered}, MANAGED_BY
            )
        elif (cm.get("data") or {}).get(RECOVERY_KEY) != rendered:
            await self.kube.patch_configmap_data(
                s.heat_namespace, s.heat_recovery_configmap, {RECOVERY_KEY: rendered}
            )
        else:
            return False
        log.info(
            "heat-recovery table updated",
            extra={
                "configmap": s.heat_recovery_configmap,
                "nodes": len(table.fractions),
                "fractions": table.fractions,
            },
        )
        return True

    async def run_round(self) -> RoundStatus:
        """Both parts, each failing alone; never raises (except cancellation)."""
        timeout = max(30.0, 2 * self.settings.heat_interval_s)
        for name, part in (("steer", self.steer), ("recovery", self.sync_recovery)):
            status = getattr(self.status, name)
            try:
                async with asyncio.timeout(timeout):
                    result = await part()
                if name == "steer":
                    self.status.last_decision = result  # type: ignore[assignment]
                status.ok, status.error = True, None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # logged, retried next round: never a crash loop
                status.ok, status.error = False, f"{type(exc).__name__}: {exc}"
                log.error(
                    f"heat controller {name} failed; retrying next round",
                    extra={"part": name, "error": status.error},
                    exc_info=not isinstance(exc, EXPECTED_ERRORS),
                )
            status.at = time.monotonic()
        self.status.rounds += 1
        self.status.last_round_end = time.monotonic()
        return self.status

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds every ``heat_interval_s`` until ``stop`` is set."""
        log.info(
            "heat controller started",
            extra={
                "scaledobject": self.settings.heat_scaledobject,
                "namespace": self.settings.heat_namespace,
                "min": self.settings.heat_min_replicas,
                "max": self.settings.heat_max_replicas,
                "interval_s": self.settings.heat_interval_s,
            },
        )
        while not stop.is_set():
            await self.run_round()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.heat_interval_s)
            except TimeoutError:
                pass
