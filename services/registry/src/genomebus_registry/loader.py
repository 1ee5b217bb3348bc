"""Writing to the registry's tables: the consent projection, bulk genotype loads, quarantine.

Bulk loads never round-trip per row: rows stream through ``COPY`` into a temporary staging table
(``copy_records_to_table``), then two set-based statements move them into ``variants`` and
``genotypes`` with ``ON CONFLICT DO NOTHING``, so loading the same rows again changes nothing.
Variants are inserted in id order, so two samples loading the same new variants at once take
their row locks in the same order and cannot deadlock each other.

A load and a consent change of the same patient serialise on the patient's ``consents`` row: the
loader takes it ``FOR SHARE`` just before commit, a consent change updates it. Whichever commits
second sees the other: a withdrawal can never slip in between the check and the commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

import asyncpg
from genomebus_common.events import ConsentChanged, VariantsCalled

from .domain import ConsentState, GenotypeRow

T = TypeVar("T")

STAGING_TABLE = "registry_staging"
_BATCH = 20_000


async def batched_in_thread(rows: Iterator[T], size: int = _BATCH) -> AsyncIterator[T]:
    """Drive a blocking iterator (the VCF parser) in a worker thread, a batch at a time, so the
    event loop keeps serving queries and heartbeats while a large VCF is parsed."""
    while True:
        batch = await asyncio.to_thread(lambda: list(islice(rows, size)))
        if not batch:
            return
        for row in batch:
            yield row


def _count(status: str) -> int:
    """Rows affected, from a command tag like ``INSERT 0 42``."""
    return int(status.split()[-1])


@dataclass(frozen=True)
class LoadCounts:
    variants_new: int
    genotypes: int


async def load_genotypes(
    conn: asyncpg.Connection,
    sample_id: str,
    reference_digest: str,
    rows: AsyncIterator[GenotypeRow],
) -> LoadCounts:
    """Stage ``rows`` by COPY and move them into the real tables (call inside a transaction)."""
    await conn.execute(
        f"""
        CREATE TEMP TABLE {STAGING_TABLE} (
            variant_id text, chrom text, pos integer, ref text, alt text,
            alt_count smallint, dp integer, gq integer
        ) ON COMMIT DROP"""
    )
    await conn.copy_records_to_table(STAGING_TABLE, records=rows, columns=list(GenotypeRow._fields))
    await conn.execute(f"ANALYZE {STAGING_TABLE}")  # temp tables have no statistics otherwise
    new_variants = await conn.execute(
        f"""
        INSERT INTO variants (variant_id, reference_digest, chrom, pos, ref, alt)
        SELECT DISTINCT ON (variant_id) variant_id, $1, chrom, pos, ref, alt
        FROM {STAGING_TABLE} ORDER BY variant_id
        ON CONFLICT (variant_id) DO NOTHING""",
        reference_digest,
    )
    genotypes = await conn.execute(
        f"""
        INSERT INTO genotypes (sample_id, variant_id, alt_count, dp, gq)
        SELECT $1, variant_id, alt_count, dp, gq FROM {STAGING_TABLE} ORDER BY variant_id
        ON CONFLICT (sample_id, variant_id) DO NOTHING""",
        sample_id,
    )
    await conn.execute(f"DROP TABLE {STAGING_TABLE}")
    return LoadCounts(variants_new=_count(new_variants), genotypes=_count(genotypes))


async def read_consent(conn: asyncpg.Connection, pseudonym: str, *, lock: bool) -> ConsentState:
    """The patient's consent projection; with ``lock``, held FOR SHARE until commit.

    Locking first makes sure the row exists (a placeholder without a version), so there is always
    a row for a concurrent consent change to wait on.
    """
    if lock:
        await conn.execute(
            "INSERT INTO consents (patient_pseudonym) VALUES ($1) ON CONFLICT DO NOTHING",
            pseudonym,
        )
    row = await conn.fetchrow(
        "SELECT version, analysis_consent_given, research_use, withdrawn FROM consents "
        "WHERE patient_pseudonym = $1" + (" FOR SHARE" if lock else ""),
        pseudonym,
    )
    if row is None:
        return ConsentState(None, None, None, None)
    return ConsentState(
        row["version"], row["analysis_consent_given"], row["research_use"], row["withdrawn"]
    )


async def apply_consent(conn: asyncpg.Connection, event: ConsentChanged) -> bool:
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


async def find_sample(conn: asyncpg.Connection, sample_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT sample_id, vcf_sha256, quarantined FROM samples WHERE sample_id = $1", sample_id
    )


async def insert_sample(
    conn: asyncpg.Connection,
    event: VariantsCalled,
    *,
    consent_version: int | None,
    quarantine_reason: str | None,
    counts: LoadCounts | None,
) -> None:
    """The sample's provenance row: loaded, or quarantined with the reason."""
    await conn.execute(
        """
        INSERT INTO samples (sample_id, patient_pseudonym, hospital_id, reference_id,
            reference_digest, tools, vcf, vcf_sha256, bam_sha256, source_event_id, correlation_id,
            consent_version, quarantined, quarantine_reason, variants_loaded, genotypes_loaded)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, $11, $12, $13, $14, $15,
                $16)""",
        event.sample_id,
        event.patient_pseudonym,
        event.hospital_id,
        event.reference.id,
        event.reference.digest,
        "[" + ",".join(t.model_dump_json() for t in event.tools) + "]",
        event.vcf.model_dump_json(),
        event.vcf.sha256,
        event.bam.sha256,
        event.event_id,
        event.correlation_id,
        consent_version,
        quarantine_reason is not None,
        quarantine_reason,
        counts.variants_new if counts else 0,
        counts.genotypes if counts else 0,
    )
