"""``make bench-registry``: the national registry's load and query figures at scale.

Builds a fresh database with the registry's own migrations, then measures, in one run:
- COPY ingest rate: genotype rows per second through the registry's loader (staging COPY, the
  patient's consent row locked, then set-based statements that write variants, genotypes and the
  per-variant counts, one transaction per sample), and its ratio to ``executemany`` doing the
  same work a row at a time (goal >= 300k rows/s);
- allele lookup and 100 kb region query latency (p50/p99) at the target size (default 10M
  genotype rows) with consent enforcement on and off, and their ratio (goal p99 <= 3 ms, ratio
  <= 1.2). "On" is exactly the SQL the service runs: the research counts kept per variant (which
  take only research-consenting patients), the cohort size and the patients touched through the
  consent-joining views. "Off" is the same statements reading the unrestricted counts (every
  active sample) and the samples table instead of the views. A region answer is two statements
  (counts, patients touched), timed together. The service's whole answer (masking, answer
  objects, audit row committed) is timed too, for consent on. On and off are timed interleaved,
  question by question, so that other load on the machine hits both alike;
- the first page of a region answer (the service's default of 100 variants, and 1000), as the
  service runs it (the page, then the patients touched within it), consent on and off;
- this server's COPY ceiling: the same genotype rows, already keyed, copied into a bare table
  shaped like ``genotypes`` (without and with its two indexes): what no load can beat here;
- withdrawal commit to invisible: a patient's withdrawal commits (its transaction also takes the
  patient out of the research counts, in a trigger: that time is printed too), and the very next
  research query no longer counts them (the time between the commit returning and that answer).
Consents are recorded before the samples load, as in the pipeline (no sample enters without one).
Data are synthetic (pseudonymous ids, positions on one 5 Mb contig, common and rare alleles).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import re
import statistics
import sys
import time
from importlib import resources

import asyncpg

from genomebus_common.db import connect_pool, load_migrations
from genomebus_devstack.envfile import endpoints
from genomebus_registry.domain import GenotypeRow, RegionCursor, variant_id
from genomebus_registry.loader import load_genotypes, next_sample_no, read_consent, stage_genotypes
from genomebus_registry.queries import (
    _ALLELE_SQL,
    _REGION_SQL,
    _REGION_TOUCHED_SQL,
    REGION_PAGE_DEFAULT,
    Caller,
    Queries,
    page_spans,
    region_args,
)

DIGEST = "SQC." + "B" * 32
CHROM = "chrBench"
LENGTH = 5_000_000


def pseudonym(i: int) -> str:
    return "pk1_" + hashlib.sha256(f"bench-patient-{i}".encode()).hexdigest()


def make_variants(count: int, rng: random.Random) -> list[tuple[str, int, str, str]]:
    positions = sorted(rng.sample(range(1, LENGTH), count))
    out = []
    for pos in positions:
        ref = rng.choice("ACGT")
        alt = rng.choice([b for b in "ACGT" if b != ref])
        out.append((variant_id(DIGEST, CHROM, pos, ref, alt), pos, ref, alt))
    return out


def sample_rows(variants: list[tuple[str, int, str, str]], per_sample: int, rng: random.Random) -> list[GenotypeRow]:
    # A skewed choice: low indexes (common alleles) are carried by many samples, the rest rarely.
    n = len(variants)
    picks = {min(int(rng.paretovariate(0.6)) - 1, n - 1) for _ in range(per_sample // 4)}
    while len(picks) < per_sample:
        picks.add(rng.randrange(n))
    return [
        GenotypeRow(vid, CHROM, pos, ref, alt, rng.choice((1, 1, 2)), rng.randint(10, 60), 99)
        for vid, pos, ref, alt in (variants[i] for i in sorted(picks))
    ]


async def insert_sample(conn: asyncpg.Connection, i: int, sample_no: int, rows: int) -> None:
    await conn.execute(
        """INSERT INTO samples (sample_id, patient_pseudonym, hospital_id, reference_id,
               reference_digest, tools, vcf, vcf_sha256, bam_sha256, source_event_id,
               correlation_id, consent_version, genotypes_loaded, sample_no)
           VALUES ($1, $2, 'BENCH', 'bench', $3, '[]', '{}', $4, $4, gen_random_uuid(), $1, 1, $5,
                   $6)""",
        f"S{i}", pseudonym(i), DIGEST, "0" * 64, rows, sample_no,
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def timed(conn: asyncpg.Connection, sqls: list[str], args_list: list[tuple]) -> list[float]:
    """Milliseconds per question: all of its statements, rows fetched and decoded."""
    times = []
    for args in args_list:
        started = time.perf_counter()
        for sql in sqls:
            await conn.fetch(sql, *args[: _parameters(sql)])
        times.append((time.perf_counter() - started) * 1000)
    return times


def _parameters(sql: str) -> int:
    """How many of a question's arguments a statement takes ($1..$n)."""
    return max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0)


