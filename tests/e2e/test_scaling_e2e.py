"""Two alignment workers in one consumer group share four samples: each aligned exactly once."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from genomebus_common.contracts.events import Priority, SampleAligned
from genomebus_common.contracts.topics import SAMPLE_ALIGNED, SAMPLE_RECEIVED_LANES
from genomebus_common.runtime.kafka_client import client_options
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit.reference import Manifest
from genomebus_common.stagekit.scatter import ScatterStore
from genomebus_testdata import simulate_sample

from ..common.kafka_helpers import read_until
from .conftest import HOSPITAL, Pipeline, post_sample

pytestmark = pytest.mark.integration
LANE = SAMPLE_RECEIVED_LANES[Priority.ROUTINE]


def _keyed(sample_id: str) -> Callable[[ConsumerRecord], bool]:
    """Matches the records of one sample (keyed by its id)."""
    key = sample_id.encode()
    return lambda record: record.key == key


def _partition(key: str, partitions: int) -> int:
    """Kafka's default partitioner for a keyed message (what the producers use)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def _specimens_on_distinct_partitions(count: int) -> list[str]:
    """Specimen ids whose samples land on partitions 0..count-1 of the lane: any two-way split
    of the group's partitions then gives each worker some of them."""
    wanted: dict[int, str] = {}
    while len(wanted) < count:
        specimen = f"W{uuid.uuid4().hex[:8]}"
        partition = _partition(f"{HOSPITAL}.{specimen}", LANE.partitions)
        if partition < count:
            wanted.setdefault(partition, specimen)
    return list(wanted.values())


async def _stable_member_ids(
    settings: ServiceSettings,
    group: str,
    *,
    new_beyond: frozenset[str] = frozenset(),
    timeout_s: float = 60,
) -> frozenset[str]:
    """Member ids of ``group`` once it is Stable and has a member not in ``new_beyond``
    (members that died meanwhile may have left: only the newcomer counts)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            response = (await admin.describe_consumer_groups([group]))[0]
            _, _, state, _, _, found = response.groups[0][:6]
            ids = frozenset(member[0] for member in found)
            if state == "Stable" and ids and (not new_beyond or ids - new_beyond):
                return ids
            await asyncio.sleep(0.5)
        raise AssertionError(f"group {group} did not settle with a new member")
    finally:
        await admin.close()


async def test_two_workers_share_four_samples_and_align_each_once(
    pipeline: Pipeline,
    registered_reference: Manifest,
    reference_fasta: Path,
    settings: ServiceSettings,
    store: ObjectStore,
    tmp_path: Path,
) -> None:
    """Run alone on its stack: another alignment worker in the group would take samples too."""
    sample = simulate_sample(reference_fasta, tmp_path / "small", read_pairs=4000, seed=7)
    group = "genomebus.alignment.routine"
    before = await _stable_member_ids(settings, group)
    second = pipeline.extra_worker("alignment", tmp_path / "second-worker").start()
    try:
        second.wait_ready()
        await _stable_member_ids(settings, group, new_beyond=before)
        specimens = _specimens_on_distinct_partitions(4)
        with pipeline.lis() as lis:
            ids = [
                post_sample(lis, sample, registered_reference.reference.id, s)["sample_id"]
                for s in specimens
            ]
        for sample_id in ids:
            record = await read_until(
                settings,
                SAMPLE_ALIGNED.name,
                _keyed(sample_id),
                timeout_s=120,
            )
            aligned = SampleAligned.from_bytes(record.value)
            assert aligned.metrics.reads_total == 8000
            # Fewer bases than one chunk: aligned from the files as sent, nothing cut or copied.
            assert aligned.scatter is not None and aligned.scatter.units == 1
            scatter = ScatterStore(store, "genomebus-alignments", f"samples/{sample_id}/alignment")
            plan, _ = scatter.read_plan()  # type: ignore[misc]
            assert plan.units[0]["r1"]["bucket"] == "genomebus-reads"
    finally:
        second.stop()

    # Both workers log into the same file (one per service name): their pids tell them apart.
    log = pipeline.services["alignment"].log_path
    entries = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    work = [
        (e["pid"], e["sample_id"])
        for e in entries
        if e.get("message") == "planning" and e.get("sample_id") in ids
    ]
    assert sorted(s for _, s in work) == sorted(ids), (
        "each sample planned (cut into chunks) exactly once"
    )
    assert {pid for pid, _ in work} == {
        pipeline.services["alignment"].process.pid,
        second.process.pid,
    }  # type: ignore[union-attr]
