"""``make bench-overhead``: what genomebus costs on top of the tools it runs, how it grows with
the data, and how a sample's work spreads over several workers.

1. Ratio at 1x (default 500k read pairs on a 5 Mb slice of chrX): the raw tools back to back in
   one shell pipeline (the commands genomebus runs, nothing else: bwa mem -K | samtools fixmate |
   sort | markdup, then bcftools mpileup | call | norm, indexes) and genomebus end to end (a LIS
   POST to ingest, streaming upload, checks, Kafka, MinIO, alignment and calling services),
   alternating in one run so both see the same machine. Prints per-stage times and ends with
   ``ratio: <platform/raw>`` (the median of the rounds' paired ratios; goal <= 1.05).
2. Scales (default 1x, 4x, 10x): the platform on fresh service processes at each scale; prints
   its time (and time / (scale x time at 1x): linear is 1.00) and each service's peak RSS (VmHWM
   of the service process itself, tools excluded; goal: growth <= 1.1x from 1x to 10x). Calls
   must be identical to the raw tools' *on the same chunks*: stock bwa mem breaks ties between
   equal hits with the read's index in its run, so a sample the platform cut into several chunks
   is compared with the raw tools run chunk by chunk (the FASTQ split with the platform's own
   rule, ``genomebus_alignment.core.chunks``; bwa mem -K | fixmate | sort per chunk, then
   samtools merge -c -p | markdup, then unsplit calling). The raw tools use the services' bwa
   (genomebus's patched build when installed) and, when it has ``-J``, give each chunk the index
   of its first read as the services do. A one-chunk sample is the plain raw pipeline.
3. Workers: the same sample (default the 4x one) with 1, 2 and 4 alignment and calling workers
   (same consumer groups, GENOMEBUS_THREADS=1 each), cut into >= 4 read chunks and >= 4 calling
   regions (when calling scatters: a calling that does not is reported as one unit). Prints wall
   time per worker count, the unit and serial times (plan/split, gathers) read from the scatter
   records, ``4 workers / 1 worker``, and a projection to a 64-core node from those measurements.

A stage that gives up on the bench's sample (``genomebus.stage.failed``), a service process that
exits, or a run that outlasts ``--timeout`` stops the bench with the reason and exit status 1.
The stack may be shared (e2e tests, another bench, a run stopped half-way): services with the
same names join the same consumer groups, take each other's events and inherit each other's
unfinished work. So before timing, the bench waits (``--exclusive-wait``) until its own processes
hold every partition of their groups (read from their ``/metrics``) and are idle (no messages
waiting, no tools running, no CPU use), and each run checks that the alignment plan has the chunk
count the bench's settings give; any of these failing prints a WARNING: the figures are suspect.

Ends with machine-readable lines: ``ratio`` (platform/raw at 1x), ``identical`` (yes/no, every
scale), ``rss_growth_10x`` (the largest per-service peak-RSS growth, 10x over 1x),
``speedup_4_workers`` (wall time with 4 workers / with 1, as specified: below 1 is faster).
``--quick`` is a small configuration for trying the bench out (50k pairs, 1 round, 1x and 4x).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import heapq
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from genomebus_common.contracts.events import ObjectRef, SampleAligned, StageFailed, VariantsCalled
from genomebus_common.contracts.topics import SAMPLE_ALIGNED, STAGE_FAILED, VARIANTS_CALLED, Topic
from genomebus_common.runtime.kafka_client import client_options
from genomebus_common.runtime.objectstore import ObjectStore, file_sha256
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit.reference import ReferenceRegistry
from genomebus_devstack import procs
from genomebus_devstack.envfile import endpoints
from genomebus_devstack.paths import state_dir
from genomebus_devstack.services import ServiceProcess
from genomebus_testdata import make_reference, simulate_sample

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

HOSPITAL = "BENCH"
SERVICES = ("consent", "ingest", "alignment", "calling")
MEASURED = ("ingest", "alignment", "calling")  # the services whose peak RSS is reported
SCALED = ("alignment", "calling")  # the stages that scatter, run as N workers in part 3
PROJECTION_CORES = 64


class BenchStopped(Exception):
    """The bench cannot go on: a stage failed, a service died, a run timed out."""


# --- services ----------------------------------------------------------------------------------


@dataclass
class Services:
    """The service processes of one part of the bench (several workers per stage allowed)."""

    processes: list[ServiceProcess]

    def start(self) -> Services:
        try:
            for process in self.processes:
                process.start()
            for process in self.processes:
                process.wait_ready(120)
        except BaseException as exc:
            self.stop()
            if isinstance(exc, Exception):
                raise BenchStopped(f"services did not start: {exc}") from exc
            raise
        return self

    def first(self, name: str) -> ServiceProcess:
        return next(p for p in self.processes if p.name == name)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def check_alive(self) -> None:
        for p in self.processes:
            if p.process is not None and p.process.poll() is not None:
                raise BenchStopped(
                    f"service {p.name} (log {p.log_path}) exited with {p.process.returncode} "
                    f"during the run; its log ends:\n{p.log_tail()}"
                )

    def log_tails(self, name: str, lines: int = 8) -> str:
        return "\n".join(
            f"--- {p.log_path}\n{p.log_tail(lines)}" for p in self.processes if p.name == name
        )


def start_services(
    env: dict[str, str],
    work: Path,
    logs: Path,
    *,
    workers: int = 1,
    worker_env: dict[str, str] | None = None,
) -> Services:
    """consent and ingest once; ``workers`` alignment and calling processes, each with its own
    work dir and log (same service name, so they share the consumer groups)."""
    processes = []
    for name in SERVICES:
        count = workers if name in SCALED else 1
        for i in range(count):
            tag = f"{name}-{i + 1}" if count > 1 else name
            extra = (worker_env or {}) if name in SCALED else {}
            processes.append(
                ServiceProcess(
                    name,
                    {**env, **extra, "GENOMEBUS_WORK_DIR": str(work / tag)},
                    logs / tag if count > 1 else logs,
                )
            )
    return Services(processes).start()


def peak_rss_mb(service: ServiceProcess) -> float:
    assert service.process is not None
    return procs.peak_rss_mb(service.process.pid)


def partition_counts() -> dict[str, int]:
    """Every genomebus topic's partition count (as ``ensure_topics`` creates them)."""
    from genomebus_common.contracts.topics import ALL_TOPICS

    return {t.name: t.partitions for t in ALL_TOPICS}


