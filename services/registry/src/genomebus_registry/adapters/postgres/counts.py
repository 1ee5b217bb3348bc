"""The counts in PostgreSQL: pending adjustments written with the change that causes them, and
the fold that moves them into the stored counts (migration 0013, ``registry_fold``).

``core.counts`` decides which adjustments a change makes; this module reads what the decision
needs (the patient's samples, under the lock the caller holds on the patient's consents row)
and writes the result. Nothing here takes a lock another patient's change needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from genomebus_common.runtime import metrics
from genomebus_common.runtime.background import BackgroundTask

from ...core.counts import Adjustment, SampleState
from . import Connection

log = logging.getLogger(__name__)

#: Entries per fold: large enough that the many variants a batch of genomes shares are updated
#: once for all of them, small enough that one fold's transaction stays minutes, not hours.
FOLD_BATCH = 64


async def patient_samples(conn: Connection, patient: str) -> list[SampleState]:
    """The patient's samples as the decisions need them (call holding the patient's lock)."""
    rows = await conn.fetch(
        "SELECT sample_no, reference_digest, NOT quarantined AND removed_at IS NULL AS active "
        "FROM samples WHERE patient_pseudonym = $1",
        patient,
    )
    return [SampleState(r["sample_no"], r["reference_digest"], r["active"]) for r in rows]


async def research_ok(conn: Connection, patient: str) -> bool:
    """Whether the patient's consent, as the transaction sees it, allows research now."""
    return bool(
        await conn.fetchval(
            "SELECT registry_research_ok(research_use, analysis_consent_given, withdrawn) "
            "FROM consents WHERE patient_pseudonym = $1",
            patient,
        )
    )


async def add(conn: Connection, adjustments: Sequence[Adjustment]) -> None:
    """Commit the adjustments with the caller's transaction."""
    if not adjustments:
        return
    await conn.executemany(
        "INSERT INTO pending_adjustments (patient_pseudonym, reference_digest, samples, w_all, "
        "w_research) VALUES ($1, $2, $3, $4, $5)",
        [
            (a.patient, a.reference_digest, list(a.samples), a.w_all, a.w_research)
            for a in adjustments
        ],
    )


async def set_research_flags(conn: Connection, patient: str) -> None:
    """Each of the patient's samples in use carries "may be used for research now" (the flag
    the research_samples view filters on). Removed samples are left alone: no view reads their
    flag, and the fold's purge locks their rows."""
    await conn.execute(
        """
        UPDATE samples s SET research = coalesce((
            SELECT registry_research_ok(c.research_use, c.analysis_consent_given, c.withdrawn)
            FROM consents c WHERE c.patient_pseudonym = s.patient_pseudonym), false)
        WHERE s.patient_pseudonym = $1 AND s.removed_at IS NULL""",
        patient,
    )


@dataclass(frozen=True)
class FoldResult:
    entries: int
    seconds: float


async def fold(pool: asyncpg.Pool, max_entries: int = FOLD_BATCH) -> FoldResult:
    """Fold the oldest pending entries into the stored counts, in one transaction; invisible
    to every answer (stored + pending is the same before and after)."""
    started = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL work_mem = '512MB'")
        entries = int(await conn.fetchval("SELECT registry_fold($1)", max_entries))
    return FoldResult(entries, time.perf_counter() - started)


async def pending_entries(db: asyncpg.Pool | Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM pending_adjustments"))


async def report_pending(pool: asyncpg.Pool) -> None:
    """The pending-adjustments gauge, read at scrape time."""
    metrics.REGISTRY_PENDING.set(await pending_entries(pool))


class Folder(BackgroundTask):
    """Folds pending adjustments in the background, batch after batch while any are pending,
    then looks again every ``interval`` seconds. Every registry process may run one: folds take
    turns (registry_fold waits for another), and each folds what the other left. Stopping
    abandons the fold running (it rolls back: nothing is lost)."""

    name = "registry-folder"

    def __init__(
        self, pool: asyncpg.Pool, *, interval: float = 5.0, max_entries: int = FOLD_BATCH
    ) -> None:
        self.pool = pool
        self.interval = interval
        self.max_entries = max_entries

    async def run(self) -> None:
        while True:
            try:
                result = await fold(self.pool, self.max_entries)
            except Exception as exc:  # a folder that stops leaves answers exact but slower: go on
                log.warning(
                    "fold failed; retrying",
                    extra={"error": type(exc).__name__},
                    exc_info=not isinstance(exc, (asyncpg.PostgresError, OSError)),
                )
                await asyncio.sleep(self.interval)
                continue
            if result.entries:
                metrics.REGISTRY_FOLDED.inc(result.entries)
                log.info(
                    "folded", extra={"entries": result.entries, "seconds": round(result.seconds, 3)}
                )
            if result.entries < self.max_entries:
                await asyncio.sleep(self.interval)
