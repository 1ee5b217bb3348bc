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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).parent))

import genomes

from genomebus_common.contracts.events import ConsentChanged, ResearchUse
from genomebus_common.runtime.db import connect_pool, load_migrations
from genomebus_devstack.envfile import endpoints
from genomebus_registry.adapters.postgres import counts
from genomebus_registry.adapters.postgres.consent import project_consent, read_consent
from genomebus_registry.adapters.postgres.loader import (
    next_sample_no,
    register_alleles,
    stage_genotypes,
    write_blocks,
)
from genomebus_registry.adapters.postgres.queries import (
    _ALLELE_SQL,
    _REGION_SQL,
    _REGION_TOUCHED_SQL,
    Queries,
    page_keys,
    region_args,
)
from genomebus_registry.core import keys
from genomebus_registry.core.access import Caller
from genomebus_registry.core.answers import REGION_PAGE_DEFAULT
from genomebus_registry.core.counts import SampleState, on_load

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
        staged = await stage_genotypes(conn, iter(rows))  # type: ignore[arg-type]  # bench rows: the same tuples
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
    try:
        _print_goals(await measure(args, dsn))
    finally:
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return 0


async def measure(args: argparse.Namespace, dsn: str) -> dict[str, float]:
    """Every step of the run on the fresh database ``dsn``, printed; the goal figures."""
    rng = random.Random(args.seed)
    figures: dict[str, float] = {}
    started = time.perf_counter()
    population = genomes.make_population(args.seed, sites_per_genome=args.sites)
    print(
        f"population pool ready in {time.perf_counter() - started:.0f} s; "
        f"{args.genomes} genomes of ~{args.sites:,} sites",
        flush=True,
    )
    migrations = load_migrations("registry", resources.files("genomebus_registry") / "migrations")
    async with connect_pool(dsn, migrations, max_size=6) as pool:
        async with pool.acquire() as conn:
            await seed_consents_and_contigs(conn, args.genomes, rng)
            kept, genotypes_total = await load_all(pool, conn, population, args.genomes, figures)
            lookups = pick_lookups(kept, args.queries, rng)
            regions = pick_regions(args.queries, rng)

            # 1. Everything pending (nothing folded yet): the answers are exact already.
            pending = await counts.pending_entries(conn)
            print(f"questions with all {pending} loads pending (before any fold):", flush=True)
            loads_pending = await questions(conn, lookups[:200], regions[:20], f"{pending} pending")

        # 2. Fold everything, in the folder's batches.
        figures["fold_genomes_per_min"] = await fold_all(pool, args.fold_batch)

        async with pool.acquire() as conn:
            await conn.execute("VACUUM ANALYZE")  # as autovacuum would after a bulk load
            print("questions with nothing pending:", flush=True)
            zero = await questions(conn, lookups, regions, "0 pending")

            # 3. Fifty samples pending: 25 patients withdraw and consent again.
            toggled = rng.sample(range(args.genomes), min(25, args.genomes))
            quiet_ms = await withdraw_and_consent_again(pool, toggled)
            pending = await counts.pending_entries(conn)
            print(f"questions with {pending} samples pending:", flush=True)
            fifty = await questions(conn, lookups, regions, f"{pending} pending")

            # 4. A withdrawal while another whole genome loads.
            withdrawal = await withdrawal_during_load(
                pool, conn, population, args.genomes, kept, toggled
            )
            figures["withdrawal_during_load_ms"] = withdrawal.transaction_ms
            assert not withdrawal.counted_after, "a withdrawn patient was counted"
            print(
                "consent changes with no load in flight: "
                f"median {statistics.median(quiet_ms):.1f} ms, max {max(quiet_ms):.1f} ms",
                flush=True,
            )
            print(withdrawal.describe(), flush=True)

            # 5. The service's whole answer (SQL, masking, objects, audit row committed).
            await whole_answers(pool, lookups[:200], pending)
            allele_figures(figures, zero, fifty, loads_pending)
            figures["region_page_p99_ms"] = percentile(zero["on"]["page"], 99)

            storage = await storage_of(conn)
    genotypes_per_genome = genotypes_total / args.genomes
    figures["mb_per_genome"] = storage.print_and_project(args.genomes, genotypes_per_genome)
    print_day(figures)
    return figures


