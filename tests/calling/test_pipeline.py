"""The calling pipeline against the real tools, on the simulated genome with a known truth."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from genomebus_alignment.adapters.pipeline import AlignmentResult
from genomebus_calling.adapters.pipeline import (
    CallingResult,
    InvalidAlignment,
    ReferenceMismatch,
    call_variants,
)
from genomebus_common.contracts.errors import PermanentError
from genomebus_common.stagekit.tools import has_bgzf_eof
from tests.alignment.data import (
    CONTIGS,
    REFERENCE_SEED,
    SmallDataset,
    read_vcf,
    require_tools,
    write_reference,
)

pytestmark = pytest.mark.tools  # runs the real bio tools


@pytest.fixture(scope="module")
def called(
    aligned_bwa: AlignmentResult,
    small_dataset: SmallDataset,
    tmp_path_factory: pytest.TempPathFactory,
) -> CallingResult:
    return call_variants(
        aligned_bwa.bam, small_dataset.reference, tmp_path_factory.mktemp("called")
    )


def _records(result: CallingResult) -> list[list[str]]:
    return list(read_vcf(result.vcf))


def test_vcf_is_complete_indexed_and_counts_match_the_file(called: CallingResult) -> None:
    assert has_bgzf_eof(called.vcf)
    assert called.index.is_file() and called.index.name.endswith(".vcf.gz.tbi")
    records = _records(called)
    assert called.counts.records == len(records) > 0
    snv = sum(1 for r in records if len(r[3]) == 1 and len(r[4]) == 1)
    indel = sum(1 for r in records if len(r[3]) != len(r[4]))
    assert (called.counts.snv, called.counts.indel) == (snv, indel)
    assert called.counts.snv + called.counts.indel <= called.counts.records
    # The index answers a region query.
    out = subprocess.run(
        ["bcftools", "view", "-H", str(called.vcf), "chrB"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert len(out.splitlines()) == sum(1 for r in records if r[0] == "chrB")


def test_records_are_normalised_and_carry_ad_dp(called: CallingResult) -> None:
    for chrom, pos, _id, _ref, alt, _q, _f, _info, fmt, *_ in _records(called):
        assert "," not in alt, f"multiallelic record left at {chrom}:{pos}"
        assert {"GT", "AD", "DP"} <= set(fmt.split(":"))


def test_known_snvs_are_found(called: CallingResult, small_dataset: SmallDataset) -> None:
    truth = {(v.chrom, v.pos, v.ref, v.alt) for v in small_dataset.truth_snvs}
    found = {(r[0], int(r[1]), r[3], r[4]) for r in _records(called) if len(r[3]) == len(r[4]) == 1}
    recall = len(truth & found) / len(truth)
    precision = len(truth & found) / len(found)
    assert len(truth) > 100
    assert recall > 0.9, f"SNV recall {recall:.3f}"
    assert precision > 0.9, f"SNV precision {precision:.3f}"


def test_known_indels_are_mostly_found(called: CallingResult, small_dataset: SmallDataset) -> None:
    """Positions may move by normalisation (left-alignment), hence a small window."""
    called_indels = [
        (r[0], int(r[1]), len(r[4]) - len(r[3])) for r in _records(called) if len(r[3]) != len(r[4])
    ]
    hits = 0
    for v in small_dataset.truth_indels:
        delta = len(v.alt) - len(v.ref)
        if any(c == v.chrom and abs(p - v.pos) <= 10 and d == delta for c, p, d in called_indels):
            hits += 1
    assert hits / len(small_dataset.truth_indels) > 0.7


def test_summary_ratios(called: CallingResult) -> None:
    # dwgsim draws transitions and transversions uniformly (ts/tv ~0.5, unlike a genome's ~2),
    # and about a quarter of its mutations homozygous.
    assert called.counts.ti_tv is not None and 0.3 < called.counts.ti_tv < 0.9
    assert called.counts.het_hom_ratio is not None and 1.5 < called.counts.het_hom_ratio < 4


def test_provenance(called: CallingResult) -> None:
    assert called.tools[0].name == "bcftools" and called.tools[0].version.startswith("1.")
    assert "bcftools norm -f <reference> -m -any" in (called.tools[0].command or "")
    assert "/" not in (called.tools[0].command or "")


def _other_reference(tmp_path: Path, contigs: tuple[tuple[str, int], ...]) -> Path:
    require_tools("samtools")
    ref = write_reference(tmp_path / "other.fa", contigs, REFERENCE_SEED)
    subprocess.run(["samtools", "faidx", str(ref)], check=True)
    return ref


def test_bam_against_reference_of_other_lengths_is_refused(
    aligned_bwa: AlignmentResult, tmp_path: Path
) -> None:
    other = _other_reference(tmp_path, (("chrA", 120_000), ("chrB", 79_000)))
    expected = r"lengths differ: chrB \(BAM 80000, reference 79000\)"
    with pytest.raises(ReferenceMismatch, match=expected):
        call_variants(aligned_bwa.bam, other, tmp_path / "work")
    assert not (tmp_path / "work" / "variants.vcf.gz").exists()


def test_bam_against_reference_of_other_names_is_refused(
    aligned_bwa: AlignmentResult, tmp_path: Path
) -> None:
    other = _other_reference(tmp_path, (("1", 120_000), ("chrB", 80_000)))
    with pytest.raises(ReferenceMismatch) as info:
        call_variants(aligned_bwa.bam, other, tmp_path / "work")
    assert "contigs not in the reference: chrA" in str(info.value)
    assert "reference contigs absent from the BAM: 1" in str(info.value)
    assert isinstance(info.value, PermanentError) and info.value.code == "reference_mismatch"


def test_truncated_bam_is_refused(
    aligned_bwa: AlignmentResult, tmp_path: Path, small_dataset: SmallDataset
) -> None:
    cut = tmp_path / "cut.bam"
    data = aligned_bwa.bam.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidAlignment, match="truncated"):
        call_variants(cut, small_dataset.reference, tmp_path / "work")


def test_unsorted_bam_is_refused(
    aligned_bwa: AlignmentResult, tmp_path: Path, small_dataset: SmallDataset
) -> None:
    by_name = tmp_path / "byname.bam"
    subprocess.run(["samtools", "sort", "-n", "-o", str(by_name), str(aligned_bwa.bam)], check=True)
    with pytest.raises(InvalidAlignment, match="not coordinate-sorted"):
        call_variants(by_name, small_dataset.reference, tmp_path / "work")


def test_missing_reference_index_is_permanent(
    aligned_bwa: AlignmentResult, tmp_path: Path, small_dataset: SmallDataset
) -> None:
    bare = tmp_path / "bare.fa"
    shutil.copy(small_dataset.reference, bare)
    with pytest.raises(PermanentError, match=r"\.fai index is missing"):
        call_variants(aligned_bwa.bam, bare, tmp_path / "work")


def test_contigs_are_compared_by_name_not_order(
    aligned_bwa: AlignmentResult, tmp_path: Path
) -> None:
    """Same reference, contigs listed in another order: still the same reference."""
    from genomebus_calling.adapters.pipeline import check_bam_matches_reference

    reordered = _other_reference(tmp_path, tuple(reversed(CONTIGS)))
    check_bam_matches_reference(aligned_bwa.bam, reordered)
