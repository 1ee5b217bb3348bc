"""The block layout in PostgreSQL agrees with ``core.keys``, and migration 0013 carries a
registry loaded under the old layout (one row per genotype) over without changing an answer."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from genomebus_common.runtime.db import connect_pool
from genomebus_registry.adapters.postgres import counts
from genomebus_registry.adapters.postgres.consent import project_consent
from genomebus_registry.adapters.postgres.queries import Queries
from genomebus_registry.core import keys
from genomebus_registry.schema import migrations

from .conftest import RESEARCHER, pseudonym

pytestmark = pytest.mark.integration


async def test_the_sql_functions_encode_exactly_as_core_keys(pool: asyncpg.Pool) -> None:
    rng = random.Random(11)
    cases = [
        (
            rng.randrange(0, keys.MAX_CONTIG_NO + 1),
            rng.randrange(1, keys.MAX_POS + 1),
            rng.randrange(1, keys.MAX_CODE + 1),
            rng.choice((1, 2)),
        )
        for _ in range(500)
    ]
    cases += [(keys.MAX_CONTIG_NO, keys.MAX_POS, keys.MAX_CODE, 2), (0, 1, 1, 1)]
    rows = await pool.fetch(
        "SELECT registry_key(c.contig, (c.pos >> 18)::int, c.call) AS key FROM unnest($1::int[], "
        "$2::bigint[], $3::int[]) WITH ORDINALITY AS c (contig, pos, call, i) ORDER BY i",
        [c[0] for c in cases],
        [c[1] for c in cases],
        [keys.call(pos, code, alt) for _, pos, code, alt in cases],
    )
    assert [r["key"] for r in rows] == [keys.variant_key(c, p, code) for c, p, code, _ in cases]
    snvs = {r["code"]: (r["ref"], r["alt"]) for r in await pool.fetch("SELECT * FROM snv_codes")}
    assert snvs == {code: pair for code, pair in enumerate(keys.SNVS) if pair is not None}
    decoded = await pool.fetch(
        "SELECT registry_call_pos((c.pos >> 18)::int, c.call) AS pos, registry_call_code(c.call) "
        "AS code "
        "FROM unnest($1::bigint[], $2::int[]) WITH ORDINALITY AS c (pos, call, i) ORDER BY i",
        [c[1] for c in cases],
        [keys.call(pos, code, alt) for _, pos, code, alt in cases],
    )
    assert [(r["pos"], r["code"]) for r in decoded] == [(pos, code) for _, pos, code, _ in cases]
    for value in (None, 0, 99, 30, 40_000, -3, 253, 254, 255):
        assert await pool.fetchval(
            "SELECT registry_small($1)::integer + 128", value
        ) == keys.small_qual(value)
        assert await pool.fetchval("SELECT registry_unsmall(registry_small($1), $1)", value) == (
            None if value is None else max(value, 0)
        )


async def test_migration_0013_carries_the_old_layout_over(fresh_dsn: str) -> None:
    """Old layout, hand-filled: two research patients (one with two samples), one restricted,
    one removed sample, an indel and a multi-allelic position; after 0013 every answer is the
    same as a recount, before and after the first fold."""
    old = [m for m in migrations() if m.version < 13]
    async with connect_pool(fresh_dsn, old) as pool:
        # Old loads drew a contig number at every load: the contig kept a high one.
        await pool.execute(
            "INSERT INTO contigs (contig_no, reference_digest, chrom) VALUES (2000000, 'SQC.M', "
            "'chrT')"
        )
        alleles = [(100, "A", "G"), (100, "A", "T"), (200, "CA", "C"), (300, "G", "GTT")]
        for pos, ref, alt in alleles:
            await pool.execute(
                "INSERT INTO variants (variant_id, reference_digest, chrom, contig_no, pos, ref, "
                "alt) "
                "VALUES ($1, 'SQC.M', 'chrT', 2000000, $2, $3, $4)",
                f"v{pos}{alt}",
                pos,
                ref,
                alt,
            )
        patients = {
            "a": ("allowed", False),
            "b": ("allowed", False),
            "c": ("own_treatment_only", False),
        }
        for name, (use, withdrawn) in patients.items():
            await pool.execute(
                "INSERT INTO consents (patient_pseudonym, version, analysis_consent_given, "
                "research_use, withdrawn) VALUES ($1, 1, true, $2, $3)",
                pseudonym(name),
                use,
                withdrawn,
            )
        samples = [
            ("S1", "a", False),
            ("S2", "a", False),
            ("S3", "b", False),
            ("S4", "c", False),
            ("S5", "b", True),
        ]
        for sample_no, (sample_id, name, removed) in enumerate(samples, 1):
            await pool.execute("SELECT registry_ensure_genotypes_partition($1)", sample_no)
            await pool.execute(
                """INSERT INTO samples (sample_id, patient_pseudonym, reference_id,
                   reference_digest, tools, vcf, vcf_sha256, bam_sha256, source_event_id,
                   correlation_id, sample_no,
                   removed_at) VALUES ($1, $2, 'm', 'SQC.M', '[]', '{}', 'x', 'x',
                   gen_random_uuid(), $1, $3, CASE WHEN $4 THEN now() END)""",
                sample_id,
                pseudonym(name),
                sample_no,
                removed,
            )
        calls = {1: [(1, 1), (3, 2)], 2: [(1, 2), (2, 1)], 3: [(1, 1), (4, 1)], 4: [(1, 2), (3, 1)]}
        for sample_no, genotypes in calls.items():
            for variant_no, alt_count in genotypes:
                await pool.execute(
                    "INSERT INTO genotypes (variant_no, sample_no, contig_no, pos, dp, gq, "
                    "alt_count) "
                    "SELECT variant_no, $1, 1, pos, 30, 99, $3 FROM variants WHERE variant_no = $2",
                    sample_no,
                    variant_no,
                    alt_count,
                )
    async with connect_pool(fresh_dsn, migrations()) as pool:
        queries = Queries(pool, min_cell_count=1)
        assert await pool.fetchval("SELECT contig_no FROM contigs") == 1, "numbered densely again"
        rows = await pool.fetch(
            "SELECT sample_id, pos, ref, alt, alt_count, dp FROM genotype_rows ORDER BY 1, 2, 4"
        )
        assert [tuple(r) for r in rows] == [
            ("S1", 100, "A", "G", 1, 30),
            ("S1", 200, "CA", "C", 2, 30),
            ("S2", 100, "A", "G", 2, 30),
            ("S2", 100, "A", "T", 1, 30),
            ("S3", 100, "A", "G", 1, 30),
            ("S3", 300, "G", "GTT", 1, 30),
            ("S4", 100, "A", "G", 2, 30),
            ("S4", 200, "CA", "C", 1, 30),
        ]
        for _ in range(2):
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                assert await conn.fetch(
                    "SELECT * FROM registry_counts_now() ORDER BY 1"
                ) == await conn.fetch("SELECT * FROM registry_recount() ORDER BY 1")
            # Research: a (two samples: 100 A>G twice) and b (once): c is restricted.
            key = keys.variant_key(1, 100, keys.snv_code("A", "G"))  # type: ignore[arg-type]
            assert tuple(
                await pool.fetchrow("SELECT * FROM registry_counts_now() WHERE key = $1", key)
            ) == (key, 1, 2, 1, 1)
            (g,) = (await queries.allele(RESEARCHER, "chrT", 100, "A", "G")).results
            assert g.allele_number == 4
            await counts.fold(pool)
        assert await counts.pending_entries(pool) == 0


async def _exact(pool: asyncpg.Pool) -> bool:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        return await conn.fetch(
            "SELECT * FROM registry_counts_now() ORDER BY 1"
        ) == await conn.fetch("SELECT * FROM registry_recount() ORDER BY 1")


async def _loaded(handlers, upload_vcf, names: list[str]) -> None:  # type: ignore[no-untyped-def]
    from .conftest import consent, delivery, variants_called

    vcfs = [
        upload_vcf([(100, "A", "G", "0/1", 30, 99), (150 + i, "C", "CT", "1/1", 20, 50)])
        for i in range(3)
    ]
    for i, name in enumerate(names):
        await handlers.consent_changed(consent(pseudonym(name), 1), delivery())
        await handlers.variants_called(variants_called(vcfs[i % 3], pseudonym(name)), delivery())


async def test_two_folds_at_once_take_turns_and_fold_each_entry_once(
    handlers,
    pool: asyncpg.Pool,
    upload_vcf,  # type: ignore[no-untyped-def]
) -> None:
    await _loaded(handlers, upload_vcf, [f"two-folds-{i}" for i in range(6)])
    first, second = await asyncio.gather(counts.fold(pool, 4), counts.fold(pool, 4))
    assert sorted((first.entries, second.entries)) == [2, 4], "the second folds what the first left"
    assert await counts.pending_entries(pool) == 0
    assert await _exact(pool)
    key = keys.variant_key(1, 100, keys.snv_code("A", "G"))  # type: ignore[arg-type]
    assert await pool.fetchval("SELECT research_het FROM variant_counts WHERE key = $1", key) == 6


async def test_a_fold_during_a_withdrawal_neither_waits_nor_folds_it_half(
    handlers,
    pool: asyncpg.Pool,
    upload_vcf,  # type: ignore[no-untyped-def]
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
    (answer,) = (
        await Queries(pool, min_cell_count=1).allele(RESEARCHER, "chrT", 100, "A", "G")
    ).results
    assert answer.allele_number == 6, "three research patients left"
    await counts.fold(pool)
    assert await _exact(pool)


async def test_depths_and_qualities_come_back_exactly_however_large(
    handlers,
    pool: asyncpg.Pool,
    queries: Queries,
    upload_vcf,  # type: ignore[no-untyped-def]
) -> None:
    """A block keeps a call's depth and quality in a byte each; the calls whose values do not
    fit (a repeat at depth 300, a quality of 255) keep them in deep_calls, and both the tables'
    view and the treating hospital's page give back exactly what the VCF said."""
    from .conftest import Caller, consent, delivery, variants_called

    records = [
        (100, "A", "G", "0/1", 300, 255),
        (200, "C", "T", "1/1", None, None),
        (300, "G", "A", "0/1", 253, 7),
        (400, "CT", "C", "0/1", 1000, 99),
    ]
    patient = pseudonym("deep-calls")
    await handlers.consent_changed(consent(patient, 1), delivery())
    await handlers.variants_called(variants_called(upload_vcf(records), patient), delivery())
    expected = [(pos, dp, gq) for pos, _, _, _, dp, gq in records]
    rows = await pool.fetch("SELECT pos, dp, gq FROM genotype_rows ORDER BY pos")
    assert [tuple(r) for r in rows] == expected
    assert await pool.fetchval("SELECT count(*) FROM deep_calls") == 2
    page = await queries.patient_variants(Caller("rh-lis", "hospital", "RH", "care"), patient)
    assert [(v.pos, v.dp, v.gq) for v in page.variants] == expected