async def seed_consents_and_contigs(
    conn: asyncpg.Connection, genome_count: int, rng: random.Random
) -> None:
    """Consent first, as in the pipeline: 93 % allow research, 7 % own treatment only."""
    await conn.executemany(
        """INSERT INTO consents (patient_pseudonym, version, analysis_consent_given,
               research_use, withdrawn, changed_at)
           VALUES ($1, 1, true, $2, false, now())""",
        [
            (pseudonym(i), "allowed" if rng.random() < 0.93 else "own_treatment_only")
            for i in range(genome_count + 1)
        ],
    )
    await conn.execute(
        "INSERT INTO contigs (reference_digest, chrom) SELECT $1, unnest($2::text[])",
        DIGEST,
        [c for c, _ in genomes.CONTIGS],
    )


async def load_all(
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    population: genomes.Population,
    genome_count: int,
    figures: dict[str, float],
) -> tuple[list[list[tuple]], int]:
    """Load every genome, one transaction each; (a few genomes' rows for the questions, the
    genotypes loaded in all). Sets ``genome_load_s``."""
    loads: list[tuple[float, int]] = []
    kept: list[list[tuple]] = []  # a few genomes' rows, for the questions
    for i in range(genome_count):
        rows = genomes.genome(population, i)
        loads.append(await load_genome(pool, conn, i, rows))
        if len(kept) < 4:
            kept.append(rows)
        seconds, n = loads[-1]
        print(
            f"  genome {i + 1}/{genome_count}: {n:,} genotypes loaded in {seconds:.1f} s "
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
    return kept, genotypes_total


def pick_regions(queries: int, rng: random.Random) -> list[tuple]:
    """100 kb regions of the autosomes, first pages as researchers ask for them."""
    regions = []
    for _ in range(max(20, queries // 5)):
        chrom, length = rng.choice(genomes.CONTIGS[:22])
        start = rng.randrange(1, length - 100_000)
        regions.append(region_args(chrom, start, start + 99_999, limit=REGION_PAGE_DEFAULT))
    return regions


async def fold_all(pool: asyncpg.Pool, batch: int) -> float:
    """Fold every pending load into the stored counts; genomes folded per minute."""
    started = time.perf_counter()
    folded = 0
    while True:
        result = await counts.fold(pool, batch)
        if not result.entries:
            break
        folded += result.entries
        print(f"  folded {result.entries} genomes in {result.seconds:.0f} s", flush=True)
    fold_s = time.perf_counter() - started
    per_min = folded / (fold_s / 60)
    print(
        f"fold: {folded} genomes in {fold_s:.0f} s = {per_min:.1f} "
        f"genomes per minute (batches of {batch})",
        flush=True,
    )
    return per_min


async def withdraw_and_consent_again(pool: asyncpg.Pool, toggled: list[int]) -> list[float]:
    """Each patient withdraws, then consents again; the consent changes' times (ms), made with
    no load in flight, for comparison."""
    quiet_ms = []
    for i in toggled:
        quiet_ms.append(await change_consent(pool, consent_event(i, 2, withdrawn=True)))
        quiet_ms.append(await change_consent(pool, consent_event(i, 3)))
    return quiet_ms


@dataclass(frozen=True)
class Withdrawal:
    """A withdrawal committed while another genome's load held its blocks, uncommitted."""

    transaction_ms: float
    invisible_ms: float  # from its commit to the next research answer
    before: asyncpg.Record  # the research answer before it
    after: asyncpg.Record  # ... and after it
    counted_before: bool
    counted_after: bool

    def describe(self) -> str:
        before, after = self.before, self.after
        return (
            f"withdrawal while a genome loads: its transaction {self.transaction_ms:.1f} ms; the "
            f"next research answer {self.invisible_ms:.2f} ms later no longer counts the patient "
            f"(carriers {before['het'] + before['hom']} -> {after['het'] + after['hom']}; "
            f"named before: {self.counted_before}, after: False)"
        )


async def withdrawal_during_load(
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    population: genomes.Population,
    genome_count: int,
    kept: list[list[tuple]],
    toggled: list[int],
) -> Withdrawal:
    """A research patient of the kept genomes withdraws while genome ``genome_count`` loads;
    the allele of theirs asked about before and right after the withdrawal commits."""
    written, proceed = asyncio.Event(), asyncio.Event()
    extra = genomes.genome(population, genome_count)
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
            load_genome(pool, loading, genome_count, extra, (written, proceed))
        )
        await written.wait()  # the load holds its blocks, uncommitted
        before = await conn.fetchrow(_ALLELE_SQL, *lookup)
        version = 4 if target in toggled else 2
        withdrawal_ms = await change_consent(pool, consent_event(target, version, withdrawn=True))
        committed = time.perf_counter()
        after = await conn.fetchrow(_ALLELE_SQL, *lookup)
        invisible_ms = (time.perf_counter() - committed) * 1000
        proceed.set()
        await load
    return Withdrawal(
        transaction_ms=withdrawal_ms,
        invisible_ms=invisible_ms,
        before=before,
        after=after,
        counted_before=pseudonym(target) in before["touched"],
        counted_after=pseudonym(target) in after["touched"],
    )


async def whole_answers(pool: asyncpg.Pool, lookups: list[tuple], pending: int) -> None:
    """The service's whole allele answer (SQL, masking, objects, audit row committed)."""
    service = Queries(pool)
    researcher = Caller("bench", "research", None, "benchmark")
    whole = []
    for q in lookups:
        t0 = time.perf_counter()
        await service.allele(researcher, *q[:4])
        whole.append((time.perf_counter() - t0) * 1000)
    print(
        f"the service's whole allele answer (audit committed), {pending} pending: p50 "
        f"{percentile(whole, 50):.2f} ms p99 {percentile(whole, 99):.2f} ms",
        flush=True,
    )


Times = dict[str, dict[str, list[float]]]


def allele_figures(figures: dict[str, float], zero: Times, fifty: Times, loads: Times) -> None:
    """The allele p99s and the on/off ratio, from the questions asked with nothing pending,
    with fifty samples pending and with the whole-genome loads pending."""

    def p99_ratio(times: Times) -> float:
        return percentile(times["on"]["allele"], 99) / percentile(times["off"]["allele"], 99)

    figures["allele_p99_ms"] = percentile(zero["on"]["allele"], 99)
    figures["allele_p99_ms_pending50"] = percentile(fifty["on"]["allele"], 99)
    # On/off where both answer the same question: nothing pending, and whole-genome
    # loads pending. (With consent changes pending, "off" has nothing to evaluate:
    # ignoring consent changes is what it means; that ratio is printed apart.)
    figures["consent_ratio"] = max(p99_ratio(zero), p99_ratio(loads))
    print(
        f"allele p99 on/off: nothing pending {p99_ratio(zero):.2f}; "
        f"loads pending {p99_ratio(loads):.2f}; "
        f"consent changes pending {p99_ratio(fifty):.2f} "
        "(off ignores them)",
        flush=True,
    )


@dataclass(frozen=True)
class Storage:
    """Bytes on disk after the run, and the row counts they hold."""

    on_disk: dict[str, int]
    counts_index: int  # bytes of the counts' primary key
    distinct: int  # variants counted
    blocks: int  # genotype block rows

    def print_and_project(self, genome_count: int, genotypes_per_genome: float) -> float:
        """Print the sizes and their projection to the national scale; MB of blocks a genome."""
        on_disk, distinct = self.on_disk, self.distinct
        loaded = genome_count + 1
        block_mb = on_disk["genotype_blocks"] / loaded / 1e6
        counts_bytes_per_row = on_disk["variant_counts"] / max(1, distinct)
        print(
            f"on disk: blocks {on_disk['genotype_blocks'] / 1e6:,.0f} MB = "
            f"{block_mb:.1f} MB per genome "
            f"({on_disk['genotype_blocks'] / (genotypes_per_genome * loaded):.2f} "
            "bytes per genotype, "
            f"{self.blocks / loaded:,.0f} block rows per genome); "
            f"counts {on_disk['variant_counts'] / 1e6:,.0f} MB "
            f"for {distinct:,} variants ({counts_bytes_per_row:.0f} bytes each, index included); "
            f"allele dictionary {on_disk['variant_alleles'] / 1e6:,.0f} MB",
            flush=True,
        )

        print(f"projection to {NATIONAL:,} genomes:")
        print(f"  blocks: {block_mb:.1f} MB x {NATIONAL:,} = {block_mb * NATIONAL / 1e6:.2f} TB")
        index_bytes = self.counts_index / max(1, distinct)
        print(
            f"  counts: ~{NATIONAL_VARIANTS / 1e6:.0f} M variants x "
            f"{counts_bytes_per_row:.0f} bytes "
            f"= {NATIONAL_VARIANTS * counts_bytes_per_row / 1e9:.0f} GB, of which its primary key "
            f"{index_bytes:.0f} bytes a variant = {NATIONAL_VARIANTS * index_bytes / 1e9:.0f} GB: "
            f"memory a fold and every answer want (measured here: {distinct / 1e6:.1f} M variants "
            f"at {genome_count} genomes)"
        )
        return block_mb


async def storage_of(conn: asyncpg.Connection) -> Storage:
    return Storage(
        on_disk=await sizes(conn),
        counts_index=await conn.fetchval("SELECT pg_relation_size('variant_counts_pkey')"),
        distinct=await conn.fetchval("SELECT count(*) FROM variant_counts"),
        blocks=await conn.fetchval("SELECT count(*) FROM genotype_blocks"),
    )


def print_day(figures: dict[str, float]) -> None:
    """What a day's new genomes cost: folding and loading, in minutes."""
    fold_min_per_day = PER_DAY / figures["fold_genomes_per_min"]
    print(
        f"  folds: {PER_DAY} new genomes a day / "
        f"{figures['fold_genomes_per_min']:.1f} per minute = "
        f"{fold_min_per_day:.0f} minutes of folding a day (at this counts-table size; a table "
        f"larger than memory folds slower: docs/registry-scale.md)"
    )
    print(
        f"  loads: {PER_DAY} x {figures['genome_load_s']:.1f} s = "
        f"{PER_DAY * figures['genome_load_s'] / 60:.0f} minutes a day; answers read one block "
        "per research sample for the patients touched (the audit), so their time grows with "
        "the research cohort: docs/registry-scale.md"
    )


GOALS = {
    "genome_load_s": ("<=", 15),
    "allele_p99_ms": ("<=", 3),
    "allele_p99_ms_pending50": ("<=", 3),
    "consent_ratio": ("<=", 1.2),
    "region_page_p99_ms": ("<=", 10),
    "withdrawal_during_load_ms": ("<=", 50),
    "fold_genomes_per_min": (">=", 1),
    "mb_per_genome": ("<=", 30),
}


def _print_goals(figures: dict[str, float]) -> None:
    """Each goal, met or not; then one ``name: value`` line per goal figure for machines."""
    for key, (op, goal) in GOALS.items():
        met = figures[key] <= goal if op == "<=" else figures[key] >= goal
        print(f"# {key} goal {op} {goal}: {'met' if met else 'NOT met'}")
    for key in GOALS:
        print(f"{key}: {figures[key]:.3f}")


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
