"""Calling's work on in-memory ports: the plan's regions and their shares of the BAM, what a
unit stores, and what the gather publishes, without MinIO or bcftools."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from genomebus_calling.config import CallingSettings
from genomebus_calling.core.errors import ReferenceMismatch
from genomebus_calling.core.results import GatheredCalls, RegionCalls
from genomebus_calling.work import CallingWork
from genomebus_common.contracts.events import (
    ObjectRef,
    Priority,
    SampleAligned,
    Stage,
    ToolProvenance,
    VariantCounts,
    VariantsCalled,
)
from genomebus_common.stagekit.scatter import ScatterPlan, ScatterStore
from genomebus_common.stagekit.tools import ResourceMeter
from tests.alignment.memory import METRICS, FixedReference, MemoryStore

from ..common.factories import sample_received

CONTIGS = [("chr1", 250), ("chr2", 100), ("chrM", 16)]


class FakeCaller:
    """``CallerTools`` over a BAM with ``CONTIGS``: a unit's "calls" name its regions."""

    def __init__(self, contigs: list[tuple[str, int]] | None = None) -> None:
        self.contig_list = CONTIGS if contigs is None else contigs
        self.called: list[tuple[str, list[str]]] = []

    def check_bam(self, bam: ObjectRef, reference_fasta: Path) -> None:
        if not self.contig_list:
            raise ReferenceMismatch("no @SQ lines")

    def contigs(self, bam: ObjectRef) -> list[tuple[str, int]]:
        return self.contig_list

    def call(
        self,
        bam: ObjectRef,
        bam_index: Path,
        reference_fasta: Path,
        workdir: Path,
        regions: Sequence[str],
    ) -> RegionCalls:
        self.called.append((bam_index.read_text(), list(regions)))
        workdir.mkdir(parents=True, exist_ok=True)
        bcf = workdir / "unit.bcf"
        bcf.write_text(",".join(regions) + "\n")
        return RegionCalls(
            bcf, ToolProvenance(name="bcftools", version="t", command="mpileup | call")
        )

    def gather(
        self, unit_bcfs: Sequence[Path], reference_fasta: Path, workdir: Path
    ) -> GatheredCalls:
        workdir.mkdir(parents=True, exist_ok=True)
        vcf, tbi = workdir / "variants.vcf.gz", workdir / "variants.vcf.gz.tbi"
        vcf.write_text("".join(p.read_text() for p in unit_bcfs))
        tbi.write_text("index")
        counts = VariantCounts(records=len(unit_bcfs), snv=1, indel=0)
        tools = [
            ToolProvenance(name="bcftools", version="t", command="concat | norm"),
            ToolProvenance(name="bcftools index", version="t", command="index -t"),
        ]
        return GatheredCalls(vcf=vcf, tbi=tbi, counts=counts, tools=tools)


class Parts:
    def __init__(self, tmp_path: Path, caller: FakeCaller | None = None) -> None:
        self.settings = CallingSettings(region_size_bp=100, profile="dev", _env_file=None)  # type: ignore[call-arg]
        self.store = MemoryStore()
        self.tools = caller or FakeCaller()
        self.work = CallingWork(
            settings=self.settings,
            store=self.store,
            references=FixedReference(tmp_path / "genome.fa"),
            tools=self.tools,
        )
        self.tmp = tmp_path

    def aligned(self, priority: Priority | None = Priority.URGENT_CLINICAL) -> SampleAligned:
        received = sample_received()
        bam = self.store.put_bytes("genomebus-alignments", "a/S.bam", b"B" * 3660)
        bai = self.store.put_bytes("genomebus-alignments", "a/S.bam.bai", b"the index")
        return SampleAligned(
            **received.carried(None),
            bam=bam,
            bam_index=bai,
            metrics=METRICS,
            tools=[],
            priority=priority,
        )

    def scatter(self, source: SampleAligned) -> ScatterStore:
        folder = f"samples/{source.sample_id}/calling"
        return ScatterStore(self.store, self.settings.variants_bucket, folder)  # type: ignore[arg-type]

    def plan(self, source: SampleAligned) -> ScatterPlan:
        units = self.work.plan(source, self.scatter(source), self.tmp)
        return ScatterPlan(
            sample_id=source.sample_id,
            stage=Stage.CALLING,
            priority=Priority.ROUTINE,
            source=source.model_dump(mode="json"),
            units=units,
        )


def test_regions_cover_the_genome_and_share_the_bam_by_their_bases(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    source = parts.aligned()
    plan = parts.plan(source)
    assert [u["regions"] for u in plan.units] == [
        ["chr1:1-84"],
        ["chr1:85-168"],
        ["chr1:169-250"],
        ["chr2:1-100"],
        ["chrM:1-16"],
    ]
    assert [u["bases"] for u in plan.units] == [84, 84, 82, 100, 16]
    assert [u["bam_share_bytes"] for u in plan.units] == [840, 840, 820, 1000, 160]
    assert parts.work.time_limit(plan, 3) >= parts.settings.unit_time_floor_s


def test_a_bam_the_tools_refuse_is_not_planned(tmp_path: Path) -> None:
    parts = Parts(tmp_path, FakeCaller(contigs=[]))
    with pytest.raises(ReferenceMismatch):
        parts.work.plan(parts.aligned(), parts.scatter(parts.aligned()), tmp_path)


def test_regions_gather_into_one_event_that_carries_the_sample(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    source = parts.aligned()
    scatter = parts.scatter(source)
    plan = parts.plan(source)
    results = []
    for i in range(len(plan.units)):
        (tmp_path / f"unit{i}").mkdir()  # the stage's scratch for the unit
        results.append(parts.work.work(plan, i, scatter, tmp_path / f"unit{i}"))
    # every unit read the stored BAM through its downloaded index, its own regions only
    assert parts.tools.called == [("the index", u["regions"]) for u in plan.units]
    assert all(
        r.outputs["bcf"].key.startswith(f"{scatter.work_prefix}{r.index:06d}/attempt-")
        for r in results
    )
    (tmp_path / "gather").mkdir()
    event = parts.work.gather(plan, results, scatter, tmp_path / "gather", ResourceMeter())
    assert isinstance(event, VariantsCalled)
    assert (event.sample_id, event.hospital_id, event.correlation_id, event.bam) == (
        source.sample_id,
        source.hospital_id,
        source.correlation_id,
        source.bam,
    )
    assert event.producer is not None and event.producer.service == "calling"
    stored = parts.store.objects[(event.vcf.bucket, event.vcf.key)][0].decode()
    assert stored.splitlines() == [",".join(u["regions"]) for u in plan.units]  # genome order
    assert event.vcf.key.rpartition("/")[0] == event.vcf_index.key.rpartition("/")[0]
    assert event.vcf.content_type == "application/gzip"
    assert [(t.name, t.command) for t in event.tools] == [
        ("bcftools", "mpileup | call | concat | norm"),
        ("bcftools index", "index -t"),
    ]
    assert event.scatter is not None
    assert (event.scatter.units, event.scatter.unit_kind) == (5, "region")
