"""Whole control rounds against the fake API server: what is patched, when, and that a failing
part is logged and retried rather than crashing the loop."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from genomebus_heat.adapters.kube import KubeClient
from genomebus_heat.config import HeatSettings
from genomebus_heat.controller import HeatController
from genomebus_heat.core.backlog import Backlog, BacklogError, PartitionBacklog
from genomebus_heat.core.recovery import LABEL
from genomebus_heat.core.steering import HOLD_FROM_ANNOTATION, REASON_ANNOTATION

from .fake_kube import CM_PATH, SO_PATH, FakeKube

NS = "genomebus-test"
SO = SO_PATH.format(ns=NS, name="alignment-research")
DEMAND = CM_PATH.format(ns=NS, name="genomebus-heat-demand")
RECOVERY = CM_PATH.format(ns=NS, name="genomebus-heat-recovery")
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class FakeProbe:
    """Stands in for Kafka: the oldest waiting research sample is ``wait_s`` old (or fails)."""

    def __init__(self) -> None:
        self.wait_s: float | None = None
        self.error: Exception | None = None

    async def measure(self) -> Backlog:
        if self.error is not None:
            raise self.error
        now = T0.timestamp()
        if self.wait_s is None:
            return Backlog(now, (PartitionBacklog(0, 5, 5, None),))
        return Backlog(now, (PartitionBacklog(0, 5, 7, int((now - self.wait_s) * 1000)),))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def settings(**overrides: object) -> HeatSettings:
    values: dict[str, object] = dict(
        heat_namespace=NS,
        heat_min_replicas=1,
        heat_max_replicas=6,
        heat_max_research_wait_s=4 * 3600,
        heat_escalation_margin_s=600,
        heat_hold_s=900,
        heat_interval_s=1,
    )
    return HeatSettings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


def demand_cm(fake: FakeKube, demand_kw: float, capacity_kw: float = 200.0) -> None:
    points = [
        {"start": (T0 + timedelta(hours=h)).isoformat(), "demand_kw": demand_kw}
        for h in range(-2, 24)
    ]
    fake.add_configmap(
        NS,
        "genomebus-heat-demand",
        {"forecast.json": json.dumps(points), "capacity_kw": str(capacity_kw)},
    )


@pytest.fixture
def world() -> tuple[FakeKube, FakeProbe, Clock, HeatController]:
    fake = FakeKube(
        nodes=[
            {"metadata": {"name": "water-1", "labels": {LABEL: "0.9"}}},
            {"metadata": {"name": "air-1", "labels": {}}},
        ]
    )
    fake.add_scaled_object(NS, "alignment-research", 6, min_replicas=1)
    probe, clock = FakeProbe(), Clock()
    kube = KubeClient("https://kube.test", lambda: "tok", transport=fake.transport())
    return fake, probe, clock, HeatController(settings(), kube, probe, clock=clock)  # type: ignore[arg-type]


def so_patches(fake: FakeKube) -> list[dict[str, object]]:
    return [c.body for c in fake.writes() if c.path == SO]


async def test_low_demand_lowers_the_ceiling_and_records_why_and_when(world, caplog) -> None:
    fake, probe, clock, controller = world
    demand_cm(fake, 0.0)
    with caplog.at_level(logging.INFO, logger="genomebus_heat"):
        status = await controller.run_round()
    assert status.steer.ok and status.recovery.ok
    reason = "heat demand 0.00 wants 1: lowering 6 -> 5 (one step per window)"
    assert so_patches(fake) == [
        {
            "spec": {"maxReplicaCount": 5},
            "metadata": {
                "annotations": {REASON_ANNOTATION: reason, HOLD_FROM_ANNOTATION: T0.isoformat()}
            },
        }
    ]
    logged = [r for r in caplog.records if getattr(r, "ceiling", None) == 5]
    assert logged and logged[0].reason == reason and logged[0].previous_ceiling == 6
    assert "was 6" in logged[0].getMessage()

    # Within the window: nothing written; after it: the next step down.
    clock.now = T0 + timedelta(seconds=600)
    await controller.run_round()
    assert len(so_patches(fake)) == 1
    assert "hysteresis" in controller.status.last_decision.reason
    clock.now = T0 + timedelta(seconds=900)
    await controller.run_round()
    assert fake.objects[SO]["spec"]["maxReplicaCount"] == 4


async def test_high_demand_raises_the_ceiling(world) -> None:
    fake, probe, clock, controller = world
    fake.objects[SO]["spec"]["maxReplicaCount"] = 2
    demand_cm(fake, 180.0)  # 0.9 of capacity: 1 + 0.9 x 5 = 5.5 -> 6
    await controller.run_round()
    assert fake.objects[SO]["spec"]["maxReplicaCount"] == 6


async def test_over_age_backlog_takes_the_maximum_inside_the_window(world) -> None:
    fake, probe, clock, controller = world
    fake.objects[SO]["spec"]["maxReplicaCount"] = 1
    fake.objects[SO]["metadata"]["annotations"][HOLD_FROM_ANNOTATION] = T0.isoformat()
    demand_cm(fake, 0.0)
    probe.wait_s = 4 * 3600 - 600  # the wait limit less the escalation margin
    await controller.run_round()
    assert fake.objects[SO]["spec"]["maxReplicaCount"] == 6
    assert (
        "regardless of heat demand"
        in fake.objects[SO]["metadata"]["annotations"][REASON_ANNOTATION]
    )


async def test_escalation_keeps_the_window_open_while_the_backlog_is_old(world) -> None:
    fake, probe, clock, controller = world
    demand_cm(fake, 0.0)
    probe.wait_s = 5 * 3600
    await controller.run_round()
    clock.now = T0 + timedelta(seconds=800)
    await controller.run_round()  # still over age: the window restarts at T0 + 800 s
    probe.wait_s = 60.0  # drained
    clock.now = T0 + timedelta(seconds=1200)
    await controller.run_round()
    assert fake.objects[SO]["spec"]["maxReplicaCount"] == 6  # 400 s after the last escalation
    clock.now = T0 + timedelta(seconds=1700)
    await controller.run_round()
    assert fake.objects[SO]["spec"]["maxReplicaCount"] == 5


async def test_missing_or_broken_forecast_holds_the_ceiling(world, caplog) -> None:
    fake, probe, clock, controller = world
    fake.objects[SO]["spec"]["maxReplicaCount"] = 3
    with caplog.at_level(logging.WARNING, logger="genomebus_heat"):
        await controller.run_round()
        fake.add_configmap(NS, "genomebus-heat-demand", {"forecast.json": "[", "capacity_kw": "5"})
        await controller.run_round()
    assert so_patches(fake) == []
    assert controller.status.steer.ok  # holding is a decision, not a failure
    messages = [r.getMessage() for r in caplog.records]
    assert "no heat-demand ConfigMap: holding the ceiling" in messages
    assert "heat-demand ConfigMap unusable: holding the ceiling" in messages


async def test_scaled_object_minimum_raises_the_floor(world) -> None:
    fake, probe, clock, controller = world
    fake.objects[SO]["spec"] |= {"maxReplicaCount": 2, "minReplicaCount": 3}
    demand_cm(fake, 0.0)
    await controller.run_round()
    assert fake.objects[SO]["spec"]["maxReplicaCount"] == 3  # KEDA refuses max < min


async def test_recovery_table_is_created_then_written_only_when_it_changes(world) -> None:
    fake, probe, clock, controller = world
    demand_cm(fake, 100.0)
    await controller.run_round()
    assert json.loads(fake.objects[RECOVERY]["data"]["recovery.json"]) == {
        "air-1": 0.0,
        "water-1": 0.9,
    }
    assert fake.objects[RECOVERY]["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "genomebus-heat"
    }
    await controller.run_round()
    assert [c.method for c in fake.writes() if c.path.startswith(RECOVERY.rsplit("/", 1)[0])] == [
        "POST"
    ]

    fake.nodes[1]["metadata"]["labels"][LABEL] = "0.5"
    fake.nodes.append({"metadata": {"name": "new-1", "labels": {LABEL: "bogus"}}})
    await controller.run_round()
    (patch,) = [c for c in fake.writes() if c.path == RECOVERY]
    assert patch.body == {
        "data": {
            "recovery.json": json.dumps(
                {"air-1": 0.5, "new-1": 0.0, "water-1": 0.9}, sort_keys=True, indent=1
            )
            + "\n"
        }
    }


async def test_a_failing_part_is_logged_and_retried_and_the_other_still_runs(world, caplog) -> None:
    fake, probe, clock, controller = world
    demand_cm(fake, 0.0)
    fake.failures[SO] = [500]
    probe.error = None
    with caplog.at_level(logging.ERROR, logger="genomebus_heat"):
        status = await controller.run_round()
    assert not status.steer.ok and "HTTP 500" in (status.steer.error or "")
    assert status.recovery.ok and RECOVERY in fake.objects
    assert any("steer failed; retrying next round" in r.getMessage() for r in caplog.records)

    # Kafka down: the backlog is unknown, so the ceiling goes to the maximum (a research sample
    # might be near its wait bound) and the round still counts as failed.
    probe.error = BacklogError("no record read within 15s")
    await controller.run_round()
    assert not controller.status.steer.ok
    (patch,) = so_patches(fake)
    assert patch["spec"]["maxReplicaCount"] == controller.settings.heat_max_replicas
    assert "could not be measured" in patch["metadata"]["annotations"][REASON_ANNOTATION]

    # The API server unreachable: both parts fail, nothing raises.
    probe.error = None
    broken = KubeClient(
        "https://kube.test",
        lambda: "tok",
        transport=httpx.MockTransport(
            lambda request: (_ for _ in ()).throw(httpx.ConnectError("connection refused"))
        ),
    )
    controller.kube = broken
    status = await controller.run_round()
    assert not status.steer.ok and not status.recovery.ok

    # Back again: the next round does its work.
    controller.kube = KubeClient("https://kube.test", lambda: "tok", transport=fake.transport())
    status = await controller.run_round()
    assert status.steer.ok and status.recovery.ok
    # The escalation restarted the hysteresis window: low demand lowers it only after that.
    assert fake.objects[SO]["spec"]["maxReplicaCount"] == controller.settings.heat_max_replicas


async def test_loop_runs_rounds_until_stopped(world) -> None:
    fake, probe, clock, controller = world
    fake.failures[SO] = [503, 503]
    stop = asyncio.Event()
    task = asyncio.create_task(controller.run(stop))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if controller.status.rounds >= 3:
            break
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert controller.status.rounds >= 3
    assert controller.status.steer.ok  # recovered after two failing rounds
