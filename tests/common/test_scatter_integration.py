"""A scattered stage on the real object store: units published once per plan, each unit done
once, the gather once, a failed unit retried alone, removals and stale units honoured."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from genomebus_common.contracts.errors import TransientError
from genomebus_common.contracts.events import (
    AlignmentMetrics,
    Producer,
    SampleAligned,
    SampleEvent,
    SampleReceived,
    Stage,
    StageProgress,
    WorkUnit,
)
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.stagekit.scatter import ScatterPlan, ScatterStore, UnitResult
from genomebus_common.stagekit.stage import ScatteredStage, remove_outputs
from genomebus_common.stagekit.tools import ResourceMeter

from .factories import sample_received
from .test_stage_integration import RecordingBroker

pytestmark = pytest.mark.integration
PRODUCER = Producer(service="test", version="1")


class UppercaseWork:
    """Cuts the sample into ``units`` pieces of text; a unit upper-cases its piece."""

    stage = Stage.ALIGNMENT
    event_type = SampleAligned
    source_type = SampleReceived
    unit_kind = "read_chunk"

    def __init__(self, store: ObjectStore, units: int = 3) -> None:
        self.store, self.units = store, units
        self.calls: dict[str, list[int]] = {"plan": [], "work": [], "gather": []}
        self.fail_once: set[int] = set()

    def plan(
        self, source: SampleEvent, scatter: ScatterStore, workdir: Path
    ) -> list[dict[str, Any]]:
        self.calls["plan"].append(1)
        return [{"text": f"piece {i}"} for i in range(self.units)]

    def time_limit(self, plan: ScatterPlan, index: int) -> float:
        return 60.0

    def work(
        self, plan: ScatterPlan, index: int, scatter: ScatterStore, workdir: Path
    ) -> UnitResult:
        self.calls["work"].append(index)
        if index in self.fail_once:
            self.fail_once.discard(index)
            raise TransientError(f"unit {index} failed once")
        data = plan.units[index]["text"].upper().encode()
        ref = self.store.put_stream(
            scatter.bucket, scatter.work_key(index, "out.txt"), io.BytesIO(data)
        )
        return UnitResult(index=index, outputs={"out": ref}, cpu_seconds=0, wall_seconds=0)

    def gather(
        self,
        plan: ScatterPlan,
        results: list[UnitResult],
        scatter: ScatterStore,
        workdir: Path,
        meter: ResourceMeter,
    ) -> SampleAligned:
        self.calls["gather"].append(1)
        source = sample_received(plan.sample_id)
        parts = [r.outputs["out"] for r in results]
        return source.follow_on(
            SampleAligned,
            None,
            bam=parts[0],
            bam_index=parts[-1],
            metrics=AlignmentMetrics(
                reads_total=2, mapping_rate=1, duplicate_rate=0, mean_coverage=1
            ),
            tools=[],
        )


def published(broker: RecordingBroker, kind: type) -> list[Any]:
    return [
        kind.model_validate_json(p["body"])
        for p in broker.published
        if p["body"].startswith(b"{")
        and kind.event_type.encode()
        in p.get("headers", {}).get("x-genomebus-event-type", "").encode()
    ]


@pytest.fixture
def stage(store: ObjectStore, bucket: str, tmp_path: Path) -> ScatteredStage:
    return ScatteredStage(
        broker=RecordingBroker(),
        store=store,
        bucket=bucket,
        work=UppercaseWork(store),  # type: ignore[arg-type]
        producer=PRODUCER,
        scratch=tmp_path / "scratch",
        record_name="done.json",
    )


async def test_units_once_gather_once_and_intermediates_removed(
    stage: ScatteredStage, store: ObjectStore, bucket: str
) -> None:
    source = sample_received()
    work: UppercaseWork = stage.work  # type: ignore[assignment]
    await stage.on_source(source, source.priority)
    units = published(stage.broker, WorkUnit)  # type: ignore[arg-type]
    assert [u.unit_index for u in units] == [0, 1, 2] and {u.unit_count for u in units} == {3}
    assert all(u.priority == source.priority and u.stage == Stage.ALIGNMENT for u in units)
    results = [await stage.on_unit(u) for u in units]
    assert results[:2] == [None, None] and isinstance(results[2], SampleAligned)
    assert work.calls == {"plan": [1], "work": [0, 1, 2], "gather": [1]}
    progress = [(p.units_done, p.units_total) for p in published(stage.broker, StageProgress)]  # type: ignore[arg-type]
    assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)]
    folder = stage.folder(source.sample_id)
    assert store.list_keys(bucket, f"{folder}/scatter/work/") == []

    # Every redelivery afterwards: the source republishes the one event, units do nothing.
    again = await stage.on_unit(units[1])
    assert again is None and work.calls["work"] == [0, 1, 2]
    assert store.list_keys(bucket, f"{folder}/scatter/work/") == []
    await stage.on_source(source, source.priority)
    assert work.calls == {"plan": [1], "work": [0, 1, 2], "gather": [1]}
    events = published(stage.broker, SampleAligned)  # type: ignore[arg-type]
    assert len(events) == 3 and len({e.event_id for e in events}) == 1  # the same event again


async def test_a_gather_whose_publish_failed_is_published_by_the_unit_redelivered(
    stage: ScatteredStage, store: ObjectStore, bucket: str
) -> None:
    """The record is written before the publish: a Kafka error (or a kill) between the two
    must not lose the sample's event, and the intermediates still go."""
    from genomebus_common.contracts.errors import BrokerUnavailable

    source = sample_received()
    work: UppercaseWork = stage.work  # type: ignore[assignment]
    broker: RecordingBroker = stage.broker  # type: ignore[assignment]
    await stage.on_source(source, source.priority)
    units = published(broker, WorkUnit)
    await stage.on_unit(units[0])
    await stage.on_unit(units[1])
    real_publish = broker.publish

    async def failing(body: bytes, **kwargs: Any) -> None:
        if b'"bam_index"' in body:
            raise BrokerUnavailable("Kafka: not leader")
        await real_publish(body, **kwargs)

    broker.publish = failing  # type: ignore[method-assign]
    with pytest.raises(BrokerUnavailable):
        await stage.on_unit(units[2])
    broker.publish = real_publish  # type: ignore[method-assign]
    assert published(broker, SampleAligned) == []
    await stage.on_unit(units[2])  # the consumer's retry of the same unit
    assert len(published(broker, SampleAligned)) == 1
    assert work.calls["gather"] == [1] and work.calls["work"] == [0, 1, 2]
    assert store.list_keys(bucket, f"{stage.folder(source.sample_id)}/scatter/work/") == []


