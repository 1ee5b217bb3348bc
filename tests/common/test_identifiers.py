"""National ids are checked by format and date, and become keyed pseudonyms."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genomebus_common.contracts.events import PSEUDONYM_PATTERN
from genomebus_common.contracts.identifiers import InvalidNationalId, Pseudonymiser, parse_cpr

KEY = "ab" * 32


@pytest.mark.parametrize(
    ("cpr", "born"),
    [
        ("010190-1234", date(1990, 1, 1)),  # 7th digit 1 -> 1900s
        ("0101901234", date(1990, 1, 1)),  # without hyphen
        ("290200-4111", date(2000, 2, 29)),  # 4 and yy <= 36 -> 2000s (leap year)
        ("010158-5000", date(1858, 1, 1)),  # 5-8 and yy >= 58 -> 1800s
        ("311299-9876", date(1999, 12, 31)),  # 9 and yy >= 37 -> 1900s
        ("150107-7777", date(2007, 1, 15)),  # no modulus-11 check since 2007: accepted
    ],
)
def test_valid_numbers_and_their_century(cpr: str, born: date) -> None:
    assert parse_cpr(cpr).birth_date == born


@pytest.mark.parametrize(
    ("cpr", "why"),
    [
        ("310290-1234", "no real birth date"),  # 31 February
        ("290201-4111", "no real birth date"),  # 2001 is not a leap year
        ("0101901", "DDMMYY-SSSS"),
        ("01-01-90-1234", "DDMMYY-SSSS"),
        ("010190-A234", "position 7"),
    ],
)
def test_invalid_numbers_say_what_is_wrong(cpr: str, why: str) -> None:
    with pytest.raises(InvalidNationalId, match=why):
        parse_cpr(cpr)


def test_replacement_numbers_are_accepted() -> None:
    assert parse_cpr("010190-1AB2").replacement


def test_the_number_never_shows_in_repr() -> None:
    assert "010190" not in repr(parse_cpr("010190-1234"))


def test_pseudonyms_are_stable_keyed_versioned_and_valid_on_the_bus() -> None:
    cpr = parse_cpr("010190-1234")
    one = Pseudonymiser.from_secret(KEY)
    assert one.pseudonym(cpr) == one.pseudonym(parse_cpr("0101901234"))
    assert one.pseudonym(cpr) != Pseudonymiser.from_secret("cd" * 32).pseudonym(cpr)
    import re

    assert re.match(PSEUDONYM_PATTERN, one.pseudonym(cpr))


def test_rotation_keeps_old_pseudonyms_findable() -> None:
    both = Pseudonymiser({1: bytes.fromhex(KEY), 2: b"k" * 32}, current_version=2)
    cpr = parse_cpr("010190-1234")
    assert both.pseudonym(cpr).startswith("pk2_")
    assert both.all_pseudonyms(cpr)[1] == Pseudonymiser.from_secret(KEY).pseudonym(cpr)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="shorter than 32 bytes"):
        Pseudonymiser.from_secret("short")


@given(st.from_regex(r"\A\d{6}-?[0-9][0-9A-Za-z]{3}\Z"))
def test_whatever_parse_cpr_accepts_the_bus_refuses(text: str) -> None:
    """The bus's national-id screen and ingest's parser never disagree: an id that ingest would
    take as a patient's can never travel in an event's text or identifier fields."""
    from genomebus_common.contracts.events import _refuse_national_id

    try:
        parse_cpr(text)
    except InvalidNationalId:
        return
    with pytest.raises(ValueError, match="national id"):
        _refuse_national_id(f"note {text} end")
