"""The half of a scattered stage's work that every stage does the same way.

Alignment and calling differ in what a unit is (a chunk of reads, a region of the genome), in
the tools they run and in the event they publish. They do not differ in how a unit's output is
kept (under the unit's own attempt, so two copies of one unit never overwrite each other), how
a gather fetches the units' outputs, how a gather keeps the sample's result (one attempt for
all its files), how long a unit may take (from the size of its input), or how the event's
scatter summary is written. That part is here, once; a stage's ``ScatterWork`` inherits it and
states only what differs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from genomebus_common.contracts.events import (
    ObjectRef,
    ReferenceGenome,
    SampleEvent,
    ScatterSummary,
    Stage,
)
from genomebus_common.stagekit.scatter import ScatterPlan, ScatterStore, UnitResult, new_attempt
from genomebus_common.stagekit.tools import time_limit_for

S = TypeVar("S", bound=SampleEvent)

UnitKind = Literal["read_chunk", "region"]


class ReadStream(Protocol):
    """A stream of bytes read in pieces (a stored object's verified stream, an open file)."""

    def read(self, size: int = -1, /) -> bytes: ...


class References(Protocol):
    """Reference genomes as local files (``ReferenceRegistry``)."""

    def materialise(self, reference: ReferenceGenome) -> tuple[Path, object]:
        """The local FASTA (its indexes beside it); an unknown reference fails here."""
        ...


class StageObjects(Protocol):
    """The object store as a stage's work uses it (``ObjectStore`` is one; tests bring theirs)."""

    def open(self, ref: ObjectRef) -> AbstractContextManager[ReadStream]:
        """A stream of ``ref``'s bytes that fails at its end if they are not ``ref``'s."""
        ...

    def put_file(
        self, bucket: str, key: str, path: Path, *, content_type: str = ...
    ) -> ObjectRef: ...

    def download(self, ref: ObjectRef, path: Path) -> Path: ...

    def remove(self, bucket: str, key: str) -> None: ...


class UnitLimits(Protocol):
    """The settings that bound a unit's time (``ScatterSettings``)."""

    @property
    def unit_time_floor_s(self) -> float: ...

    @property
    def unit_min_bytes_per_s(self) -> float: ...


class StageWork(Generic[S]):
    """Shared by every stage's ``ScatterWork``: subclasses set the class attributes and
    implement ``plan``, ``work``, ``gather`` and ``unit_input_bytes``."""

    stage: Stage
    source_type: type[S]
    unit_kind: UnitKind

    store: StageObjects

    @property
    def limits(self) -> UnitLimits:
        """The settings that bound a unit's time."""
        raise NotImplementedError

    @property
    def output_bucket(self) -> str:
        """Where the gather keeps the sample's result."""
        raise NotImplementedError

    def source(self, plan: ScatterPlan) -> S:
        """The stage's input event, as the plan kept it."""
        return self.source_type.model_validate(plan.source)

    def unit_input_bytes(self, plan: ScatterPlan, index: int) -> int:
        """How many bytes unit ``index`` reads: its time limit follows from it."""
        raise NotImplementedError

    def time_limit(self, plan: ScatterPlan, index: int) -> float:
        return time_limit_for(
            self.unit_input_bytes(plan, index),
            floor_s=self.limits.unit_time_floor_s,
            bytes_per_s=self.limits.unit_min_bytes_per_s,
        )

    def keep_unit_output(
        self,
        scatter: ScatterStore,
        index: int,
        name: str,
        path: Path,
        content_type: str | None = None,
    ) -> ObjectRef:
        """Store unit ``index``'s output under an attempt of its own."""
        return self._put(
            scatter.bucket, scatter.work_key(index, f"{new_attempt()}/{name}"), path, content_type
        )

    def _put(self, bucket: str, key: str, path: Path, content_type: str | None) -> ObjectRef:
        if content_type is None:  # the store's default type
            return self.store.put_file(bucket, key, path)
        return self.store.put_file(bucket, key, path, content_type=content_type)

    def keep_sample_outputs(
        self,
        scatter: ScatterStore,
        sample_id: str,
        files: Mapping[str, tuple[Path, str | None]],
    ) -> dict[str, ObjectRef]:
        """Store the gather's files, ``{suffix: (path, content type or None)}``, as
        ``<sample id><suffix>`` under one attempt in the output bucket."""
        attempt = new_attempt()
        refs: dict[str, ObjectRef] = {}
        for suffix, (path, content_type) in files.items():
            key = scatter.output_key(attempt, f"{sample_id}{suffix}")
            refs[suffix] = self._put(self.output_bucket, key, path, content_type)
        return refs

    def fetch_unit_outputs(
        self, results: Sequence[UnitResult], output: str, workdir: Path, extension: str
    ) -> list[Path]:
        """Every unit's ``output``, downloaded in unit order into ``workdir/units``."""
        inputs = workdir / "units"
        inputs.mkdir()
        return [
            self.store.download(r.outputs[output], inputs / f"unit{r.index:06d}{extension}")
            for r in results
        ]

    def summary(self, units: int, gather_started: float | None) -> ScatterSummary:
        """The event's scatter block; ``gather_started`` is a ``time.monotonic()`` reading, or
        None when the gather had nothing to do."""
        seconds = 0.0 if gather_started is None else time.monotonic() - gather_started
        return ScatterSummary(units=units, unit_kind=self.unit_kind, gather_seconds=seconds)


def chained_tool(unit_tool: Mapping[str, Any], gather_command: str | None) -> dict[str, Any]:
    """A tool's provenance as a unit ran it, with the gather's command piped after it: the
    sample's record of that step reads as if it had run in one piece."""
    return {**unit_tool, "command": f"{unit_tool['command']} | {gather_command}"}


def unit_result(index: int, outputs: dict[str, ObjectRef], details: dict[str, Any]) -> UnitResult:
    """A unit's result as its work returns it; the stage fills in the time and the worker."""
    return UnitResult(index=index, outputs=outputs, cpu_seconds=0, wall_seconds=0, details=details)


__all__ = [
    "ReadStream",
    "StageObjects",
    "StageWork",
    "UnitKind",
    "UnitLimits",
    "chained_tool",
    "unit_result",
]
