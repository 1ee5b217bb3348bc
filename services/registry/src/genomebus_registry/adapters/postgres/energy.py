"""Energy estimates in ``sample_energy``: upserted from the stages' events, read per sample."""

from __future__ import annotations

import uuid

from genomebus_common.contracts.energy import total
from genomebus_common.contracts.events import EnergyEstimate

from . import Connection

_FIELDS = (
    "method",
    "cpu_seconds",
    "wall_seconds",
    "watts_per_core",
    "kwh",
    "heat_recovery_fraction",
    "heat_recovered_kwh",
    "node",
)


async def record(
    conn: Connection,
    *,
    stage: str,
    sample_id: str,
    patient_pseudonym: str,
    hospital_id: str | None,
    estimate: EnergyEstimate,
    source_event_id: uuid.UUID,
) -> None:
    """Upsert one stage's estimate for a sample: the same event twice leaves the same row, and a
    stage that reports again (a recomputation) replaces its earlier figures."""
    await conn.execute(
        """
        INSERT INTO sample_energy (sample_id, stage, patient_pseudonym, hospital_id, method,
            cpu_seconds, wall_seconds, watts_per_core, kwh, heat_recovery_fraction,
            heat_recovered_kwh, node, source_event_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        ON CONFLICT (sample_id, stage) DO UPDATE SET
            patient_pseudonym = EXCLUDED.patient_pseudonym,
            hospital_id = coalesce(EXCLUDED.hospital_id, sample_energy.hospital_id),
            method = EXCLUDED.method,
            cpu_seconds = EXCLUDED.cpu_seconds,
            wall_seconds = EXCLUDED.wall_seconds,
            watts_per_core = EXCLUDED.watts_per_core,
            kwh = EXCLUDED.kwh,
            heat_recovery_fraction = EXCLUDED.heat_recovery_fraction,
            heat_recovered_kwh = EXCLUDED.heat_recovered_kwh,
            node = EXCLUDED.node,
            source_event_id = EXCLUDED.source_event_id,
            recorded_at = now()""",
        sample_id,
        stage,
        patient_pseudonym,
        hospital_id,
        estimate.method,
        estimate.cpu_seconds,
        estimate.wall_seconds,
        estimate.watts_per_core,
        estimate.kwh,
        estimate.heat_recovery_fraction,
        estimate.heat_recovered_kwh,
        estimate.node,
        source_event_id,
    )


async def stages_of(conn: Connection, sample_id: str) -> dict[str, EnergyEstimate]:
    """The recorded estimates of one sample, by stage."""
    rows = await conn.fetch(
        f"SELECT stage, {', '.join(_FIELDS)} FROM sample_energy "
        "WHERE sample_id = $1 ORDER BY stage",
        sample_id,
    )
    return {r["stage"]: EnergyEstimate(**{f: r[f] for f in _FIELDS}) for r in rows}


async def sample_total(conn: Connection, sample_id: str) -> EnergyEstimate | None:
    """The sample's totals over the stages recorded so far (None if none reported energy)."""
    return total((await stages_of(conn, sample_id)).values())
