"""The counting rules of ``core.counts`` and the keys of ``core.keys``, without a database: an
in-memory registry drives random loads, removals, consent changes and folds (in any batch
sizes), and after every step stored + pending must equal a brute-force count over the samples
the rules allow, and no stored count may go below zero."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genomebus_registry.core import keys
from genomebus_registry.core.counts import (
    Adjustment,
    Cohort,
    Counts,
    Ledger,
    SampleState,
    answer,
    on_consent,
    on_load,
    on_removal,
)

REFS = ("ref-a", "ref-b")
# Six small genomes over four variant keys (key -> allele count).
GENOMES = [
    {1: 1, 2: 2},
    {1: 2, 3: 1},
    {2: 1, 3: 1, 4: 1},
    {4: 2},
    {1: 1, 2: 1, 3: 1, 4: 1},
    {3: 2},
]


@dataclass
class InMemoryRegistry:
    """The adapters' work done with dicts: what the PostgreSQL adapters do with rows."""

    research: dict[str, bool] = field(default_factory=dict)
    samples: dict[int, tuple[str, str, int, bool]] = field(
        default_factory=dict
    )  # patient, ref, genome, active
    pending: list[Adjustment] = field(default_factory=list)
    stored: Ledger = field(default_factory=Ledger)

    def states(self, patient: str) -> list[SampleState]:
        return [
            SampleState(n, ref, active)
            for n, (p, ref, _, active) in self.samples.items()
            if p == patient
        ]

    def genotypes(self, sample_no: int) -> dict[int, int]:
        return GENOMES[self.samples[sample_no][2]]

    def load(self, patient: str, ref: str, genome: int) -> None:
        sample_no = len(self.samples) + 1
        self.pending += on_load(
            patient,
            self.states(patient),
            SampleState(sample_no, ref, True),
            self.research.get(patient, False),
        )
        self.samples[sample_no] = (patient, ref, genome, True)

    def remove(self, sample_no: int) -> None:
        patient, ref, genome, _ = self.samples[sample_no]
        self.pending += on_removal(
            patient, self.states(patient), sample_no, self.research.get(patient, False)
        )
        self.samples[sample_no] = (patient, ref, genome, False)

    def consent(self, patient: str, research: bool) -> None:
        was = self.research.get(patient, False)
        self.research[patient] = research
        self.pending += on_consent(patient, self.states(patient), was, research)

    def fold(self, batch: int) -> None:
        self.stored = answer(self.stored, self.pending[:batch], self.genotypes)
        del self.pending[:batch]

    def now(self) -> Ledger:
        return answer(self.stored, self.pending, self.genotypes)

    def brute_force(self) -> Ledger:
        """Per patient and reference: the largest allele count of their active samples."""
        out = Ledger()
        best: dict[tuple[str, str], dict[int, int]] = {}
        for patient, ref, genome, active in self.samples.values():
            if active:
                held = best.setdefault((patient, ref), {})
                for key, alt in GENOMES[genome].items():
                    held[key] = max(held.get(key, 0), alt)
        for (patient, ref), genotypes in best.items():
            research = self.research.get(patient, False)
            for key, alt in genotypes.items():
                row = out.counts.setdefault(key, Counts())
                if alt == 2:
                    row.all_hom += 1
                    row.research_hom += research
                else:
                    row.all_het += 1
                    row.research_het += research
            cohort = out.cohorts.setdefault(ref, Cohort())
            cohort.patients += 1
            cohort.research_patients += research
        return out


def nonzero(ledger: Ledger) -> tuple[dict[int, tuple[int, ...]], dict[str, tuple[int, int]]]:
    counts = {
        k: (v.all_het, v.all_hom, v.research_het, v.research_hom)
        for k, v in ledger.counts.items()
        if not v.is_zero()
    }
    cohorts = {
        r: (c.patients, c.research_patients)
        for r, c in ledger.cohorts.items()
        if c.patients or c.research_patients
    }
    return counts, cohorts