_LAG = re.compile(r"^genomebus_consumer_lag_messages\{(?P<labels>[^}]*)\}")


def assigned_partitions(process: ServiceProcess) -> dict[tuple[str, str], set[str]]:
    """(group, topic) -> the partitions this service process holds, from its /metrics (consumer
    lag is reported per assigned partition)."""
    held: dict[tuple[str, str], set[str]] = {}
    for match in filter(
        None, map(_LAG.match, httpx.get(f"{process.url}/metrics", timeout=5).text.splitlines())
    ):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        held.setdefault((labels.get("group", ""), labels.get("topic", "")), set()).add(
            labels.get("partition", "")
        )
    return held


def wait_for_consumers(services: Services, timeout_s: float) -> str:
    """Wait until our services alone hold every partition of their consumer groups, each
    partition once, and every worker of a scaled stage holds some of its stage's work: no
    rebalance then stalls units mid-run, and no other service on this stack (an e2e run, another
    bench) shares the groups and takes the bench's events. Returns a warning when it gave up."""
    totals = partition_counts()
    started = time.monotonic()
    problems: list[str] = []
    while True:
        problems = []
        try:
            per_process = [
                (p, assigned_partitions(p)) for p in services.processes if p.name in SCALED
            ]
        except httpx.HTTPError as exc:
            per_process, problems = [], [f"/metrics: {exc}"]
        problems += _worker_problems(per_process)
        problems += _group_problems(per_process, totals)
        if not problems:
            return ""
        if time.monotonic() > started + timeout_s:
            return f"after {timeout_s:.0f}s: " + "; ".join(problems[:4])
        time.sleep(2)


Assignments = list[tuple[ServiceProcess, dict[tuple[str, str], set[str]]]]


def _worker_problems(per_process: Assignments) -> list[str]:
    """Workers that hold nothing yet, and scaled stages where some worker holds no work."""
    problems = [
        f"a {process.name} process holds no partitions yet"
        for process, groups in per_process
        if not groups
    ]
    for stage in SCALED:
        work = [
            {key for key in groups if key[0].endswith(".work.routine")}
            for process, groups in per_process
            if process.name == stage
        ]
        if any(work) and not all(work):
            problems.append(f"not every {stage} worker holds work partitions yet")
    return problems


def _group_problems(per_process: Assignments, totals: dict[str, int]) -> list[str]:
    """Groups with a partition held twice (rebalancing) or some held by no bench process."""
    held: dict[tuple[str, str], list[str]] = {}
    for _, groups in per_process:
        for key, parts in groups.items():
            held.setdefault(key, []).extend(parts)
    problems = []
    for (group, topic), parts in sorted(held.items()):
        total = totals.get(topic, 0)
        if len(parts) != len(set(parts)):
            problems.append(f"{group} on {topic}: a partition held twice (rebalancing)")
        elif total and len(set(parts)) < total:
            problems.append(
                f"{group} on {topic}: the bench holds {len(set(parts))} of {total} "
                f"partitions (another service on this stack shares the group?)"
            )
    return problems


def _proc_stats() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds) of every process."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return stats


def busy(services: Services, window_s: float = 2.0) -> str:
    """Why the services are not idle ('' when they are): messages waiting on their partitions,
    tools running under them, or CPU use over ``window_s`` (an upload or a gather in progress)."""
    lag = 0.0
    for p in services.processes:
        if p.name in SCALED:
            for line in httpx.get(f"{p.url}/metrics", timeout=5).text.splitlines():
                if _LAG.match(line):
                    lag += float(line.rsplit(" ", 1)[1])
    ours = {p.process.pid for p in services.processes if p.process is not None}
    before = _proc_stats()
    time.sleep(window_s)
    after = _proc_stats()
    tools = [pid for pid, (parent, _) in after.items() if parent in ours]
    cpu = sum(after[pid][1] - before[pid][1] for pid in ours if pid in before and pid in after)
    reasons = [f"{lag:.0f} messages waiting"] * (lag > 0) + [f"{len(tools)} tools running"] * bool(
        tools
    )
    if cpu > 0.25 * window_s:
        reasons.append(f"services using {cpu / window_s:.0%} CPU")
    return ", ".join(reasons)


def wait_idle(services: Services, timeout_s: float) -> str:
    """Wait until the services have no leftover work (a run stopped half-way, an e2e test's
    sample on the shared groups): it would be timed with the bench's sample. Returns a warning
    when it gave up."""
    started = time.monotonic()
    said = False
    while reason := busy(services):
        if time.monotonic() > started + timeout_s:
            return f"still busy after {timeout_s:.0f}s ({reason})"
        if not said:
            print(f"   waiting for the services' leftover work to finish ({reason})", flush=True)
            said = True
    if said:
        print(f"   idle after {time.monotonic() - started:.0f}s", flush=True)
    return ""


# --- the raw tools -----------------------------------------------------------------------------


def run_shell(command: str, timeout_s: float, what: str) -> None:
    """One bash pipeline (pipefail), killed with all its tools when it outlasts the timeout."""
    process = subprocess.Popen(["bash", "-o", "pipefail", "-c", command], start_new_session=True)
    try:
        rc = process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise BenchStopped(
            f"timeout: {what} took longer than {timeout_s:.0f}s (--timeout)"
        ) from None
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if rc:
        raise BenchStopped(f"{what} failed (exit {rc}): {command}")


Chunk = tuple[Path, Path, int]  # R1, R2, index of the chunk's first pair in the sample


