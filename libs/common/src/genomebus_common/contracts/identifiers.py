"""National identifiers and the pseudonyms that replace them.

A CPR number is DDMMYY-SSSS. Since 2007 numbers without a valid modulus-11 check digit are
issued, so only the format and the birth date are checked; the 7th digit and the year give the
century. Regions also issue replacement numbers (eCPR) whose last four characters contain
letters; those are accepted with a real date too.

The CPR space is small (about 3.7e8 numbers), so an unkeyed hash would be reversed by brute
force in minutes. A pseudonym is therefore a keyed HMAC-SHA256 with a key version in front, so
keys can rotate. Only the services that receive a national id (ingest, consent) hold the key;
this is the one implementation both use.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from genomebus_common.contracts.errors import PermanentError

_CPR = re.compile(r"^(\d{2})(\d{2})(\d{2})-?([0-9A-Za-z]{4})$", re.ASCII)  # ASCII digits only


class InvalidNationalId(PermanentError):
    code = "invalid_national_id"


def _century(seventh: int, yy: int) -> int:
    if seventh <= 3:
        return 1900
    if seventh in (4, 9):
        return 2000 if yy <= 36 else 1900
    return 2000 if yy <= 57 else 1800  # 5-8


@dataclass(frozen=True)
class NationalId:
    """A checked national id in canonical form (10 characters, no hyphen)."""

    value: str
    birth_date: date
    replacement: bool

    def __repr__(self) -> str:  # never print the number itself by accident
        return "NationalId(<redacted>)"

    __str__ = __repr__


def parse_cpr(raw: str) -> NationalId:
    """Check format and birth date; raise ``InvalidNationalId`` saying what is wrong."""
    text = raw.strip()
    match = _CPR.match(text)
    if not match:
        raise InvalidNationalId("national id must be DDMMYY-SSSS (10 digits, hyphen optional)")
    dd, mm, yy, tail = int(match[1]), int(match[2]), int(match[3]), match[4].upper()
    replacement = not tail.isdigit()
    if replacement and not tail[0].isdigit():
        # eCPR keeps a digit in position 7 for the century; letters follow.
        raise InvalidNationalId("replacement number must keep a digit in position 7")
    year = _century(int(tail[0]), yy) + yy
    try:
        born = date(year, mm, dd)
    except ValueError:
        # Never echo the digits: a mistyped number is still most of a real one.
        raise InvalidNationalId(
            "national id has no real birth date in its first six digits"
        ) from None
    if born > date.today():
        raise InvalidNationalId("national id has a birth date in the future")
    return NationalId(
        value=f"{match[1]}{match[2]}{match[3]}{tail}", birth_date=born, replacement=replacement
    )


class Pseudonymiser:
    """Keyed, versioned pseudonyms: ``pk<version>_<hmac-sha256 hex>``."""

    def __init__(self, keys: dict[int, bytes], current_version: int) -> None:
        if current_version not in keys:
            raise ValueError(f"no key for the current version {current_version}")
        for version, key in keys.items():
            if len(key) < 32:
                raise ValueError(f"pseudonym key version {version} is shorter than 32 bytes")
        self._keys = dict(keys)
        self.current_version = current_version

    @classmethod
    def from_secret(cls, secret: str, version: int = 1) -> Pseudonymiser:
        """One key given as hex (64+ hex digits) or as text of 32+ bytes."""
        try:
            key = bytes.fromhex(secret)
        except ValueError:
            key = secret.encode()
        return cls({version: key}, version)

    def pseudonym(self, national_id: NationalId, *, version: int | None = None) -> str:
        version = self.current_version if version is None else version
        digest = hmac.new(self._keys[version], national_id.value.encode(), hashlib.sha256)
        return f"pk{version}_{digest.hexdigest()}"

    def all_pseudonyms(self, national_id: NationalId) -> dict[int, str]:
        """The pseudonym under every key held: how records from before a rotation are found."""
        return {v: self.pseudonym(national_id, version=v) for v in sorted(self._keys)}


# --- The one national-id screen ----------------------------------------------------------------
#
# Whatever ``parse_cpr`` accepts must be refused in every identifier, key and free text, in any
# spelling a hostile or careless caller might use: with any separator between its digits (``-``
# ``.`` ``:`` ``/`` space, Unicode dashes and spaces, invisible format characters), in non-ASCII
# digits, or inside a run of 10-11 digits (a number with a tube digit before or after it). The
# screen errs on the side of refusing: an id that merely looks like a date plus four digits is
# refused too, and callers are told to use another form (the LIS's own ids rarely collide).

# Anything but an ASCII letter or digit may stand between the characters of a number written
# to slip past a screen: punctuation of any script, dashes, spaces, invisible format characters,
# combining marks, ``/`` and ``_`` too. Letters end it. Refusing ``RH/2026/12/02/123456`` (a
# date-like path) is the price: the LIS is told to name its files otherwise.
_SEP = "[^0-9A-Za-z]*"
# DDMMYY then four digits, or a replacement tail (a digit then three letters or digits, at
# least one a letter), with any separators between any of its digits, not inside a longer
# number or word. A replacement tail is one word and ends one: read across a separator,
# ``SP12063139/R1`` (an id, then a file name) would be one, and read inside a word, one random
# hex id in a hundred would hold one. Which DDMM are real days is checked on the digits found.
_SHAPE = re.compile(
    rf"(?<![0-9])[0-3]{_SEP}[0-9]{_SEP}[01]{_SEP}[0-9]{_SEP}[0-9]{_SEP}[0-9]{_SEP}"
    rf"(?:(?P<cpr>[0-9]{_SEP}[0-9]{_SEP}[0-9]{_SEP}[0-9])(?![0-9])"
    rf"|(?P<replacement>[0-9][0-9A-Za-z]{{3}})(?![0-9A-Za-z]))",
)
# Separators after a digit and before a letter or digit, taken out to find runs of digits.
_BETWEEN = re.compile(r"(?<=[0-9])[^0-9A-Za-z]+(?=[0-9A-Za-z])")
# A run of 10 or 11 digits: a CPR number with a tube or check digit before or after it.
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]{10,11}(?![0-9])", re.ASCII)
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ASCII_DIGIT = re.compile(r"[0-9]")
_ALNUM = re.compile(r"[0-9A-Za-z]")


def _is_day_month(text: str) -> bool:
    """True when DDMM is a real day in a leap year (the broadest reading of a birth date)."""
    try:
        date(2000, int(text[2:4]), int(text[0:2]))
    except ValueError:
        return False
    return True


def _non_ascii_digit(text: str) -> bool:
    return any(c.isnumeric() for c in _NON_ASCII.findall(text))


def _is_shape(found: re.Match[str]) -> bool:
    """A day 01-31 and a month 01-12 (any such pair, real or not: the screen is broad), then
    four digits or a replacement tail with a letter."""
    chars = "".join(_ALNUM.findall(found.group(0)))
    day, month = int(chars[0:2]), int(chars[2:4])
    return (
        1 <= day <= 31
        and 1 <= month <= 12
        and (found.group("cpr") is not None or any(c.isalpha() for c in chars[7:]))
    )


def _spans(text: str) -> list[tuple[int, int]]:
    """Where in ``text`` something shaped like a national id sits (start, end).

    Every identifier of every event passes here: text without an ASCII digit (most of it)
    returns at once, and the character-by-character compaction is done only when separators
    stand between digits."""
    if not _ASCII_DIGIT.search(text):
        return []
    found = [m.span() for m in _SHAPE.finditer(text) if _is_shape(m)]
    # Runs of digits, read with the separators between them taken out; mapped back.
    cuts = [m.span() for m in _BETWEEN.finditer(text)]
    kept: Sequence[int]  # compact's index -> text's
    if cuts:
        cut = {i for start, end in cuts for i in range(start, end)}
        kept = [i for i in range(len(text)) if i not in cut]
        compact = "".join(text[i] for i in kept)
    else:
        kept, compact = range(len(text)), text
    for match in _DIGIT_RUN.finditer(compact):
        run = match.group(0)
        if any(_is_day_month(run[o : o + 4]) for o in range(len(run) - 9)):
            found.append((kept[match.start()], kept[match.end() - 1] + 1))
    return found


def looks_like_national_id(text: str) -> bool:
    """True if ``text`` holds anything shaped like a national id, in any spelling, or any
    non-ASCII digit (which some scripts would read as one)."""
    return _non_ascii_digit(text) or bool(_spans(text))


def redact_national_ids(text: str, replacement: str = "<redacted>") -> str:
    """``text`` with every national-id-shaped part (and every non-ASCII digit) replaced: for
    reasons, log lines and span attributes that quote input and must still be written."""
    spans = sorted(_spans(text))
    out: list[str] = []
    at = 0
    for start, end in spans:
        if start < at:  # overlapping finds: extend the current cut
            if end > at:
                at = end
            continue
        out.append(text[at:start])
        out.append(replacement)
        at = end
    out.append(text[at:])
    redacted = "".join(out)
    if _non_ascii_digit(redacted):
        redacted = "".join(
            replacement if not c.isascii() and c.isnumeric() else c for c in redacted
        )
    return redacted