async def test_a_failed_unit_is_retried_alone(stage: ScatteredStage) -> None:
    source = sample_received()
    work: UppercaseWork = stage.work  # type: ignore[assignment]
    work.fail_once = {1}
    await stage.on_source(source, source.priority)
    units = published(stage.broker, WorkUnit)  # type: ignore[arg-type]
    await stage.on_unit(units[0])
    with pytest.raises(TransientError):
        await stage.on_unit(units[1])
    await stage.on_unit(units[2])
    assert isinstance(await stage.on_unit(units[1]), SampleAligned)  # the retry completes it
    assert work.calls["work"] == [0, 1, 2, 1]


async def test_a_sample_removed_mid_scatter_gets_no_more_work(
    stage: ScatteredStage, store: ObjectStore, bucket: str
) -> None:
    source = sample_received()
    work: UppercaseWork = stage.work  # type: ignore[assignment]
    await stage.on_source(source, source.priority)
    units = published(stage.broker, WorkUnit)  # type: ignore[arg-type]
    await stage.on_unit(units[0])
    folder = stage.folder(source.sample_id)
    remove_outputs(store, bucket, folder, source.sample_id, "wrong patient")
    assert [await stage.on_unit(u) for u in units[1:]] == [None, None]
    assert work.calls["work"] == [0] and work.calls["gather"] == []
    assert store.list_keys(bucket, f"{folder}/") == [f"{folder}/removed.json"]


