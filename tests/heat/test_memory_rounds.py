"""Control rounds against the in-memory ports (no API server, no Kafka), and the steering rules
a round applies: what is patched, when nothing is, and the recovery table's writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from genomebus_heat.adapters.memory import FixedBacklog, MemoryKube
from genomebus_heat.controller import HeatController
from genomebus_heat.core.backlog import Backlog, BacklogError, PartitionBacklog
from genomebus_heat.core.decision import Decision
from genomebus_heat.core.recovery import LABEL, RECOVERY_KEY, RecoveryWrite, recovery_write
from genomebus_heat.core.steering import (
    HOLD_FROM_ANNOTATION,
    REASON_ANNOTATION,
    Limits,
    hold_from,
    patch_annotations,
)

from .test_controller import NS, T0, settings

SO = (NS, "alignment-research")
RECOVERY = (NS, "genomebus-heat-recovery")


def waiting(seconds: float) -> Backlog:
    """One partition whose oldest waiting record is ``seconds`` old at T0."""
    now = T0.timestamp()
    return Backlog(now, (PartitionBacklog(0, 3, 4, int((now - seconds) * 1000)),))


def world(ceiling: int | None, backlog: FixedBacklog) -> tuple[MemoryKube, HeatController]:
    kube = MemoryKube(
        scaled_objects={
            SO: {"metadata": {"annotations": {}}, "spec": {"maxReplicaCount": ceiling}}
        },
        nodes=[{"metadata": {"name": "node-a", "labels": {LABEL: "0.8"}}}],
    )
    return kube, HeatController(settings(), kube, backlog, clock=lambda: T0)


async def test_an_unmeasured_backlog_opens_the_ceiling_and_fails_the_steer_part() -> None:
    kube, controller = world(2, FixedBacklog(error=BacklogError("topic missing")))
    status = await controller.run_round()
    so = kube.scaled_objects[SO]
    assert so["spec"]["maxReplicaCount"] == 6
    assert so["metadata"]["annotations"][HOLD_FROM_ANNOTATION] == T0.isoformat()
    assert (
        "could not be measured (topic missing)" in so["metadata"]["annotations"][REASON_ANNOTATION]
    )
    assert not status.steer.ok and status.steer.error == "BacklogError: topic missing"
    assert status.recovery.ok  # the other part goes on alone


async def test_a_sample_past_its_wait_bound_escalates_whatever_the_demand() -> None:
    wait_bound = settings().escalate_after_s
    kube, controller = world(1, FixedBacklog(waiting(wait_bound + 1)))
    decision = await controller.steer()
    assert decision.escalated and decision.ceiling == 6
    assert kube.scaled_objects[SO]["spec"]["maxReplicaCount"] == 6
    assert kube.writes == [("patch-scaledobject", *SO)]


async def test_holding_without_a_forecast_writes_nothing() -> None:
    kube, controller = world(3, FixedBacklog(waiting(10)))
    decision = await controller.steer()
    assert decision.ceiling == 3 and "holding" in decision.reason
    assert kube.writes == []


async def test_the_recovery_table_is_created_then_left_alone_then_patched() -> None:
    kube, controller = world(3, FixedBacklog(waiting(10)))
    assert await controller.sync_recovery()
    assert kube.configmaps[RECOVERY]["data"][RECOVERY_KEY] == '{\n "node-a": 0.8\n}\n'
    assert not await controller.sync_recovery()
    kube.nodes[0]["metadata"]["labels"][LABEL] = "0.5"
    assert await controller.sync_recovery()
    assert [w[0] for w in kube.writes] == ["create-configmap", "patch-configmap"]


def test_recovery_write_compares_the_rendered_table_only() -> None:
    assert recovery_write(None, "{}\n") is RecoveryWrite.CREATE
    assert recovery_write({}, "{}\n") is RecoveryWrite.PATCH
    assert recovery_write({RECOVERY_KEY: "{}\n", "other": "x"}, "{}\n") is RecoveryWrite.NONE


def test_the_floor_follows_the_scaled_objects_minimum_but_never_past_the_maximum() -> None:
    limits = Limits(2, 6, escalate_after_s=600, hold_s=900, deadband_replicas=0.25)
    assert limits.bounds(None).min_replicas == 2
    assert limits.bounds(1).min_replicas == 2
    assert limits.bounds(4).min_replicas == 4
    assert limits.bounds(9).min_replicas == 6


def test_a_patch_only_when_the_ceiling_moves_or_the_window_restarts() -> None:
    now = T0 + timedelta(minutes=5)
    assert patch_annotations(Decision(3, "hold"), 3, now) is None
    assert patch_annotations(Decision(4, "up"), 3, now) == {REASON_ANNOTATION: "up"}
    assert patch_annotations(Decision(3, "esc", restart_hold=True), 3, now) == {
        REASON_ANNOTATION: "esc",
        HOLD_FROM_ANNOTATION: now.isoformat(),
    }


def test_a_hold_start_without_an_offset_or_unreadable_is_no_window() -> None:
    assert hold_from({HOLD_FROM_ANNOTATION: "2026-11-26T12:00:00"}) is None
    assert hold_from({HOLD_FROM_ANNOTATION: "yesterday"}) is None
    assert hold_from({}) is None
    assert hold_from({HOLD_FROM_ANNOTATION: "2026-11-26T12:00:00+00:00"}) == datetime(
        2026, 11, 26, 12, tzinfo=UTC
    )


async def test_the_app_closes_the_kube_client_it_was_given() -> None:
    from genomebus_heat.inject import create_app

    kube, controller = world(3, FixedBacklog(waiting(10)))
    app = create_app(settings(), lambda s: controller)
    async with app.router.lifespan_context(app):
        assert app.state.controller is controller
    assert kube.closed
