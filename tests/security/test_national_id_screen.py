"""One national-id screen, in every spelling, everywhere.

Observed against the old main: specimen ids ``010101.1234``, ``010101:1234`` and
``01010112341`` (a CPR number with a tube digit) were accepted and stored. Property: whatever
``parse_cpr`` accepts, written in any of these forms, is refused as an identifier, a key and
free text, and is gone from a redacted reason.
"""

from __future__ import annotations

import uuid
from datetime import date

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from genomebus_common.contracts.events import Identifier, ObjectKey, SafeText
from genomebus_common.contracts.identifiers import (
    looks_like_national_id,
    parse_cpr,
    redact_national_ids,
)
from genomebus_common.stagekit.reference import Manifest
from genomebus_ingest.config import IngestSettings

from ..ingest.fastq_data import pair
from ..ingest.test_api_integration import registration

SEPARATORS = [
    "",
    "-",
    ".",
    ":",
    " ",
    "  ",
    " - ",
    "\u2010",
    "\u2011",
    "\u2013",
    "\u2014",
    "\u2212",
    "\u00a0",
    "\u2009",
    "\u00ad",
    "\u200b",
    "\t",
    ", ",
]
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@st.composite
def national_ids(draw: st.DrawFn) -> str:
    """Canonical (10 characters) numbers that parse_cpr accepts, CPR and replacement."""
    born = draw(st.dates(min_value=date(1858, 1, 1), max_value=date.today()))
    yy = born.year % 100
    century = born.year - yy
    sevenths = [d for d in range(10) if _century(d, yy) == century]
    seventh = draw(st.sampled_from(sevenths))
    if draw(st.booleans()):
        tail = f"{seventh}{draw(st.integers(0, 999)):03d}"
    else:
        rest = draw(
            st.text("ABCDEFGHJKLMNPRSTUVXYZ0123456789", min_size=3, max_size=3).filter(
                lambda t: any(c.isalpha() for c in t)
            )
        )
        tail = f"{seventh}{rest}"
    value = f"{born:%d%m}{yy:02d}{tail}"
    parse_cpr(value)  # a generator bug fails loudly rather than testing nothing
    return value


def _century(seventh: int, yy: int) -> int:
    if seventh <= 3:
        return 1900
    if seventh in (4, 9):
        return 2000 if yy <= 36 else 1900
    return 2000 if yy <= 57 else 1800


# Separators drawn from all of Unicode (any character but an ASCII letter or digit), not only
# from a list the implementation could have been written against.
ANY_SEPARATOR = st.text(
    st.characters(codec=None).filter(lambda c: not (c.isascii() and c.isalnum())),
    min_size=1,
    max_size=3,
)


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str]:
    """(canonical number, a spelling of it inside some text)."""
    cpr = draw(national_ids())
    form = draw(st.sampled_from(["grouped", "every", "tube_after", "tube_before", "plain"]))
    sep = draw(st.one_of(st.sampled_from(SEPARATORS), ANY_SEPARATOR))
    if form == "grouped":
        text = (
            sep.join([cpr[0:2], cpr[2:4], cpr[4:6]])
            + draw(st.one_of(st.sampled_from(SEPARATORS), ANY_SEPARATOR))
            + cpr[6:]
        )
    elif form == "every":  # a replacement number's letters stay one word with the digit before them
        text = sep.join(cpr) if cpr.isdigit() else sep.join(cpr[:6]) + sep + cpr[6:]
    elif form == "tube_after":
        text = cpr + str(draw(st.integers(0, 9))) if cpr.isdigit() else cpr
    elif form == "tube_before":
        text = str(draw(st.integers(0, 9))) + cpr if cpr.isdigit() else cpr
    else:
        text = cpr[:6] + sep + cpr[6:]
    if cpr.isdigit() and draw(st.booleans()):
        text = text.translate(draw(st.sampled_from([FULLWIDTH, ARABIC_INDIC])))
    prefix = draw(st.sampled_from(["", "SP", "specimen ", "RH/", "x-"]))
    # a replacement number is a word of its own; a CPR number's digits may run into letters
    suffix = draw(
        st.sampled_from(["", "/R1.fastq.gz", " was here", "-x", *(["A"] if cpr.isdigit() else [])])
    )
    return cpr, prefix + text + suffix


