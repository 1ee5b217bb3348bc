"""``make bench-overhead``: what genomebus costs on top of the tools it runs.

The same data (default 500k read pairs on a 5 Mb slice of chrX) goes through
1. the raw tools back to back in one shell pipeline (the commands genomebus runs, nothing else:
   bwa mem | samtools fixmate | sort | markdup, then bcftools mpileup | call | norm, indexes), and
2. genomebus end to end (a LIS POST to ingest, streaming upload, checks, Kafka, MinIO, alignment
   and calling services),
alternating in one run so both see the same machine. It prints per-stage times, whether the
two call sets are identical, and ends with ``ratio: <platform/raw>`` (the median of the rounds'
paired ratios; goal <= 1.05).
Then it runs the platform at 1x and 4x the data on fresh service processes and reports each
service's peak RSS (VmHWM of the service process itself, tools excluded; goal: growth <= 1.1x).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from genomebus_common.events import SampleAligned, VariantsCalled
from genomebus_common.objectstore import ObjectStore, file_sha256
from genomebus_common.reference import ReferenceRegistry
from genomebus_common.settings import ServiceSettings
from genomebus_common.topics import SAMPLE_ALIGNED, VARIANTS_CALLED
from genomebus_devstack.envfile import endpoints
from genomebus_devstack.paths import state_dir
from genomebus_devstack.services import ServiceGroup, ServiceProcess
from genomebus_testdata import make_reference, simulate_sample

HOSPITAL = "BENCH"



def raw_run(reference: Path, r1: Path, r2: Path, out: Path, threads: int) -> dict[str, float]:
    """The tools alone, as genomebus calls them, in a shell pipeline."""
    out.mkdir(parents=True, exist_ok=True)
    rg = "@RG\\tID:raw\\tSM:raw\\tLB:raw\\tPL:ILLUMINA"
    per_thread = max(512 // threads, 32)
    align = (
        f"bwa mem -K 100000000 -t {threads} -R '{rg}' {reference} {r1} {r2} 2>/dev/null"
        f" | samtools fixmate -u -m - -"
        f" | samtools sort -u -@ {threads} -m {per_thread}M -T {out}/sort -"
        f" | samtools markdup -@ {threads - 1} -T {out}/md -f {out}/md.stats --write-index - {out}/raw.bam##idx##{out}/raw.bam.bai"
    )
    call = (
        f"bcftools mpileup -f {reference} -a AD,DP -Ou {out}/raw.bam 2>/dev/null"
        f" | bcftools call -mv -Ou | bcftools norm -f {reference} -m -any --check-ref e"
        f" --threads {threads - 1} -Oz -o {out}/raw.vcf.gz 2>/dev/null"
        f" && bcftools index -t -f {out}/raw.vcf.gz"
    )
    times = {}
    for name, command in (("alignment", align), ("calling", call)):
        started = time.perf_counter()
        subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)
        times[name] = time.perf_counter() - started
    times["total"] = times["alignment"] + times["calling"]
    return times


def records(vcf: Path) -> list[str]:
    """Variant records without headers or the sample's read-group-dependent column names."""
    out = subprocess.run(["bcftools", "view", "-H", str(vcf)], capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def platform_run(services: ServiceGroup, token: str, reference_id: str, r1: Path, r2: Path,
                 bootstrap: str, store: ObjectStore, out: Path) -> dict[str, float]:
    """A LIS POST, then wait for variants.called; stage times from the events' arrival."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    import asyncio

    specimen = f"B{os.getpid()}{int(time.time() * 1000) % 10**9}"

    async def go() -> dict[str, float]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        parts = [TopicPartition(t, p) for t in (SAMPLE_ALIGNED.name, VARIANTS_CALLED.name)
                 for p in consumer.partitions_for_topic(t) or range(6)]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)
        started = time.perf_counter()
        body = {
            "hospital_id": HOSPITAL, "specimen_id": specimen, "lis_order_id": f"O{specimen}",
            "national_id": "010190-1234", "sequencing_run": "BENCH",
            "read_group": {"id": "raw", "library": "raw"}, "priority": "routine",
            "reference_id": reference_id,
            "reads": {"r1_sha256": file_sha256(r1), "r2_sha256": file_sha256(r2)},
        }
        async with httpx.AsyncClient(base_url=services["ingest"].url, timeout=3600,
                                     headers={"Authorization": f"Bearer {token}"}) as lis:
            view = (await lis.post("/v1/samples", json=body)).json()

            async def chunks(path: Path):  # noqa: ANN202
                with path.open("rb") as handle:
                    while chunk := await asyncio.to_thread(handle.read, 1 << 20):
                        yield chunk

            for mate, path in (("R1", r1), ("R2", r2)):
                response = await lis.put(view["upload"][mate], content=chunks(path))
            while response.json()["status"] == "awaiting_consent":  # ingest applies the consent
                await asyncio.sleep(0.1)
                response = await lis.get(f"/v1/samples/{view['sample_id']}")
            assert response.json()["status"] == "received", response.text
        sample_id = response.json()["sample_id"]
        times = {"ingest": time.perf_counter() - started}
        called = None
        while called is None:
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                for record in batch:
                    if record.key != sample_id.encode():
                        continue
                    now = time.perf_counter() - started
                    if tp.topic == SAMPLE_ALIGNED.name:
                        times["alignment"] = now - times["ingest"]
                    else:
                        times["calling"] = now - times["ingest"] - times["alignment"]
                        called = VariantsCalled.from_bytes(record.value)
        times["total"] = time.perf_counter() - started
        await consumer.stop()
        store.download(called.vcf, out / f"{specimen}.vcf.gz")
        return times

    return asyncio.run(go())


def give_consent(services: ServiceGroup, token: str) -> None:
    """The bench patient's written consent, recorded once (not part of the timed runs)."""
    response = httpx.post(
        f"{services['consent'].url}/v1/consents",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "bench-patient-consent"},
        json={
            "national_id": "010190-1234", "analysis_consent_given": True,
            "consent_document": "BENCH-DOC", "consent_date": "2026-01-01",
            "secondary_findings": "do_not_report", "research_use": "allowed", "recorded_by": "bench",
        },
        timeout=30,
    )
    assert response.status_code in (200, 201), response.text


