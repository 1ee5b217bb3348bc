"""The append-only audit log: every query, consent change and load, with who, why and whom.

Rows are written on the caller's connection so they commit (or roll back) with what they
describe; the database itself refuses UPDATE, DELETE and TRUNCATE on the table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from . import Connection


async def record(
    conn: Connection,
    *,
    actor: str,
    role: str,
    action: str,
    purpose: str,
    outcome: str,
    patients: Iterable[str] = (),
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        """
        INSERT INTO audit_log (actor, role, action, purpose, outcome, patients, details)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)""",
        actor,
        role,
        action,
        purpose,
        outcome,
        sorted(set(patients)),
        json.dumps(details or {}, default=str),
    )