def unenforced(sql: str) -> str:
    """The same statement without consent: the unrestricted counts, every active sample."""
    active = (
        "(SELECT s.sample_id, s.sample_no, s.patient_pseudonym, s.reference_digest FROM samples s "
        "WHERE NOT s.quarantined AND s.removed_at IS NULL)"
    )
    return (
        sql.replace("research_samples", active)
        .replace("research_carriers", "carriers")
        .replace("research_allele_count", "allele_count")
        .replace("research_patients", "patients")
    )


# executemany's row-at-a-time equivalent of a load: find or create the variant, move its counts,
# write the genotype under its key.
_ROW_AT_A_TIME_SQL = """
WITH v AS (
    INSERT INTO variants AS v (variant_id, reference_digest, chrom, contig_no, pos, ref, alt,
                               carriers, allele_count, research_carriers, research_allele_count)
    VALUES ($1, $2, $3, $9, $4, $5, $6, 1, $7, 1, $7)
    ON CONFLICT (contig_no, pos, ref, alt) DO UPDATE SET
        carriers = v.carriers + 1, allele_count = v.allele_count + EXCLUDED.allele_count,
        research_carriers = v.research_carriers + 1,
        research_allele_count = v.research_allele_count + EXCLUDED.allele_count
    RETURNING variant_no, contig_no, pos
)
INSERT INTO genotypes (variant_no, sample_no, contig_no, pos, dp, gq, alt_count)
SELECT variant_no, $8, contig_no, pos, $10, $11, $7 FROM v
"""


_CEILING_TABLES = {
    "no index": "",
    "the genotypes table's two indexes": (
        "; ALTER TABLE {t} ADD PRIMARY KEY (sample_no, contig_no, pos, variant_no)"
        "; CREATE INDEX ON {t} (contig_no, pos, variant_no, sample_no)"
    ),
}


async def copy_ceiling(
    conn: asyncpg.Connection, samples: list[list[GenotypeRow]], variant_nos: dict[str, int]
) -> dict[str, float]:
    """What COPY alone achieves on this machine: the same genotype rows, already keyed (no
    variant lookup, no counts, no consent), straight into a table shaped like ``genotypes``,
    one sample per transaction. The registry's load cannot beat these rates; they say how far
    the 300k rows/s goal is from this server, whatever the load does."""
    rates = {}
    for label, indexes in _CEILING_TABLES.items():
        table = "bench_ceiling"
        await conn.execute(
            f"CREATE TABLE {table} (variant_no integer, sample_no integer, contig_no integer, "
            f"pos integer, dp integer, gq integer, alt_count smallint)" + indexes.format(t=table)
        )
        started = time.perf_counter()
        rows = 0
        for sample_no, sample in enumerate(samples):
            records = [(variant_nos[r.variant_id], sample_no, 1, r.pos, r.dp, r.gq, r.alt_count)
                       for r in sample]
            async with conn.transaction():
                await conn.copy_records_to_table(table, records=records)
            rows += len(records)
        rates[label] = rows / (time.perf_counter() - started)
        await conn.execute(f"DROP TABLE {table}")
    return rates


