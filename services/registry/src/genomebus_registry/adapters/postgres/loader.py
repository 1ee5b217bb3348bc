"""Writing a load to the registry's tables: whole-genome blocks, provenance, quarantine.

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

from genomebus_common.contracts.errors import PermanentError
from genomebus_common.contracts.events import VariantsCalled

from ...core import keys
from ...core.loading import LoadCounts
from ...core.vcf import GenotypeRow, unique_calls
from . import Connection

STAGING_TABLE = "registry_staging"
OTHER_STAGING_TABLE = "registry_staging_other"
_BATCH = 50_000


class TooManyAlleles(PermanentError):
    """More distinct non-SNV alleles at one position than a variant key can number."""

    code = "too_many_alleles"


#: An SNV as staged: chrom, pos, its fixed code, alt count, depth, genotype quality.
_StagedSnv = tuple[str, int, int, int, int | None, int | None]


@dataclass
class Staged:
    """What staging saw: the contigs and the number of rows."""

    chroms: set[str] = field(default_factory=set)
    rows: int = 0


async def next_sample_no(db: Connection | asyncpg.Pool) -> int:
    """A sample's integer key, drawn before its load begins (its row is written last). A number
    drawn for a load that then rolls back is simply never used."""
    return int(await db.fetchval("SELECT nextval('samples_sample_no_seq')"))


async def stage_genotypes(conn: Connection, rows: Iterator[GenotypeRow]) -> Staged:
    """COPY ``rows`` into two fresh staging tables (dropped at commit): the SNVs (~87 % of a
    genome) with their fixed codes and no allele text, the other alleles as they are.

    The blocking iterator (the VCF parser) runs in a worker thread a batch at a time, so the event
    loop keeps serving queries and heartbeats while a large VCF is parsed; each batch goes to the
    server as one COPY from a list (asyncpg's fast path, no per-row await). Splitting here keeps
    the allele text of most calls out of the COPY and out of every join the load makes.
    """
    await conn.execute(
        f"""
        CREATE TEMP TABLE {STAGING_TABLE} (
            chrom text, pos integer, code smallint, alt_count smallint, dp integer, gq integer
        ) ON COMMIT DROP;
        CREATE TEMP TABLE {OTHER_STAGING_TABLE} (
            chrom text, pos integer, ref text, alt text, alt_count smallint, dp integer, gq integer
        ) ON COMMIT DROP"""
    )
    staged = Staged()
    calls = unique_calls(rows)
    snv = keys.SNV_CODES

    def next_batch() -> tuple[list[_StagedSnv], list[GenotypeRow]]:
        snvs: list[_StagedSnv] = []
        others: list[GenotypeRow] = []
        for row in islice(calls, _BATCH):
            code = snv.get((row[2], row[3]))
            if code is None:
                others.append(row)
            else:
                snvs.append((row[0], row[1], code, row[4], row[5], row[6]))
        staged.chroms.update({row[0] for row in snvs}, {row[0] for row in others})
        return snvs, others

    while True:
        snvs, others = await asyncio.to_thread(next_batch)
        if not snvs and not others:
            # Temporary tables are never analysed by autovacuum: without statistics the planner
            # takes the staged genome for a few rows (and sorts it on disk to group it).
            await conn.execute(f"ANALYZE {STAGING_TABLE}; ANALYZE {OTHER_STAGING_TABLE}")
            return staged
        staged.rows += len(snvs) + len(others)
        if snvs:
            await conn.copy_records_to_table(STAGING_TABLE, records=snvs)
        if others:
            await conn.copy_records_to_table(OTHER_STAGING_TABLE, records=others)


async def register_alleles(conn: Connection, reference_digest: str, staged: Staged) -> int:
    """Number the staged contigs and the staged alleles that are not SNVs (in the load's
    transaction). Under one lock, held to the load's commit: two loads never give one code to two
    alleles; a second load waits here for the first's last seconds, and nothing else ever does
    (consent changes, removals and folds never take it). Returns the alleles new to the
    registry."""
    await conn.execute("SELECT registry_lock_alleles()")
    # Only the contigs not numbered yet: an INSERT that conflicts still draws a number, and a
    # contig's number has 20 bits of a variant key (core/keys.py).
    await conn.execute(
        "INSERT INTO contigs (reference_digest, chrom) SELECT $1, c FROM unnest($2::text[]) AS c "
        "WHERE NOT EXISTS (SELECT 1 FROM contigs k WHERE k.reference_digest = $1 AND k.chrom = c) "
        "ORDER BY 2 ON CONFLICT DO NOTHING",
        reference_digest,
        sorted(staged.chroms),
    )
    try:
        status = await conn.execute(_NEW_ALLELES_SQL, reference_digest)
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name != "variant_alleles_code_check":
            raise
        raise TooManyAlleles(
            f"a position carries more than {keys.MAX_CODE - keys.FIRST_DICTIONARY_CODE + 1} "
            "distinct alleles other than SNVs"
        ) from exc
    return int(status.split()[-1])


# One allele's dictionary code, as a LATERAL subquery: an index probe per staged allele. (As a
# join, the planner sorts or hashes the whole dictionary, which grows with every genome.)
_CODE_OF = """
    SELECT a.code FROM variant_alleles a
    WHERE a.contig_no = k.contig_no AND a.pos = {staged}.pos AND a.ref = {staged}.ref
      AND a.alt = {staged}.alt
    LIMIT 1"""

_NEW_ALLELES_SQL = f"""
INSERT INTO variant_alleles (contig_no, pos, code, ref, alt)
SELECT n.contig_no, n.pos,
       coalesce(m.top, {keys.FIRST_DICTIONARY_CODE - 1})
           + row_number() OVER (PARTITION BY n.contig_no, n.pos ORDER BY n.ref, n.alt),
       n.ref, n.alt
FROM (
    SELECT DISTINCT k.contig_no, s.pos, s.ref, s.alt
    FROM {OTHER_STAGING_TABLE} s
    JOIN contigs k ON k.reference_digest = $1 AND k.chrom = s.chrom
    LEFT JOIN LATERAL ({_CODE_OF.format(staged="s")}) known ON true
    WHERE known.code IS NULL
) n
LEFT JOIN LATERAL (
    SELECT max(code) AS top FROM variant_alleles a WHERE a.contig_no = n.contig_no AND a.pos = n.pos
) m ON true
"""


# Every staged call with its integer (core/keys.py call): the SNVs were coded when staged, the
# other alleles by the dictionary register_alleles just filled. The blocks and the deep calls
# both read it.
_CODED_CALLS = f"""
    SELECT g.chrom, g.pos, g.dp, g.gq,
           ((g.pos & {keys.BIN_SIZE - 1}) << {keys.OFFSET_SHIFT}) | (g.code << 2) | g.alt_count AS call
    FROM (
        SELECT s.chrom, s.pos, s.code, s.alt_count, s.dp, s.gq FROM {STAGING_TABLE} s
        UNION ALL
        SELECT o.chrom, o.pos, a.code, o.alt_count, o.dp, o.gq
        FROM {OTHER_STAGING_TABLE} o
        JOIN contigs k ON k.reference_digest = $2 AND k.chrom = o.chrom
        CROSS JOIN LATERAL ({_CODE_OF.format(staged="o")}) a
    ) g"""  # noqa: E501 - SQL text left as it was written, not rewrapped

# The sample's blocks: the calls grouped by contig and bin before the contig's number is looked
# up (a join per block, not per call). Both arrays take the rows in one order, so a call and its
# depth and quality share their index; that order is not position order (readers sort a block's
# calls when they need to).
_BLOCKS_SQL = f"""
INSERT INTO genotype_blocks (sample_no, contig_no, bin, calls, dp, gq)
SELECT $1, k.contig_no, x.bin, x.calls, x.dp, x.gq
FROM (
    SELECT c.chrom, c.pos >> {keys.BIN_BITS} AS bin, array_agg(c.call) AS calls,
           array_agg(registry_small(c.dp)) AS dp, array_agg(registry_small(c.gq)) AS gq
    FROM ({_CODED_CALLS}) c
    GROUP BY 1, 2
) x
JOIN contigs k ON k.reference_digest = $2 AND k.chrom = x.chrom
"""

# The calls whose depth or quality is too large for a block's byte (registry_small), in full.
_DEEP_SQL = f"""
INSERT INTO deep_calls (sample_no, contig_no, bin, call, dp, gq)
SELECT $1, k.contig_no, c.pos >> {keys.BIN_BITS}, c.call, c.dp, c.gq
FROM ({_CODED_CALLS}) c
JOIN contigs k ON k.reference_digest = $2 AND k.chrom = c.chrom
WHERE c.dp >= {keys.DEEP_QUAL} OR c.gq >= {keys.DEEP_QUAL}
"""


async def write_blocks(conn: Connection, sample_no: int, reference_digest: str) -> int:
    """Move the staged rows into the sample's blocks (in the load's transaction); returns the
    blocks written."""
    await conn.execute("SET LOCAL work_mem = '256MB'")  # the grouping stays in memory
    await conn.execute(_DEEP_SQL, sample_no, reference_digest)
    status = await conn.execute(_BLOCKS_SQL, sample_no, reference_digest)
    await conn.execute(f"DROP TABLE {STAGING_TABLE}, {OTHER_STAGING_TABLE}")
    return int(status.split()[-1])


async def delete_blocks(conn: Connection, sample_no: int) -> None:
    """Take back the blocks of a load that ends quarantined (in its transaction)."""
    await conn.execute("DELETE FROM genotype_blocks WHERE sample_no = $1", sample_no)
    await conn.execute("DELETE FROM deep_calls WHERE sample_no = $1", sample_no)


async def find_sample(conn: Connection, sample_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT sample_id, vcf_sha256, quarantined FROM samples WHERE sample_id = $1", sample_id
    )


async def insert_sample(
    conn: Connection,
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
