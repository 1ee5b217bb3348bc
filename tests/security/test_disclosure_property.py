"""The disclosure rule, on its own (no infrastructure): whatever the counts, an answer never pins
down the size of a group smaller than the threshold, every withheld count is a true bound, and
counts with no small group are shown exactly."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from genomebus_registry.core.disclosure import Cells, Disclosed, disclose, listed

GROUPS = ("carriers", "non_carriers", "homozygotes", "heterozygotes")


@st.composite
def cells(draw: st.DrawFn, max_cohort: int = 30) -> Cells:
    # A reference with no research patient gets no result at all (queries.py): cohorts from 1.
    cohort = draw(st.integers(1, max_cohort))
    carriers = draw(st.integers(0, cohort))
    homozygotes = draw(st.integers(0, carriers))
    return Cells(cohort, carriers, carriers + homozygotes)


thresholds = st.integers(2, 12)


@cache
def answers(cohort: int, threshold: int) -> dict[Disclosed, list[Cells]]:
    """Every possible truth behind the answers about a cohort of this size, grouped by the
    answer it gives: what a researcher who sees one answer cannot tell apart. A cohort smaller
    than the threshold is not shown, so the truths of every such cohort are candidates."""
    cohorts = [cohort] if cohort >= threshold else range(1, threshold)
    grouped: dict[Disclosed, list[Cells]] = {}
    for size in cohorts:
        for carriers in range(size + 1):
            for count in range(carriers, 2 * carriers + 1):
                truth = Cells(size, carriers, count)
                grouped.setdefault(disclose(truth, threshold), []).append(truth)
    return grouped


def holds(shown: int | str, value: int) -> bool:
    """Whether a shown count is true of ``value``: exact, or a bound "<n", ">n", "a-b"."""
    if isinstance(shown, int):
        return shown == value
    if shown.startswith("<"):
        return value < int(shown[1:])
    if shown.startswith(">"):
        return value > int(shown[1:])
    low, high = shown.split("-")
    return int(low) <= value <= int(high)


@settings(max_examples=400, deadline=None, database=None, derandomize=True)
@given(truth=cells(), threshold=thresholds)
def test_no_answer_pins_down_a_small_group(truth: Cells, threshold: int) -> None:
    shown = disclose(truth, threshold)
    alike = answers(truth.cohort, threshold)[shown]
    for group in GROUPS:
        if getattr(truth, group) < threshold:
            # Not only "not pinned down": none of 0, 1, ..., threshold - 1 is ruled out.
            sizes = {getattr(other, group) for other in alike}
            assert set(range(threshold)) <= sizes, f"{group} = {getattr(truth, group)}: {shown}"


@settings(max_examples=400, deadline=None, database=None, derandomize=True)
@given(truth=cells(), threshold=thresholds)
def test_a_rare_allele_answers_as_one_no_one_carries(truth: Cells, threshold: int) -> None:
    shown = disclose(truth, threshold)
    nobody = disclose(Cells(truth.cohort, 0, 0), threshold)
    shown_at_all = truth.cohort >= 2 * threshold and truth.carriers >= threshold
    assert (shown != nobody) == shown_at_all == listed(truth.cohort, truth.carriers, threshold)


@settings(max_examples=400, deadline=None, database=None, derandomize=True)
@given(truth=cells(max_cohort=10_000), threshold=thresholds)
def test_withheld_counts_are_true_bounds_and_the_rest_is_exact(
    truth: Cells, threshold: int
) -> None:
    shown = disclose(truth, threshold)
    assert holds(shown.carriers, truth.carriers)
    assert holds(shown.allele_count, truth.allele_count)
    assert holds(shown.allele_number, 2 * truth.cohort)
    small = [g for g in GROUPS if getattr(truth, g) < threshold]
    assert (shown.suppressed is None) == (not small)
    if not small:
        assert shown == (
            truth.carriers,
            truth.allele_count,
            2 * truth.cohort,
            round(truth.allele_count / (2 * truth.cohort), 6),
            None,
        )
    else:
        assert shown.allele_frequency is None
        assert not isinstance(shown.allele_count, int)
