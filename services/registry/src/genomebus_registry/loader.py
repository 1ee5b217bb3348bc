"""Writing to the registry's tables: the consent projection, whole-genome loads, quarantine.

A load never round-trips per row: the VCF's rows stream through ``COPY`` into a temporary
staging table (a batch per COPY, parsed in a worker thread), the alleles that are not SNVs get
their codes in a short transaction of their own, and one ``INSERT ... SELECT`` groups the rows
into the sample's blocks (migration 0013). None of it touches a row another patient's change
needs: the counts move only through pending adjustments (``adapters/counts.py``), so a
withdrawal never waits behind a load.

A load, a sample removal and a consent change of the same patient serialise on the patient's
``consents`` row: the loader locks it (``FOR NO KEY UPDATE``) once the blocks are written and
just before it decides, a consent change updates it. Whichever commits second sees the other:
a withdrawal can never slip in between the check and the commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

import asyncpg
from genomebus_common.errors import PermanentError
from genomebus_common.events import ConsentChanged, VariantsCalled

from .core import keys
from .domain import ConsentState, GenotypeRow

STAGING_TABLE = "registry_staging"
_BATCH = 50_000


class TooManyAlleles(PermanentError):
    """More distinct non-SNV alleles at one position than a variant key can number."""

    code = "too_many_alleles"


@dataclass(frozen=True)
class LoadCounts:
    variants_new: int
    genotypes: int


@dataclass
class Staged:
    """What staging saw: the contigs, and the alleles that need a dictionary code."""

    chroms: set[str] = field(default_factory=set)
    alleles: set[tuple[str, int, str, str]] = field(default_factory=set)
    rows: int = 0


async def next_sample_no(db: asyncpg.Connection | asyncpg.Pool) -> int:
    """A sample's integer key, drawn before its load begins (its row is written last). A number
    drawn for a load that then rolls back is simply never used."""
    return int(await db.fetchval("SELECT nextval('samples_sample_no_seq')"))


def unique_calls(rows: Iterator[GenotypeRow]) -> Iterator[GenotypeRow]:
    """The rows with each allele once (the largest allele count kept): a block must hold a
    variant once. Rows come position-sorted (a tabix-indexed VCF is), so only the rows of the
    current position are held."""
    held: dict[tuple[str, str], GenotypeRow] = {}
    where: tuple[str, int] | None = None
    for row in rows:
        if (row.chrom, row.pos) != where:
            yield from held.values()
            held.clear()
            where = (row.chrom, row.pos)
        seen = held.get((row.ref, row.alt))
        if seen is None or row.alt_count > seen.alt_count:
            held[(row.ref, row.alt)] = row
    yield from held.values()


async def stage_genotypes(conn: asyncpg.Connection, rows: Iterator[GenotypeRow]) -> Staged:
    """COPY ``rows`` into a fresh staging table (dropped at commit).

    The blocking iterator (the VCF parser) runs in a worker thread a batch at a time, so the event
    loop keeps serving queries and heartbeats while a large VCF is parsed; each batch goes to the
    server as one COPY from a list (asyncpg's fast path, no per-row await).
    """
    await conn.execute(
        f"""
        CREATE TEMP TABLE {STAGING_TABLE} (
            chrom text, pos integer, ref text, alt text, alt_count smallint, dp integer, gq integer
        ) ON COMMIT DROP"""
    )
    staged = Staged()
    calls = unique_calls(rows)
    snv = keys.snv_code

    def next_batch() -> list[GenotypeRow]:
        batch = list(islice(calls, _BATCH))
        staged.chroms.update({row[0] for row in batch})
        staged.alleles.update(
            (row[0], row[1], row[2], row[3]) for row in batch if snv(row[2], row[3]) is None
        )
        return batch

    columns = list(GenotypeRow._fields)
    while True:
        batch = await asyncio.to_thread(next_batch)
        if not batch:
            return staged
        staged.rows += len(batch)
        await conn.copy_records_to_table(STAGING_TABLE, records=batch, columns=columns)


async def register_alleles(pool: asyncpg.Pool, reference_digest: str, staged: Staged) -> int:
    """Number the load's contigs and the alleles that are not SNVs, in a short transaction of
    its own (on another connection than the load's), under one lock: two loads never give one
    code to two alleles, and neither waits for the other's whole load. Returns the alleles new
    to the registry."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO contigs (reference_digest, chrom) SELECT $1, unnest($2::text[]) ORDER BY 2 "
            "ON CONFLICT DO NOTHING",
            reference_digest,
            sorted(staged.chroms),
        )
        if not staged.alleles:
            return 0
        await conn.execute("SELECT registry_lock_alleles()")
        await conn.execute(
            "CREATE TEMP TABLE registry_new_alleles (chrom text, pos integer, ref text, alt text) "
            "ON COMMIT DROP"
        )
        await conn.copy_records_to_table("registry_new_alleles", records=sorted(staged.alleles))
        try:
            status = await conn.execute(
                """
                INSERT INTO variant_alleles (contig_no, pos, code, ref, alt)
                SELECT n.contig_no, n.pos,
                       coalesce(m.top, 15) + row_number() OVER (PARTITION BY n.contig_no, n.pos
                                                                ORDER BY n.ref, n.alt),
                       n.ref, n.alt
                FROM (
                    SELECT k.contig_no, s.pos, s.ref, s.alt
                    FROM registry_new_alleles s
                    JOIN contigs k ON k.reference_digest = $1 AND k.chrom = s.chrom
                    WHERE NOT EXISTS (SELECT 1 FROM variant_alleles a WHERE a.contig_no = k.contig_no
                                      AND a.pos = s.pos AND a.ref = s.ref AND a.alt = s.alt)
                ) n
                LEFT JOIN LATERAL (
                    SELECT max(code) AS top FROM variant_alleles a
                    WHERE a.contig_no = n.contig_no AND a.pos = n.pos
                ) m ON true""",
                reference_digest,
            )
        except asyncpg.CheckViolationError as exc:
            raise TooManyAlleles(
                f"a position carries more than {keys.MAX_CODE - keys.FIRST_DICTIONARY_CODE + 1} "
                "distinct alleles other than SNVs"
            ) from exc
        return int(status.split()[-1])


# The staged rows as the sample's blocks: each call coded (SNVs by snv_codes, the rest by the
# dictionary register_alleles just filled), grouped by contig and bin, sorted within the block.
_BLOCKS_SQL = f"""
INSERT INTO genotype_blocks (sample_no, contig_no, bin, calls, quals)
SELECT $1, x.contig_no, x.bin, array_agg(x.call ORDER BY x.call), array_agg(x.qual ORDER BY x.call)
FROM (
    SELECT k.contig_no, s.pos >> {keys.BIN_BITS} AS bin,
           ((s.pos & {keys.BIN_SIZE - 1}) << 14) | (coalesce(c.code, a.code) << 2) | s.alt_count AS call,
           registry_qual(s.dp, s.gq) AS qual
    FROM {STAGING_TABLE} s
    JOIN contigs k ON k.reference_digest = $2 AND k.chrom = s.chrom
    LEFT JOIN snv_codes c ON c.ref = s.ref AND c.alt = s.alt
    LEFT JOIN variant_alleles a ON c.code IS NULL AND a.contig_no = k.contig_no AND a.pos = s.pos
                               AND a.ref = s.ref AND a.alt = s.alt
) x
GROUP BY x.contig_no, x.bin
"""


async def write_blocks(conn: asyncpg.Connection, sample_no: int, reference_digest: str) -> int:
    """Move the staged rows into the sample's blocks (in the load's transaction); returns the
    blocks written."""
    await conn.execute("SET LOCAL work_mem = '256MB'")  # the grouping stays in memory
    status = await conn.execute(_BLOCKS_SQL, sample_no, reference_digest)
    await conn.execute(f"DROP TABLE {STAGING_TABLE}")
    return int(status.split()[-1])


async def delete_blocks(conn: asyncpg.Connection, sample_no: int) -> None:
    """Take back the blocks of a load that ends quarantined (in its transaction)."""
    await conn.execute("DELETE FROM genotype_blocks WHERE sample_no = $1", sample_no)


async def drop_staging(conn: asyncpg.Connection) -> None:
    """Drop the staging table of a load that ends without moving its rows."""
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
