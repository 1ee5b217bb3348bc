"""Small-cell disclosure control: which research counts a researcher may see, and how.

For one allele on one reference, the research cohort (its research-consenting patients) falls
into three genotype groups: those who carry no copy (non-carriers), one copy (heterozygotes) and
two (homozygotes). Every number a research answer shows, or lets be computed, is a sum of these
groups: carriers = het + hom, allele count = het + 2 hom, allele number = 2 x cohort,
frequency = allele count / allele number. A group of fewer than ``threshold`` patients singles
out its members, so no answer may let a caller compute the size of such a group, and "nobody"
must look like "a few" (otherwise the mask itself says "a few"). With k the threshold, the
rules, in order:

0. A cohort of fewer than 2k patients: every allele has fewer than k carriers or fewer than k
   non-carriers, so every allele is answered alike, as one no one carries (telling the two
   apart would narrow the small group: in a cohort of exactly k, "k or more carriers" is "all").
1. Fewer than k carriers: every count of the allele is withheld; a region answer does not list
   the allele at all, and an allele answer for it is the same as for an allele no one carries.
2. Fewer than k non-carriers: carriers and allele count are withheld (shown as a bound), since
   showing them would tell the genotype of nearly everyone in the cohort.
3. Fewer than k homozygotes or heterozygotes: carriers are shown, the allele count and
   frequency are not (carriers and allele count together give the homozygotes).
4. Otherwise every count is exact.

The allele number is shown whenever the cohort has ``threshold`` patients or more: it is the
same for every allele of the reference, so it says nothing about one allele's carriers, and with
carriers or allele count withheld it cannot give them back. A withheld count is a string stating
a bound that the rule itself already implies ("<5", ">95", "10-20"), never a number.

Differencing *across* answers (before and after a consent change, overlapping cohorts, several
alleles at one position) is not prevented here: see docs/security-registry.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

#: The smallest group shown by default: a common small-cell rule for health statistics.
DEFAULT_MIN_CELL = 5
#: The settings refuse anything lower. Below 3, two patients who know each other (relatives,
#: or a researcher who is a patient) each learn the other's genotype from a count of 2.
MIN_CELL_FLOOR = 3


@dataclass(frozen=True)
class Cells:
    """The exact counts of one allele over one reference's research cohort (never shown as is)."""

    cohort: int
    carriers: int
    allele_count: int

    def __post_init__(self) -> None:
        # Counts are per patient: each carrier holds one or two copies (a patient sequenced
        # twice counts once, with the larger count). Anything else is drifted bookkeeping, and
        # an answer from it must not leave.
        if not 0 <= self.carriers <= self.cohort:
            raise ValueError(f"carriers {self.carriers} outside a cohort of {self.cohort}")
        if not self.carriers <= self.allele_count <= 2 * self.carriers:
            raise ValueError(
                f"allele count {self.allele_count} impossible for {self.carriers} carriers"
            )

    @property
    def non_carriers(self) -> int:
        return self.cohort - self.carriers

    @property
    def homozygotes(self) -> int:
        return self.allele_count - self.carriers

    @property
    def heterozygotes(self) -> int:
        return self.carriers - self.homozygotes


class Disclosed(NamedTuple):
    """What may be shown of one allele's counts: an int is exact, a str is a bound."""

    carriers: int | str
    allele_count: int | str
    allele_number: int | str
    allele_frequency: float | None
    suppressed: str | None  # why counts are withheld, None when nothing is


def check_threshold(threshold: int) -> int:
    """The threshold itself: at least 1 here (tests use 1 for exact answers); the service's
    settings hold it at ``MIN_CELL_FLOOR`` or above."""
    if threshold < 1:
        raise ValueError(f"a disclosure threshold must be at least 1, not {threshold}")
    return threshold


def listed(cohort: int, carriers: int, threshold: int) -> bool:
    """Whether a region answer may list the allele at all (rules 0 and 1)."""
    k = check_threshold(threshold)
    return cohort >= 2 * k and carriers >= k


def disclose(cells: Cells, threshold: int) -> Disclosed:
    """The counts of ``cells`` as a researcher may see them (rules 0-4 of the module)."""
    k = check_threshold(threshold)
    number: int | str = 2 * cells.cohort if cells.cohort >= k else f"<{2 * k}"
    if cells.cohort < 2 * k:
        # At most 2k - 1 carriers holding at most 4k - 2 alleles, whatever the allele.
        return Disclosed(
            f"<{2 * k}", f"<{4 * k}", number, None, f"fewer than {2 * k} research patients"
        )
    if cells.carriers < k:
        # Fewer than k carriers hold fewer than 2k alleles: the same words for 0 and 1..k-1.
        return Disclosed(f"<{k}", f"<{2 * k}", number, None, f"fewer than {k} carriers")
    if cells.non_carriers < k:
        # Both counts exceed cohort - k (allele count >= carriers): true, and no more than the
        # mask itself says.
        bound = f">{cells.cohort - k}"
        return Disclosed(bound, bound, number, None, f"fewer than {k} non-carriers")
    if cells.homozygotes < k or cells.heterozygotes < k:
        # Carriers hold between one and two copies each: the range says nothing new.
        span = f"{cells.carriers}-{2 * cells.carriers}"
        return Disclosed(
            cells.carriers, span, number, None, f"fewer than {k} homozygotes or heterozygotes"
        )
    frequency = round(cells.allele_count / (2 * cells.cohort), 6)
    return Disclosed(cells.carriers, cells.allele_count, number, frequency, None)
