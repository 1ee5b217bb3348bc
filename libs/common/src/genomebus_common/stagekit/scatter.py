"""Scatter and gather: one sample's work cut into units that any worker of a stage can take.

A 30x genome is ~600 million read pairs; one process aligning it takes a day, and a stage with
sixty-four workers should finish it in well under an hour. So a stage that receives a sample
does not do the work itself: it *plans* it (cuts the reads into chunks at record boundaries, or
the genome into regions), writes the plan beside its outputs, and publishes one ``WorkUnit`` per
unit on its lane's work topic. Any worker of the stage takes a unit, does it, and records the
result beside the plan. The worker that records the last result *gathers* (merges the units'
outputs into the sample's one result) and publishes the stage's event, exactly as an unscattered
stage would (``stage.compute_once_then_publish``).

Why this shape:
- Everything a unit needs is in the object store (the plan, its inputs), never in a worker's
  memory: a unit that fails is retried alone, on any worker, and a worker killed mid-unit
  costs that unit only.
- The lane's work topic has as many partitions as the lane may use workers at once
  (``topics.SCATTER_WIDTH``): urgent clinical samples get every worker, research leaves room.
- A unit's result is a small record written after its objects; a unit delivered twice finds it
  and does nothing. The plan is written after the units' inputs, so a crash mid-plan leaves no
  plan, and the sample's event, redelivered, plans again from the start.
- Progress is the number of unit records: ``progress()`` reads it with one listing.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from genomebus_common.contracts.events import (
    ObjectRef,
    Priority,
    Producer,
    SampleEvent,
    Stage,
    WorkUnit,
    new_id,
)
from genomebus_common.runtime.objectstore import ObjectStore

log = logging.getLogger(__name__)

#: Namespace of unit event ids: uuid5(stage/sample/unit/plan digest).
_UNIT_NAMESPACE = uuid.UUID("5b0f9d7e-3c1a-4f47-9a55-2f1e7f3a9c21")


def _now() -> datetime:
    return datetime.now(UTC)


class ScatterPlan(BaseModel):
    """What a stage will do for one sample, unit by unit. Written once, read by every unit."""

    sample_id: str
    stage: Stage
    priority: Priority
    source: dict[str, Any] = Field(description="The event the stage received, as JSON.")
    units: list[dict[str, Any]] = Field(min_length=1, description="Each unit's inputs.")
    planned_at: datetime = Field(default_factory=_now)
    planning_cpu_seconds: float = 0.0
    planning_wall_seconds: float = 0.0


def new_attempt() -> str:
    """A name for one attempt at a unit or a gather, unique across workers."""
    return new_id("attempt-")  # base32 without 0, 1, 8, 9: never shaped like a national id


class UnitResult(BaseModel):
    """What one unit produced: written after its objects, so its presence means it is done."""

    index: int = Field(ge=0)
    plan_sha256: str | None = Field(
        default=None,
        description="The plan this unit was done for: a result of another plan is not done.",
    )
    outputs: dict[str, ObjectRef]
    cpu_seconds: float = Field(ge=0)
    wall_seconds: float = Field(ge=0)
    details: dict[str, Any] = Field(default_factory=dict)
    worker: str | None = Field(
        default=None, description="host:pid of the process that did the unit."
    )
    finished_at: datetime = Field(default_factory=_now)


@dataclass(frozen=True)
class Progress:
    done: int
    total: int

    @property
    def complete(self) -> bool:
        return self.done >= self.total


@dataclass(frozen=True)
class ScatterStore:
    """Where one sample's scatter lives in a stage's bucket: ``<folder>/scatter/...``.

    ``folder`` is the stage's per-sample folder (``samples/<id>/<stage>``), so removing a
    sample's outputs (``stage.remove_outputs``) removes its scatter too.
    """

    store: ObjectStore
    bucket: str
    folder: str

    @property
    def plan_key(self) -> str:
        return f"{self.folder}/scatter/plan.json"

    @property
    def results_prefix(self) -> str:
        return f"{self.folder}/scatter/units/"

    @property
    def work_prefix(self) -> str:
        return f"{self.folder}/scatter/work/"

    def result_key(self, index: int) -> str:
        return f"{self.results_prefix}{index:06d}.json"

    def work_key(self, index: int, name: str) -> str:
        """Where unit ``index`` keeps an object (its input chunk, its output). Callers put an
        attempt (``new_attempt``) in ``name``: two copies of one unit (a rebalance hands an
        in-flight unit to a second worker) then never overwrite each other's objects, and the
        record that wins names objects that are exactly what it says."""
        return f"{self.work_prefix}{index:06d}/{name}"

    def output_key(self, attempt: str, name: str) -> str:
        """Where a gather keeps the sample's result, per attempt for the same reason."""
        return f"{self.folder}/{attempt}/{name}"

    def read_plan(self) -> tuple[ScatterPlan, ObjectRef] | None:
        """The plan and its reference (whose digest units carry), or None if there is none."""
        raw = self._read_bytes(self.plan_key)
        if raw is None:
            return None
        ref = ObjectRef(
            bucket=self.bucket,
            key=self.plan_key,
            sha256=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
            content_type="application/json",
        )
        return ScatterPlan.model_validate_json(raw), ref

    def write_plan(self, plan: ScatterPlan) -> ObjectRef:
        return self.store.write_model(self.bucket, self.plan_key, plan)

    def _read_bytes(self, key: str) -> bytes | None:
        # the plan's exact bytes give the digest its units carry
        return self.store.read_bytes(self.bucket, key)

    def result(self, index: int) -> UnitResult | None:
        return self.store.read_model(self.bucket, self.result_key(index), UnitResult)

    def record(self, result: UnitResult) -> None:
        self.store.write_model(self.bucket, self.result_key(result.index), result)

    def progress(self, total: int) -> Progress:
        """Units done so far: one listing, no reads."""
        done = sum(
            1
            for key in self.store.list_keys(self.bucket, self.results_prefix)
            if key.endswith(".json")
        )
        return Progress(done=min(done, total), total=total)

    def results(self, plan: ScatterPlan, plan_sha256: str) -> list[UnitResult] | None:
        """Every unit's result for this plan in unit order, or None while any is missing."""
        if not self.progress(len(plan.units)).complete:
            return None
        results: list[UnitResult] = []
        for index in range(len(plan.units)):
            result = self.result(index)
            if result is None or result.plan_sha256 != plan_sha256:
                return None
            results.append(result)
        return results

    def remove_work(self) -> int:
        """Delete the units' intermediate objects (chunks, partial outputs) once gathered;
        the plan and the unit records stay, small, as the sample's provenance."""
        keys = self.store.list_keys(self.bucket, self.work_prefix)
        for key in keys:
            self.store.remove(self.bucket, key)
        return len(keys)


def unit_events(
    plan: ScatterPlan,
    plan_ref: ObjectRef,
    source: SampleEvent,
    producer: Producer,
    indices: Iterable[int] | None = None,
) -> list[WorkUnit]:
    """The ``WorkUnit`` events of a plan (of ``indices`` only, when given), with event ids that
    are the same every time the same plan is published."""
    wanted = range(len(plan.units)) if indices is None else indices
    return [
        source.follow_on(
            WorkUnit,
            producer,
            event_id=uuid.uuid5(
                _UNIT_NAMESPACE, f"{plan.stage.value}/{plan.sample_id}/{i}/{plan_ref.sha256}"
            ),
            stage=plan.stage,
            priority=plan.priority,
            unit_index=i,
            unit_count=len(plan.units),
            plan=plan_ref,
        )
        for i in wanted
    ]
