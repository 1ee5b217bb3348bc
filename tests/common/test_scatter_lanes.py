"""The lane decides a sample's width: how many workers its units can occupy at once."""

from __future__ import annotations

from genomebus_common.contracts.events import Priority, Stage, WorkUnit
from genomebus_common.contracts.topics import (
    SCATTER_WIDTH,
    WORK_LANES,
    message_key,
    topic_for,
    work_partition,
)
from genomebus_common.stagekit.scatter import ScatterPlan, unit_events

from .factories import object_ref, sample_received


def units(priority: Priority, count: int, sample_id: str = "S-lanes") -> list[WorkUnit]:
    source = sample_received(sample_id, priority=priority)
    plan = ScatterPlan(
        sample_id=sample_id,
        stage=Stage.ALIGNMENT,
        priority=priority,
        source=source.model_dump(mode="json"),
        units=[{}] * count,
    )
    return unit_events(plan, object_ref("plan.json"), source, None)  # type: ignore[arg-type]


def test_urgent_units_spread_over_every_worker_research_over_few() -> None:
    urgent = {work_partition(u) for u in units(Priority.URGENT_CLINICAL, 20)}
    research = {work_partition(u) for u in units(Priority.RESEARCH, 20)}
    assert len(urgent) == 20  # one partition, so one worker of the group, per unit
    assert len(research) == SCATTER_WIDTH[Priority.RESEARCH] == 2
    assert (
        SCATTER_WIDTH[Priority.URGENT_CLINICAL]
        > SCATTER_WIDTH[Priority.ROUTINE]
        > SCATTER_WIDTH[Priority.RESEARCH]
    )


def test_units_go_to_their_stage_and_lane_and_a_republished_unit_is_the_same() -> None:
    first, again = units(Priority.ROUTINE, 3), units(Priority.ROUTINE, 3)
    for a, b in zip(first, again, strict=True):
        assert topic_for(a) == WORK_LANES[(Stage.ALIGNMENT, Priority.ROUTINE)].name
        assert (a.event_id, work_partition(a), message_key(a)) == (
            b.event_id,
            work_partition(b),
            message_key(b),
        )
    assert len({u.event_id for u in first}) == 3


def test_consecutive_units_take_consecutive_partitions() -> None:
    parts = [work_partition(u) for u in units(Priority.ROUTINE, 8)]
    width = SCATTER_WIDTH[Priority.ROUTINE]
    assert all((b - a) % width == 1 for a, b in zip(parts, parts[1:]))
