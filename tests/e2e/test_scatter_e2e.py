"""One sample, two workers per stage: its chunks and regions are shared between them, and it is
aligned and called once, with the result of any other split."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from genomebus_common.contracts.events import SampleAligned, VariantsCalled
from genomebus_common.contracts.topics import SAMPLE_ALIGNED, VARIANTS_CALLED
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit.reference import Manifest
from genomebus_common.stagekit.scatter import UnitResult
from genomebus_testdata import SimulatedSample

from ..common.kafka_helpers import read_until
from .conftest import Pipeline, post_sample
from .test_scaling_e2e import _stable_member_ids

pytestmark = pytest.mark.integration


def unit_workers(store: ObjectStore, bucket: str, folder: str) -> list[str | None]:
    keys = sorted(store.list_keys(bucket, f"{folder}/scatter/units/"))
    return [store.read_model(bucket, key, UnitResult).worker for key in keys]  # type: ignore[union-attr]


async def test_two_workers_per_stage_share_one_samples_units(
    pipeline: Pipeline,
    registered_reference: Manifest,
    sample_30x: SimulatedSample,
    settings: ServiceSettings,
    store: ObjectStore,
    tmp_path: Path,
) -> None:
    groups = ("genomebus.alignment.work.routine", "genomebus.calling.work.routine")
    before = {g: await _stable_member_ids(settings, g) for g in groups}
    extra = [
        pipeline.extra_worker(name, tmp_path / f"second-{name}").start()
        for name in ("alignment", "calling")
    ]
    try:
        for worker in extra:
            worker.wait_ready()
        for group in groups:
            await _stable_member_ids(settings, group, new_beyond=before[group])
        with pipeline.lis() as lis:
            # a new specimen each run: the stack's ingest database outlives a test session
            specimen = f"SCAT{uuid.uuid4().hex[:8]}"
            sample_id = post_sample(lis, sample_30x, registered_reference.reference.id, specimen)[
                "sample_id"
            ]
        key = sample_id.encode()
        aligned = SampleAligned.from_bytes(
            (
                await read_until(
                    settings, SAMPLE_ALIGNED.name, lambda r: r.key == key, timeout_s=300
                )
            ).value
        )
        called = VariantsCalled.from_bytes(
            (
                await read_until(
                    settings, VARIANTS_CALLED.name, lambda r: r.key == key, timeout_s=300
                )
            ).value
        )
    finally:
        for worker in extra:
            worker.stop()
    assert aligned.scatter is not None and aligned.scatter.units == 3
    assert aligned.metrics.reads_total == 2 * sample_30x.read_pairs
    assert called.scatter is not None and called.scatter.units == 3
    pids = {str(pipeline.services["alignment"].process.pid), str(extra[0].process.pid)}  # type: ignore[union-attr]
    workers = unit_workers(store, "genomebus-alignments", f"samples/{sample_id}/alignment")
    assert len(workers) == 3
    assert {w.rsplit(":", 1)[1] for w in workers if w} == pids, "both alignment workers took chunks"
    calling_pids = {str(pipeline.services["calling"].process.pid), str(extra[1].process.pid)}  # type: ignore[union-attr]
    workers = unit_workers(store, "genomebus-variants", f"samples/{sample_id}/calling")
    assert {w.rsplit(":", 1)[1] for w in workers if w} == calling_pids, (
        "both calling workers took regions"
    )