async def test_the_clinical_view_comes_a_page_at_a_time_in_position_order(
    handlers,
    queries: Queries,
    upload_vcf,  # type: ignore[no-untyped-def]
) -> None:
    from genomebus_registry.core.cursors import PatientCursor

    from .conftest import Caller, consent, delivery, variants_called

    # Two samples; calls in three bins (262,144 bp each), an indel among SNVs at one position.
    first = [
        (300_000, "A", "G", "0/1", 30, 99),
        (5, "C", "T", "1/1", 30, 99),
        (600_000, "G", "A", "0/1", 30, 99),
        (5, "CA", "C", "0/1", 30, 99),
    ]
    second = [(7, "T", "C", "0/1", 30, 99)]
    patient = pseudonym("paged-clinical")
    await handlers.consent_changed(consent(patient, 1), delivery())
    for records in (first, second):
        await handlers.variants_called(variants_called(upload_vcf(records), patient), delivery())
    hospital = Caller("rh-lis", "hospital", "RH", "care")
    whole = await queries.patient_variants(hospital, patient)
    assert whole.next_cursor is None and len(whole.variants) == 5
    by_sample = [
        [(v.pos, v.ref, v.alt) for v in whole.variants if v.sample_id == s.sample_id]
        for s in whole.samples
    ]
    assert all(positions == sorted(positions, key=lambda p: p[0]) for positions in by_sample)
    pages, after = [], None
    while True:
        page = await queries.patient_variants(hospital, patient, limit=2, after=after)
        pages.append(page.variants)
        if page.next_cursor is None:
            break
        after = PatientCursor.decode(page.next_cursor)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [v for p in pages for v in p] == whole.variants


