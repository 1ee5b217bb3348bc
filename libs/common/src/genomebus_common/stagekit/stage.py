"""A pipeline stage's output, computed once per sample and published on every delivery.

Kafka may deliver the same input twice (a crash before the offset commit, a rebalance). A stage
whose work takes hours must not redo it, and must not stay silent either: the downstream event
might never have left. So the stage writes its output event as a small record beside its
objects, after them, and a later delivery that finds the record publishes the very same event
again (same event id: downstream consumers recognise the duplicate).

A stage also honours a withdrawal that arrives while the sample is in flight: it looks at the
patient's consent before the work and again before publishing, and when the consent has been
withdrawn it publishes nothing and leaves a quarantine record beside what it produced.

The work itself is a span (``<event type>.compute``) inside the consumed event's trace, so a
sample's trace shows where its hours went; a redelivery that found the record has none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from aiokafka.coordinator.assignors.roundrobin import (  # type: ignore[import-untyped]  # aiokafka ships no type information
    RoundRobinPartitionAssignor,
)
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from genomebus_common.contracts.errors import TransientError
from genomebus_common.contracts.events import (
    ConsentChanged,
    Event,
    ObjectRef,
    Priority,
    Producer,
    SampleEvent,
    SampleRemoved,
    Stage,
    StageProgress,
    WorkUnit,
)
from genomebus_common.contracts.topics import SAMPLE_REMOVED, work_topic
from genomebus_common.runtime import metrics
from genomebus_common.runtime.broker import Delivery, ReliableConsumer, publish_event
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.telemetry import tracer
from genomebus_common.stagekit.consent_view import ConsentView
from genomebus_common.stagekit.scatter import ScatterPlan, ScatterStore, UnitResult, unit_events
from genomebus_common.stagekit.scratch import SampleBusy, remove_abandoned, sample_workdir
from genomebus_common.stagekit.tools import ResourceMeter, metered, time_limit, time_limit_for

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
E_co = TypeVar("E_co", bound=Event, covariant=True)

_GATHER_NAMESPACE = uuid.UUID("0c3f5a8e-61b2-4d1e-9a7c-4b2d8e6f1a93")


def _remove_refs_not_in(store: ObjectStore, ours: Event, theirs: Event) -> None:
    """Delete the objects our event names that the winning event does not."""
    keep = {(r.bucket, r.key) for r in _refs(theirs)}
    for ref in _refs(ours):
        if (ref.bucket, ref.key) not in keep:
            store.remove(ref.bucket, ref.key)


def _refs(event: Event) -> list[ObjectRef]:
    return [value for value in dict(event).values() if isinstance(value, ObjectRef)]


QUARANTINE_RECORD = "quarantine.json"
REMOVED_RECORD = "removed.json"


class Removal(BaseModel):
    """A tombstone: the hospital withdrew this sample; its outputs here were deleted."""

    sample_id: str
    reason: str
    removed_at: datetime


def remove_outputs(
    store: ObjectStore, bucket: str, folder: str, sample_id: str, reason: str
) -> int:
    """Leave a tombstone, so that a late or redelivered input never recreates anything, then
    delete everything a stage keeps for a sample. Returns how many objects went.

    Tombstone first: work that checks for it before publishing (a gather, a unit) must see it
    from the moment the deletion starts, not only once it has finished. Work that was past its
    check when the tombstone landed removes what it wrote itself (``ScatteredStage``)."""
    existing = store.read_model(bucket, f"{folder}/{REMOVED_RECORD}", Removal)
    if existing is None:
        record = Removal(sample_id=sample_id, reason=reason, removed_at=datetime.now(UTC))
        store.write_model(bucket, f"{folder}/{REMOVED_RECORD}", record)
    names = [
        name for name in store.list_keys(bucket, f"{folder}/") if not name.endswith(REMOVED_RECORD)
    ]
    for name in names:
        store.remove(bucket, name)
    return len(names)


def remove_again(store: ObjectStore, bucket: str, folder: str) -> None:
    """Remove what is there of a removed sample again (work that was past its check when the
    removal came may have written since)."""
    tombstone = store.read_model(bucket, f"{folder}/{REMOVED_RECORD}", Removal)
    if tombstone is not None:
        remove_outputs(store, bucket, folder, tombstone.sample_id, tombstone.reason)


class Quarantine(BaseModel):
    """Why a stage stopped a sample: the consent version that stopped it (a withdrawal, or no
    written analysis consent any more)."""

    sample_id: str
    patient_pseudonym: str
    consent_version: int
    quarantined_at: datetime


def _quarantine(
    store: ObjectStore,
    bucket: str,
    record_key: str,
    event: SampleEvent,
    withdrawal: ConsentChanged,
) -> None:
    record = Quarantine(
        sample_id=event.sample_id,
        patient_pseudonym=event.patient_pseudonym,
        consent_version=withdrawal.version,
        quarantined_at=datetime.now(UTC),
    )
    folder = record_key.rpartition("/")[0]
    store.write_model(bucket, f"{folder}/{QUARANTINE_RECORD}", record)


async def compute_once_then_publish(
    broker: KafkaBroker,
    store: ObjectStore,
    bucket: str,
    record_key: str,
    event_type: type[E],
    compute: Callable[[], E],
    *,
    source: SampleEvent | None = None,
    consent: ConsentView | None = None,
) -> tuple[E | None, bool]:
    """(the event, or None if quarantined or removed; whether it was computed now).

    ``compute`` runs in a worker thread. With ``consent`` and ``source``, a withdrawn patient's
    sample is quarantined instead: before the work if the withdrawal is known, else before the
    result is published.
    """

    def withdrawn() -> tuple[SampleEvent, ConsentChanged] | None:
        """The sample and the consent version that stops it, if one does."""
        if consent is None or source is None:
            return None
        withdrawal = consent.withdrawn(source.patient_pseudonym)
        return None if withdrawal is None else (source, withdrawal)

    folder = record_key.rpartition("/")[0]

    def removed() -> bool:
        return store.read_model(bucket, f"{folder}/{REMOVED_RECORD}", Removal) is not None

    if consent is not None:
        try:
            await consent.wait_ready()
        except TimeoutError as exc:
            raise TransientError("the consent view has not caught up yet") from exc
        await consent.caught_up()
    if (stopped := withdrawn()) is not None:
        await asyncio.to_thread(_quarantine, store, bucket, record_key, *stopped)
        return None, False
    if await asyncio.to_thread(removed):
        return None, False  # the hospital withdrew the sample: nothing to do, nothing to say
    event = await asyncio.to_thread(store.read_model, bucket, record_key, event_type)
    computed = event is None
    if event is None:
        with tracer().start_as_current_span(
            f"{event_type.event_type}.compute",
            attributes={"genomebus.sample_id": getattr(source, "sample_id", None) or ""},
        ):
            event = await asyncio.to_thread(compute)
            await asyncio.to_thread(store.write_model, bucket, record_key, event)
    if await asyncio.to_thread(removed):  # removed while we worked: what we wrote goes too
        await asyncio.to_thread(remove_again, store, bucket, folder)
        return None, computed
    if consent is not None:
        await consent.caught_up()  # every consent change that reached Kafka while we worked
    if (stopped := withdrawn()) is not None:  # it came while we worked
        await asyncio.to_thread(_quarantine, store, bucket, record_key, *stopped)
        return None, computed
    await publish_event(broker, event)
    return event, computed


# --- scattered stages ------------------------------------------------------------------------


class ScatterWork(Protocol[E_co]):
    """What a scattered stage does; ``ScatteredStage`` does the rest (the bus, the records,
    consent, removal, retries). Each method runs in a worker thread and may run tools."""

    @property
    def stage(self) -> Stage: ...

    @property
    def event_type(self) -> type[E_co]:
        """The event the gather publishes (and records)."""
        ...

    @property
    def source_type(self) -> type[SampleEvent]:
        """The event the stage receives (and keeps in its plan)."""
        ...

    @property
    def unit_kind(self) -> Literal["read_chunk", "region"]: ...

    def plan(
        self, source: SampleEvent, scatter: ScatterStore, workdir: Path
    ) -> list[dict[str, Any]]:
        """Cut the sample's work into units; store what they need; return each unit's inputs."""
        ...

    def work(
        self, plan: ScatterPlan, index: int, scatter: ScatterStore, workdir: Path
    ) -> UnitResult:
        """Do unit ``index``: store its outputs under ``scatter.work_key`` and say what they are."""
        ...

    def time_limit(self, plan: ScatterPlan, index: int) -> float:
        """Seconds unit ``index`` may take at most (from its input's size)."""
        ...

    def gather(
        self,
        plan: ScatterPlan,
        results: list[UnitResult],
        scatter: ScatterStore,
        workdir: Path,
        meter: ResourceMeter,
    ) -> E_co:
        """Merge the units' outputs into the sample's result; the stage's event, not yet
        published. ``meter`` holds the units' tool time already and counts the gather's."""
        ...


class StageSettings(Protocol):
    """What a scattered stage reads from its service's settings."""

    @property
    def work_dir(self) -> str: ...

    @property
    def unit_time_floor_s(self) -> float: ...

    @property
    def unit_min_bytes_per_s(self) -> float: ...


@dataclass
class ScatteredStage:
    """Plans a sample into units, works units, and gathers when the last one is done."""

    broker: KafkaBroker
    store: ObjectStore
    bucket: str
    work: ScatterWork[Event]
    producer: Producer
    scratch: Path
    record_name: str
    consent: ConsentView | None = None
    #: The gather's time limit (units have theirs from ``ScatterWork.time_limit``).
    floor_s: float = 900.0
    min_bytes_per_s: float = 50_000.0

    @classmethod
    def for_work(
        cls,
        work: ScatterWork[Event],
        *,
        settings: StageSettings,
        broker: KafkaBroker,
        store: ObjectStore,
        bucket: str,
        producer: Producer,
        record_name: str,
        consent: ConsentView | None = None,
    ) -> ScatteredStage:
        """The stage every scattered service runs: its scratch is ``<work_dir>/<stage>``, and
        the gather's time limit follows the same settings as a unit's."""
        return cls(
            broker=broker,
            store=store,
            bucket=bucket,
            work=work,
            producer=producer,
            scratch=Path(settings.work_dir) / work.stage.value,
            record_name=record_name,
            consent=consent,
            floor_s=settings.unit_time_floor_s,
            min_bytes_per_s=settings.unit_min_bytes_per_s,
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ScatteredStage]:
        """Open before the stage consumes: its bucket exists, the scratch of runs killed
        outright is gone, and the consent view (if any) has read the consent topic up to now
        and follows it while the stage runs."""
        self.store.ensure_bucket(self.bucket)
        remove_abandoned(self.scratch)
        if self.consent is None:
            yield self
            return
        async with self.consent.following():
            yield self

    def folder(self, sample_id: str) -> str:
        return f"samples/{sample_id}/{self.work.stage.value}"

    def subscribe(
        self, consumer: ReliableConsumer, lanes: Iterable[Priority], max_poll_interval_s: int
    ) -> None:
        """Take units of every lane in ``lanes``, and removals. One consumer group per lane,
        whose width (the work topic's partitions) bounds how many workers the lane uses at
        once; round-robin assignment puts a sample's consecutive units (on consecutive
        partitions) on different workers."""
        for lane in lanes:
            consumer.subscribe(
                WorkUnit,
                self.handle_unit,
                work_topic(self.work.stage, lane),
                group_suffix=f"work.{lane.value}",
                max_poll_interval_ms=max_poll_interval_s * 1000,
                partition_assignment_strategy=(RoundRobinPartitionAssignor,),
            )
        consumer.subscribe(
            SampleRemoved, self.handle_removal, SAMPLE_REMOVED.name, group_suffix="removals"
        )

    async def handle_unit(self, unit: WorkUnit, delivery: Delivery) -> None:
        published = await self.on_unit(unit)
        if published is not None:
            log.info(
                "gathered",
                extra={
                    "sample_id": unit.sample_id,
                    "units": unit.unit_count,
                    "stage": self.work.stage.value,
                },
            )

    async def handle_removal(self, event: SampleRemoved, delivery: Delivery) -> None:
        """The hospital withdrew the sample: delete what this stage keeps of it."""
        removed = await asyncio.to_thread(
            remove_outputs,
            self.store,
            self.bucket,
            self.folder(event.sample_id),
            event.sample_id,
            event.reason,
        )
        log.info("sample removed", extra={"sample_id": event.sample_id, "objects_deleted": removed})

    def scatter_store(self, sample_id: str) -> ScatterStore:
        return ScatterStore(self.store, self.bucket, self.folder(sample_id))

    async def on_source(
        self, source: SampleEvent, priority: Priority | None = None
    ) -> Event | None:
        """The stage's input event: plan (once) and publish the units not done yet; gather at
        once when every unit is done already (a redelivery after the last unit's worker died).
        ``priority`` is the lane its units go to, by default the sample's (``SampleEvent.lane``).
        Returns the stage's event when it was published now."""
        priority = source.lane if priority is None else priority
        folder = self.folder(source.sample_id)
        scatter = self.scatter_store(source.sample_id)
        record = await asyncio.to_thread(
            self.store.read_model, self.bucket, f"{folder}/{self.record_name}", self.work.event_type
        )
        if record is not None:
            return await self._gather(source, scatter)  # publishes the recorded event again
        if await self._stopped(source, folder):
            return None
        planned = await asyncio.to_thread(scatter.read_plan)
        if planned is None:
            planned = await asyncio.to_thread(self._plan, source, priority, scatter)
            if await self._removed(folder):  # removed while we planned: what we wrote goes too
                await asyncio.to_thread(remove_again, self.store, self.bucket, folder)
                return None
        plan, plan_ref = planned
        progress = await asyncio.to_thread(scatter.progress, len(plan.units))
        if progress.complete:
            return await self._gather(source, scatter)
        done = (
            {
                i
                for i in range(len(plan.units))
                if await asyncio.to_thread(scatter.result, i) is not None
            }
            if progress.done
            else set()
        )
        pending = [i for i in range(len(plan.units)) if i not in done]
        for unit in unit_events(plan, plan_ref, source, self.producer, pending):
            await publish_event(self.broker, unit)
        await self._progress(source, progress.done, len(plan.units))
        metrics.SCATTER_UNITS.labels(self.work.stage.value, priority.value, "published").inc(
            len(pending)
        )
        log.info(
            "scattered",
            extra={
                "sample_id": source.sample_id,
                "units": len(plan.units),
                "published": len(pending),
            },
        )
        return None

    def _plan(
        self, source: SampleEvent, priority: Priority, scatter: ScatterStore
    ) -> tuple[ScatterPlan, ObjectRef]:
        started = time.monotonic()
        with (
            sample_workdir(self.scratch, f"{source.sample_id}.plan") as workdir,
            metered() as meter,
        ):
            units = self.work.plan(source, scatter, workdir)
        plan = ScatterPlan(
            sample_id=source.sample_id,
            stage=self.work.stage,
            priority=priority,
            source=source.model_dump(mode="json"),
            units=units,
            planning_cpu_seconds=meter.cpu_seconds,
            planning_wall_seconds=time.monotonic() - started,
        )
        if (other := scatter.read_plan()) is not None:
            # Another worker planned this sample meanwhile (its event delivered twice): its plan
            # stands, and the objects ours wrote (under their own attempt's names) go.
            for unit in units:
                for value in unit.values():
                    if isinstance(value, dict) and str(value.get("key", "")).startswith(
                        scatter.work_prefix
                    ):
                        self.store.remove(self.bucket, value["key"])
            return other
        scatter.write_plan(plan)
        planned = scatter.read_plan()
        assert planned is not None, "the plan just written is there"
        return planned

    async def on_unit(self, unit: WorkUnit) -> Event | None:
        """One unit: do it unless done; gather if it was the last. Returns the stage's event
        when this call published it."""
        scatter = self.scatter_store(unit.sample_id)
        folder = self.folder(unit.sample_id)
        planned = await asyncio.to_thread(scatter.read_plan)
        if planned is None or planned[1].sha256 != unit.plan.sha256:
            # The sample was planned again (a crash before its plan was complete) or removed:
            # the current plan published its own units.
            log.info(
                "unit of an earlier plan: skipped",
                extra={"sample_id": unit.sample_id, "unit": unit.unit_index},
            )
            return None
        plan, _ = planned
        source = self.source_of(plan)
        if await self._stopped(source, folder):
            return None
        lane = plan.priority.value
        record_key = f"{folder}/{self.record_name}"
        if await asyncio.to_thread(self.store.exists_key, self.bucket, record_key):
            # Gathered already. This unit is back because its offset was not committed: the
            # gather's publish may have failed, or the worker died right after it. Publish the
            # recorded event again (same event id); downstream sees a duplicate at worst.
            return await self._gather(source, scatter)
        existing = await asyncio.to_thread(scatter.result, unit.unit_index)
        if existing is None or existing.plan_sha256 != unit.plan.sha256:
            try:
                result = await asyncio.to_thread(
                    self._work, plan, unit.plan.sha256, unit.unit_index, scatter
                )
            except SampleBusy:
                # another process on this node works on this very unit (a copy handed over by
                # a rebalance): it records the result; this copy has nothing to add
                log.info(
                    "unit in progress here already: skipped",
                    extra={"sample_id": unit.sample_id, "unit": unit.unit_index},
                )
                return None
            if await asyncio.to_thread(self.store.exists_key, self.bucket, record_key):
                # A copy of this unit, delivered twice, finished first and the sample was
                # gathered meanwhile (its intermediates removed): remove what this one wrote.
                for ref in result.outputs.values():
                    await asyncio.to_thread(self.store.remove, ref.bucket, ref.key)
                return None
            await asyncio.to_thread(scatter.record, result)
            if await self._removed(folder):  # removed while we worked: what we wrote goes too
                await asyncio.to_thread(remove_again, self.store, self.bucket, folder)
                return None
            metrics.SCATTER_UNITS.labels(self.work.stage.value, lane, "done").inc()
            metrics.SCATTER_UNIT_SECONDS.labels(self.work.stage.value, lane).observe(
                result.wall_seconds
            )
        progress = await asyncio.to_thread(scatter.progress, len(plan.units))
        log.info(
            "unit done",
            extra={
                "sample_id": unit.sample_id,
                "unit": unit.unit_index,
                "units_done": progress.done,
                "units": progress.total,
            },
        )
        await self._progress(source, progress.done, progress.total)
        if not progress.complete:
            return None
        return await self._gather(source, scatter)

    def source_of(self, plan: ScatterPlan) -> SampleEvent:
        return self.work.source_type.model_validate(plan.source)

    def _work(
        self, plan: ScatterPlan, plan_sha256: str, index: int, scatter: ScatterStore
    ) -> UnitResult:
        name = f"{plan.sample_id}.unit{index:06d}"
        seconds = self.work.time_limit(plan, index)
        what = f"{self.work.stage.value} unit {index + 1} of {len(plan.units)}"
        with (
            sample_workdir(self.scratch, name) as workdir,
            metered() as meter,
            time_limit(seconds, what),
            tracer().start_as_current_span(
                f"{self.work.stage.value}.unit",
                attributes={"genomebus.sample_id": plan.sample_id, "genomebus.unit": index},
            ),
        ):
            result = self.work.work(plan, index, scatter, workdir)
        return result.model_copy(
            update={
                "cpu_seconds": meter.cpu_seconds,
                "wall_seconds": meter.wall_seconds,
                "worker": f"{socket.gethostname()}:{os.getpid()}",
                "plan_sha256": plan_sha256,
            }
        )

    async def _gather(self, source: SampleEvent, scatter: ScatterStore) -> Event | None:
        record_key = f"{self.folder(source.sample_id)}/{self.record_name}"

        def compute() -> Event:
            planned = scatter.read_plan()
            if planned is None:
                raise TransientError("the scatter plan is gone (removed meanwhile?)")
            plan, plan_ref = planned
            results = scatter.results(plan, plan_ref.sha256)
            if results is None:
                raise TransientError("a unit result is missing: not ready to gather")
            # The gather reads every unit's output once (merge, concatenation): its time limit
            # follows their total size, at the same rates as a unit's.
            size = sum(ref.size for r in results for ref in r.outputs.values())
            seconds = time_limit_for(size, floor_s=self.floor_s, bytes_per_s=self.min_bytes_per_s)
            with (
                sample_workdir(self.scratch, plan.sample_id) as workdir,
                metered() as meter,
                time_limit(seconds, f"{self.work.stage.value} gather of {len(results)} units"),
            ):
                meter.cpu_seconds += plan.planning_cpu_seconds + sum(r.cpu_seconds for r in results)
                meter.wall_seconds += plan.planning_wall_seconds + sum(
                    r.wall_seconds for r in results
                )
                event = self.work.gather(plan, results, scatter, workdir, meter)
            # One event id per plan: two gathers of one sample (a rebalance during an hours-long
            # gather) publish one event as far as any consumer can tell.
            event = event.model_copy(
                update={
                    "event_id": uuid.uuid5(
                        _GATHER_NAMESPACE,
                        f"{self.work.stage.value}/{plan.sample_id}/{plan_ref.sha256}",
                    )
                }
            )
            won = self.store.read_model(self.bucket, record_key, self.work.event_type)
            if won is not None:  # another gather recorded first: ours goes, theirs stands
                _remove_refs_not_in(self.store, event, won)
                return won
            return event

        try:
            published, computed = await compute_once_then_publish(
                self.broker,
                self.store,
                self.bucket,
                record_key,
                self.work.event_type,
                compute,
                source=source,
                consent=self.consent,
            )
        except SampleBusy:
            log.info(
                "gather in progress here already: skipped", extra={"sample_id": source.sample_id}
            )
            return None
        if published is not None:
            # also when only republished: a gather that died after its publish left them
            removed = await asyncio.to_thread(scatter.remove_work)
            if computed or removed:
                log.info(
                    "gathered",
                    extra={"sample_id": source.sample_id, "intermediates_removed": removed},
                )
        return published if computed else None

    async def _removed(self, folder: str) -> bool:
        return (
            await asyncio.to_thread(
                self.store.read_model, self.bucket, f"{folder}/{REMOVED_RECORD}", Removal
            )
            is not None
        )

    async def _progress(self, source: SampleEvent, done: int, total: int) -> None:
        """Say how far the sample is. Advisory: a failure to say so is logged, never a reason
        to redo a unit (the next unit, or the stage's event, says it again)."""
        event = source.follow_on(
            StageProgress,
            self.producer,
            stage=self.work.stage,
            unit_kind=self.work.unit_kind,
            units_done=done,
            units_total=total,
        )
        try:
            await publish_event(self.broker, event)
        except Exception as exc:  # noqa: BLE001 - advisory, see above
            log.warning(
                "progress not published", extra={"sample_id": source.sample_id, "error": str(exc)}
            )

    async def _stopped(self, source: SampleEvent, folder: str) -> bool:
        """True when the sample must not be worked on: withdrawn (quarantined) or removed."""
        if self.consent is not None:
            try:
                await self.consent.wait_ready()
            except TimeoutError as exc:
                raise TransientError("the consent view has not caught up yet") from exc
            await self.consent.caught_up()
            if (withdrawal := self.consent.withdrawn(source.patient_pseudonym)) is not None:
                await asyncio.to_thread(
                    _quarantine,
                    self.store,
                    self.bucket,
                    f"{folder}/{self.record_name}",
                    source,
                    withdrawal,
                )
                return True
        if await self._removed(folder):
            # Work that was past its check when the removal came may have written since:
            # every look at a removed sample removes what is there again.
            await asyncio.to_thread(remove_again, self.store, self.bucket, folder)
            return True
        return False
