"""``make bench-registry``: the national registry's load and query figures at scale.

Builds a fresh database with the registry's own migrations, then measures, in one run:
- COPY ingest rate: genotype rows per second through the registry's loader (staging COPY, then
  set-based inserts, one transaction per sample), and its ratio to ``executemany`` on the same
  rows (goal >= 300k rows/s);
- allele lookup and 100 kb region query latency (p50/p99) at the target size (default 10M
  genotype rows) with consent enforcement on (the research views) and off (the same SQL on the
  raw tables), and their ratio (goal p99 <= 3 ms, ratio <= 1.2);
- withdrawal commit to invisible: a patient's withdrawal commits, and the very next research
  query no longer counts them (the time between the commit returning and that answer).
Data are synthetic (pseudonymous ids, positions on one 5 Mb contig, common and rare alleles).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator, Iterable
from importlib import resources

import asyncpg

from genomebus_common.db import connect_pool, load_migrations
from genomebus_devstack.envfile import endpoints
from genomebus_registry.domain import GenotypeRow, variant_id
from genomebus_registry.loader import load_genotypes
from genomebus_registry.queries import _ALLELE_SQL, _REGION_SQL

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


async def aiter(rows: Iterable[GenotypeRow]) -> AsyncIterator[GenotypeRow]:
    for row in rows:
        yield row


async def insert_sample(conn: asyncpg.Connection, i: int, rows: int) -> None:
    await conn.execute(
        """INSERT INTO samples (sample_id, patient_pseudonym, hospital_id, reference_id,
               reference_digest, tools, vcf, vcf_sha256, bam_sha256, source_event_id,
               correlation_id, consent_version, genotypes_loaded)
           VALUES ($1, $2, 'BENCH', 'bench', $3, '[]', '{}', $4, $4, gen_random_uuid(), $1, 1, $5)""",
        f"S{i}", pseudonym(i), DIGEST, "0" * 64, rows,
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def timed(conn: asyncpg.Connection, sql: str, args_list: list[tuple], repeat: int = 1) -> list[float]:
    times = []
    for args in args_list:
        for _ in range(repeat):
            started = time.perf_counter()
            await conn.fetch(sql, *args)
            times.append((time.perf_counter() - started) * 1000)
    return times


def unenforced(sql: str) -> str:
    """The same query without consent: every non-quarantined sample counts."""
    raw_samples = "(SELECT sample_id, patient_pseudonym, reference_digest FROM samples)"
    raw_genotypes = (
        "(SELECT g.variant_id, g.sample_id, g.alt_count, s.patient_pseudonym, s.reference_digest "
        "FROM genotypes g JOIN samples s ON s.sample_id = g.sample_id)"
    )
    return sql.replace("research_genotypes g", f"{raw_genotypes} g").replace(
        "research_samples", f"{raw_samples} AS research_samples"
    )


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
                # executemany on a few samples, for the ratio (rolled back: only the rate counts)
                rows = sample_rows(variants, args.per_sample, rng)
                tx = conn.transaction()
                await tx.start()
                started = time.perf_counter()
                await conn.executemany(
                    "INSERT INTO variants VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    [(r.variant_id, DIGEST, r.chrom, r.pos, r.ref, r.alt) for r in rows],
                )
                await conn.executemany(
                    "INSERT INTO genotypes VALUES ($1, $2, $3, $4, $5)",
                    [("X0", r.variant_id, r.alt_count, r.dp, r.gq) for r in rows],
                )
                executemany_rate = len(rows) / (time.perf_counter() - started)
                await tx.rollback()

                load_seconds = 0.0
                loaded = 0
                for i in range(samples):
                    rows = sample_rows(variants, args.per_sample, rng)
                    started = time.perf_counter()
                    async with conn.transaction():
                        counts = await load_genotypes(conn, f"S{i}", DIGEST, aiter(rows))
                        await insert_sample(conn, i, counts.genotypes)
                    load_seconds += time.perf_counter() - started
                    loaded += counts.genotypes
                    if (i + 1) % max(1, samples // 10) == 0:
                        print(f"  loaded {loaded:,} rows ({loaded / load_seconds:,.0f} rows/s)", flush=True)
                copy_rate = loaded / load_seconds
                # Consent: 90 % allow research, 7 % own treatment only, 3 % withdrawn.
                await conn.executemany(
                    """INSERT INTO consents (patient_pseudonym, version, analysis_consent_given,
                           research_use, withdrawn, changed_at) VALUES ($1, 1, $2, $3, $4, now())""",
                    [
                        (pseudonym(i), True,
                         "allowed" if r < 0.93 else "own_treatment_only", r >= 0.97)
                        for i, r in ((i, rng.random()) for i in range(samples))
                    ],
                )
                await conn.execute("VACUUM ANALYZE")  # as autovacuum would after a bulk load

                lookups = [(CHROM, pos, ref, alt) for _, pos, ref, alt in rng.sample(variants, args.queries)]
                regions = [(CHROM, s, s + 100_000) for s in (rng.randrange(1, LENGTH - 100_000) for _ in range(args.queries // 5))]
                for sql in (_ALLELE_SQL, unenforced(_ALLELE_SQL)):  # warm the caches
                    await timed(conn, sql, lookups[:50])
                results = {}
                for label, allele_sql, region_sql in (
                    ("consent on ", _ALLELE_SQL, _REGION_SQL),
                    ("consent off", unenforced(_ALLELE_SQL), unenforced(_REGION_SQL)),
                ):
                    allele = await timed(conn, allele_sql, lookups)
                    region = await timed(conn, region_sql, regions)
                    results[label] = (allele, region)
                    print(f"{label}: allele p50 {percentile(allele, 50):.2f} ms p99 {percentile(allele, 99):.2f} ms; "
                          f"100 kb region p50 {percentile(region, 50):.1f} ms p99 {percentile(region, 99):.1f} ms")

                # Withdrawal: the most common allele's first consenting carrier withdraws.
                common = variants[0]
                target = await conn.fetchval(
                    "SELECT patient_pseudonym FROM research_genotypes WHERE variant_id = $1 LIMIT 1", common[0]
                )
                query = (CHROM, common[1], common[2], common[3])
                before = await conn.fetchrow(_ALLELE_SQL, *query)
                async with pool.acquire() as writer:
                    await writer.execute(
                        "UPDATE consents SET version = version + 1, withdrawn = true WHERE patient_pseudonym = $1", target
                    )
                    committed = time.perf_counter()
                after = await conn.fetchrow(_ALLELE_SQL, *query)
                invisible_ms = (time.perf_counter() - committed) * 1000
                assert target in before["touched"] and target not in after["touched"]
                print(f"withdrawal commit to invisible: {invisible_ms:.2f} ms (the very next query; "
                      f"carriers {before['carriers']} -> {after['carriers']})")

        on_allele, on_region = results["consent on "]
        off_allele, off_region = results["consent off"]
        print(f"COPY ingest: {copy_rate:,.0f} genotype rows/s; executemany: {executemany_rate:,.0f} rows/s; "
              f"ratio {copy_rate / executemany_rate:.1f}x")
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
    sys.exit(asyncio.run(main(parser.parse_args())))
