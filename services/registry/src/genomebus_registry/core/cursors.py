"""The opaque page cursors the API hands out, and the refusal of any it did not.

A cursor is base64 of a small JSON value; decoding checks its shape and ranges, so a forged or
garbled cursor is a 422 (``ValueError`` here), never a query over whatever it says.
"""

from __future__ import annotations

import base64
import json

from pydantic import BaseModel, Field


class RegionCursor(BaseModel):
    """Where a region page ended: the last variant's reference and key, opaque to clients."""

    reference_digest: str
    key: int

    def encode(self) -> str:
        raw = json.dumps([self.reference_digest, self.key]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> RegionCursor:
        """Raises ValueError for anything that is not a cursor this service handed out."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            digest, key = json.loads(raw)
            if not isinstance(key, int) or isinstance(key, bool) or not 0 <= key < 1 << 63:
                raise ValueError("not a key")
            return cls(reference_digest=digest, key=key)
        except (ValueError, TypeError) as exc:
            raise ValueError("not a region cursor from this service") from exc


class PatientCursor(BaseModel):
    """Where a page of a patient's variants ended (a block and a call in it), opaque."""

    position: tuple[int, int, int, int]

    def encode(self) -> str:
        return base64.urlsafe_b64encode(json.dumps(self.position).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> PatientCursor:
        """Raises ValueError for anything that is not a cursor this service handed out."""
        try:
            raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if (
                not isinstance(raw, list)
                or len(raw) != 4
                or not all(type(v) is int and 0 <= v < 1 << 31 for v in raw)
            ):
                raise ValueError("not a position")
            return cls(position=tuple(raw))
        except (ValueError, TypeError) as exc:
            raise ValueError("not a patient cursor from this service") from exc


class AccessCursor(BaseModel):
    """Where a page ended: the audit id of its oldest entry, opaque to clients."""

    before_id: int = Field(ge=1)

    def encode(self) -> str:
        raw = json.dumps(["a", self.before_id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> AccessCursor:
        """Raises ValueError for anything that is not a cursor this service handed out."""
        try:
            tag, before_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if tag != "a":
                raise ValueError(tag)
            return cls(before_id=before_id)
        except (ValueError, TypeError) as exc:
            raise ValueError("not an access-log cursor from this service") from exc