async def test_units_of_an_earlier_plan_are_skipped(
    stage: ScatteredStage, store: ObjectStore, bucket: str
) -> None:
    """A plan written again (the first planner died after writing it, say) changes its digest:
    units carrying the old digest are not run against the new plan."""
    source = sample_received()
    work: UppercaseWork = stage.work  # type: ignore[assignment]
    await stage.on_source(source, source.priority)
    old = published(stage.broker, WorkUnit)[0]  # type: ignore[arg-type]
    scatter = stage.scatter_store(source.sample_id)
    plan, _ = scatter.read_plan()  # type: ignore[misc]
    scatter.write_plan(plan.model_copy(update={"units": [{"text": "other"}] * 3}))
    assert await stage.on_unit(old) is None
    assert work.calls["work"] == []


async def test_a_removal_during_planning_leaves_nothing_and_publishes_no_unit(
    stage: ScatteredStage, store: ObjectStore, bucket: str
) -> None:
    source = sample_received()
    folder = stage.folder(source.sample_id)
    work: UppercaseWork = stage.work  # type: ignore[assignment]
    planned = work.plan

    def plan_then_removed(
        src: SampleEvent, scatter: ScatterStore, workdir: Path
    ) -> list[dict[str, Any]]:
        store.put_stream(bucket, scatter.work_key(0, "chunk.fq.gz"), io.BytesIO(b"reads"))
        remove_outputs(store, bucket, folder, src.sample_id, "wrong patient")  # arrives mid-split
        store.put_stream(bucket, scatter.work_key(1, "chunk.fq.gz"), io.BytesIO(b"more reads"))
        return planned(src, scatter, workdir)

    work.plan = plan_then_removed  # type: ignore[method-assign]
    assert await stage.on_source(source, source.priority) is None
    assert published(stage.broker, WorkUnit) == []  # type: ignore[arg-type]
    assert store.list_keys(bucket, f"{folder}/") == [f"{folder}/removed.json"]


async def test_two_gathers_of_one_sample_leave_one_result(
    stage: ScatteredStage, store: ObjectStore, bucket: str
) -> None:
    """A rebalance during an hours-long gather hands its unit to a second worker: whichever
    gather records first stands; the other's objects go and it publishes the winner's event."""
    source = sample_received()
    work: UppercaseWork = stage.work  # type: ignore[assignment]
    await stage.on_source(source, source.priority)
    units = published(stage.broker, WorkUnit)  # type: ignore[arg-type]
    for unit in units[:2]:
        await stage.on_unit(unit)
    folder = stage.folder(source.sample_id)
    gather = work.gather
    theirs: list[SampleAligned] = []

    def gather_while_another_wins(*args: Any) -> SampleAligned:
        ours = gather(*args)
        # meanwhile the other worker's gather recorded its own result, in objects of its own
        other_ref = store.put_stream(
            bucket, f"{folder}/attempt-other/out.txt", io.BytesIO(b"OTHER")
        )
        winner = ours.model_copy(update={"bam": other_ref, "bam_index": other_ref})
        store.write_model(bucket, f"{folder}/done.json", winner)
        theirs.append(winner)
        mine = store.put_stream(bucket, f"{folder}/attempt-mine/out.txt", io.BytesIO(b"MINE"))
        return ours.model_copy(update={"bam": mine, "bam_index": mine})

    work.gather = gather_while_another_wins  # type: ignore[method-assign]
    result = await stage.on_unit(units[2])
    assert result is not None and result.bam == theirs[0].bam
    assert not store.exists_key(bucket, f"{folder}/attempt-mine/out.txt")
    assert store.exists_key(bucket, f"{folder}/attempt-other/out.txt")
    assert [e.bam for e in published(stage.broker, SampleAligned)] == [theirs[0].bam]  # type: ignore[arg-type]


async def test_a_result_of_another_plan_is_not_taken_for_this_plans(
    stage: ScatteredStage, store: ObjectStore, bucket: str
) -> None:
    source = sample_received()
    work: UppercaseWork = stage.work  # type: ignore[assignment]
    await stage.on_source(source, source.priority)
    units = published(stage.broker, WorkUnit)  # type: ignore[arg-type]
    scatter = stage.scatter_store(source.sample_id)
    stale = UnitResult(index=1, outputs={}, cpu_seconds=0, wall_seconds=0, plan_sha256="0" * 64)
    scatter.record(stale)  # left by a plan written over since
    for unit in units:
        await stage.on_unit(unit)
    assert sorted(work.calls["work"]) == [0, 1, 2] and work.calls["gather"] == [1]
