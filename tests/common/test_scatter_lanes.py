"""The lane decides a sample's width: how many workers its units can occupy at once."""

from __future__ import annotations

from itertools import pairwise

import pytest

from genomebus_common.contracts.events import (
    AlignmentMetrics,
    Priority,
    Producer,
    SampleAligned,
    Stage,
    StageProgress,
    WorkUnit,
)
from genomebus_common.contracts.topics import (
    SCATTER_WIDTH,
    WORK_LANES,
    message_key,
    topic_for,
    work_partition,
)
from genomebus_common.stagekit.scatter import ScatterPlan, unit_events

from .factories import object_ref, sample_received

METRICS = AlignmentMetrics(reads_total=2, mapping_rate=1, duplicate_rate=0, mean_coverage=1)


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
    assert all((b - a) % width == 1 for a, b in pairwise(parts))


def test_a_sample_travels_in_its_own_lane_and_an_event_without_one_in_routine() -> None:
    urgent = sample_received(priority=Priority.URGENT_CLINICAL)
    assert urgent.lane == Priority.URGENT_CLINICAL
    aligned = urgent.follow_on(
        SampleAligned,
        None,
        bam=object_ref("a.bam"),
        bam_index=object_ref("a.bai"),
        metrics=METRICS,
        tools=[],
    )
    assert aligned.priority == Priority.URGENT_CLINICAL  # carried on to calling
    older = aligned.model_copy(update={"priority": None})  # from before priorities were carried
    assert older.lane == Priority.ROUTINE


def test_a_follow_on_event_carries_the_sample_and_the_given_fields_win() -> None:
    source = sample_received(priority=Priority.RESEARCH)
    producer = Producer(service="calling", version="1")
    progress = source.follow_on(
        StageProgress,
        producer,
        stage=Stage.CALLING,
        unit_kind="region",
        units_done=1,
        units_total=2,
    )
    carried = ("correlation_id", "sample_id", "patient_pseudonym", "reference", "hospital_id")
    assert {f: getattr(progress, f) for f in carried} == {f: getattr(source, f) for f in carried}
    assert progress.producer == producer
    unit = units(Priority.RESEARCH, 1)[0]
    assert unit.priority == Priority.RESEARCH and unit.hospital_id == source.hospital_id
    override = source.follow_on(
        WorkUnit,
        None,
        stage=Stage.ALIGNMENT,
        priority=Priority.ROUTINE,
        unit_index=0,
        unit_count=1,
        plan=object_ref("plan.json"),
    )
    assert override.priority == Priority.ROUTINE  # the plan's lane, not the source's


def test_a_field_the_next_event_does_not_have_is_refused_not_dropped() -> None:
    """The models ignore unknown fields, so a misspelt one would vanish silently."""
    source = sample_received(priority=Priority.RESEARCH)
    with pytest.raises(TypeError, match="StageProgress has no field.*priority"):
        source.follow_on(
            StageProgress,
            None,
            stage=Stage.CALLING,
            unit_kind="region",
            units_done=1,
            units_total=2,
            priority=Priority.URGENT_CLINICAL,  # progress has no lane to carry
        )
