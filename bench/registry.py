"""``make bench-registry``: the national registry at whole-genome scale, measured in one run.

Builds a fresh database with the registry's own migrations, loads ``--genomes`` synthetic whole
genomes (``bench/genomes.py``: ~4.5 M sites each, drawn from one population pool with a neutral
allele frequency spectrum, het/hom ~1.7, ~1.5 % multi-allelic positions, a tail of private
sites), and prints, with consent enforcement on and off:

- the load of one whole genome through the registry's own load path (COPY into staging, codes
  for its new alleles, one INSERT ... SELECT into the sample's blocks, the
  patient's consent row locked, the pending adjustment and the sample row), one transaction per
  genome: seconds and genotypes/s;
- fold throughput: all loaded genomes folded into the stored counts, in the folder's batches;
- allele count p50/p99 with nothing pending and with 50 samples pending (25 patients who
  withdraw and consent again: 50 adjustments over whole genomes), consent on and off, as the
  service runs it (stored + pending counts, cohort size, the patients touched);
- the first page of a 100 kb region (100 variants: the page, then the patients touched in it);
- a withdrawal's transaction while another genome loads, and the next research answer after it
  commits (the withdrawn patient is no longer counted or named);
- bytes on disk per genome (blocks, their index and TOAST) and of the shared tables;
- the projection of each figure to 60,000 genomes.
It ends with one ``name: value`` line per goal figure for machines to read.

"Consent on" is exactly the SQL the service runs. "Consent off" is the same statements over the
unrestricted counts (every active sample, whatever its consent), which the registry keeps only so
that this comparison can be made. On and off are timed interleaved, question by question.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import sys
import time
from importlib import resources
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).parent))

import genomes

from genomebus_common.contracts.events import ConsentChanged, ResearchUse
from genomebus_common.runtime.db import connect_pool, load_migrations
from genomebus_devstack.envfile import endpoints
from genomebus_registry.adapters import counts
from genomebus_registry.core import keys
from genomebus_registry.core.counts import SampleState, on_load
from genomebus_registry.handlers import project_consent
from genomebus_registry.loader import (
    next_sample_no,
    read_consent,
    register_alleles,
    stage_genotypes,
    write_blocks,
)
from genomebus_registry.queries import (
    _ALLELE_SQL,
    _REGION_SQL,
    _REGION_TOUCHED_SQL,
    REGION_PAGE_DEFAULT,
    Caller,
    Queries,
    page_keys,
    region_args,
)

DIGEST = "SQC." + "B" * 32
NATIONAL = 60_000
PER_DAY = 33  # new genomes a day at 12,000 a year
#: Distinct variants expected at 60,000 genomes, between gnomAD v3.1 (759 M at 76 k genomes) and
#: Genomics England (438 M at 33 k): docs/registry-scale.md.
NATIONAL_VARIANTS = 650_000_000


def pseudonym(i: int) -> str:
    return "pk1_" + hashlib.sha256(f"bench-patient-{i}".encode()).hexdigest()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def unenforced(sql: str) -> str:
    """The same statement without consent: unrestricted counts, every active sample."""
    active = (
        "(SELECT s.sample_id, s.sample_no, s.patient_pseudonym, s.reference_digest FROM samples s "
        "WHERE NOT s.quarantined AND s.removed_at IS NULL)"
    )
    return (
        sql.replace("research_samples", active)
        .replace("research_het", "all_het")
        .replace("research_hom", "all_hom")
        .replace("w_research", "w_all")
        .replace("research_patients", "patients")
    )


async def insert_sample(conn: asyncpg.Connection, i: int, sample_no: int, rows: int) -> None:
    await conn.execute(
        """INSERT INTO samples (sample_id, patient_pseudonym, hospital_id, reference_id,
               reference_digest, tools, vcf, vcf_sha256, bam_sha256, source_event_id,
               correlation_id, consent_version, genotypes_loaded, variants_loaded, sample_no)
           VALUES ($1, $2, 'BENCH', 'bench', $3, '[]', '{}', $4, $4, gen_random_uuid(), $1, 1, $5,
                   $5, $6)""",
        f"S{i}",
        pseudonym(i),
        DIGEST,
        "0" * 64,
        rows,
        sample_no,
    )


async def load_genome(
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    i: int,
    rows: list[tuple],
    hold: tuple[asyncio.Event, asyncio.Event] | None = None,
) -> tuple[float, int]:
    """One genome through the registry's load path (handlers.RegistryHandlers._load without
    the VCF parser, the inbox and the outbox): seconds and genotypes. ``hold``: once the blocks
    are written, set the first event and wait for the second before the patient's row is
    locked (to time a withdrawal while the load is in flight)."""
    patient = pseudonym(i)
    sample_no = await next_sample_no(conn)
    started = time.perf_counter()
    async with conn.transaction():
        staged = await stage_genotypes(conn, iter(rows))  # type: ignore[arg-type]
        await register_alleles(conn, DIGEST, staged)
        await write_blocks(conn, sample_no, DIGEST)
        if hold is not None:
            hold[0].set()
            await hold[1].wait()
        await read_consent(conn, patient, lock=True)
        samples = await counts.patient_samples(conn, patient)
        await counts.add(
            conn,
            on_load(
                patient,
                samples,
                SampleState(sample_no, DIGEST, True),
                await counts.research_ok(conn, patient),
            ),
        )
        await insert_sample(conn, i, sample_no, staged.rows)
    return time.perf_counter() - started, staged.rows


def consent_event(
    i: int, version: int, *, withdrawn: bool = False, research: bool = True
) -> ConsentChanged:
    return ConsentChanged(
        correlation_id=f"bench-{i}",
        patient_pseudonym=pseudonym(i),
        version=version,
        analysis_consent_given=True,
        research_use=ResearchUse.ALLOWED if research else ResearchUse.OWN_TREATMENT_ONLY,
        withdrawn=withdrawn,
        recorded_by="bench",
        reason="bench",
    )


async def change_consent(pool: asyncpg.Pool, event: ConsentChanged) -> float:
    """A consent change as the handler projects it; milliseconds of its transaction."""
    started = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction():
        await project_consent(conn, event)
    return (time.perf_counter() - started) * 1000


async def timed(conn: asyncpg.Connection, sql: str, args: tuple) -> float:
    started = time.perf_counter()
    await conn.fetch(sql, *args)
    return (time.perf_counter() - started) * 1000


async def timed_page(
    conn: asyncpg.Connection, page_sql: str, touched_sql: str, args: tuple
) -> float:
    """A region's first page as the service runs it: the page, then the patients it touched."""
    started = time.perf_counter()
    rows = await conn.fetch(page_sql, *args)
    if rows:
        await conn.fetchval(touched_sql, page_keys(rows))
    return (time.perf_counter() - started) * 1000


