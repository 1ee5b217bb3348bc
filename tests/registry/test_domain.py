"""Variant identity, VCF parsing and small-count masking: no infrastructure needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from genomebus_registry.domain import (
    AlleleCounts,
    InvalidVcf,
    ParseStats,
    masked,
    read_genotypes,
    variant_id,
)

from .conftest import REFERENCE, write_vcf


def test_variant_id_is_stable_and_depends_on_every_part() -> None:
    base = variant_id(REFERENCE.digest, "chrT", 100, "A", "G")
    assert base == variant_id(REFERENCE.digest, "chrT", 100, "A", "G")
    assert base.startswith("gb:VA.") and len(base) == len("gb:VA.") + 32
    others = {
        variant_id("SQC." + "C" * 32, "chrT", 100, "A", "G"),
        variant_id(REFERENCE.digest, "chrU", 100, "A", "G"),
        variant_id(REFERENCE.digest, "chrT", 101, "A", "G"),
        variant_id(REFERENCE.digest, "chrT", 100, "C", "G"),
        variant_id(REFERENCE.digest, "chrT", 100, "A", "T"),
    }
    assert base not in others and len(others) == 5


def test_vcf_rows_keep_alt_calls_with_depth_and_quality(tmp_path: Path) -> None:
    vcf = write_vcf(
        tmp_path,
        [
            (100, "A", "G", "0/1", 30, 99),
            (200, "C", "T", "1/1", 12, None),
            (300, "G", "A", "0/0", 40, 80),  # no ALT call: not a genotype of this variant
            (400, "T", "<*>", "0/1", 10, 10),  # symbolic: nothing to identify
            (500, "AT", "A", "1|0", None, 20),
        ],
    )
    stats = ParseStats()
    rows = list(read_genotypes(vcf, REFERENCE.digest, "S1", stats))
    assert [(r.pos, r.ref, r.alt, r.alt_count, r.dp, r.gq) for r in rows] == [
        (100, "A", "G", 1, 30, 99),
        (200, "C", "T", 2, 12, None),
        (500, "AT", "A", 1, None, 20),
    ]
    assert rows[0].variant_id == variant_id(REFERENCE.digest, "chrT", 100, "A", "G")
    assert (stats.records, stats.skipped_no_alt_call, stats.skipped_symbolic) == (5, 1, 1)


def test_a_multiallelic_record_breaks_the_contract(tmp_path: Path) -> None:
    vcf = write_vcf(tmp_path, [(100, "A", "G,T", "1/2", 30, 99)])
    with pytest.raises(InvalidVcf, match="one ALT per record"):
        list(read_genotypes(vcf, REFERENCE.digest, "S1"))


def test_a_file_that_is_not_a_vcf_is_a_permanent_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.vcf.gz"
    bad.write_bytes(b"not a vcf at all")
    with pytest.raises(InvalidVcf):
        list(read_genotypes(bad, REFERENCE.digest, "S1"))


def test_counts_under_the_threshold_are_masked_and_hide_the_frequency() -> None:
    assert masked(0, 5) == "<5" and masked(4, 5) == "<5" and masked(5, 5) == 5
    ident = dict(variant_id="v", reference_digest="d", chrom="c", pos=1, ref="A", alt="G")
    small = AlleleCounts.disclose(carriers=3, allele_count=4, samples=40, threshold=5, **ident)
    assert (small.carriers, small.allele_count, small.allele_number) == ("<5", "<5", 80)
    assert small.allele_frequency is None
    big = AlleleCounts.disclose(carriers=6, allele_count=8, samples=40, threshold=5, **ident)
    assert (big.carriers, big.allele_count, big.allele_number, big.allele_frequency) == (6, 8, 80, 0.1)


def test_a_cohort_of_fewer_than_five_patients_is_not_shown_through_its_allele_number() -> None:
    """Four research patients make an allele number of 8: showing it tells the cohort is four."""
    ident = dict(variant_id="ga4gh:VA.x", reference_digest="SQC.x", chrom="chr1", pos=1, ref="A", alt="G")
    tiny = AlleleCounts.disclose(carriers=0, allele_count=0, samples=4, threshold=5, **ident)
    assert tiny.allele_number == "<10" and tiny.allele_frequency is None
    five = AlleleCounts.disclose(carriers=5, allele_count=5, samples=5, threshold=5, **ident)
    assert (five.allele_number, five.allele_frequency) == (10, 0.5)
    homozygotes = AlleleCounts.disclose(carriers=4, allele_count=8, samples=40, threshold=5, **ident)
    assert homozygotes.allele_count == "<5", "8 alleles in fewer than 5 carriers tells too much"
