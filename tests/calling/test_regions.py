"""Cutting the genome into regions: all of it, once, in order, units of similar size."""

from __future__ import annotations

from itertools import pairwise

import pytest

from genomebus_calling.core.regions import plan_regions, region, region_bases, region_units


def covered(units: list[list[str]]) -> list[tuple[str, int, int]]:
    spans = []
    for unit in units:
        for text in unit:
            name, _, span = text.rpartition(":")
            start, _, end = span.partition("-")
            spans.append((name.strip("{}"), int(start), int(end)))
    return spans


def test_every_base_once_in_genome_order() -> None:
    contigs = [("chr1", 25_000), ("chr2", 9_999), ("chrM", 16), ("decoy1", 300), ("chr3", 10_001)]
    units = plan_regions(contigs, 10_000)
    spans = covered(units)
    for name, length in contigs:
        own = [(s, e) for n, s, e in spans if n == name]
        assert own[0][0] == 1 and own[-1][1] == length
        assert all(b[0] == a[1] + 1 for a, b in pairwise(own))
    order = [n for n, _, _ in spans]
    assert order == sorted(order, key=[c for c, _ in contigs].index)


def test_windows_are_even_and_small_contigs_are_packed() -> None:
    units = plan_regions([("chr1", 25_000), ("a", 400), ("b", 400), ("c", 9_500)], 10_000)
    assert units[:3] == [["chr1:1-8334"], ["chr1:8335-16668"], ["chr1:16669-25000"]]
    assert units[3:] == [["a:1-400", "b:1-400"], ["c:1-9500"]]


def test_a_contig_name_with_a_colon_is_braced() -> None:
    assert region("HLA-A*01:01:01:01", 1, 3503) == "{HLA-A*01:01:01:01}:1-3503"


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        plan_regions([("chr1", 10)], 0)


def test_a_region_counts_its_own_bases_and_a_bare_contig_all_of_it() -> None:
    sizes = {"chr1": 1000, "HLA-A*01:01:01:01": 3503}
    assert region_bases("chr1:11-20", sizes) == 10
    assert region_bases("{HLA-A*01:01:01:01}:1-3503", sizes) == 3503
    assert region_bases("chr1", sizes) == 1000
    assert region_bases("chrUn", sizes) == 0


def test_units_share_the_bam_by_the_bases_they_cover() -> None:
    contigs = [("chr1", 300), ("HLA:1", 50), ("HLA:2", 50)]
    units = region_units(contigs, 100, bam_size=4000)
    assert [u["regions"] for u in units] == [
        ["chr1:1-100"],
        ["chr1:101-200"],
        ["chr1:201-300"],
        ["{HLA:1}:1-50", "{HLA:2}:1-50"],
    ]
    assert [u["bases"] for u in units] == [100, 100, 100, 100]
    assert [u["bam_share_bytes"] for u in units] == [1000, 1000, 1000, 1000]


def test_a_bam_without_contigs_plans_nothing_and_divides_by_nothing() -> None:
    assert region_units([], 100, bam_size=10) == []