IDENTIFIER = TypeAdapter(Identifier)
FREE_TEXT = TypeAdapter(SafeText)
KEY = TypeAdapter(ObjectKey)


@given(spellings())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_every_spelling_is_refused_everywhere_and_redacted(case: tuple[str, str]) -> None:
    cpr, text = case
    assert looks_like_national_id(text), text
    for adapter in (IDENTIFIER, FREE_TEXT, KEY):
        with pytest.raises(ValidationError):
            adapter.validate_python(text)
    redacted = redact_national_ids(f"reason: {text} and more")
    assert not looks_like_national_id(redacted), redacted
    assert cpr[:6] not in redacted.replace("-", "")


@pytest.mark.parametrize(
    "text",
    [
        "010101.1234",
        "010101:1234",
        "01010112341",
        "0101 01 1234",
        "010190/1234",
        "010190_1234",
        "(010190)1234",
        "010190/1ABC",
        "0101\u00b790\u02d71234",
        "01\U0001d17301\u034f90\ufe0f1234",
        "01\u030101901234",
        "01\u201301\u201301\u20131234",
        "０１０１０１１２３４",
        "010101\u00ad1234",
    ],
)
def test_the_observed_specimen_ids_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        IDENTIFIER.validate_python(text)
    assert looks_like_national_id(text)


@pytest.mark.parametrize(
    "text",
    [
        "RH-S-1",
        "SP1a2b3c4d",
        "RUN-2026-11-25",
        "chr1:12345-67890",
        "GRCh38",
        "RH/2026/12/02/R1.fastq.gz",
        "ORD-77",
        "lane 3",
        "bwa mem -K 100000000",
        "samples/RH.SP1/R1.fastq.gz",
        "samples/RH.SP12063139/R1.fastq.gz",  # an id then a file name: not a replacement number
    ],
)
def test_ordinary_ids_and_text_pass(text: str) -> None:
    assert not looks_like_national_id(text)
    IDENTIFIER.validate_python(
        text.replace(" ", "_").replace("/", "_")
    ) if " " not in text else None


@pytest.mark.integration
@pytest.mark.parametrize("specimen", ["010101.1234", "010101:1234", "01010112341"])
async def test_a_specimen_id_shaped_like_a_national_id_is_refused_and_not_stored(
    lis: httpx.AsyncClient,
    toy_reference: Manifest,
    ingest_settings: IngestSettings,
    specimen: str,
) -> None:
    r1, r2 = pair(3, seed=71)
    answer = await lis.post(
        "/v1/samples", json=registration(toy_reference, r1, r2, specimen_id=specimen)
    )
    assert answer.status_code == 422 and specimen not in answer.text
    conn = await asyncpg.connect(ingest_settings.postgres_dsn.get_secret_value())
    try:
        for table in ("samples", "rejected_registrations"):
            rows = await conn.fetch(f"SELECT * FROM {table}")
            assert not any(specimen in str(dict(row)) for row in rows), (
                f"{specimen} stored in {table}"
            )
    finally:
        await conn.close()


async def test_a_read_name_holding_a_national_id_never_reaches_a_reason(
    lis: httpx.AsyncClient,
    toy_reference: Manifest,
) -> None:
    import gzip

    seq = "ACGT" * 10
    r1 = gzip.compress(f"@patient-010190-1234/1\n{seq}\n+\n{'I' * 40}\n".encode())
    r2 = gzip.compress(f"@other-0101.90.1234/2\n{seq}\n+\n{'I' * 40}\n".encode())
    sample = (
        await lis.post(
            "/v1/samples",
            json=registration(toy_reference, r1, r2, specimen_id=f"SP{uuid.uuid4().hex[:8]}"),
        )
    ).json()
    await lis.put(sample["upload"]["R1"], content=r1)
    checked = (await lis.put(sample["upload"]["R2"], content=r2)).json()
    assert checked["status"] == "rejected" and "mates differ" in checked["reasons"][0]
    assert not looks_like_national_id(str(checked["reasons"])), checked["reasons"]