def bwa_binary() -> str:
    """The bwa the services run: genomebus's patched build (first in their PATH) when built."""
    try:
        from genomebus_devstack.tools import bwa_bin_dir

        patched = bwa_bin_dir() / "bwa"
        return str(patched) if patched.is_file() else "bwa"
    except Exception:  # noqa: BLE001 (an older devstack: the bwa on PATH)
        return "bwa"


def takes_read_offset(bwa: str) -> bool:
    """Whether this bwa has -J (the index of the input's first read in the whole sample, so a
    chunk breaks ties between equal hits as the one-piece run does): the services use it then."""
    # Without arguments bwa mem prints its usage and exits 1: that is the answer, not a failure.
    done = subprocess.run(
        [bwa, "mem"], capture_output=True, stdin=subprocess.DEVNULL, timeout=30, check=False
    )
    return re.search(rb"^\s*-J INT", done.stdout + done.stderr, flags=re.MULTILINE) is not None


def split_chunks(
    r1: Path, r2: Path, batch_bases: int, chunk_bases: int, folder: Path
) -> list[Chunk]:
    """The FASTQ pair cut exactly as the alignment service cuts it (its own pure splitter)."""
    from genomebus_alignment.core.chunks import ChunkRule, split_pairs

    folder.mkdir(parents=True, exist_ok=True)
    paths: list[tuple[Path, Path]] = []

    class Sink:
        def __init__(self, index: int) -> None:
            pair = (folder / f"chunk{index}.r1.fq.gz", folder / f"chunk{index}.r2.fq.gz")
            paths.append(pair)
            self.files = [p.open("wb") for p in pair]

        def write(self, mate: int, data: bytes) -> None:
            self.files[mate].write(data)

        def close(self, pairs: int, bases: int) -> None:
            for handle in self.files:
                handle.close()

    def blocks(path: Path) -> Iterator[bytes]:
        with gzip.open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                yield block

    pairs = split_pairs(blocks(r1), blocks(r2), ChunkRule.for_bases(chunk_bases, batch_bases), Sink)
    firsts = [sum(pairs[:i]) for i in range(len(pairs))]
    # split_pairs closes every sink it opens and counts its pairs: one count per path pair.
    return [(a, b, first) for (a, b), first in zip(paths, firsts, strict=True)]


