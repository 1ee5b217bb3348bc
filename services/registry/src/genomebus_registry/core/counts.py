"""What a load, a removal, a consent change and a fold do to the research counts.

The counts of a variant are per patient: a patient with several active samples on a reference
counts once, with the larger allele count of those samples (their *contribution*). Every count
the registry keeps is

    stored counts + the pending adjustments, evaluated over the samples' blocks

and both are read in one snapshot, so an answer is exact at every commit. A load, a removal or
a consent change never touches the stored counts (rows that every patient's changes share, and
which would make a withdrawal wait behind a whole-genome load): it commits *adjustments*, small
signed rows naming the samples whose blocks make up a patient's contribution before and after.
A fold later moves a batch of adjustments into the stored counts, in one transaction, which is
invisible to every answer (stored + pending is the same before and after).

An adjustment says: for every variant in the blocks of ``samples`` (each variant counted once,
with its largest allele count among them), add ``w_all`` to the unrestricted counts and
``w_research`` to the research counts (heterozygous or homozygous by that allele count), and
add the same weights to the reference's cohort sizes (one patient).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Adjustment:
    """One signed change to the counts, committed with the change that causes it."""

    patient: str
    reference_digest: str
    samples: tuple[int, ...]
    w_all: int
    w_research: int

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("an adjustment names at least one sample")
        if self.w_all not in (-1, 0, 1) or self.w_research not in (-1, 0, 1):
            raise ValueError("adjustment weights are -1, 0 or 1")
        if self.w_all == 0 and self.w_research == 0:
            raise ValueError("an adjustment that changes nothing is not written")


@dataclass(frozen=True)
class SampleState:
    """One sample of a patient, as the decisions need it."""

    sample_no: int
    reference_digest: str
    active: bool  # loaded, not quarantined, not removed


def contribution(samples: Iterable[SampleState], reference_digest: str) -> tuple[int, ...]:
    """The samples whose blocks make up a patient's contribution on one reference."""
    return tuple(
        sorted(s.sample_no for s in samples if s.active and s.reference_digest == reference_digest)
    )


def replace(
    patient: str,
    reference_digest: str,
    before: tuple[int, ...],
    after: tuple[int, ...],
    research: bool,
) -> list[Adjustment]:
    """The patient's contribution on a reference goes from ``before`` to ``after``."""
    if before == after:
        return []
    weight = 1 if research else 0
    out = []
    if before:
        out.append(Adjustment(patient, reference_digest, before, -1, -weight))
    if after:
        out.append(Adjustment(patient, reference_digest, after, 1, weight))
    return out


def on_load(
    patient: str, samples: Iterable[SampleState], loaded: SampleState, research: bool
) -> list[Adjustment]:
    """A sample of the patient loads (``samples``: the patient's samples before it)."""
    before = contribution(samples, loaded.reference_digest)
    after = tuple(sorted((*before, loaded.sample_no)))
    return replace(patient, loaded.reference_digest, before, after, research)


def on_removal(
    patient: str, samples: Iterable[SampleState], removed: int, research: bool
) -> list[Adjustment]:
    """The hospital removes one of the patient's samples (``samples``: before the removal)."""
    samples = list(samples)
    gone = next((s for s in samples if s.sample_no == removed and s.active), None)
    if gone is None:  # quarantined or removed already: it contributes nothing
        return []
    before = contribution(samples, gone.reference_digest)
    after = tuple(n for n in before if n != removed)
    return replace(patient, gone.reference_digest, before, after, research)


def on_consent(
    patient: str, samples: Iterable[SampleState], was_research: bool, now_research: bool
) -> list[Adjustment]:
    """A consent change lets the patient into research or takes them out of it (the
    unrestricted counts do not move)."""
    if was_research == now_research:
        return []
    samples = list(samples)
    weight = 1 if now_research else -1
    return [
        Adjustment(patient, reference, contribution(samples, reference), 0, weight)
        for reference in sorted({s.reference_digest for s in samples if s.active})
    ]


@dataclass
class Counts:
    """One variant's counts: unrestricted (never shown; the benchmark's consent-off figure) and
    research (patients whose consent allows research now)."""

    all_het: int = 0
    all_hom: int = 0
    research_het: int = 0
    research_hom: int = 0

    @property
    def carriers(self) -> int:
        return self.research_het + self.research_hom

    @property
    def allele_count(self) -> int:
        return self.research_het + 2 * self.research_hom

    def is_zero(self) -> bool:
        return not (self.all_het or self.all_hom or self.research_het or self.research_hom)


@dataclass
class Cohort:
    patients: int = 0
    research_patients: int = 0


#: A sample's genotypes: variant key -> allele count (1 or 2).
Genotypes = Mapping[int, int]


def genotype(samples: tuple[int, ...], genotypes_of: Callable[[int], Genotypes]) -> dict[int, int]:
    """A contribution's genotypes: every variant of the samples, with its largest allele count."""
    out: dict[int, int] = {}
    for sample_no in samples:
        for key, alt in genotypes_of(sample_no).items():
            if alt > out.get(key, 0):
                out[key] = alt
    return out


@dataclass
class Ledger:
    """Stored counts and cohorts (what a fold writes)."""

    counts: dict[int, Counts] = field(default_factory=dict)
    cohorts: dict[str, Cohort] = field(default_factory=dict)

    def apply(
        self,
        adjustment: Adjustment,
        genotypes_of: Callable[[int], Genotypes],
        keys: Callable[[int], bool] = lambda key: True,
    ) -> None:
        """Add one adjustment (only the variants ``keys`` accepts, for a partial answer)."""
        for key, alt in genotype(adjustment.samples, genotypes_of).items():
            if not keys(key):
                continue
            row = self.counts.setdefault(key, Counts())
            if alt == 2:
                row.all_hom += adjustment.w_all
                row.research_hom += adjustment.w_research
            else:
                row.all_het += adjustment.w_all
                row.research_het += adjustment.w_research
        cohort = self.cohorts.setdefault(adjustment.reference_digest, Cohort())
        cohort.patients += adjustment.w_all
        cohort.research_patients += adjustment.w_research

    def copy(self) -> Ledger:
        return Ledger(
            {k: Counts(**vars(v)) for k, v in self.counts.items()},
            {k: Cohort(**vars(v)) for k, v in self.cohorts.items()},
        )


def answer(
    stored: Ledger,
    pending: Iterable[Adjustment],
    genotypes_of: Callable[[int], Genotypes],
    keys: Callable[[int], bool] = lambda key: True,
) -> Ledger:
    """Stored + pending: what every research answer reads (and what a fold leaves stored)."""
    out = stored.copy()
    for adjustment in pending:
        out.apply(adjustment, genotypes_of, keys)
    return out
