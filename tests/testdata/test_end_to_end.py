"""The whole idea with the real tools: simulated reads -> bwa -> bcftools -> evaluate.

200 kb of chrX at 30x. The project goal on 1-5 Mb is SNV F1 >= 0.99 and indel F1 >= 0.95; on
200 kb with ~100 indels a single miss costs 1%, hence the looser indel bound here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from genomebus_testdata import SimulatedSample, align_and_call, evaluate

pytestmark = pytest.mark.tools  # runs the real bio tools


def test_bwa_bcftools_on_simulated_30x(
    sample: SimulatedSample, reference: Path, data_dir: Path
) -> None:
    run = align_and_call(reference, sample.reads_1, sample.reads_2, data_dir / "baseline")
    acc = evaluate(run.calls_vcf, sample.truth_vcf, reference)
    print("\n" + acc.summary() + f"\nseconds: {run.seconds}")
    assert acc.snv.f1 >= 0.99, acc.summary()
    assert acc.indel.f1 >= 0.90, acc.summary()
    assert acc.snv.genotype_concordance >= 0.98, acc.summary()
