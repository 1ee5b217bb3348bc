"""Variant identity, VCF parsing and small-count disclosure: no infrastructure needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from genomebus_registry.core.answers import AlleleCounts
from genomebus_registry.core.variants import variant_id
from genomebus_registry.core.vcf import InvalidVcf, ParseStats, read_genotypes

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


def test_small_groups_are_withheld_and_hide_the_frequency() -> None:
    ident = dict(variant_id="v", reference_digest="d", chrom="c", pos=1, ref="A", alt="G")
    small = AlleleCounts.disclose(carriers=3, allele_count=4, samples=40, threshold=5, **ident)
    assert (small.carriers, small.allele_count, small.allele_number) == ("<5", "<10", 80)
    assert small.allele_frequency is None and small.suppressed == "fewer than 5 carriers"
    none = AlleleCounts.disclose(carriers=0, allele_count=0, samples=40, threshold=5, **ident)
    assert none == small, "nobody and a few read the same"
    big = AlleleCounts.disclose(carriers=20, allele_count=26, samples=40, threshold=5, **ident)
    assert (big.carriers, big.allele_count, big.allele_number, big.allele_frequency) == (
        20,
        26,
        80,
        0.325,
    )
    assert big.suppressed is None


def test_a_cohort_of_fewer_than_five_patients_is_not_shown_through_its_allele_number() -> None:
    """Four research patients make an allele number of 8: showing it tells the cohort is four."""
    ident = dict(
        variant_id="ga4gh:VA.x", reference_digest="SQC.x", chrom="chr1", pos=1, ref="A", alt="G"
    )
    tiny = AlleleCounts.disclose(carriers=0, allele_count=0, samples=4, threshold=5, **ident)
    assert tiny.allele_number == "<10" and tiny.allele_frequency is None
    homozygotes = AlleleCounts.disclose(
        carriers=4, allele_count=8, samples=40, threshold=5, **ident
    )
    assert homozygotes.allele_count == "<10", "8 alleles in fewer than 5 carriers tells too much"


def test_in_a_cohort_under_twice_the_threshold_every_allele_reads_the_same() -> None:
    """Nine patients: every allele has fewer than 5 carriers or fewer than 5 non-carriers, and
    telling which would narrow the small group (in a cohort of 5, "5 or more" is "all")."""
    ident = dict(variant_id="v", reference_digest="d", chrom="c", pos=1, ref="A", alt="G")
    answers = [
        AlleleCounts.disclose(carriers=c, allele_count=c + h, samples=9, threshold=5, **ident)
        for c in range(10)
        for h in range(c + 1)
    ]
    only = answers[0]
    assert all(answer == only for answer in answers)
    assert (only.carriers, only.allele_count, only.allele_number, only.allele_frequency) == (
        "<10",
        "<20",
        18,
        None,
    )


def test_the_complement_and_the_genotype_groups_are_cells_too() -> None:
    """Carried by all but two: the two non-carriers are the small group. Six carriers, one of
    them homozygous: the allele count (7) minus the carriers (6) would name that group."""
    ident = dict(variant_id="v", reference_digest="d", chrom="c", pos=1, ref="A", alt="G")
    near_all = AlleleCounts.disclose(carriers=13, allele_count=13, samples=15, threshold=5, **ident)
    assert (near_all.carriers, near_all.allele_count, near_all.allele_number) == (">10", ">10", 30)
    assert near_all.allele_frequency is None and near_all.suppressed == "fewer than 5 non-carriers"
    one_hom = AlleleCounts.disclose(carriers=6, allele_count=7, samples=15, threshold=5, **ident)
    assert (one_hom.carriers, one_hom.allele_count, one_hom.allele_frequency) == (6, "6-12", None)
    five_each = AlleleCounts.disclose(
        carriers=10, allele_count=15, samples=15, threshold=5, **ident
    )
    assert (five_each.carriers, five_each.allele_count, five_each.allele_frequency) == (10, 15, 0.5)


def test_impossible_counts_never_leave() -> None:
    from genomebus_registry.core.disclosure import Cells

    for cohort, carriers, count in ((5, 6, 6), (10, 5, 11), (10, 5, 4), (10, -1, 0)):
        with pytest.raises(ValueError):
            Cells(cohort, carriers, count)


def test_a_vcf_out_of_position_order_is_refused_before_a_duplicate_can_hide_in_it() -> None:
    from genomebus_registry.core.vcf import GenotypeRow, InvalidVcf, unique_calls

    def row(chrom: str, pos: int, alt: str = "G", count: int = 1) -> GenotypeRow:
        return GenotypeRow(chrom, pos, "A", alt, count, 30, 99)

    kept = list(
        unique_calls(
            iter([row("chr1", 5), row("chr1", 5, count=2), row("chr1", 5, "T"), row("chr2", 1)])
        )
    )
    assert [(r.chrom, r.pos, r.alt, r.alt_count) for r in kept] == [
        ("chr1", 5, "G", 2),
        ("chr1", 5, "T", 1),
        ("chr2", 1, "G", 1),
    ]
    for unsorted in (
        [row("chr1", 5), row("chr1", 4)],
        [row("chr1", 5), row("chr2", 1), row("chr1", 9)],
    ):
        with pytest.raises(InvalidVcf, match="not sorted"):
            list(unique_calls(iter(unsorted)))
