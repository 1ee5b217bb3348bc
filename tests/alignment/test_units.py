"""Alignment's planning decisions, pure: when a sample is one unit, how chunks are numbered,
which aligner a unit uses, and when counts disagree."""

from __future__ import annotations

import pytest

from genomebus_alignment.core.chunks import ChunkRule
from genomebus_alignment.core.errors import ReadCountMismatch
from genomebus_alignment.core.units import (
    UnitIdentity,
    fits_one_chunk,
    number_units,
    require_pairs,
)

RULE = ChunkRule(batch_bases=100, batches_per_chunk=3)  # 300 bases a chunk


@pytest.mark.parametrize(
    ("read_bases", "one_unit"), [(None, False), (0, True), (299, True), (300, False)]
)
def test_only_a_sample_known_to_be_smaller_than_a_chunk_skips_the_cutting(
    read_bases: int | None, one_unit: bool
) -> None:
    assert fits_one_chunk(read_bases, RULE) is one_unit


def test_chunks_start_where_the_chunks_before_them_end_and_record_their_identity() -> None:
    units: list[dict[str, object]] = [{"pairs": 5}, {"pairs": 3}, {"pairs": 7}]
    number_units(units, UnitIdentity("minimap2", 100))  # type: ignore[arg-type]
    assert [(u["first_pair"], u["aligner"], u["batch_bases"]) for u in units] == [
        (0, "minimap2", 100),
        (5, "minimap2", 100),
        (8, "minimap2", 100),
    ]


def test_a_unit_of_an_older_plan_aligns_with_the_settings_it_did_not_record() -> None:
    current = UnitIdentity("bwa", 100_000_000)
    assert UnitIdentity.of_unit({}, current) == current
    assert UnitIdentity.of_unit({"aligner": "minimap2"}, current) == UnitIdentity(
        "minimap2", 100_000_000
    )


def test_a_count_that_differs_is_refused_with_who_counted_what() -> None:
    require_pairs(10, 10, "ingest counted 10 read pairs")
    with pytest.raises(ReadCountMismatch) as caught:
        require_pairs(9, 10, "ingest counted 10 read pairs")
    assert caught.value.reason == "ingest counted 10 read pairs, alignment read 9"
