"""The genome called region by region, then gathered, gives the calls of one whole run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from genomebus_alignment.adapters.pipeline import AlignmentResult
from genomebus_calling.adapters.pipeline import bam_contigs, call_unit, call_variants, gather_calls
from genomebus_calling.core.regions import plan_regions
from tests.alignment.data import SmallDataset

pytestmark = pytest.mark.tools  # runs the real bio tools


def records(vcf: Path) -> list[str]:
    return subprocess.run(
        ["bcftools", "view", "-H", str(vcf)], capture_output=True, text=True, check=True
    ).stdout.splitlines()


@pytest.mark.parametrize(("window", "units"), [(200_000, 1), (100_000, 3), (50_000, 5)])
def test_calls_do_not_depend_on_how_many_regions(
    small_dataset: SmallDataset,
    aligned_bwa: AlignmentResult,
    tmp_path: Path,
    window: int,
    units: int,
) -> None:
    whole = records(call_variants(aligned_bwa.bam, small_dataset.reference, tmp_path / "whole").vcf)
    assert len(whole) > 100
    plan = plan_regions(bam_contigs(aligned_bwa.bam)[0], window)
    assert len(plan) == units
    bcfs = [
        call_unit(aligned_bwa.bam, small_dataset.reference, tmp_path / f"u{i}", regions=regions)[0]
        for i, regions in enumerate(plan)
    ]
    vcf, _, counts, _ = gather_calls(bcfs, small_dataset.reference, tmp_path / "gather")
    assert records(vcf) == whole
    assert counts.records == len(whole)
