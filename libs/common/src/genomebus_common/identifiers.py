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
from dataclasses import dataclass
from datetime import date

from .errors import PermanentError

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
        raise InvalidNationalId("national id has no real birth date in its first six digits") from None
    if born > date.today():
        raise InvalidNationalId("national id has a birth date in the future")
    return NationalId(value=f"{match[1]}{match[2]}{match[3]}{tail}", birth_date=born, replacement=replacement)


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
    def from_secret(cls, secret: str, version: int = 1) -> "Pseudonymiser":
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
