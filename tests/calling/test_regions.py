"""Cutting the genome into regions: all of it, once, in order, units of similar size."""

from __future__ import annotations

import pytest

from genomebus_calling.core.regions import plan_regions, region


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
        assert all(b[0] == a[1] + 1 for a, b in zip(own, own[1:]))
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