def start_services(env: dict[str, str], work: Path, logs: Path) -> ServiceGroup:
    return ServiceGroup([
        ServiceProcess(name, {**env, "GENOMEBUS_WORK_DIR": str(work / name)}, logs)
        for name in ("consent", "ingest", "alignment", "calling")
    ]).__enter__()


def peak_rss_mb(service: ServiceProcess) -> float:
    assert service.process is not None
    for line in Path(f"/proc/{service.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=5_000_000)
    parser.add_argument("--pairs", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=4, help="the larger data set for the RSS check")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    # Stop the services we started when we are stopped ourselves, not only on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    folder = state_dir()
    data = folder / "bench-data"
    stack = endpoints()
    settings = ServiceSettings(**{k.removeprefix("GENOMEBUS_").lower(): v for k, v in stack.items()}, _env_file=None)  # type: ignore[call-arg]
    print(f"data: {args.pairs:,} pairs on {args.length / 1e6:g} Mb (and {args.scale}x for memory)", flush=True)
    reference = make_reference(data / "reference", length=args.length)
    small = simulate_sample(reference, data / f"x1-{args.pairs}", read_pairs=args.pairs, seed=11)
    store = ObjectStore.from_settings(settings)
    manifest = ReferenceRegistry(store, data / "refcache").register(reference.stem, reference, data / "work")
    subprocess.run(["bwa", "index", str(reference)], check=True, capture_output=True) if not Path(f"{reference}.bwt").exists() else None
    subprocess.run(["samtools", "faidx", str(reference)], check=True)

    token = "bench-token"
    env = {
        **stack,
        "GENOMEBUS_PSEUDONYM_KEY": "be" * 32,
        "GENOMEBUS_HOSPITAL_TOKENS": json.dumps({HOSPITAL: hashlib.sha256(token.encode()).hexdigest()}),
        "GENOMEBUS_CONSENT_CLIENTS": json.dumps({HOSPITAL: hashlib.sha256(token.encode()).hexdigest()}),
        "GENOMEBUS_THREADS": str(args.threads),
        "GENOMEBUS_LOG_LEVEL": "WARNING",
    }
    out = Path(tempfile.mkdtemp(prefix="genomebus-bench-"))
    raw_times: list[dict[str, float]] = []
    platform_times: list[dict[str, float]] = []
    group = start_services(env, out / "work", folder / "logs" / "bench")
    try:
        give_consent(group, token)
        for round_ in range(1, args.rounds + 1):
            raw_times.append(raw_run(reference, small.reads_1, small.reads_2, out / f"raw{round_}", args.threads))
            print(f"round {round_} raw      " + "  ".join(f"{k} {v:6.1f}s" for k, v in raw_times[-1].items()), flush=True)
            platform_times.append(platform_run(group, token, manifest.reference.id, small.reads_1, small.reads_2,
                                               settings.kafka_bootstrap_servers, store, out))
            print(f"round {round_} platform " + "  ".join(f"{k} {v:6.1f}s" for k, v in platform_times[-1].items()), flush=True)
        rss_1x = {name: peak_rss_mb(group[name]) for name in ("ingest", "alignment", "calling")}
    finally:
        group.stop()

    platform_vcfs = sorted(out.glob("B*.vcf.gz"), key=lambda p: p.stat().st_mtime)
    identical = records(out / "raw1" / "raw.vcf.gz") == records(platform_vcfs[0])
    print(f"calls identical to the raw pipeline: {'yes' if identical else 'NO'}")

    big = simulate_sample(reference, data / f"x{args.scale}-{args.pairs}", read_pairs=args.pairs * args.scale, seed=12)
    group = start_services(env, out / "work4", folder / "logs" / "bench")
    try:
        platform_run(group, token, manifest.reference.id, big.reads_1, big.reads_2, settings.kafka_bootstrap_servers, store, out)
        rss_nx = {name: peak_rss_mb(group[name]) for name in ("ingest", "alignment", "calling")}
    finally:
        group.stop()
    for name in rss_1x:
        print(f"peak RSS {name:9s} 1x {rss_1x[name]:7.1f} MB   {args.scale}x {rss_nx[name]:7.1f} MB   growth {rss_nx[name] / rss_1x[name]:.2f}x")

    raw_median = statistics.median(t["total"] for t in raw_times)
    platform_median = statistics.median(t["total"] for t in platform_times)
    # Each round pairs a raw run with the platform run right after it, on the same machine
    # state: the median of those paired ratios resists one slow run better than a ratio of
    # medians does.
    paired = [p["total"] / r["total"] for r, p in zip(raw_times, platform_times)]
    print(f"raw median {raw_median:.1f}s, platform median {platform_median:.1f}s; "
          f"per-round ratios {', '.join(f'{x:.3f}' for x in paired)}")
    print(f"ratio: {statistics.median(paired):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
