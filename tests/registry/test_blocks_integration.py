"""The block layout in PostgreSQL agrees with ``core.keys``, and migration 0013 carries a
registry loaded under the old layout (one row per genotype) over without changing an answer."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest
from genomebus_common.db import connect_pool
from genomebus_registry.adapters import counts
from genomebus_registry.handlers import project_consent
from genomebus_registry.core import keys
from genomebus_registry.queries import Queries
from genomebus_registry.schema import migrations

from .conftest import RESEARCHER, pseudonym

pytestmark = pytest.mark.integration


async def test_the_sql_functions_encode_exactly_as_core_keys(pool: asyncpg.Pool) -> None:
    rng = random.Random(11)
    cases = [(rng.randrange(0, keys.MAX_CONTIG_NO + 1), rng.randrange(1, keys.MAX_POS + 1),
              rng.randrange(1, keys.MAX_CODE + 1), rng.choice((1, 2))) for _ in range(500)]
    cases += [(keys.MAX_CONTIG_NO, keys.MAX_POS, keys.MAX_CODE, 2), (0, 1, 1, 1)]
    rows = await pool.fetch(
        "SELECT registry_key(c.contig, (c.pos >> 17)::int, c.call) AS key FROM unnest($1::int[], "
        "$2::bigint[], $3::int[]) WITH ORDINALITY AS c (contig, pos, call, i) ORDER BY i",
        [c[0] for c in cases], [c[1] for c in cases],
        [keys.call(pos, code, alt) for _, pos, code, alt in cases])
    assert [r["key"] for r in rows] == [keys.variant_key(c, p, code) for c, p, code, _ in cases]
    snvs = {r["code"]: (r["ref"], r["alt"]) for r in await pool.fetch("SELECT * FROM snv_codes")}
    assert snvs == {code: pair for code, pair in enumerate(keys.SNVS) if pair is not None}
    for dp, gq in [(None, None), (0, 99), (30, None), (40_000, 7), (-3, 65_000)]:
        packed = await pool.fetchval("SELECT registry_qual($1, $2)", dp, gq)
        assert packed == keys.qual(dp, gq)


async def test_migration_0013_carries_the_old_layout_over(fresh_dsn: str) -> None:
    """Old layout, hand-filled: two research patients (one with two samples), one restricted,
    one removed sample, an indel and a multi-allelic position; after 0013 every answer is the
    same as a recount, before and after the first fold."""
    old = [m for m in migrations() if m.version < 13]
    async with connect_pool(fresh_dsn, old) as pool:
        await pool.execute("INSERT INTO contigs (reference_digest, chrom) VALUES ('SQC.M', 'chrT')")
        alleles = [(100, "A", "G"), (100, "A", "T"), (200, "CA", "C"), (300, "G", "GTT")]
        for pos, ref, alt in alleles:
            await pool.execute(
                "INSERT INTO variants (variant_id, reference_digest, chrom, contig_no, pos, ref, alt) "
                "VALUES ($1, 'SQC.M', 'chrT', 1, $2, $3, $4)", f"v{pos}{alt}", pos, ref, alt)
        patients = {"a": ("allowed", False), "b": ("allowed", False), "c": ("own_treatment_only", False)}
        for name, (use, withdrawn) in patients.items():
            await pool.execute(
                "INSERT INTO consents (patient_pseudonym, version, analysis_consent_given, "
                "research_use, withdrawn) VALUES ($1, 1, true, $2, $3)", pseudonym(name), use, withdrawn)
        samples = [("S1", "a", False), ("S2", "a", False), ("S3", "b", False), ("S4", "c", False),
                   ("S5", "b", True)]
        for sample_no, (sample_id, name, removed) in enumerate(samples, 1):
            await pool.execute(
                "SELECT registry_ensure_genotypes_partition($1)", sample_no)
            await pool.execute(
                """INSERT INTO samples (sample_id, patient_pseudonym, reference_id, reference_digest,
                   tools, vcf, vcf_sha256, bam_sha256, source_event_id, correlation_id, sample_no,
                   removed_at) VALUES ($1, $2, 'm', 'SQC.M', '[]', '{}', 'x', 'x',
                   gen_random_uuid(), $1, $3, CASE WHEN $4 THEN now() END)""",
                sample_id, pseudonym(name), sample_no, removed)
        calls = {1: [(1, 1), (3, 2)], 2: [(1, 2), (2, 1)], 3: [(1, 1), (4, 1)], 4: [(1, 2), (3, 1)]}
        for sample_no, genotypes in calls.items():
            for variant_no, alt_count in genotypes:
                await pool.execute(
                    "INSERT INTO genotypes (variant_no, sample_no, contig_no, pos, dp, gq, alt_count) "
                    "SELECT variant_no, $1, 1, pos, 30, 99, $3 FROM variants WHERE variant_no = $2",
                    sample_no, variant_no, alt_count)
    async with connect_pool(fresh_dsn, migrations()) as pool:
        queries = Queries(pool, min_cell_count=1)
        rows = await pool.fetch("SELECT sample_id, pos, ref, alt, alt_count, dp FROM genotype_rows ORDER BY 1, 2, 4")
        assert [tuple(r) for r in rows] == [
            ("S1", 100, "A", "G", 1, 30), ("S1", 200, "CA", "C", 2, 30),
            ("S2", 100, "A", "G", 2, 30), ("S2", 100, "A", "T", 1, 30),
            ("S3", 100, "A", "G", 1, 30), ("S3", 300, "G", "GTT", 1, 30),
            ("S4", 100, "A", "G", 2, 30), ("S4", 200, "CA", "C", 1, 30),
        ]
        for _ in range(2):
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                assert await conn.fetch("SELECT * FROM registry_counts_now() ORDER BY 1") == \
                    await conn.fetch("SELECT * FROM registry_recount() ORDER BY 1")
            # Research: a (two samples: 100 A>G twice) and b (once): c is restricted.
            key = keys.variant_key(1, 100, keys.snv_code("A", "G"))  # type: ignore[arg-type]
            assert tuple(await pool.fetchrow(
                "SELECT * FROM registry_counts_now() WHERE key = $1", key)) == (key, 1, 2, 1, 1)
            (g,) = (await queries.allele(RESEARCHER, "chrT", 100, "A", "G")).results
            assert g.allele_number == 4
            await counts.fold(pool)
        assert await counts.pending_entries(pool) == 0


async def _exact(pool: asyncpg.Pool) -> bool:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        return await conn.fetch("SELECT * FROM registry_counts_now() ORDER BY 1") == \
            await conn.fetch("SELECT * FROM registry_recount() ORDER BY 1")


async def _loaded(handlers, upload_vcf, names: list[str]) -> None:  # type: ignore[no-untyped-def]
    from .conftest import consent, delivery, variants_called

    vcfs = [upload_vcf([(100, "A", "G", "0/1", 30, 99), (150 + i, "C", "CT", "1/1", 20, 50)])
            for i in range(3)]
    for i, name in enumerate(names):
        await handlers.consent_changed(consent(pseudonym(name), 1), delivery())
        await handlers.variants_called(variants_called(vcfs[i % 3], pseudonym(name)), delivery())


async def test_two_folds_at_once_take_turns_and_fold_each_entry_once(
    handlers, pool: asyncpg.Pool, upload_vcf  # type: ignore[no-untyped-def]
) -> None:
    await _loaded(handlers, upload_vcf, [f"two-folds-{i}" for i in range(6)])
    first, second = await asyncio.gather(counts.fold(pool, 4), counts.fold(pool, 4))
    assert sorted((first.entries, second.entries)) == [2, 4], "the second folds what the first left"
    assert await counts.pending_entries(pool) == 0
    assert await _exact(pool)
    key = keys.variant_key(1, 100, keys.snv_code("A", "G"))  # type: ignore[arg-type]
    assert await pool.fetchval("SELECT research_het FROM variant_counts WHERE key = $1", key) == 6


async def test_a_fold_during_a_withdrawal_neither_waits_nor_folds_it_half(
    handlers, pool: asyncpg.Pool, upload_vcf  # type: ignore[no-untyped-def]
) -> None:
    from .conftest import consent

    names = [f"fold-withdraw-{i}" for i in range(4)]
    await _loaded(handlers, upload_vcf, names)
    patient = pseudonym(names[0])
    async with pool.acquire() as conn:
        # The withdrawal's transaction as the handler runs it, held open once its adjustment is
        # written: a fold meanwhile folds the loads and leaves the uncommitted entry alone.
        tx = conn.transaction()
        await tx.start()
        assert await project_consent(conn, consent(patient, 2, withdrawn=True))
        folded = await asyncio.wait_for(counts.fold(pool), 5)
        assert folded.entries == 4
        await tx.commit()
    assert await counts.pending_entries(pool) == 1
    assert await _exact(pool)
    (answer,) = (await Queries(pool, min_cell_count=1).allele(RESEARCHER, "chrT", 100, "A", "G")).results
    assert answer.allele_number == 6, "three research patients left"
    await counts.fold(pool)
    assert await _exact(pool)
