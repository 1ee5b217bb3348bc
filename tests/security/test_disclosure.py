"""A hostile researcher against the registry's research answers, over HTTP on the real stack.

The researcher holds a valid research token and asks as often as they like. What they must not
learn: whether a variant no one or a few (1-4) research patients carry is in the registry at
all, or anything that singles out fewer than five patients: a small carrier count, a small
number of non-carriers (which would reveal the genotypes of everyone else in the cohort), or a
small number of homozygotes or heterozygotes, whether shown directly or backed out of other
numbers of the same answer (allele frequency x allele number, allele count - carriers, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .conftest import UploadedVcf, auth, enrol

pytestmark = pytest.mark.integration

THRESHOLD = 5  # the registry's default smallest cell
RESEARCH = "population frequency study"
COHORT = 15  # research-consenting patients, all on one reference

# (pos, ref, alt) of the variants planted in the cohort, and who carries them.
RARE_1 = (100, "A", "G")  # patient 0 only
RARE_3 = (300, "C", "T")  # patients 0, 1 and 2
NO_ONE = (200, "G", "T")  # nobody: the "absent" twin of the rare variants
ALL_BUT_2 = (500, "G", "A")  # patients 0..12: 13 of 15, two non-carriers
ONE_HOM = (700, "T", "C")  # patients 0..5, patient 0 homozygous: one homozygote
SHOWN = (900, "A", "C")  # 0..4 heterozygous, 5..9 homozygous, 10..14 carry nothing


def genotypes_of(i: int) -> list[tuple[int, str, str, str, int, int]]:
    carried: list[tuple[tuple[int, str, str], str]] = []
    if i == 0:
        carried.append((RARE_1, "0/1"))
    if i < 3:
        carried.append((RARE_3, "0/1"))
    if i < COHORT - 2:
        carried.append((ALL_BUT_2, "0/1"))
    if i < 6:
        carried.append((ONE_HOM, "1/1" if i == 0 else "0/1"))
    if i < 10:
        carried.append((SHOWN, "0/1" if i < 5 else "1/1"))
    return [(pos, ref, alt, gt, 30, 99) for (pos, ref, alt), gt in carried]


@pytest.fixture
async def cohort(api: httpx.AsyncClient, upload_vcf: Callable[..., UploadedVcf]) -> list[str]:
    return [await enrol(api, upload_vcf, f"disclosure-{i}", genotypes_of(i)) for i in range(COHORT)]


async def allele(api: httpx.AsyncClient, variant: tuple[int, str, str]) -> dict[str, Any]:
    pos, ref, alt = variant
    answer = await api.get(
        "/v1/research/alleles",
        headers=auth("researcher", RESEARCH),
        params={"chrom": "chrT", "pos": pos, "ref": ref, "alt": alt},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def region(api: httpx.AsyncClient, start: int, end: int) -> dict[str, Any]:
    answer = await api.get(
        "/v1/research/regions",
        headers=auth("researcher", RESEARCH),
        params={"chrom": "chrT", "start": start, "end": end},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def without_identity(result: dict[str, Any]) -> dict[str, Any]:
    """What an answer says about a variant, leaving out which variant was asked for."""
    return {
        k: v for k, v in result.items() if k not in ("variant_id", "chrom", "pos", "ref", "alt")
    }


def backed_out(result: dict[str, Any]) -> dict[str, int]:
    """Every cell of the cohort's genotype table the researcher can compute exactly from one
    result: the numbers shown, and what arithmetic on them gives."""
    known: dict[str, int] = {}
    number, carriers, count, frequency = (
        result["allele_number"],
        result["carriers"],
        result["allele_count"],
        result["allele_frequency"],
    )
    if isinstance(number, int):
        known["cohort"] = number // 2
        if frequency is not None:
            known["allele_count"] = round(frequency * number)
    if isinstance(count, int):
        known["allele_count"] = count
    if isinstance(carriers, int):
        known["carriers"] = carriers
        if "cohort" in known:
            known["non_carriers"] = known["cohort"] - carriers
        if "allele_count" in known:
            known["homozygotes"] = known["allele_count"] - carriers
            known["heterozygotes"] = carriers - known["homozygotes"]
    elif "cohort" in known and "allele_count" in known:
        # 2 x cohort alleles and nearly as many counted: hardly anyone is left to carry none.
        known["most_non_carriers"] = known["cohort"] - (known["allele_count"] + 1) // 2
    return known


def assert_nothing_small(result: dict[str, Any]) -> None:
    for cell, value in backed_out(result).items():
        if cell != "cohort":
            assert value >= THRESHOLD, f"{cell} = {value} can be backed out of {result}"


async def test_a_variant_one_patient_carries_looks_like_a_position_no_one_carries(
    api: httpx.AsyncClient, cohort: list[str]
) -> None:
    around_rare = await region(api, RARE_1[0] - 10, RARE_1[0] + 10)
    around_nothing = await region(api, NO_ONE[0] - 10, NO_ONE[0] + 10)
    assert around_rare["variants"] == around_nothing["variants"] == []
    assert around_rare["next_cursor"] is around_nothing["next_cursor"] is None
    # Nor does the region of the three-carrier variant list it.
    assert (await region(api, RARE_3[0], RARE_3[0]))["variants"] == []


async def test_an_allele_three_patients_carry_is_answered_like_one_no_one_carries(
    api: httpx.AsyncClient, cohort: list[str]
) -> None:
    rare, absent = await allele(api, RARE_3), await allele(api, NO_ONE)
    assert len(rare["results"]) == len(absent["results"]) == 1
    assert without_identity(rare["results"][0]) == without_identity(absent["results"][0])
    single = await allele(api, RARE_1)
    assert without_identity(single["results"][0]) == without_identity(absent["results"][0])
    for result in (*rare["results"], *single["results"]):
        assert not isinstance(result["carriers"], int) and result["allele_frequency"] is None
        assert_nothing_small(result)


async def test_a_variant_all_but_two_patients_carry_is_masked(
    api: httpx.AsyncClient, cohort: list[str]
) -> None:
    (result,) = (await allele(api, ALL_BUT_2))["results"]
    # Thirteen of fifteen: showing 13 would tell the genotype of 13 in 15 of the cohort's
    # members; the two non-carriers are the small cell.
    assert not isinstance(result["carriers"], int), result
    assert not isinstance(result["allele_count"], int) and result["allele_frequency"] is None
    assert_nothing_small(result)
    listed = [v for v in (await region(api, 1, 1000))["variants"] if v["pos"] == ALL_BUT_2[0]]
    assert [without_identity(v) for v in listed] == [without_identity(result)]


async def test_a_lone_homozygote_cannot_be_backed_out_of_the_counts(
    api: httpx.AsyncClient, cohort: list[str]
) -> None:
    (result,) = (await allele(api, ONE_HOM))["results"]
    assert result["carriers"] == 6, "six carriers and nine who carry none: shown"
    assert not isinstance(result["allele_count"], int) and result["allele_frequency"] is None
    assert_nothing_small(result)


async def test_counts_with_no_small_cell_are_shown_exactly_in_both_answers(
    api: httpx.AsyncClient, cohort: list[str]
) -> None:
    """The control: the rules hide small cells, not everything."""
    (result,) = (await allele(api, SHOWN))["results"]
    assert (
        result["carriers"],
        result["allele_count"],
        result["allele_number"],
        result["allele_frequency"],
    ) == (10, 15, 2 * COHORT, 0.5)
    whole = await region(api, 1, 1000)
    assert [v["pos"] for v in whole["variants"]] == [ALL_BUT_2[0], ONE_HOM[0], SHOWN[0]]
    for listed in whole["variants"]:
        assert_nothing_small(listed)
    assert whole["variants"][-1] == result
