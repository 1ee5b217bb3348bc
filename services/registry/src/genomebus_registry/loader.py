"""Writing to the registry's tables: the consent projection, bulk genotype loads, quarantine.

Bulk loads never round-trip per row: rows stream through ``COPY`` into a temporary staging table
(``copy_records_to_table``, a batch per COPY), then set-based statements move them into
``variants`` and ``genotypes``. Genotypes are keyed by integers (the sample's ``sample_no``, the
variant's ``variant_no``) and partitioned by blocks of samples; each variant row carries its
carrier and allele counts, which the load adjusts in the same statement that finds or creates the
variant. Every writer of counts (loads, removals, consent changes) holds one transaction-level
advisory lock (``registry_lock_counts()``), so they never deadlock on variant rows.

A load, a sample removal and a consent change of the same patient serialise on the patient's
``consents`` row: the loader locks it (``FOR NO KEY UPDATE``) once the rows are staged and before
it touches any count, a consent change updates it. Whichever commits second sees the other: a
withdrawal can never slip in between the check and the commit, and the counts always match the
consent in force.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

import asyncpg
from genomebus_common.events import ConsentChanged, VariantsCalled

from .domain import ConsentState, GenotypeRow

STAGING_TABLE = "registry_staging"
_BATCH = 20_000


@dataclass(frozen=True)
class LoadCounts:
    variants_new: int
    genotypes: int


async def next_sample_no(db: asyncpg.Connection | asyncpg.Pool) -> int:
    """A sample's integer key, drawn before its load begins (its row is written last), with the
    genotypes partition it falls in made if missing.

    Call outside the load's transaction: making a partition locks the genotypes table for as long
    as the transaction that made it runs, and a load runs for a while. A number drawn for a load
    that then rolls back is simply never used.
    """
    sample_no = int(await db.fetchval("SELECT nextval('samples_sample_no_seq')"))
    await db.execute("SELECT registry_ensure_genotypes_partition($1)", sample_no)
    return sample_no


async def stage_genotypes(conn: asyncpg.Connection, rows: Iterator[GenotypeRow]) -> set[str]:
    """COPY ``rows`` into a fresh staging table; returns the contig names seen.

    The blocking iterator (the VCF parser) runs in a worker thread a batch at a time, so the event
    loop keeps serving queries and heartbeats while a large VCF is parsed; each batch goes to the
    server as one COPY from a list (asyncpg's fast path, no per-row await).
    """
    await conn.execute(
        f"""
        CREATE TEMP TABLE {STAGING_TABLE} (
            variant_id text, chrom text, pos integer, ref text, alt text,
            alt_count smallint, dp integer, gq integer
        ) ON COMMIT DROP"""
    )
    chroms: set[str] = set()

    def next_batch() -> tuple[list[GenotypeRow], set[str]]:
        batch = list(islice(rows, _BATCH))
        return batch, {row[1] for row in batch}

    columns = list(GenotypeRow._fields)
    while True:
        batch, seen = await asyncio.to_thread(next_batch)
        if not batch:
            return chroms
        chroms |= seen
        await conn.copy_records_to_table(STAGING_TABLE, records=batch, columns=columns)


# The common case: the patient has no other active sample, so every staged variant gains one
# carrier and the sample's allele count. One statement: an UPDATE of the variants that exist
# (returning their keys with the staged genotype), an INSERT of those that do not, and the
# genotypes under the keys of both. Not an upsert (INSERT ... ON CONFLICT DO UPDATE): that locks
# each conflicting row with a WAL record of its own before updating it, which made it the most
# expensive step of a load. Safe without one because count writers hold registry_lock_counts(),
# so no other transaction inserts variants meanwhile.
_LOAD_FIRST_SAMPLE_SQL = f"""
WITH staged AS MATERIALIZED (
    SELECT DISTINCT ON (k.contig_no, s.pos, s.ref, s.alt)
           s.variant_id, s.chrom, k.contig_no, s.pos, s.ref, s.alt, s.alt_count, s.dp, s.gq
    FROM {STAGING_TABLE} s JOIN contigs k ON k.reference_digest = $1 AND k.chrom = s.chrom
    ORDER BY k.contig_no, s.pos, s.ref, s.alt, s.alt_count DESC
), updated AS (
    UPDATE variants v SET
        carriers = v.carriers + 1,
        allele_count = v.allele_count + s.alt_count,
        research_carriers = v.research_carriers + $3::integer,
        research_allele_count = v.research_allele_count + $3::integer * s.alt_count
    FROM staged s
    WHERE v.contig_no = s.contig_no AND v.pos = s.pos AND v.ref = s.ref AND v.alt = s.alt
    RETURNING v.variant_no, v.contig_no, v.pos, s.alt_count, s.dp, s.gq, v.ref, v.alt
), created AS (
    INSERT INTO variants (variant_id, reference_digest, chrom, contig_no, pos, ref, alt,
                          carriers, allele_count, research_carriers, research_allele_count)
    SELECT s.variant_id, $1, s.chrom, s.contig_no, s.pos, s.ref, s.alt,
           1, s.alt_count, $3::integer, $3::integer * s.alt_count
    FROM staged s
    WHERE NOT EXISTS (SELECT 1 FROM updated u WHERE u.contig_no = s.contig_no
                      AND u.pos = s.pos AND u.ref = s.ref AND u.alt = s.alt)
    RETURNING variant_no, contig_no, pos, ref, alt
), stored AS (
    INSERT INTO genotypes (variant_no, sample_no, contig_no, pos, dp, gq, alt_count)
    SELECT x.variant_no, $2, x.contig_no, x.pos, x.dp, x.gq, x.alt_count
    FROM (
        SELECT variant_no, contig_no, pos, dp, gq, alt_count FROM updated
        UNION ALL
        SELECT c.variant_no, c.contig_no, c.pos, s.dp, s.gq, s.alt_count
        FROM created c JOIN staged s ON s.contig_no = c.contig_no AND s.pos = c.pos
                                    AND s.ref = c.ref AND s.alt = c.alt
    ) x
    ORDER BY x.contig_no, x.pos, x.variant_no
    RETURNING 1
)
SELECT (SELECT count(*) FROM created)::integer AS variants_new,
       (SELECT count(*) FROM stored)::integer AS genotypes
"""

# Another sample of a patient who already has one: variants and genotypes first, then the
# counts move by what this sample adds over the patient's other samples (registry_count_sample).
_NEW_VARIANTS_SQL = f"""
INSERT INTO variants (variant_id, reference_digest, chrom, contig_no, pos, ref, alt)
SELECT s.variant_id, $1, s.chrom, k.contig_no, s.pos, s.ref, s.alt
FROM (SELECT DISTINCT ON (chrom, pos, ref, alt) variant_id, chrom, pos, ref, alt
      FROM {STAGING_TABLE} ORDER BY chrom, pos, ref, alt) s
JOIN contigs k ON k.reference_digest = $1 AND k.chrom = s.chrom
ON CONFLICT (contig_no, pos, ref, alt) DO NOTHING
"""
_GENOTYPES_SQL = f"""
INSERT INTO genotypes (variant_no, sample_no, contig_no, pos, dp, gq, alt_count)
SELECT v.variant_no, $1, v.contig_no, v.pos, s.dp, s.gq, s.alt_count
FROM (SELECT DISTINCT ON (chrom, pos, ref, alt) chrom, pos, ref, alt, alt_count, dp, gq
      FROM {STAGING_TABLE} ORDER BY chrom, pos, ref, alt, alt_count DESC) s
JOIN contigs k ON k.reference_digest = $2 AND k.chrom = s.chrom
JOIN variants v ON v.contig_no = k.contig_no AND v.pos = s.pos AND v.ref = s.ref AND v.alt = s.alt
ORDER BY v.contig_no, v.pos, v.variant_no
"""


def _count(status: str) -> int:
    """Rows affected, from a command tag like ``INSERT 0 42``."""
    return int(status.split()[-1])


async def load_genotypes(
    conn: asyncpg.Connection,
    sample_no: int,
    patient_pseudonym: str,
    reference_digest: str,
    chroms: set[str],
) -> LoadCounts:
    """Move the staged rows into ``variants`` and ``genotypes`` under ``sample_no`` and count
    them (call inside a transaction, holding the patient's consents row locked: see
    ``lock_consent``)."""
    await conn.execute(
        "INSERT INTO contigs (reference_digest, chrom) SELECT $1, unnest($2::text[]) ORDER BY 2 "
        "ON CONFLICT DO NOTHING",
        reference_digest,
        sorted(chroms),
    )
    await conn.execute("SELECT registry_lock_counts()")
    others = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM samples WHERE patient_pseudonym = $1 "
        "AND NOT quarantined AND removed_at IS NULL)",
        patient_pseudonym,
    )
    if not others:
        research = await conn.fetchval(
            "SELECT registry_research_ok(research_use, analysis_consent_given, withdrawn)::integer "
            "FROM consents WHERE patient_pseudonym = $1",
            patient_pseudonym,
        )
        row = await conn.fetchrow(
            _LOAD_FIRST_SAMPLE_SQL, reference_digest, sample_no, int(research or 0)
        )
        counts = LoadCounts(variants_new=row["variants_new"], genotypes=row["genotypes"])
    else:
        new_variants = await conn.execute(_NEW_VARIANTS_SQL, reference_digest)
        genotypes = await conn.execute(_GENOTYPES_SQL, sample_no, reference_digest)
        await conn.execute(
            "SELECT registry_count_sample($1, $2, 1)", sample_no, patient_pseudonym
        )
        counts = LoadCounts(variants_new=_count(new_variants), genotypes=_count(genotypes))
    await conn.execute(f"DROP TABLE {STAGING_TABLE}")
    return counts


async def drop_staging(conn: asyncpg.Connection) -> None:
    """Drop the staging table of a load that ends without moving its rows (a quarantine)."""
    await conn.execute(f"DROP TABLE IF EXISTS {STAGING_TABLE}")


async def read_consent(conn: asyncpg.Connection, pseudonym: str, *, lock: bool) -> ConsentState:
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
    sample_no: int,
    consent_version: int | None,
    quarantine_reason: str | None,
    counts: LoadCounts | None,
) -> None:
    """The sample's provenance row: loaded, or quarantined with the reason."""
    await conn.execute(
        """
        INSERT INTO samples (sample_id, patient_pseudonym, hospital_id, reference_id,
            reference_digest, tools, vcf, vcf_sha256, bam_sha256, source_event_id, correlation_id,
            consent_version, quarantined, quarantine_reason, variants_loaded, genotypes_loaded,
            sample_no)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, $11, $12, $13, $14, $15,
                $16, $17)""",
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
        sample_no,
    )