def raw_run(
    reference: Path,
    chunks: list[Chunk],
    out: Path,
    threads: int,
    batch_bases: int,
    timeout_s: float,
    bwa: str = "bwa",
    read_offset: bool = False,
) -> dict[str, float]:
    """The tools alone, as genomebus calls them, in shell pipelines: one pipeline for a sample
    of one chunk; per chunk align (-J <first read> when ``read_offset``) + sort, then merge +
    markdup, for several."""
    out.mkdir(parents=True, exist_ok=True)
    rg = "@RG\\tID:raw\\tSM:raw\\tLB:raw\\tPL:ILLUMINA"
    per_thread = max(512 // threads, 32)

    def bwa_mem(first_pair: int | None) -> str:
        offset = f" -J {2 * first_pair}" if read_offset and first_pair is not None else ""
        return f"{bwa} mem -K {batch_bases}{offset} -t {threads} -R '{rg}' {reference}"

    markdup = (
        f"samtools markdup -@ {threads - 1} -T {out}/md -f {out}/md.stats --write-index"
        f" - {out}/raw.bam##idx##{out}/raw.bam.bai"
    )
    if len(chunks) == 1:
        r1, r2, _ = chunks[0]
        align = [
            f"{bwa_mem(None)} {r1} {r2} 2>/dev/null | samtools fixmate -u -m - -"
            f" | samtools sort -u -@ {threads} -m {per_thread}M -T {out}/sort - | {markdup}"
        ]
    else:
        align = [
            f"{bwa_mem(first)} {r1} {r2} 2>/dev/null | samtools fixmate -u -m - -"
            f" | samtools sort -l 1 -@ {threads} -m {per_thread}M"
            f" -T {out}/sort{i} -o {out}/chunk{i}.bam -"
            for i, (r1, r2, first) in enumerate(chunks)
        ]
        inputs = " ".join(f"{out}/chunk{i}.bam" for i in range(len(chunks)))
        align.append(f"samtools merge -u -c -p -@ {threads - 1} -o - {inputs} | {markdup}")
    call = (
        f"bcftools mpileup -f {reference} -a AD,DP -Ou {out}/raw.bam 2>/dev/null"
        f" | bcftools call -mv -Ou | bcftools norm -f {reference} -m -any --check-ref e"
        f" --threads {threads - 1} -Oz -o {out}/raw.vcf.gz 2>/dev/null"
        f" && bcftools index -t -f {out}/raw.vcf.gz"
    )
    times: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    for name, commands in (("alignment", align), ("calling", [call])):
        started = time.perf_counter()
        for command in commands:
            run_shell(command, max(deadline - time.monotonic(), 1), f"the raw tools ({name})")
        times[name] = time.perf_counter() - started
    times["total"] = times["alignment"] + times["calling"]
    return times


def records(vcf: Path) -> list[str]:
    """Variant records without headers or the sample's read-group-dependent column names."""
    out = subprocess.run(
        ["bcftools", "view", "-H", str(vcf)], capture_output=True, text=True, check=True
    ).stdout
    return out.splitlines()


def same_calls(a: Path, b: Path) -> tuple[bool, str]:
    ra, rb = records(a), records(b)
    if ra == rb:
        return True, f"{len(ra):,} records"
    differ = len(set(ra) ^ set(rb))
    return False, f"{len(ra):,} vs {len(rb):,} records, {differ:,} not in both"


# --- the platform ------------------------------------------------------------------------------


@dataclass
class StageUnits:
    """One stage's scatter for one sample, from its plan and unit records in the object store."""

    units: int
    unit_seconds: list[float]
    plan_seconds: float
    gather_seconds: float
    scattered: bool

    def describe(self) -> str:
        if not self.scattered:
            return "1 unit (not scattered)"
        mean = statistics.mean(self.unit_seconds) if self.unit_seconds else float("nan")
        return (
            f"{self.units} unit{'s' * (self.units != 1)} "
            f"(mean {mean:.1f}s, max {max(self.unit_seconds, default=0):.1f}s),"
            f" plan {self.plan_seconds:.1f}s, gather {self.gather_seconds:.1f}s"
        )


@dataclass
class PlatformRun:
    times: dict[str, float]
    vcf: Path
    sample_id: str
    stages: dict[str, StageUnits] = field(default_factory=dict)


def stage_units(store: ObjectStore, ref: ObjectRef, event: Any, stage_seconds: float) -> StageUnits:
    """Read the stage's plan and unit records (kept beside its outputs after the gather); a stage
    without a plan did its work as one unit."""
    summary = getattr(event, "scatter", None)
    planned = None
    try:
        from genomebus_common.stagekit.scatter import ScatterStore

        # the stage's folder is samples/<id>/<stage>; its outputs may sit deeper (attempt-<n>/)
        folder = ref.key
        for _ in range(3):
            folder = folder.rsplit("/", 1)[0]
            scatter = ScatterStore(store, ref.bucket, folder)
            if (planned := scatter.read_plan()) is not None:
                break
    except Exception:  # noqa: BLE001 (an unscattered stage, or another version's layout)
        planned = None
    if planned is None:
        return StageUnits(
            summary.units if summary else 1,
            [stage_seconds],
            0.0,
            summary.gather_seconds if summary else 0.0,
            summary is not None,
        )
    plan, _ = planned
    results = [scatter.result(i) for i in range(len(plan.units))]
    return StageUnits(
        units=len(plan.units),
        unit_seconds=[r.wall_seconds for r in results if r is not None],
        plan_seconds=plan.planning_wall_seconds,
        gather_seconds=summary.gather_seconds if summary else 0.0,
        scattered=True,
    )


def platform_run(
    services: Services,
    token: str,
    reference_id: str,
    r1: Path,
    r2: Path,
    kafka: ServiceSettings,
    store: ObjectStore,
    out: Path,
    *,
    timeout_s: float,
    label: str,
) -> PlatformRun:
    """A LIS POST, then wait for variants.called (stage times from the events' arrival), or stop
    at a stage.failed for the sample, a dead service or the timeout."""
    from aiokafka import AIOKafkaConsumer

    specimen = f"B{os.getpid()}{int(time.time() * 1000) % 10**9}"
    body = _registration(specimen, reference_id, r1, r2)

    async def go() -> PlatformRun:
        consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False)
        await consumer.start()
        try:
            await _assign_at_end(consumer, (SAMPLE_ALIGNED, VARIANTS_CALLED, STAGE_FAILED))
            started = time.perf_counter()
            deadline = time.monotonic() + timeout_s
            try:
                sample_id = await asyncio.wait_for(
                    _ingest(services, token, body, r1, r2, timeout_s=timeout_s, label=label),
                    timeout_s,
                )
            except TimeoutError:
                raise BenchStopped(
                    f"timeout: ingest of the {label} sample took longer than "
                    f"{timeout_s:.0f}s (--timeout)"
                ) from None
            times = {"ingest": time.perf_counter() - started}
            aligned, called = await _follow_to_called(
                consumer,
                services,
                sample_id,
                started=started,
                deadline=deadline,
                times=times,
                timeout_s=timeout_s,
                label=label,
            )
            times["total"] = time.perf_counter() - started
        finally:
            await consumer.stop()
        vcf = store.download(called.vcf, out / f"{specimen}.vcf.gz")
        run = PlatformRun(times, vcf, sample_id)
        if aligned is not None:
            run.stages["alignment"] = stage_units(store, aligned.bam, aligned, times["alignment"])
        run.stages["calling"] = stage_units(store, called.vcf, called, times["calling"])
        return run

    return asyncio.run(go())


def _registration(specimen: str, reference_id: str, r1: Path, r2: Path) -> dict[str, Any]:
    """The LIS's registration of the bench sample."""
    return {
        "hospital_id": HOSPITAL,
        "specimen_id": specimen,
        "lis_order_id": f"O{specimen}",
        "national_id": "010190-1234",
        "sequencing_run": "BENCH",
        "read_group": {"id": "raw", "library": "raw"},
        "priority": "routine",
        "reference_id": reference_id,
        "reads": {"r1_sha256": file_sha256(r1), "r2_sha256": file_sha256(r2)},
    }


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    """The file as an upload body, a MiB at a time."""
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, 1 << 20):
            yield chunk


async def _ingest(
    services: Services,
    token: str,
    body: dict[str, Any],
    r1: Path,
    r2: Path,
    *,
    timeout_s: float,
    label: str,
) -> str:
    """Register and upload the sample as the LIS does; its id once ingest has received it."""
    async with httpx.AsyncClient(
        base_url=services.first("ingest").url,
        timeout=timeout_s,
        headers={"Authorization": f"Bearer {token}"},
    ) as lis:
        posted = await lis.post("/v1/samples", json=body)
        if posted.status_code != 201:
            raise BenchStopped(
                f"ingest refused the sample ({label}): {posted.status_code} {posted.text}"
            )
        view = posted.json()
        for mate, path in (("R1", r1), ("R2", r2)):
            response = await lis.put(view["upload"][mate], content=_file_chunks(path))
            if response.status_code != 200:
                raise BenchStopped(
                    f"ingest refused the {mate} upload ({label}): "
                    f"{response.status_code} {response.text}"
                )
        while response.json()["status"] == "awaiting_consent":  # ingest applies the consent
            await asyncio.sleep(0.1)
            response = await lis.get(f"/v1/samples/{view['sample_id']}")
        if response.json()["status"] != "received":
            raise BenchStopped(f"ingest did not accept the sample ({label}): {response.text}")
    return str(response.json()["sample_id"])