def pick_lookups(rows_of: list[list[tuple]], n: int, rng: random.Random) -> list[tuple]:
    """Alleles carried by the loaded genomes (frequent and rare alike), as researchers ask."""
    out = []
    for _ in range(n):
        chrom, pos, ref, alt = rng.choice(rng.choice(rows_of))[:4]
        out.append((chrom, pos, ref, alt, keys.snv_code(ref, alt)))
    return out


async def questions(
    conn: asyncpg.Connection, lookups: list[tuple], regions: list[tuple], label: str
) -> dict[str, dict[str, list[float]]]:
    """Allele and first-page times, consent on and off, interleaved question by question."""
    sqls = {
        "on": (_ALLELE_SQL, _REGION_SQL, _REGION_TOUCHED_SQL),
        "off": tuple(unenforced(q) for q in (_ALLELE_SQL, _REGION_SQL, _REGION_TOUCHED_SQL)),
    }
    for mode in ("on", "off"):  # warm the caches
        for q in lookups[:50]:
            await timed(conn, sqls[mode][0], q)
    times: dict[str, dict[str, list[float]]] = {m: {"allele": [], "page": []} for m in sqls}
    for n, q in enumerate(lookups):
        for mode in ("on", "off") if n % 2 == 0 else ("off", "on"):
            times[mode]["allele"].append(await timed(conn, sqls[mode][0], q))
    for n, r in enumerate(regions):
        for mode in ("on", "off") if n % 2 == 0 else ("off", "on"):
            times[mode]["page"].append(await timed_page(conn, sqls[mode][1], sqls[mode][2], r))
    for mode in ("on", "off"):
        a, p = times[mode]["allele"], times[mode]["page"]
        print(
            f"  {label}, consent {mode:3}: allele p50 {percentile(a, 50):.2f} ms p99 "
            f"{percentile(a, 99):.2f} ms; region page of {REGION_PAGE_DEFAULT} p50 "
            f"{percentile(p, 50):.2f} ms p99 {percentile(p, 99):.2f} ms",
            flush=True,
        )
    return times


