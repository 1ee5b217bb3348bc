"""A patient's access log: who read the patient's data, when and why, from the audit log.

Every question the registry answers is audited with the patients it touched (audit.py), so
"who has looked at my data?" is a query over those rows, never a second record that could
disagree with the first. It is served only to the citizens' portal, which authenticates the
citizen and asks for that citizen's own pseudonym; a hospital or a researcher is refused.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime

import asyncpg
from pydantic import BaseModel, Field

#: The audited actions that read a patient's data: the treating hospital's view of the
#: genotypes, the research counts that included them, and the energy figures of their sample.
#: Loads, consent changes and the portal's own reads of this log are not reads of their data.
READ_ACTIONS = (
    "treatment.patient_variants",
    "treatment.sample_energy",
    "research.allele",
    "research.region",
)

#: Entries per page: a page is one index probe plus at most this many rows.
PAGE_DEFAULT = 50
PAGE_MAX = 500


class AccessEntry(BaseModel):
    """One question that touched the patient's data (answered or refused)."""

    at: datetime
    client_id: str = Field(description="The registry client that asked.")
    role: str = Field(description="hospital or research.")
    hospital_id: str | None = Field(description="For a hospital client: which hospital.")
    action: str = Field(description="What was asked: " + ", ".join(READ_ACTIONS) + ".")
    purpose: str = Field(description="The purpose the client gave (X-Purpose).")
    outcome: str = Field(description='"answered", or "denied: <why>" when it was refused.')


class AccessLog(BaseModel):
    patient_pseudonym: str
    entries: list[AccessEntry] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for older entries; absent on the last page."
    )


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


# The audit_log_patients GIN index finds the patient's rows; newest first, a page at a time.
_PAGE_SQL = """
SELECT id, at, actor, role, details->>'hospital_id' AS hospital_id, action, purpose, outcome
FROM audit_log
WHERE patients @> ARRAY[$1::text] AND action = ANY($2::text[]) AND id < $3
ORDER BY id DESC
LIMIT $4
"""


async def page(
    conn: asyncpg.Connection, pseudonym: str, *, limit: int, after: AccessCursor | None
) -> AccessLog:
    """One page of the patient's access log, newest first, older than ``after``.

    Runs inside the caller's transaction. The plan must be made for this patient: a patient
    named in few audit rows is read through the GIN index, one named in many by walking the
    primary key backwards until the page is full. A prepared statement's generic plan (which
    PostgreSQL switches to after five runs) walks backwards for everyone, which for a patient
    never read means the whole log (0.5 s at a million rows; measured in
    docs/security-registry.md), hence a custom plan for each call.
    """
    before = after.before_id if after else 2**63 - 1
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    rows = await conn.fetch(_PAGE_SQL, pseudonym, list(READ_ACTIONS), before, limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    entries = [
        AccessEntry(
            at=r["at"],
            client_id=r["actor"],
            role=r["role"],
            hospital_id=r["hospital_id"],
            action=r["action"],
            purpose=r["purpose"],
            outcome=r["outcome"],
        )
        for r in rows
    ]
    cursor = AccessCursor(before_id=rows[-1]["id"]).encode() if more and rows else None
    return AccessLog(patient_pseudonym=pseudonym, entries=entries, next_cursor=cursor)