async def test_the_folder_folds_in_the_background_and_stops_cleanly(
    handlers,
    pool: asyncpg.Pool,
    upload_vcf,  # type: ignore[no-untyped-def]
) -> None:
    await _loaded(handlers, upload_vcf, [f"folder-{i}" for i in range(3)])
    assert await counts.pending_entries(pool) == 3
    folder = counts.Folder(pool, interval=0.05, max_entries=2)
    folder.start()
    try:
        for _ in range(200):
            if await counts.pending_entries(pool) == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await folder.stop()
    assert await counts.pending_entries(pool) == 0
    assert await _exact(pool)


async def test_a_forged_region_cursor_never_reaches_outside_the_region(
    handlers,
    queries: Queries,
    upload_vcf,  # type: ignore[no-untyped-def]
) -> None:
    """A researcher who writes their own cursor (a key before the region, or on another contig)
    gets the region asked for, from its start: never variants outside it (which would dodge the
    region size limit and the pending adjustments evaluated only inside it)."""
    from genomebus_registry.core.cursors import RegionCursor

    from .conftest import REFERENCE, consent, delivery, variants_called

    vcf = upload_vcf([(pos, "A", "G", "0/1", 30, 99) for pos in (10, 1500, 1600, 900_000)])
    for i in range(6):
        patient = pseudonym(f"forged-cursor-{i}")
        await handlers.consent_changed(consent(patient, 1), delivery())
        await handlers.variants_called(variants_called(vcf, patient), delivery())
    outside = Queries(queries.pool, min_cell_count=1)
    contig_no = await queries.pool.fetchval("SELECT contig_no FROM contigs WHERE chrom = 'chrT'")
    for forged in (keys.variant_key(contig_no, 1, 1), keys.variant_key(contig_no + 7, 5, 1), 0):
        cursor = RegionCursor(reference_digest=REFERENCE.digest, key=forged)
        page = await outside.region(RESEARCHER, "chrT", 1000, 2000, after=cursor)
        assert [v.pos for v in page.variants] == [1500, 1600], forged