async def _assign_at_end(consumer: AIOKafkaConsumer, watched: tuple[Topic, ...]) -> None:
    """Read the watched topics from their current ends: only what the run makes."""
    from aiokafka import TopicPartition

    await consumer.topics()  # metadata for every topic, so the partitions are known
    parts = [
        TopicPartition(t.name, p)
        for t in watched
        for p in (consumer.partitions_for_topic(t.name) or range(t.partitions))
    ]
    consumer.assign(parts)
    await consumer.seek_to_end(*parts)
    for tp in parts:
        await consumer.position(tp)


async def _follow_to_called(
    consumer: AIOKafkaConsumer,
    services: Services,
    sample_id: str,
    *,
    started: float,
    deadline: float,
    times: dict[str, float],
    timeout_s: float,
    label: str,
) -> tuple[SampleAligned | None, VariantsCalled]:
    """The sample's events until variants.called; each stage's time goes into ``times``."""
    aligned: SampleAligned | None = None
    called: VariantsCalled | None = None
    while called is None:
        if time.monotonic() > deadline:
            where = "aligned, not called" if aligned else "not aligned"
            raise BenchStopped(
                f"timeout: the {label} sample ({sample_id}) is {where} after "
                f"{timeout_s:.0f}s (--timeout)"
            )
        services.check_alive()
        for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
            for record in batch:
                if record.key != sample_id.encode():
                    continue
                now = time.perf_counter() - started
                if tp.topic == STAGE_FAILED.name:
                    raise _stage_failed(record.value, services, sample_id, label)
                if tp.topic == SAMPLE_ALIGNED.name and aligned is None:
                    aligned = SampleAligned.from_bytes(record.value)
                    times["alignment"] = now - times["ingest"]
                elif tp.topic == VARIANTS_CALLED.name:
                    called = VariantsCalled.from_bytes(record.value)
                    times.setdefault("alignment", now - times["ingest"])
                    times["calling"] = now - times["ingest"] - times["alignment"]
    return aligned, called


def _stage_failed(value: bytes, services: Services, sample_id: str, label: str) -> BenchStopped:
    """Why the run stops: the stage.failed event for the sample, with that stage's log tail."""
    failed = StageFailed.from_bytes(value)
    assert isinstance(failed, StageFailed)
    return BenchStopped(
        f"stage {failed.stage.value} failed for the {label} sample {sample_id}: "
        f"error_code {failed.error_code}: {failed.reason}\n"
        + services.log_tails(failed.stage.value)
    )


def give_consent(
    services: Services, token: str, settings: ServiceSettings, pseudonym_key: str
) -> None:
    """The bench patient's written consent, recorded once (not part of the timed runs).

    Consent takes it only from a hospital that treats the patient: the bench hospital is made
    one by the sample.registered event ingest would publish for a sample of the patient."""
    from genomebus_common.contracts.events import SampleRegistered
    from genomebus_common.contracts.identifiers import Pseudonymiser, parse_cpr
    from genomebus_common.runtime.broker import create_broker, publish_event

    national_id = "010190-1234"

    async def registered() -> None:
        broker = create_broker(settings)
        async with broker:
            await publish_event(
                broker,
                SampleRegistered(
                    correlation_id="bench-patient",
                    sample_id=f"{HOSPITAL}.bench-patient",
                    patient_pseudonym=Pseudonymiser.from_secret(pseudonym_key).pseudonym(
                        parse_cpr(national_id)
                    ),
                    hospital_id=HOSPITAL,
                ),
            )

    asyncio.run(registered())
    deadline = time.monotonic() + 60
    while True:
        response = httpx.post(
            f"{services.first('consent').url}/v1/consents",
            headers={
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": "bench-patient-consent",
            },
            json={
                "national_id": national_id,
                "analysis_consent_given": True,
                "consent_document": "BENCH-DOC",
                "consent_date": "2026-01-01",
                "secondary_findings": "do_not_report",
                "research_use": "allowed",
                "recorded_by": "bench",
            },
            timeout=30,
        )
        if response.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # until consent has taken the registration from Kafka
    if response.status_code not in (200, 201):
        raise BenchStopped(
            f"consent refused the bench patient's consent: {response.status_code} {response.text}"
        )


def fmt_times(times: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:6.1f}s" for k, v in times.items())


# --- the projection ----------------------------------------------------------------------------


def makespan(units: list[float], workers: int) -> float:
    """Units taken in order by whichever worker is free first."""
    free = [0.0] * max(1, min(workers, len(units)))
    for seconds in units:
        heapq.heapreplace(free, free[0] + seconds)
    return max(free)


def projected(run: PlatformRun, workers: int) -> tuple[float, float]:
    """(wall seconds, serial seconds) of the sample with ``workers`` single-threaded workers, one
    per core: the serial parts (ingest, each stage's plan/split, gather, and what else the stage
    spent outside its units) as measured with one worker, plus each stage's units spread over the
    workers."""
    serial = run.times["ingest"]
    total = 0.0
    for name, stage in run.stages.items():
        # plan, gather, the bus: the stage's time outside its units (units run one after the
        # other with one worker), at least the recorded plan and gather times
        outside = max(
            run.times[name] - sum(stage.unit_seconds), stage.plan_seconds + stage.gather_seconds
        )
        serial += outside
        total += makespan(stage.unit_seconds, workers)
    return serial + total, serial


# --- main --------------------------------------------------------------------------------------


def positive_ints(text: str) -> list[int]:
    values = sorted({int(v) for v in text.split(",") if v.strip()})
    if values and values[0] < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def expected_chunks(pairs: int, read_length: int, batch_bases: int, chunk_bases: int) -> int:
    """How many chunks the alignment service cuts a sample of equal-length reads into."""
    pairs_per_batch = math.ceil(batch_bases / (2 * read_length))
    batches = max(1, round(chunk_bases / batch_bases))
    return math.ceil(pairs / (pairs_per_batch * batches))