async def sizes(conn: asyncpg.Connection) -> dict[str, int]:
    """Bytes on disk per table: heap, TOAST and indexes."""
    return {
        table: await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
        for table in ("genotype_blocks", "variant_counts", "variant_alleles", "pending_adjustments")
    }


async def main(args: argparse.Namespace) -> int:
    admin_dsn = endpoints()["GENOMEBUS_POSTGRES_DSN"]
    name = f"bench_registry_{int(time.time())}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
    rng = random.Random(args.seed)
    figures: dict[str, float] = {}
    try:
        started = time.perf_counter()
        population = genomes.make_population(args.seed, sites_per_genome=args.sites)
        print(
            f"population pool ready in {time.perf_counter() - started:.0f} s; "
            f"{args.genomes} genomes of ~{args.sites:,} sites",
            flush=True,
        )
        migrations = load_migrations(
            "registry", resources.files("genomebus_registry") / "migrations"
        )
        async with connect_pool(dsn, migrations, max_size=6) as pool:
            async with pool.acquire() as conn:
                # Consent first, as in the pipeline: 93 % allow research, 7 % own treatment only.
                await conn.executemany(
                    """INSERT INTO consents (patient_pseudonym, version, analysis_consent_given,
                           research_use, withdrawn, changed_at) VALUES ($1, 1, true, $2, false, now())""",
                    [
                        (pseudonym(i), "allowed" if rng.random() < 0.93 else "own_treatment_only")
                        for i in range(args.genomes + 1)
                    ],
                )
                await conn.execute(
                    "INSERT INTO contigs (reference_digest, chrom) SELECT $1, unnest($2::text[])",
                    DIGEST,
                    [c for c, _ in genomes.CONTIGS],
                )

                loads: list[tuple[float, int]] = []
                kept: list[list[tuple]] = []  # a few genomes' rows, for the questions
                for i in range(args.genomes):
                    rows = genomes.genome(population, i)
                    loads.append(await load_genome(pool, conn, i, rows))
                    if len(kept) < 4:
                        kept.append(rows)
                    seconds, n = loads[-1]
                    print(
                        f"  genome {i + 1}/{args.genomes}: {n:,} genotypes loaded in {seconds:.1f} s "
                        f"({n / seconds:,.0f}/s)",
                        flush=True,
                    )
                load_s = [s for s, _ in loads]
                genotypes_total = sum(n for _, n in loads)
                figures["genome_load_s"] = statistics.median(load_s)
                print(
                    f"load of one whole genome: median {statistics.median(load_s):.1f} s, max "
                    f"{max(load_s):.1f} s ({genotypes_total / sum(load_s):,.0f} genotypes/s); "
                    f"{genotypes_total:,} genotypes in all",
                    flush=True,
                )

                lookups = pick_lookups(kept, args.queries, rng)
                regions = []
                for _ in range(max(20, args.queries // 5)):
                    chrom, length = rng.choice(genomes.CONTIGS[:22])
                    start = rng.randrange(1, length - 100_000)
                    regions.append(
                        region_args(chrom, start, start + 99_999, limit=REGION_PAGE_DEFAULT)
                    )

                # 1. Everything pending (nothing folded yet): the answers are exact already.
                pending = await counts.pending_entries(conn)
                print(f"questions with all {pending} loads pending (before any fold):", flush=True)
                loads_pending = await questions(
                    conn, lookups[:200], regions[:20], f"{pending} pending"
                )

            # 2. Fold everything, in the folder's batches.
            started = time.perf_counter()
            folded = 0
            while True:
                result = await counts.fold(pool, args.fold_batch)
                if not result.entries:
                    break
                folded += result.entries
                print(f"  folded {result.entries} genomes in {result.seconds:.0f} s", flush=True)
            fold_s = time.perf_counter() - started
            figures["fold_genomes_per_min"] = folded / (fold_s / 60)
            print(
                f"fold: {folded} genomes in {fold_s:.0f} s = {figures['fold_genomes_per_min']:.1f} "
                f"genomes per minute (batches of {args.fold_batch})",
                flush=True,
            )

            async with pool.acquire() as conn:
                await conn.execute("VACUUM ANALYZE")  # as autovacuum would after a bulk load
                print("questions with nothing pending:", flush=True)
                zero = await questions(conn, lookups, regions, "0 pending")

                # 3. Fifty samples pending: 25 patients withdraw and consent again.
                toggled = rng.sample(range(args.genomes), min(25, args.genomes))
                quiet_ms = []  # consent changes with no load in flight, for comparison
                for i in toggled:
                    quiet_ms.append(await change_consent(pool, consent_event(i, 2, withdrawn=True)))
                    quiet_ms.append(await change_consent(pool, consent_event(i, 3)))
                pending = await counts.pending_entries(conn)
                print(f"questions with {pending} samples pending:", flush=True)
                fifty = await questions(conn, lookups, regions, f"{pending} pending")

                # 4. A withdrawal while another whole genome loads.
                written, proceed = asyncio.Event(), asyncio.Event()
                extra = genomes.genome(population, args.genomes)
                research_ok = {
                    r["patient_pseudonym"]
                    for r in await conn.fetch(
                        "SELECT patient_pseudonym FROM consents WHERE research_use = 'allowed'"
                    )
                }
                target = next(i for i in range(len(kept)) if pseudonym(i) in research_ok)
                chrom, pos, ref, alt = kept[target][len(kept[target]) // 2][:4]
                lookup = (chrom, pos, ref, alt, keys.snv_code(ref, alt))
                async with pool.acquire() as loading:
                    load = asyncio.create_task(
                        load_genome(pool, loading, args.genomes, extra, (written, proceed))
                    )
                    await written.wait()  # the load holds its blocks, uncommitted
                    before = await conn.fetchrow(_ALLELE_SQL, *lookup)
                    version = 4 if target in toggled else 2
                    withdrawal_ms = await change_consent(
                        pool, consent_event(target, version, withdrawn=True)
                    )
                    committed = time.perf_counter()
                    after = await conn.fetchrow(_ALLELE_SQL, *lookup)
                    invisible_ms = (time.perf_counter() - committed) * 1000
                    proceed.set()
                    await load
                figures["withdrawal_during_load_ms"] = withdrawal_ms
                counted_before = pseudonym(target) in before["touched"]
                assert pseudonym(target) not in after["touched"], "a withdrawn patient was counted"
                print(
                    f"consent changes with no load in flight: median {statistics.median(quiet_ms):.1f} ms, "
                    f"max {max(quiet_ms):.1f} ms",
                    flush=True,
                )
                print(
                    f"withdrawal while a genome loads: its transaction {withdrawal_ms:.1f} ms; the "
                    f"next research answer {invisible_ms:.2f} ms later no longer counts the patient "
                    f"(carriers {before['het'] + before['hom']} -> {after['het'] + after['hom']}; "
                    f"named before: {counted_before}, after: False)",
                    flush=True,
                )

                # 5. The service's whole answer (SQL, masking, objects, audit row committed).
                service = Queries(pool)
                researcher = Caller("bench", "research", None, "benchmark")
                whole = []
                for q in lookups[:200]:
                    t0 = time.perf_counter()
                    await service.allele(researcher, *q[:4])
                    whole.append((time.perf_counter() - t0) * 1000)
                print(
                    f"the service's whole allele answer (audit committed), {pending} pending: p50 "
                    f"{percentile(whole, 50):.2f} ms p99 {percentile(whole, 99):.2f} ms",
                    flush=True,
                )

                on0, off0 = zero["on"]["allele"], zero["off"]["allele"]
                on50 = fifty["on"]["allele"]
                figures["allele_p99_ms"] = percentile(on0, 99)
                figures["allele_p99_ms_pending50"] = percentile(on50, 99)
                # On/off where both answer the same question: nothing pending, and whole-genome
                # loads pending. (With consent changes pending, "off" has nothing to evaluate:
                # ignoring consent changes is what it means; that ratio is printed apart.)
                figures["consent_ratio"] = max(
                    percentile(on0, 99) / percentile(off0, 99),
                    percentile(loads_pending["on"]["allele"], 99)
                    / percentile(loads_pending["off"]["allele"], 99),
                )
                print(
                    f"allele p99 on/off: nothing pending {percentile(on0, 99) / percentile(off0, 99):.2f}; "
                    f"loads pending {percentile(loads_pending['on']['allele'], 99) / percentile(loads_pending['off']['allele'], 99):.2f}; "
                    f"consent changes pending {percentile(on50, 99) / percentile(fifty['off']['allele'], 99):.2f} "
                    "(off ignores them)",
                    flush=True,
                )
                figures["region_page_p99_ms"] = percentile(zero["on"]["page"], 99)

                on_disk = await sizes(conn)
                counts_index = await conn.fetchval("SELECT pg_relation_size('variant_counts_pkey')")
                distinct = await conn.fetchval("SELECT count(*) FROM variant_counts")
                blocks = await conn.fetchval("SELECT count(*) FROM genotype_blocks")
        loaded = args.genomes + 1
        block_mb = on_disk["genotype_blocks"] / loaded / 1e6
        counts_bytes_per_row = on_disk["variant_counts"] / max(1, distinct)
        figures["mb_per_genome"] = block_mb
        genotypes_per_genome = genotypes_total / args.genomes
        print(
            f"on disk: blocks {on_disk['genotype_blocks'] / 1e6:,.0f} MB = {block_mb:.1f} MB per genome "
            f"({on_disk['genotype_blocks'] / (genotypes_per_genome * loaded):.2f} bytes per genotype, "
            f"{blocks / loaded:,.0f} block rows per genome); counts {on_disk['variant_counts'] / 1e6:,.0f} MB "
            f"for {distinct:,} variants ({counts_bytes_per_row:.0f} bytes each, index included); "
            f"allele dictionary {on_disk['variant_alleles'] / 1e6:,.0f} MB",
            flush=True,
        )

        print(f"projection to {NATIONAL:,} genomes:")
        print(f"  blocks: {block_mb:.1f} MB x {NATIONAL:,} = {block_mb * NATIONAL / 1e6:.2f} TB")
        index_bytes = counts_index / max(1, distinct)
        print(
            f"  counts: ~{NATIONAL_VARIANTS / 1e6:.0f} M variants x {counts_bytes_per_row:.0f} bytes "
            f"= {NATIONAL_VARIANTS * counts_bytes_per_row / 1e9:.0f} GB, of which its primary key "
            f"{index_bytes:.0f} bytes a variant = {NATIONAL_VARIANTS * index_bytes / 1e9:.0f} GB: "
            f"memory a fold and every answer want (measured here: {distinct / 1e6:.1f} M variants "
            f"at {args.genomes} genomes)"
        )
        fold_min_per_day = PER_DAY / figures["fold_genomes_per_min"]
        print(
            f"  folds: {PER_DAY} new genomes a day / {figures['fold_genomes_per_min']:.1f} per minute = "
            f"{fold_min_per_day:.0f} minutes of folding a day (at this counts-table size; a table "
            f"larger than memory folds slower: docs/registry-scale.md)"
        )
        print(
            f"  loads: {PER_DAY} x {figures['genome_load_s']:.1f} s = "
            f"{PER_DAY * figures['genome_load_s'] / 60:.0f} minutes a day; answers read one block "
            "per research sample for the patients touched (the audit), so their time grows with "
            "the research cohort: docs/registry-scale.md"
        )
        goals = {
            "genome_load_s": ("<=", 15),
            "allele_p99_ms": ("<=", 3),
            "allele_p99_ms_pending50": ("<=", 3),
            "consent_ratio": ("<=", 1.2),
            "region_page_p99_ms": ("<=", 10),
            "withdrawal_during_load_ms": ("<=", 50),
            "fold_genomes_per_min": (">=", 1),
            "mb_per_genome": ("<=", 30),
        }
        for key, (op, goal) in goals.items():
            met = figures[key] <= goal if op == "<=" else figures[key] >= goal
            print(f"# {key} goal {op} {goal}: {'met' if met else 'NOT met'}")
        for key in goals:
            print(f"{key}: {figures[key]:.3f}")
    finally:
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genomes", type=int, default=40, help="whole genomes to load")
    parser.add_argument("--sites", type=int, default=4_500_000, help="variant sites per genome")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument(
        "--fold-batch", type=int, default=counts.FOLD_BATCH, help="pending entries per fold"
    )
    parser.add_argument("--seed", type=int, default=5)
    sys.exit(asyncio.run(main(parser.parse_args())))
