"""The consent projection in PostgreSQL: the patient's ``consents`` row, read (and locked) by
loads and removals, written by consent changes, with the research counts moved to match.

A load, a removal and a consent change of the same patient serialise on that row: whichever
commits second sees the other, so a withdrawal can never slip in between a check and a commit.
"""

from __future__ import annotations

from genomebus_common.contracts.events import ConsentChanged

from ...core import counts as decide
from ...core.consent import ConsentState
from . import Connection, counts


async def read_consent(conn: Connection, pseudonym: str, *, lock: bool) -> ConsentState:
    """The patient's consent projection; with ``lock``, the row held until commit.

    Locking first makes sure the row exists (a placeholder without a version), so there is always
    a row for a concurrent consent change to wait on. The lock is ``FOR NO KEY UPDATE``, not
    ``FOR SHARE``: two loads (or a load and a removal) of one patient must not interleave either,
    since each measures its change to the counts against the patient's other samples.
    """
    if lock:
        await conn.execute(
            "INSERT INTO consents (patient_pseudonym) VALUES ($1) ON CONFLICT DO NOTHING",
            pseudonym,
        )
    row = await conn.fetchrow(
        "SELECT version, analysis_consent_given, research_use, withdrawn FROM consents "
        "WHERE patient_pseudonym = $1" + (" FOR NO KEY UPDATE" if lock else ""),
        pseudonym,
    )
    if row is None:
        return ConsentState(None, None, None, None)
    return ConsentState(
        row["version"], row["analysis_consent_given"], row["research_use"], row["withdrawn"]
    )


async def apply_consent(conn: Connection, event: ConsentChanged) -> bool:
    """Project a consent version; True if applied, False if an equal or newer one is held.

    Versions only grow, so a redelivered or late event never overwrites a newer decision.
    """
    applied = await conn.fetchval(
        """
        INSERT INTO consents (patient_pseudonym, version, analysis_consent_given, research_use,
                              withdrawn, event_id, changed_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (patient_pseudonym) DO UPDATE SET
            version = EXCLUDED.version,
            analysis_consent_given = EXCLUDED.analysis_consent_given,
            research_use = EXCLUDED.research_use,
            withdrawn = EXCLUDED.withdrawn,
            event_id = EXCLUDED.event_id,
            changed_at = EXCLUDED.changed_at,
            updated_at = now()
        WHERE consents.version IS NULL OR consents.version < EXCLUDED.version
        RETURNING true""",
        event.patient_pseudonym,
        event.version,
        event.analysis_consent_given,
        event.research_use.value,
        event.withdrawn,
        event.event_id,
        event.occurred_at,
    )
    return bool(applied)


async def project_consent(conn: Connection, event: ConsentChanged) -> bool:
    """Apply a consent version in the caller's transaction (True if it was newer): the patient's
    row locked, and if research use changes, the samples' flags and the adjustments with it."""
    await read_consent(conn, event.patient_pseudonym, lock=True)
    was = await counts.research_ok(conn, event.patient_pseudonym)
    applied = await apply_consent(conn, event)
    now = await counts.research_ok(conn, event.patient_pseudonym)
    if was != now:
        await counts.set_research_flags(conn, event.patient_pseudonym)
        samples = await counts.patient_samples(conn, event.patient_pseudonym)
        await counts.add(conn, decide.on_consent(event.patient_pseudonym, samples, was, now))
    return applied