class Bench:
    """The three parts, sharing the data, the stack and the warnings."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.scales = sorted(set(args.scales) | {1})
        self.workers_scale = args.workers_scale or (4 if 4 in self.scales else self.scales[-1])
        self.cores = os.cpu_count() or 1
        self.token = "bench-token"
        self.warnings: list[str] = []
        folder = state_dir()
        self.data = folder / "bench-data"
        self.logs = folder / "logs" / "bench"
        stack = endpoints()
        settings = ServiceSettings(  # type: ignore[call-arg]  # pydantic-settings' _env_file
            **{k.removeprefix("GENOMEBUS_").lower(): v for k, v in stack.items()}, _env_file=None
        )
        self.settings = settings  # the stack's administrator: the bench watches every topic
        self.store = ObjectStore.from_settings(settings)
        self.env = {
            **stack,
            "GENOMEBUS_PSEUDONYM_KEY": "be" * 32,
            "GENOMEBUS_HOSPITAL_TOKENS": json.dumps(
                {HOSPITAL: hashlib.sha256(self.token.encode()).hexdigest()}
            ),
            "GENOMEBUS_CONSENT_CLIENTS": json.dumps(
                {HOSPITAL: hashlib.sha256(self.token.encode()).hexdigest()}
            ),
            "GENOMEBUS_THREADS": str(args.threads),
            "GENOMEBUS_LOG_LEVEL": "WARNING",
            "GENOMEBUS_CHUNK_BASES": str(args.chunk_bases),
            "GENOMEBUS_BWA_BATCH_BASES": str(args.batch_bases),
        }
        self.out = Path(tempfile.mkdtemp(prefix="genomebus-bench-"))

    # -- shared steps --

    def prepare(self) -> None:
        args = self.args
        print(
            f"machine: {self.cores} cores; tools use {args.threads} threads in parts 1-2",
            flush=True,
        )
        print(
            f"data: {args.pairs:,} pairs on {args.length / 1e6:g} Mb at 1x; scales "
            f"{', '.join(f'{s}x' for s in self.scales)}; chunks of {args.chunk_bases:,} bases "
            f"(bwa -K {args.batch_bases:,})",
            flush=True,
        )
        self.bwa = bwa_binary()
        self.read_offset = takes_read_offset(self.bwa)
        offset_note = (
            " (has -J: chunks number their reads as in the whole sample)"
            if self.read_offset
            else ""
        )
        print(
            f"raw tools: {self.bwa}{offset_note}, samtools, bcftools from PATH",
            flush=True,
        )
        self.reference = make_reference(self.data / "reference", length=args.length)
        wanted = set() if args.workers_only else set(self.scales)
        wanted |= {self.workers_scale} if args.workers else set()
        self.samples = {
            s: simulate_sample(
                self.reference,
                self.data / f"x{s}-{args.pairs}",
                read_pairs=args.pairs * s,
                seed=10 + s,
            )
            for s in sorted(wanted)
        }
        manifest = ReferenceRegistry(self.store, self.data / "refcache").register(
            self.reference.stem, self.reference, self.data / "work"
        )
        self.reference_id = manifest.reference.id
        if not Path(f"{self.reference}.bwt").exists():
            subprocess.run(["bwa", "index", str(self.reference)], check=True, capture_output=True)
        subprocess.run(["samtools", "faidx", str(self.reference)], check=True)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        print(f"WARNING: {text}", flush=True)

    def timeout_for(self, pairs: int) -> float:
        return self.args.timeout or 600 + pairs / 1000

    def services(
        self, tag: str, *, workers: int = 1, worker_env: dict[str, str] | None = None
    ) -> Services:
        services = start_services(
            self.env,
            self.out / tag,
            self.logs / tag if workers > 1 else self.logs,
            workers=workers,
            worker_env=worker_env,
        )
        try:
            give_consent(services, self.token, self.settings, self.env["GENOMEBUS_PSEUDONYM_KEY"])
            if problem := wait_for_consumers(services, self.args.exclusive_wait):
                self.warn(f"{tag}: consumers {problem}")
        except BaseException:
            services.stop()
            raise
        return services

    def platform(
        self, services: Services, scale: int, label: str, *, batch: int, chunk_bases: int
    ) -> PlatformRun:
        sample = self.samples[scale]
        if problem := wait_idle(services, self.args.exclusive_wait):
            self.warn(f"{label}: services {problem}")
        run = platform_run(
            services,
            self.token,
            self.reference_id,
            sample.reads_1,
            sample.reads_2,
            self.settings,
            self.store,
            self.out,
            timeout_s=self.timeout_for(sample.read_pairs),
            label=label,
        )
        expected = expected_chunks(sample.read_pairs, sample.read_length, batch, chunk_bases)
        got = run.stages.get("alignment")
        if got is not None and got.scattered and got.units != expected:
            self.warn(
                f"{label}: the alignment plan has {got.units} chunks, this bench's settings give "
                f"{expected}: another alignment service on this stack planned the sample?"
            )
        return run

    def raw_chunks(self, scale: int) -> list[Chunk]:
        sample = self.samples[scale]
        folder = self.out / f"chunks{scale}"
        chunks = split_chunks(
            sample.reads_1, sample.reads_2, self.args.batch_bases, self.args.chunk_bases, folder
        )
        if len(chunks) == 1:  # one chunk is the sample itself: the plain raw pipeline
            shutil.rmtree(folder)
            return [(sample.reads_1, sample.reads_2, 0)]
        return chunks

    def raw(self, scale: int, chunks: list[Chunk], folder: Path) -> dict[str, float]:
        return raw_run(
            self.reference,
            chunks,
            folder,
            self.args.threads,
            self.args.batch_bases,
            self.timeout_for(self.samples[scale].read_pairs),
            self.bwa,
            self.read_offset,
        )

    # -- the parts --

    def run(self) -> int:
        ratio = None
        try:
            self.prepare()
            if not self.args.workers_only:
                ratio = self.ratio_and_scales()
            runs = self.workers() if self.args.workers else {}
        finally:
            shutil.rmtree(self.out, ignore_errors=True)
        if self.warnings:
            print(f"\n{len(self.warnings)} warning(s): the figures may not be this bench's alone")
        print()
        if ratio is None:
            print("ratio: n/a\nidentical: n/a\nrss_growth_10x: n/a")
        else:
            top = self.scales[-1]
            growth = max(self.rss[top][n] / self.rss[1][n] for n in MEASURED)
            print(f"ratio: {ratio:.3f}")
            print(f"identical: {'yes' if all(self.identical.values()) else 'no'}")
            print(
                f"rss_growth_10x: {growth:.3f}"
                if top == 10
                else "rss_growth_10x: n/a (10x not run)"
            )
            if top not in (1, 10):
                print(f"rss_growth_{top}x: {growth:.3f}")
        if 1 in runs and 4 in runs:
            print(f"speedup_4_workers: {runs[4].times['total'] / runs[1].times['total']:.3f}")
        else:
            print("speedup_4_workers: n/a (1 and 4 workers not both run)")
        return 0

    def ratio_and_scales(self) -> float:
        args, out = self.args, self.out
        batch, chunk_bases = args.batch_bases, args.chunk_bases
        self.rss: dict[int, dict[str, float]] = {}
        self.identical: dict[int, bool] = {}
        totals: dict[int, float] = {}

        print("\n1. ratio platform/raw at 1x", flush=True)
        chunks_1x = self.raw_chunks(1)
        raw_times: list[dict[str, float]] = []
        platform_times: list[dict[str, float]] = []
        services = self.services("x1")
        try:
            for round_ in range(1, args.rounds + 1):
                raw_times.append(self.raw(1, chunks_1x, out / f"raw1-{round_}"))
                print(f"round {round_} raw      {fmt_times(raw_times[-1])}", flush=True)
                run = self.platform(services, 1, "1x", batch=batch, chunk_bases=chunk_bases)
                platform_times.append(run.times)
                print(f"round {round_} platform {fmt_times(run.times)}", flush=True)
                # A fresh process that has seen one 1x sample, as at the other scales.
                if round_ == 1:
                    self.rss[1] = {name: peak_rss_mb(services.first(name)) for name in MEASURED}
                    self.identical[1], detail = same_calls(out / "raw1-1" / "raw.vcf.gz", run.vcf)
                    print(
                        f"calls identical to the raw pipeline ({len(chunks_1x)} chunk(s)): "
                        f"{'yes' if self.identical[1] else 'NO'} ({detail})",
                        flush=True,
                    )
                    print(
                        "units: "
                        + " / ".join(f"{k} {v.describe()}" for k, v in run.stages.items()),
                        flush=True,
                    )
                shutil.rmtree(out / f"raw1-{round_}", ignore_errors=True)
                run.vcf.unlink(missing_ok=True)
        finally:
            services.stop()
        totals[1] = statistics.median(t["total"] for t in platform_times)
        raw_median = statistics.median(t["total"] for t in raw_times)
        paired = [p["total"] / r["total"] for r, p in zip(raw_times, platform_times, strict=True)]
        print(
            f"raw median {raw_median:.1f}s, platform median {totals[1]:.1f}s; "
            f"per-round ratios {', '.join(f'{x:.3f}' for x in paired)}",
            flush=True,
        )

        if len(self.scales) > 1:
            print(
                "\n2. scales (fresh services each; raw tools on the platform's chunks)", flush=True
            )
        for scale in self.scales[1:]:
            services = self.services(f"x{scale}")
            try:
                run = self.platform(
                    services, scale, f"{scale}x", batch=batch, chunk_bases=chunk_bases
                )
                self.rss[scale] = {name: peak_rss_mb(services.first(name)) for name in MEASURED}
            finally:
                services.stop()
            totals[scale] = run.times["total"]
            print(f"{scale}x platform {fmt_times(run.times)}", flush=True)
            print(
                f"{scale}x units: "
                + " / ".join(f"{k} {v.describe()}" for k, v in run.stages.items()),
                flush=True,
            )
            chunks = self.raw_chunks(scale)
            raw = self.raw(scale, chunks, out / f"raw{scale}")
            self.identical[scale], detail = same_calls(out / f"raw{scale}" / "raw.vcf.gz", run.vcf)
            print(
                f"{scale}x raw on the same {len(chunks)} chunk(s) {fmt_times(raw)} "
                "(split not timed); "
                f"calls identical: {'yes' if self.identical[scale] else 'NO'} ({detail})",
                flush=True,
            )
            shutil.rmtree(out / f"raw{scale}", ignore_errors=True)
            shutil.rmtree(out / f"chunks{scale}", ignore_errors=True)
            run.vcf.unlink(missing_ok=True)

        print("\ntime and peak RSS per scale (VmHWM of each service process, tools excluded)")
        for scale in self.scales:
            linear = totals[scale] / (scale * totals[1])
            print(
                f"  {scale:3d}x {self.samples[scale].read_pairs:>10,} pairs  "
                f"platform {totals[scale]:7.1f}s"
                f"  time/(scale x 1x) {linear:.2f}  RSS "
                + "  ".join(f"{name} {self.rss[scale][name]:6.1f} MB" for name in MEASURED)
            )
        top = self.scales[-1]
        if top > 1:
            print(
                f"  RSS growth {top}x/1x: "
                + "  ".join(f"{n} {self.rss[top][n] / self.rss[1][n]:.2f}x" for n in MEASURED)
                + "  (goal <= 1.10x)"
            )
        return statistics.median(paired)

    def workers(self) -> dict[int, PlatformRun]:
        args, scale = self.args, self.workers_scale
        sample = self.samples[scale]
        total_bases = 2 * sample.read_pairs * sample.read_length
        batch, note = args.batch_bases, ""
        if (
            total_bases < 4 * batch
        ):  # a small sample: smaller bwa batches, so it still makes 4 chunks
            batch = total_bases // 4
            note = f" (bwa -K lowered to {batch:,} so this small sample makes 4 chunks)"
        chunk_bases = max(1, total_bases // batch // 4) * batch
        region = math.ceil(args.length / 4)
        worker_env = {
            "GENOMEBUS_THREADS": "1",
            "GENOMEBUS_BWA_BATCH_BASES": str(batch),
            "GENOMEBUS_CHUNK_BASES": str(chunk_bases),
            "GENOMEBUS_REGION_SIZE_BP": str(region),
        }
        chunks = expected_chunks(sample.read_pairs, sample.read_length, batch, chunk_bases)
        print(
            f"\n3. workers: the {scale}x sample ({sample.read_pairs:,} pairs) with "
            f"{', '.join(map(str, args.workers))} alignment and calling workers, "
            "GENOMEBUS_THREADS=1 each;"
            f" {chunks} read chunks of {chunk_bases // batch} bwa batch(es) of {batch:,} bases"
            f"{note}; "
            f"calling regions of {region:,} bp ({math.ceil(args.length / region)} regions)",
            flush=True,
        )
        print(
            f"   this machine has {self.cores} cores: "
            f"more than {self.cores} single-threaded workers share "
            f"cores, so the speed-up here is bounded by {self.cores}x, not by the worker count",
            flush=True,
        )
        runs: dict[int, PlatformRun] = {}
        for n in args.workers:
            services = self.services(f"workers{n}", workers=n, worker_env=worker_env)
            try:
                run = self.platform(
                    services,
                    scale,
                    f"{scale}x, {n} worker{'s' * (n != 1)}",
                    batch=batch,
                    chunk_bases=chunk_bases,
                )
            finally:
                services.stop()
            runs[n] = run
            run.vcf = run.vcf.rename(self.out / f"workers{n}.vcf.gz")
            print(f"   {n} worker{'s' * (n != 1)}: {fmt_times(run.times)}", flush=True)
            for name, stage in run.stages.items():
                print(f"      {name}: {stage.describe()}", flush=True)
        first = runs[min(runs)]
        same = all(same_calls(first.vcf, r.vcf)[0] for r in runs.values())
        print(f"   calls identical whatever the worker count: {'yes' if same else 'NO'}")
        if 1 not in runs:
            return runs
        one = runs[1]
        base = one.times["total"]
        for n, run in runs.items():
            model, _ = projected(one, min(n, self.cores))
            print(
                f"   {n} / 1 worker: time ratio {run.times['total'] / base:.3f} (speed-up "
                f"{base / run.times['total']:.2f}x; "
                f"model on {self.cores} cores {base / model:.2f}x)"
            )
        wall, serial = projected(one, PROJECTION_CORES)
        parallel = base - serial
        many = serial + parallel / PROJECTION_CORES
        units = " + ".join(f"{s.units} {k}" for k, s in one.stages.items())
        print(
            f"   projection to a {PROJECTION_CORES}-core node "
            f"({PROJECTION_CORES} workers x 1 thread per stage;"
            " assumes units scale until cores or the serial parts dominate;"
            " serial parts = ingest, plan/split,"
            f" gathers (merge+markdup, concat+norm) and the bus, at their measured 1-thread times):"
        )
        print(
            f"     1-worker run: serial {serial:.1f}s ({serial / base:.0%}), units {parallel:.1f}s;"
            f" this sample ({units} units) {wall:.1f}s = {base / wall:.1f}x,"
            " capped by its longest units;"
            f" cut into >= {PROJECTION_CORES} units per stage {many:.1f}s = {base / many:.1f}x"
            f" (Amdahl bound {base / serial if serial else float('inf'):.1f}x)"
        )
        return runs


def main() -> int:
    parser = argparse.ArgumentParser(
        description="make bench-overhead: genomebus vs the raw tools, "
        "growth with the data, speed-up with workers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]),
    )
    parser.add_argument("--length", type=int, default=5_000_000, help="reference slice, bp")
    parser.add_argument("--pairs", type=int, default=500_000, help="read pairs at 1x")
    parser.add_argument("--rounds", type=int, default=3, help="paired raw/platform rounds at 1x")
    parser.add_argument(
        "--scales",
        "--scale",
        type=positive_ints,
        default=[1, 4, 10],
        help="data sizes, multiples of --pairs (default 1,4,10; 1 is always run)",
    )
    parser.add_argument(
        "--workers",
        type=positive_ints,
        default=[1, 2, 4],
        help="alignment and calling workers per stage to time (default 1,2,4; '' skips)",
    )
    parser.add_argument(
        "--workers-scale",
        type=int,
        default=None,
        help="the sample the workers part uses (default 4x, or the largest scale)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 2,
        help="tool threads for the raw tools and the services (parts 1, 2)",
    )
    parser.add_argument(
        "--chunk-bases", type=int, default=500_000_000, help="GENOMEBUS_CHUNK_BASES (parts 1, 2)"
    )
    parser.add_argument(
        "--batch-bases", type=int, default=100_000_000, help="bwa mem -K, GENOMEBUS_BWA_BATCH_BASES"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one run (raw or platform) may take; default 600 + 1 ms per read pair",
    )
    parser.add_argument(
        "--exclusive-wait",
        type=float,
        default=1800,
        help="seconds to wait, before timing, for other services on the stack to leave "
        "the bench's consumer groups and for leftover work to finish (then go on, "
        "with a warning)",
    )
    parser.add_argument(
        "--workers-only",
        action="store_true",
        help="run part 3 alone (the other figures print as n/a)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="try it out: --pairs 50000 --rounds 1 --scales 1,4 (unless given)",
    )
    args = parser.parse_args()
    if args.quick:
        given = {a.split("=")[0] for a in sys.argv}
        args.pairs = args.pairs if "--pairs" in given else 50_000
        args.rounds = args.rounds if "--rounds" in given else 1
        args.scales = args.scales if given & {"--scales", "--scale"} else [1, 4]
    # Stop the services we started when we are stopped ourselves, not only on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return Bench(args).run()
    except BenchStopped as exc:
        print(f"bench stopped: {exc}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