async def timed_pages(
    conn: asyncpg.Connection, page_sql: str, touched_sql: str, regions: list[tuple], limit: int
) -> list[float]:
    """Milliseconds per first page of a region answer (``limit`` 10**9: the whole region): the
    page's rows, then the patients touched within its span (the two statements the service
    runs)."""
    times = []
    for chrom, start, end, *key, _, min_carriers in regions:
        started = time.perf_counter()
        rows = await conn.fetch(page_sql, chrom, start, end, *key, limit, min_carriers)
        if rows:
            await conn.fetchval(touched_sql, chrom, *page_spans(rows))
        times.append((time.perf_counter() - started) * 1000)
    return times


async def main(args: argparse.Namespace) -> int:
    admin_dsn = endpoints()["GENOMEBUS_POSTGRES_DSN"]
    name = f"bench_registry_{int(time.time())}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
    rng = random.Random(args.seed)
    samples = args.rows // args.per_sample
    print(f"{samples} samples x {args.per_sample:,} genotypes = {samples * args.per_sample:,} rows; "
          f"{args.variants:,} distinct variants", flush=True)
    try:
        migrations = load_migrations("registry", resources.files("genomebus_registry") / "migrations")
        async with connect_pool(dsn, migrations, max_size=4) as pool:
            variants = make_variants(args.variants, rng)
            async with pool.acquire() as conn:
                # Consent first, as in the pipeline: 93 % allow research, 7 % own treatment only;
                # after the loads 3 % withdraw (their genotypes stay, the research counts drop).
                choices = [rng.random() for _ in range(samples)]
                await conn.executemany(
                    """INSERT INTO consents (patient_pseudonym, version, analysis_consent_given,
                           research_use, withdrawn, changed_at) VALUES ($1, 1, $2, $3, $4, now())""",
                    [
                        (pseudonym(i), True, "allowed" if r < 0.93 else "own_treatment_only", False)
                        for i, r in enumerate(choices)
                    ],
                )
                contig_no = await conn.fetchval(
                    "INSERT INTO contigs (reference_digest, chrom) VALUES ($1, $2) RETURNING contig_no", DIGEST, CHROM
                )
                # executemany on one sample, for the ratio (rolled back: only the rate counts)
                rows = sample_rows(variants, args.per_sample, rng)
                row_at_a_time_sample = await next_sample_no(conn)
                tx = conn.transaction()
                await tx.start()
                started = time.perf_counter()
                await conn.executemany(
                    _ROW_AT_A_TIME_SQL,
                    [(r.variant_id, DIGEST, r.chrom, r.pos, r.ref, r.alt, r.alt_count, row_at_a_time_sample, contig_no,
                      r.dp, r.gq) for r in rows],
                )
                executemany_rate = len(rows) / (time.perf_counter() - started)
                await tx.rollback()

                load_seconds = 0.0
                loaded = 0
                kept_for_ceiling: list[list[GenotypeRow]] = []
                for i in range(samples):
                    rows = sample_rows(variants, args.per_sample, rng)
                    if len(kept_for_ceiling) < args.ceiling_samples:
                        kept_for_ceiling.append(rows)
                    started = time.perf_counter()
                    sample_no = await next_sample_no(conn)  # before the transaction, as the handler
                    async with conn.transaction():
                        chroms = await stage_genotypes(conn, iter(rows))
                        await read_consent(conn, pseudonym(i), lock=True)
                        counts = await load_genotypes(conn, sample_no, pseudonym(i), DIGEST, chroms)
                        await insert_sample(conn, i, sample_no, counts.genotypes)
                    load_seconds += time.perf_counter() - started
                    loaded += counts.genotypes
                    if (i + 1) % max(1, samples // 10) == 0:
                        print(f"  loaded {loaded:,} rows ({loaded / load_seconds:,.0f} rows/s)", flush=True)
                copy_rate = loaded / load_seconds
                await conn.execute(
                    "UPDATE consents SET version = 2, withdrawn = true WHERE patient_pseudonym = ANY($1)",
                    [pseudonym(i) for i, r in enumerate(choices) if r >= 0.97],
                )
                await conn.execute("VACUUM ANALYZE")  # as autovacuum would after a bulk load

                lookups = [(CHROM, pos, ref, alt) for _, pos, ref, alt in rng.sample(variants, args.queries)]
                # The whole region in one statement (no page limit), as the goal is stated.
                regions = [region_args(CHROM, s, s + 100_000, limit=10**9)
                           for s in (rng.randrange(1, LENGTH - 100_000) for _ in range(args.queries // 5))]
                on_allele, on_region = [_ALLELE_SQL], [_REGION_SQL, _REGION_TOUCHED_SQL]
                off_allele, off_region = [unenforced(q) for q in on_allele], [unenforced(q) for q in on_region]
                for sqls in (on_allele, off_allele):  # warm the caches
                    await timed(conn, sqls, lookups[:50])
                for sqls in (on_region, off_region):
                    await timed_pages(conn, *sqls, regions[:5], 10**9)
                # On and off are timed interleaved, question by question (which goes first
                # alternates), so that load from other processes on the machine hits both alike.
                times: dict[str, dict[str, list[float]]] = {
                    "on": {"allele": [], "region": []}, "off": {"allele": [], "region": []},
                }
                for kind, questions, sqls in (
                    ("allele", lookups, {"on": on_allele, "off": off_allele}),
                    ("region", regions, {"on": on_region, "off": off_region}),
                ):
                    for n, question in enumerate(questions):
                        for mode in (("on", "off") if n % 2 == 0 else ("off", "on")):
                            if kind == "allele":
                                times[mode][kind] += await timed(conn, sqls[mode], [question])
                            else:  # the whole region as one page
                                times[mode][kind] += await timed_pages(conn, *sqls[mode], [question], 10**9)
                results = {}
                for label, mode in (("consent on ", "on"), ("consent off", "off")):
                    allele, region = times[mode]["allele"], times[mode]["region"]
                    results[label] = (allele, region)
                    print(f"{label}: allele p50 {percentile(allele, 50):.2f} ms p99 {percentile(allele, 99):.2f} ms; "
                          f"100 kb region p50 {percentile(region, 50):.1f} ms p99 {percentile(region, 99):.1f} ms")
                region_rows = [len(await conn.fetch(_REGION_SQL, *r)) for r in regions[:20]]
                # A region answer page by page, as the service serves it: the first page's SQL.
                page_times: dict[int, dict[str, list[float]]] = {}
                for limit in sorted({REGION_PAGE_DEFAULT, 1000}):
                    page_times[limit] = {"on": [], "off": []}
                    for n, question in enumerate(regions):
                        for mode in (("on", "off") if n % 2 == 0 else ("off", "on")):
                            sqls = on_region if mode == "on" else off_region
                            page_times[limit][mode] += await timed_pages(conn, *sqls, [question], limit)
                    on_, off_ = page_times[limit]["on"], page_times[limit]["off"]
                    print(f"100 kb region, first page of {limit} variants (page + its patients "
                          f"touched), consent on: p50 {percentile(on_, 50):.2f} ms p99 "
                          f"{percentile(on_, 99):.2f} ms; off: p50 {percentile(off_, 50):.2f} ms "
                          f"p99 {percentile(off_, 99):.2f} ms; p99 ratio on/off "
                          f"{percentile(on_, 99) / percentile(off_, 99):.2f}")
                variant_nos = dict(await conn.fetch("SELECT variant_id, variant_no FROM variants"))
                ceiling = await copy_ceiling(conn, kept_for_ceiling, variant_nos)

            # The service's whole answer: SQL, masking, answer objects, audit row committed.
            service = Queries(pool)
            researcher = Caller("bench", "research", None, "benchmark")
            whole_allele, whole_region, first_page = [], [], []
            for args_ in lookups[:200]:
                started = time.perf_counter()
                await service.allele(researcher, *args_)
                whole_allele.append((time.perf_counter() - started) * 1000)
            for args_ in regions[:50]:
                chrom, start, end = args_[:3]
                started = time.perf_counter()
                page = await service.region(researcher, chrom, start, end)
                first_page.append((time.perf_counter() - started) * 1000)
                while page.next_cursor is not None:  # the rest of the region, page by page
                    after = RegionCursor.decode(page.next_cursor)
                    page = await service.region(researcher, chrom, start, end, after=after)
                whole_region.append((time.perf_counter() - started) * 1000)
            print(f"service answer, consent on (SQL + masking + objects + audit commit): allele p50 "
                  f"{percentile(whole_allele, 50):.2f} ms p99 {percentile(whole_allele, 99):.2f} ms; "
                  f"100 kb region, first page of {REGION_PAGE_DEFAULT} variants p50 "
                  f"{percentile(first_page, 50):.1f} ms p99 {percentile(first_page, 99):.1f} ms, "
                  f"all pages p50 {percentile(whole_region, 50):.1f} ms p99 "
                  f"{percentile(whole_region, 99):.1f} ms ({statistics.mean(region_rows):,.0f} "
                  f"variants per region on average)")

            async with pool.acquire() as conn:
                # Withdrawal: the most common allele's first consenting carrier withdraws.
                common = variants[0]
                target = await conn.fetchval(
                    "SELECT patient_pseudonym FROM research_genotypes WHERE variant_id = $1 LIMIT 1", common[0]
                )
                query = (CHROM, common[1], common[2], common[3])
                before = await conn.fetchrow(_ALLELE_SQL, *query)
                async with pool.acquire() as writer:
                    started = time.perf_counter()
                    await writer.execute(
                        "UPDATE consents SET version = version + 1, withdrawn = true WHERE patient_pseudonym = $1", target
                    )
                    committed = time.perf_counter()
                withdrawal_ms = (committed - started) * 1000
                after = await conn.fetchrow(_ALLELE_SQL, *query)
                invisible_ms = (time.perf_counter() - committed) * 1000
                assert target in before["touched"] and target not in after["touched"]
                print(f"withdrawal commit to invisible: {invisible_ms:.2f} ms (the very next query; "
                      f"carriers {before['carriers']} -> {after['carriers']}); the withdrawal's own "
                      f"transaction (consent row + its counts): {withdrawal_ms:.1f} ms")

        on_allele, on_region = results["consent on "]
        off_allele, off_region = results["consent off"]
        print(f"COPY ingest: {copy_rate:,.0f} genotype rows/s; executemany: {executemany_rate:,.0f} rows/s; "
              f"ratio {copy_rate / executemany_rate:.1f}x")
        print("this server's COPY ceiling (the same rows, already keyed, nothing else done): " + "; ".join(
            f"{label} {rate:,.0f} rows/s (the load reaches {copy_rate / rate:.0%} of it)"
            for label, rate in ceiling.items()))
        print(f"allele p99 ratio on/off: {percentile(on_allele, 99) / percentile(off_allele, 99):.2f}; "
              f"region p99 ratio on/off: {percentile(on_region, 99) / percentile(off_region, 99):.2f}")
    finally:
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="genotype rows in all")
    parser.add_argument("--per-sample", type=int, default=20_000)
    parser.add_argument("--variants", type=int, default=400_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--ceiling-samples", type=int, default=25,
                        help="samples copied again into bare tables, for the COPY ceiling")
    sys.exit(asyncio.run(main(parser.parse_args())))
