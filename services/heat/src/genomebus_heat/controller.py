"""One control round, and the loop that repeats it.

A round has two independent parts, each with its own error handling, so a broken forecast or a
Kafka outage never stops the recovery table from following the nodes, and the reverse:

- steer: read the ScaledObject, the forecast and the research backlog, ``decide``, and patch
  ``spec.maxReplicaCount`` when the ceiling changes;
- recovery: list the nodes, rebuild ``recovery.json``, write the ConfigMap when it differs.

What to write is decided in ``core`` (``decision``, ``steering``, ``recovery``); this module
makes the calls through the ports. Any error in a part is logged and the
part is tried again next round: a transient API error must not become a crash loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .config import HeatSettings
from .core.backlog import Backlog, BacklogError
from .core.decision import Bounds, Decision, decide
from .core.demand import Forecast, ForecastError, parse_forecast
from .core.recovery import RECOVERY_KEY, RecoveryWrite, recovery_table, recovery_write
from .core.steering import (
    Limits,
    hold_from,
    patch_annotations,
    replica_count,
    unmeasured,
)
from .ports import BacklogMeter, KubeApi

log = logging.getLogger(__name__)

# Failures expected in operation whatever the adapters: logged in one line. Anything else also
# gets its traceback; the adapters add theirs (``adapters.EXPECTED_ERRORS``, passed by inject).
EXPECTED_ERRORS: tuple[type[Exception], ...] = (OSError, TimeoutError, BacklogError)
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


class HeatController:
    """Steers the research lane's ceiling and keeps the recovery table; see the module doc."""

    def __init__(
        self,
        settings: HeatSettings,
        kube: KubeApi,
        probe: BacklogMeter,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        expected_errors: tuple[type[Exception], ...] = EXPECTED_ERRORS,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.probe = probe
        self.clock = clock
        self.expected_errors = expected_errors
        self.status = RoundStatus()

    def bounds(self, scaled_object_min: int | None) -> Bounds:
        """The configured bounds, with the floor raised to the ScaledObject's own minimum:
        KEDA refuses a maxReplicaCount below minReplicaCount."""
        s = self.settings
        if scaled_object_min is not None and scaled_object_min > s.heat_max_replicas:
            log.warning(
                "ScaledObject minReplicaCount is above GENOMEBUS_HEAT_MAX_REPLICAS; the "
                "ceiling stays at the maximum",
                extra={"min_replica_count": scaled_object_min},
            )
        limits = Limits(
            min_replicas=s.heat_min_replicas,
            max_replicas=s.heat_max_replicas,
            escalate_after_s=s.escalate_after_s,
            hold_s=s.heat_hold_s,
            deadband_replicas=s.heat_deadband_replicas,
        )
        return limits.bounds(scaled_object_min)

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
        current = replica_count(spec.get("maxReplicaCount"))
        forecast = await self.read_forecast()
        bounds = self.bounds(replica_count(spec.get("minReplicaCount")))
        now = self.clock()
        backlog: Backlog | None = None
        probe_error: Exception | None = None
        try:
            backlog = await self.probe.measure()
        except Exception as exc:  # noqa: BLE001 - any failure leaves the backlog unknown
            probe_error = exc
        if backlog is None:
            decision = unmeasured(bounds, probe_error)
        else:
            decision = decide(
                now,
                forecast,
                backlog.oldest_wait_s,
                current,
                bounds,
                last_change_at=hold_from(annotations),
            )
        changed = decision.ceiling != current
        new_annotations = patch_annotations(decision, current, now)
        if new_annotations is not None:
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
        write = recovery_write(None if cm is None else cm.get("data") or {}, rendered)
        if write is RecoveryWrite.CREATE:
            await self.kube.create_configmap(
                s.heat_namespace, s.heat_recovery_configmap, {RECOVERY_KEY: rendered}, MANAGED_BY
            )
        elif write is RecoveryWrite.PATCH:
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
                    self.status.last_decision = result  # type: ignore[assignment]  # steer's result: a Decision
                status.ok, status.error = True, None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # logged, retried next round: never a crash loop
                status.ok, status.error = False, f"{type(exc).__name__}: {exc}"
                log.error(
                    f"heat controller {name} failed; retrying next round",
                    extra={"part": name, "error": status.error},
                    exc_info=not isinstance(exc, self.expected_errors),
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.heat_interval_s)