async def test_loads_do_not_use_up_contig_numbers(
    handlers,
    pool: asyncpg.Pool,
    upload_vcf,  # type: ignore[no-untyped-def]
) -> None:
    """A contig's number is 20 bits of every variant key: loading the same contigs again must
    not draw new numbers (an INSERT that conflicts would)."""
    await _loaded(handlers, upload_vcf, [f"contig-numbers-{i}" for i in range(4)])
    assert await pool.fetchval("SELECT max(contig_no) FROM contigs") == 1
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "INSERT INTO contigs (contig_no, reference_digest, chrom) VALUES (1048576, 'x', 'y')"
        )


async def test_a_removed_samples_genotypes_go_with_the_next_fold_however_many_loads_wait(
    handlers,
    pool: asyncpg.Pool,
    upload_vcf,  # type: ignore[no-untyped-def]
) -> None:
    from .conftest import removal, variants_called

    names = [f"purge-first-{i}" for i in range(5)]
    await _loaded(handlers, upload_vcf, names)
    vcf = upload_vcf([(100, "A", "G", "0/1", 30, 99)])
    event = variants_called(vcf, pseudonym(names[-1]))
    from .conftest import delivery

    await handlers.variants_called(event, delivery())
    await handlers.sample_removed(removal(event), delivery())
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM genotype_rows WHERE sample_id = $1", event.sample_id
        )
        == 0
    ), "out of the view at once"
    # A fold of five entries: the removed sample's patient has five (a load, a second load's
    # two, the removal's two); the four other patients' older loads wait for the next fold.
    assert (await counts.fold(pool, 5)).entries == 5
    assert await counts.pending_entries(pool) == 4
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM genotype_blocks b JOIN samples s USING (sample_no) "
            "WHERE s.sample_id = $1",
            event.sample_id,
        )
        == 0
    )
    assert await _exact(pool)
