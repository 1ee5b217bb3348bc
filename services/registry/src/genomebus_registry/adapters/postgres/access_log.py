"""The access log read from ``audit_log``: a page of a patient's reads, newest first."""

from __future__ import annotations

from ...core.access_log import READ_ACTIONS, AccessEntry, AccessLog
from ...core.cursors import AccessCursor
from . import Connection

# The audit_log_patients GIN index finds the patient's rows; newest first, a page at a time.
_PAGE_SQL = """
SELECT id, at, actor, role, details->>'hospital_id' AS hospital_id, action, purpose, outcome
FROM audit_log
WHERE patients @> ARRAY[$1::text] AND action = ANY($2::text[]) AND id < $3
ORDER BY id DESC
LIMIT $4
"""


async def page(
    conn: Connection, pseudonym: str, *, limit: int, after: AccessCursor | None
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
