"""Alignment's work on in-memory ports: what a plan holds, what a unit stores, and what the
gather publishes, without MinIO or bwa (the tools' own behaviour is ``test_pipeline``'s)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from genomebus_alignment.config import AlignmentSettings
from genomebus_alignment.core.errors import ReadCountMismatch
from genomebus_alignment.core.fastq import InvalidReads
from genomebus_alignment.work import AlignmentWork
from genomebus_common.contracts.events import Priority, SampleReceived, Stage
from genomebus_common.stagekit.scatter import ScatterPlan, ScatterStore
from genomebus_common.stagekit.tools import ResourceMeter

from ..common.factories import sample_received
from .memory import FakeAligner, FixedReference, MemoryStore

INPUTS = "genomebus-reads"


def fastq(n: int, mate: int) -> bytes:
    return gzip.compress(
        "".join(f"@r{i}/{mate}\n{'A' * 100}\n+\n{'I' * 100}\n" for i in range(n)).encode()
    )


class Parts:
    def __init__(self, tmp_path: Path, lose: int = 0) -> None:
        # 400 bases a batch, one batch a chunk: two pairs of 2 x 100 bases per chunk
        self.settings = AlignmentSettings(
            chunk_bases=400, bwa_batch_bases=400, profile="dev", _env_file=None
        )  # type: ignore[call-arg]
        self.store = MemoryStore()
        self.tools = FakeAligner(lose=lose)
        self.work = AlignmentWork(
            settings=self.settings,
            store=self.store,
            references=FixedReference(tmp_path / "genome.fa"),
            tools=self.tools,
        )
        self.tmp = tmp_path

    def received(self, pairs: int, declared: int | None = None, **fields: object) -> SampleReceived:
        r1 = self.store.put_bytes(INPUTS, "in/r1.fq.gz", fastq(pairs, 1))
        r2 = self.store.put_bytes(INPUTS, "in/r2.fq.gz", fastq(pairs, 2))
        return sample_received(
            reads_r1=r1, reads_r2=r2, read_pairs=pairs if declared is None else declared, **fields
        )

    def scatter(self, source: SampleReceived) -> ScatterStore:
        folder = f"samples/{source.sample_id}/alignment"
        return ScatterStore(self.store, self.settings.alignments_bucket, folder)  # type: ignore[arg-type]

    def run(self, source: SampleReceived) -> tuple[ScatterPlan, ScatterStore, object]:
        """Plan, every unit, and the gather, as the stage would in one process."""
        scatter = self.scatter(source)
        units = self.work.plan(source, scatter, self.tmp / "plan")
        plan = ScatterPlan(
            sample_id=source.sample_id,
            stage=Stage.ALIGNMENT,
            priority=source.priority,
            source=source.model_dump(mode="json"),
            units=units,
        )
        results = [
            self.work.work(plan, i, scatter, self.tmp / f"unit{i}") for i in range(len(units))
        ]
        (self.tmp / "gather").mkdir()
        event = self.work.gather(plan, results, scatter, self.tmp / "gather", ResourceMeter())
        return plan, scatter, event


@pytest.fixture
def parts(tmp_path: Path) -> Parts:
    (tmp_path / "plan").mkdir()
    return Parts(tmp_path)


def test_a_sample_known_to_fit_one_chunk_is_one_unit_of_the_files_as_sent(parts: Parts) -> None:
    source = parts.received(1, read_bases=200)
    units = parts.work.plan(source, parts.scatter(source), parts.tmp / "plan")
    assert units == [
        {
            "r1": source.reads_r1.model_dump(mode="json"),
            "r2": source.reads_r2.model_dump(mode="json"),
            "pairs": 1,
            "bases": 200,
            "first_pair": 0,
            "aligner": "bwa",
            "batch_bases": 400,
        }
    ]
    assert parts.store.keys(parts.settings.alignments_bucket) == []  # nothing read or copied


def test_chunks_hold_whole_batches_and_know_where_their_pairs_start(parts: Parts) -> None:
    source = parts.received(10)
    scatter = parts.scatter(source)
    units = parts.work.plan(source, scatter, parts.tmp / "plan")
    assert [u["pairs"] for u in units] == [2, 2, 2, 2, 2]
    assert [u["first_pair"] for u in units] == [0, 2, 4, 6, 8]
    assert {(u["aligner"], u["batch_bases"]) for u in units} == {("bwa", 400)}
    stored = parts.store.keys(scatter.bucket, scatter.work_prefix)
    assert len(stored) == 10
    assert {u["r1"]["key"] for u in units} | {u["r2"]["key"] for u in units} == set(stored)


@pytest.mark.parametrize(("pairs", "declared"), [(10, 11), (10, 9)])
def test_a_plan_that_reads_other_pairs_than_ingest_counted_leaves_no_chunk(
    parts: Parts, pairs: int, declared: int
) -> None:
    source = parts.received(pairs, declared)
    scatter = parts.scatter(source)
    with pytest.raises(ReadCountMismatch, match=f"ingest counted {declared} read pairs"):
        parts.work.plan(source, scatter, parts.tmp / "plan")
    assert parts.store.keys(scatter.bucket) == []


def test_reads_that_are_not_a_pair_are_refused_and_leave_no_chunk(parts: Parts) -> None:
    r1 = parts.store.put_bytes(INPUTS, "in/r1.fq.gz", fastq(10, 1))
    r2 = parts.store.put_bytes(INPUTS, "in/r2.fq.gz", fastq(7, 2))
    source = sample_received(reads_r1=r1, reads_r2=r2, read_pairs=10)
    with pytest.raises(InvalidReads, match="not a pair"):
        parts.work.plan(source, parts.scatter(source), parts.tmp / "plan")
    assert parts.store.keys(parts.settings.alignments_bucket) == []


def test_a_chunked_sample_gathers_into_one_event_on_the_samples_lane(parts: Parts) -> None:
    source = parts.received(10, priority=Priority.URGENT_CLINICAL)
    _, scatter, event = parts.run(source)
    assert event.priority == Priority.URGENT_CLINICAL  # type: ignore[attr-defined]
    assert (event.sample_id, event.hospital_id, event.correlation_id) == (  # type: ignore[attr-defined]
        source.sample_id,
        source.hospital_id,
        source.correlation_id,
    )
    assert event.producer.service == "alignment"  # type: ignore[attr-defined]
    # the units' BAMs merged in unit order
    assert parts.tools.calls[-1] == (
        "gather",
        {"units": [f"unit from {i}: 2\n".encode() for i in (0, 2, 4, 6, 8)]},
    )
    bam, bai = event.bam, event.bam_index  # type: ignore[attr-defined]
    assert bam.bucket == bai.bucket == parts.settings.alignments_bucket
    assert bam.key.rpartition("/")[0] == bai.key.rpartition("/")[0]  # one attempt
    assert bam.key.startswith(f"{scatter.folder}/attempt-")
    assert (bam.key.rpartition("/")[2], bai.key.rpartition("/")[2]) == (
        f"{source.sample_id}.bam",
        f"{source.sample_id}.bam.bai",
    )
    assert bam.content_type == "application/x-bam"
    assert [(t.name, t.command) for t in event.tools] == [  # type: ignore[attr-defined]
        ("bwa", "bwa mem"),
        ("samtools", "fixmate | sort | merge"),
    ]
    assert (event.scatter.units, event.scatter.unit_kind) == (5, "read_chunk")  # type: ignore[attr-defined]


def test_a_chunk_that_lost_reads_is_not_stored(tmp_path: Path) -> None:
    (tmp_path / "plan").mkdir()
    parts = Parts(tmp_path, lose=1)
    source = parts.received(10)
    scatter = parts.scatter(source)
    units = parts.work.plan(source, scatter, tmp_path / "plan")
    plan = ScatterPlan(
        sample_id=source.sample_id,
        stage=Stage.ALIGNMENT,
        priority=source.priority,
        source=source.model_dump(mode="json"),
        units=units,
    )
    before = parts.store.keys(scatter.bucket)
    with pytest.raises(ReadCountMismatch, match="chunk 3 was cut with 2 pairs, alignment read 1"):
        parts.work.work(plan, 3, scatter, tmp_path / "unit3")
    assert parts.store.keys(scatter.bucket) == before


def test_a_sample_of_one_chunk_is_stored_by_its_unit_and_merged_by_no_one(parts: Parts) -> None:
    source = parts.received(2, read_bases=400 - 1)
    _, _, event = parts.run(source)
    assert [kind for kind, _ in parts.tools.calls] == ["whole"]
    assert event.bam.key.endswith(f"/{source.sample_id}.bam")  # type: ignore[attr-defined]
    assert (event.scatter.units, event.scatter.gather_seconds) == (1, 0.0)  # type: ignore[attr-defined]
    assert [t.command for t in event.tools] == ["bwa mem", "fixmate | markdup"]  # type: ignore[attr-defined]


def test_a_unit_keeps_the_aligner_its_plan_was_made_with(parts: Parts) -> None:
    """A rolling update that changes the aligner must not mix two aligners in one BAM."""
    source = parts.received(4)
    scatter = parts.scatter(source)
    units = parts.work.plan(source, scatter, parts.tmp / "plan")
    units[1]["aligner"] = "minimap2"  # planned by a worker of another configuration
    plan = ScatterPlan(
        sample_id=source.sample_id,
        stage=Stage.ALIGNMENT,
        priority=source.priority,
        source=source.model_dump(mode="json"),
        units=units,
    )
    parts.work.work(plan, 1, scatter, parts.tmp / "unit1")
    assert parts.tools.calls[-1] == ("unit", {"aligner": "minimap2", "first_pair": 2})


def test_a_units_time_limit_follows_its_reads_size(parts: Parts) -> None:
    plan = ScatterPlan(
        sample_id="S1",
        stage=Stage.ALIGNMENT,
        priority=Priority.ROUTINE,
        source={},
        units=[
            {"r1": {"size": 10**9}, "r2": {"size": 10**9}},
            {"r1": {"size": 1}, "r2": {"size": 1}},
        ],
    )
    floor = parts.settings.unit_time_floor_s
    assert parts.work.time_limit(plan, 1) == pytest.approx(floor, rel=0.01)
    assert parts.work.time_limit(plan, 0) == pytest.approx(
        floor + 2 * 10**9 / parts.settings.unit_min_bytes_per_s, rel=0.01
    )