patient = st.sampled_from(["p1", "p2", "p3"])
step = st.one_of(
    st.tuples(st.just("load"), patient, st.sampled_from(REFS), st.integers(0, len(GENOMES) - 1)),
    st.tuples(st.just("remove"), st.integers(1, 12)),
    st.tuples(st.just("consent"), patient, st.booleans()),
    st.tuples(st.just("fold"), st.integers(1, 5)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(step, max_size=25))
def test_stored_plus_pending_is_always_the_brute_force_count(steps: list[tuple]) -> None:
    registry = InMemoryRegistry()
    for op in steps:
        if op[0] == "load":
            registry.load(*op[1:])
        elif op[0] == "remove":
            if op[1] in registry.samples:
                registry.remove(op[1])
        elif op[0] == "consent":
            registry.consent(*op[1:])
        else:
            registry.fold(op[1])
        assert nonzero(registry.now()) == nonzero(registry.brute_force())
        for row in registry.stored.counts.values():
            assert min(row.all_het, row.all_hom, row.research_het, row.research_hom) >= 0
        for cohort in registry.stored.cohorts.values():
            assert min(cohort.patients, cohort.research_patients) >= 0
    registry.fold(len(registry.pending))
    assert nonzero(registry.stored) == nonzero(registry.brute_force())


def test_a_second_sample_replaces_the_contribution_and_consent_moves_research_only() -> None:
    first = SampleState(1, "ref-a", True)
    assert on_load("p", [], first, research=True) == [Adjustment("p", "ref-a", (1,), 1, 1)]
    assert on_load("p", [first], SampleState(2, "ref-a", True), research=False) == [
        Adjustment("p", "ref-a", (1,), -1, 0),
        Adjustment("p", "ref-a", (1, 2), 1, 0),
    ]
    # Another reference is another contribution.
    assert on_load("p", [first], SampleState(2, "ref-b", True), research=True) == [
        Adjustment("p", "ref-b", (2,), 1, 1)
    ]
    assert on_consent("p", [first, SampleState(2, "ref-b", False)], True, False) == [
        Adjustment("p", "ref-a", (1,), 0, -1)
    ]
    assert on_consent("p", [first], True, True) == []
    assert on_removal("p", [first], 1, research=True) == [Adjustment("p", "ref-a", (1,), -1, -1)]
    assert on_removal("p", [SampleState(1, "ref-a", False)], 1, research=True) == []


def test_an_adjustment_that_changes_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        Adjustment("p", "ref-a", (1,), 0, 0)
    with pytest.raises(ValueError):
        Adjustment("p", "ref-a", (), 1, 1)


@given(
    contig=st.integers(0, keys.MAX_CONTIG_NO),
    pos=st.integers(1, keys.MAX_POS),
    code=st.integers(1, keys.MAX_CODE),
    alt_count=st.sampled_from([1, 2]),
)
def test_a_call_and_its_block_give_back_the_variant_key(
    contig: int, pos: int, code: int, alt_count: int
) -> None:
    call = keys.call(pos, code, alt_count)
    assert 0 <= call < 1 << 31, "a call fits a signed int4"
    key = keys.variant_key(contig, pos, code)
    assert 0 <= key < 1 << 63, "a key fits a signed bigint"
    assert keys.key_of_call(contig, keys.bin_of(pos), call) == key
    assert keys.split_key(key) == (contig, pos, code)
    assert keys.alt_count_of(call) == alt_count


def test_keys_order_by_contig_then_position_then_allele() -> None:
    ordered = [(1, 5, 3), (1, 5, 16), (1, 6, 1), (1, keys.MAX_POS, keys.MAX_CODE), (2, 1, 1)]
    assert sorted(ordered, key=lambda k: keys.variant_key(*k)) == ordered


def test_the_twelve_snvs_have_fixed_codes_and_everything_else_needs_the_dictionary() -> None:
    codes = {keys.snv_code(r, a) for r in "ACGT" for a in "ACGT" if r != a}
    assert codes == set(range(1, 13))
    assert keys.snv_code("A", "A") is None and keys.snv_code("AT", "A") is None
    assert keys.snv_code("N", "A") is None
    assert keys.snv_of(keys.snv_code("G", "T")) == ("G", "T")  # type: ignore[arg-type]
    with pytest.raises(keys.InvalidAllele):
        keys.variant_key(1, 1, keys.MAX_CODE + 1)


@given(value=st.none() | st.integers(-10, 100_000))
def test_a_depth_or_quality_fits_its_byte_or_says_it_is_deeper(value: int | None) -> None:
    small = keys.small_qual(value)
    assert 0 <= small <= 255
    if value is None:
        assert small == keys.NOT_GIVEN
    elif value >= keys.DEEP_QUAL:
        assert small == keys.DEEP_QUAL, "the value itself goes to deep_calls"
    else:
        assert small == max(value, 0)
