"""``make demo``: one sample through the whole pipeline on the local stack, the way a LIS sends it.

1. Makes the data (cached): a slice of the real human chrX that Debian's smalt-examples ships,
   and a diploid sample simulated on it with known variants (mason), as a gzipped FASTQ pair.
2. Registers the slice as a reference genome (once), starts the five services.
3. Registers the sample with ingest and streams its reads up, as a hospital LIS would.
4. The hospital records the patient's written consent with the consent service (it may, as it
   now treats the patient: ingest told consent of the registration).
5. Follows the events on Kafka and prints each stage as it completes, up to the registry.
6. Ends with a summary: stage times, where the BAM and VCF are, variant counts, precision and
   recall against the variants the simulation put in, what the registry answers the treating
   hospital and a researcher, and what the citizens' portal shows the patient: who read the data.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import (  # type: ignore[import-untyped]  # aiokafka ships no py.typed
    AIOKafkaConsumer,
    TopicPartition,
)

from genomebus_common.contracts.events import (
    Event,
    SampleAligned,
    SampleReceived,
    StageFailed,
    VariantsCalled,
    VariantsReady,
)
from genomebus_common.contracts.topics import (
    SAMPLE_ALIGNED,
    SAMPLE_RECEIVED_LANES,
    STAGE_FAILED,
    VARIANTS_CALLED,
    VARIANTS_READY,
)
from genomebus_common.runtime.kafka_client import client_options
from genomebus_common.runtime.objectstore import ObjectStore, file_sha256
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit.reference import ReferenceRegistry
from genomebus_testdata import (
    Accuracy,
    SimulatedSample,
    evaluate,
    make_reference,
    read_pairs_for,
    simulate_sample,
)

from .envfile import endpoints
from .paths import state_dir, write_private
from .services import ServiceGroup, ServiceProcess

JsonObject = dict[str, Any]  # a JSON object of an HTTP answer, as httpx decodes it

HOSPITAL, DEMO_CPR = "DEMO", "010190-1234"  # a made-up, well-formed national id
WATCHED: dict[str, type[Event]] = {
    **{lane.name: SampleReceived for lane in SAMPLE_RECEIVED_LANES.values()},
    SAMPLE_ALIGNED.name: SampleAligned,
    VARIANTS_CALLED.name: VariantsCalled,
    VARIANTS_READY.name: VariantsReady,
    STAGE_FAILED.name: StageFailed,
}


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> float:
        self.marks[name] = time.monotonic() - self.started
        return self.marks[name]

    def between(self, a: str, b: str) -> float:
        return self.marks[b] - self.marks[a]


def _secrets(folder: Path) -> dict[str, str]:
    """The demo's pseudonym key and client tokens, made once per stack and kept out of git."""
    path = folder / "demo-secrets.json"
    held: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    wanted: dict[str, Callable[[], str]] = {
        "pseudonym_key": lambda: secrets.token_hex(32),
        "lis_token": lambda: secrets.token_urlsafe(24),
        "research_token": lambda: secrets.token_urlsafe(24),
        "portal_token": lambda: secrets.token_urlsafe(24),
    }
    if not wanted.keys() <= held.keys():
        held = {name: held.get(name) or make() for name, make in wanted.items()}
        write_private(path, json.dumps(held))
    return held


def _grant_landing(settings: ServiceSettings, folder: Path) -> Path:
    """The demo hospital's S3 credentials for its landing prefix, as an operator grants them
    (``genomebus-landing grant``); kept 0600 in the state dir. Returns where."""
    from genomebus_ops.landing import admin_client, grant_landing

    ObjectStore.from_settings(settings).ensure_bucket("genomebus-landing")
    admin = admin_client(
        settings.s3_endpoint,
        settings.s3_access_key,
        settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
    )
    granted = grant_landing(admin, "genomebus-landing", HOSPITAL)
    path = folder / f"landing-{HOSPITAL}.json"
    write_private(
        path,
        json.dumps(
            {
                "bucket": granted.bucket,
                "prefix": granted.prefix,
                "access_key": granted.access_key,
                "secret_key": granted.secret_key,
            }
        )
        + "\n",
    )
    return path


async def _record_consent(url: str, auth: dict[str, str], specimen: str) -> httpx.Response:
    """Record the consent; consent answers 404 until ingest's sample.registered has told it
    this hospital treats the patient (a second or so), so a 404 is retried for a while."""
    body = {
        "national_id": DEMO_CPR,
        "analysis_consent_given": True,
        "consent_document": f"DOC-{specimen}",
        "consent_date": time.strftime("%Y-%m-%d"),
        "secondary_findings": "report",
        "research_use": "allowed",
        "recorded_by": "demo clinician",
    }
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=60) as consent:
        while True:
            recorded = await consent.post(
                "/v1/consents", json=body, headers={"Idempotency-Key": f"demo-{specimen}"}
            )
            if recorded.status_code != 404 or time.monotonic() > deadline:
                return recorded
            await asyncio.sleep(0.5)


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    """The file as an upload body, a MiB at a time (never whole in memory)."""
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, 1 << 20):
            yield chunk


async def _watch_from_now(settings: ServiceSettings) -> AIOKafkaConsumer:
    """An outside consumer positioned at the end of every watched topic, before we post. It
    reads as the stack's administrator (the env file's identity): no service may read all of
    these topics, and none should."""
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    partitions = [
        TopicPartition(topic, p)
        for topic in WATCHED
        for p in (consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))
    ]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:  # resolve the positions now, so nothing posted later is skipped
        await consumer.position(tp)
    return consumer


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        await consumer._client.force_metadata_update()  # noqa: SLF001 (topic made at service start)
        found: set[int] | None = consumer.partitions_for_topic(topic)
        if found:
            return found
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic} does not exist")


async def run(args: argparse.Namespace) -> int:
    folder = state_dir()
    stack = endpoints()
    # _env_file is pydantic-settings' init-time option, unknown to the signature; the values are
    # the env file's strings, which pydantic parses as it parses the environment's.
    settings = ServiceSettings(  # type: ignore[call-arg]  # pydantic-settings' _env_file
        **{k.removeprefix("GENOMEBUS_").lower(): v for k, v in stack.items()},  # type: ignore[arg-type]  # strings, parsed by the settings
        _env_file=None,
    )
    timeline = Timeline()

    say(
        f"1/6 data: {args.length / 1e6:g} Mb of GRCh37 chrX from smalt-examples, "
        f"{args.coverage:g}x, seed {args.seed}"
    )
    data = folder / "demo-data"
    reference_fasta = make_reference(data / "reference", length=args.length)
    sample = simulate_sample(
        reference_fasta,
        data / f"sample-{args.length}-{args.coverage:g}x-seed{args.seed}",
        read_pairs=read_pairs_for(args.coverage, args.length),
        seed=args.seed,
    )
    say(
        f"    {sample.read_pairs:,} read pairs; truth: {sample.snv_count:,} SNVs, "
        f"{sample.indel_count:,} indels ({timeline.mark('data'):.1f}s)"
    )

    say("2/6 reference genome: register once (FASTA, .fai and bwa index in MinIO)")
    store = ObjectStore.from_settings(settings)
    registry = ReferenceRegistry(store, folder / "demo-work" / "references")
    manifest = registry.register(reference_fasta.stem, reference_fasta, folder / "demo-work")
    say(
        f"    {manifest.reference.id} = {manifest.reference.digest} "
        f"({timeline.mark('reference'):.1f}s)"
    )

    keys = _secrets(folder)
    lis_sha = hashlib.sha256(keys["lis_token"].encode()).hexdigest()
    research_sha = hashlib.sha256(keys["research_token"].encode()).hexdigest()
    portal_sha = hashlib.sha256(keys["portal_token"].encode()).hexdigest()
    common = {
        **stack,
        "GENOMEBUS_PSEUDONYM_KEY": keys["pseudonym_key"],
        "GENOMEBUS_HOSPITAL_TOKENS": json.dumps({HOSPITAL: lis_sha}),
        "GENOMEBUS_CONSENT_CLIENTS": json.dumps({HOSPITAL: lis_sha}),
        "GENOMEBUS_REGISTRY_CLIENTS": json.dumps(
            {
                HOSPITAL: {"token_sha256": lis_sha, "role": "hospital", "hospital_id": HOSPITAL},
                "researcher": {"token_sha256": research_sha, "role": "research"},
                "citizen-portal": {"token_sha256": portal_sha, "role": "portal"},
            }
        ),
        "GENOMEBUS_ALIGNER": args.aligner,
        "GENOMEBUS_LOG_LEVEL": "INFO",
    }
    say(
        f"    landing credentials for {HOSPITAL}'s LIS (its own prefix only): "
        f"{_grant_landing(settings, folder)}"
    )
    logs = folder / "logs"
    services = [
        ServiceProcess(
            name, {**common, "GENOMEBUS_WORK_DIR": str(folder / "demo-work" / name)}, logs
        )
        for name in ("consent", "ingest", "alignment", "calling", "registry")
    ]
    say("3/6 services: consent, ingest, alignment, calling, registry (logs in .stack/logs/)")
    with ServiceGroup(services) as group:
        say(f"    ready ({timeline.mark('services'):.1f}s); ingest at {group['ingest'].url}")
        watcher = await _watch_from_now(settings)
        try:
            return await _post_and_follow(
                args,
                group,
                watcher,
                keys,
                sample,
                reference_fasta,
                store,
                manifest.reference.id,
                timeline,
            )
        finally:
            await watcher.stop()


async def _post_and_follow(
    args: argparse.Namespace,
    group: ServiceGroup,
    watcher: AIOKafkaConsumer,
    keys: dict[str, str],
    sample: SimulatedSample,
    reference_fasta: Path,
    store: ObjectStore,
    reference_id: str,
    timeline: Timeline,
) -> int:
    auth = {"Authorization": f"Bearer {keys['lis_token']}"}
    posted = await _post_sample(args.priority, group, auth, sample, reference_id, timeline)
    if posted is None:
        return 1
    sample_id, pseudonym = posted

    say("6/6 following the events on Kafka")
    outcome = await _follow(watcher, sample_id, args.timeout, timeline)
    if outcome is None:
        return 1

    vcf = Path(sample.truth_vcf).parent / f"{sample_id}.calls.vcf.gz"
    store.download(outcome.called.vcf, vcf)
    store.download(outcome.called.vcf_index, vcf.with_name(vcf.name + ".tbi"))
    accuracy = evaluate(vcf, sample.truth_vcf, reference_fasta)
    answers = await _ask_registry(group["registry"].url, auth, keys, pseudonym)
    _print_summary(sample_id, outcome, accuracy, answers, timeline)
    return 0


# --- 4/6 and 5/6: the hospital posts the sample and records the consent ---------------------------
def _registration(
    specimen: str, priority: str, reference_id: str, sample: SimulatedSample
) -> JsonObject:
    return {
        "hospital_id": HOSPITAL,
        "specimen_id": specimen,
        "lis_order_id": f"ORDER-{specimen}",
        "national_id": DEMO_CPR,
        "sequencing_run": "DEMO-RUN-1",
        "read_group": {
            "id": f"{specimen}.L1",
            "library": f"{specimen}.LIB",
            "platform": "ILLUMINA",
        },
        "priority": priority,
        "reference_id": reference_id,
        "reads": {
            "r1_sha256": file_sha256(sample.reads_1),
            "r2_sha256": file_sha256(sample.reads_2),
        },
    }


async def _post_sample(
    priority: str,
    group: ServiceGroup,
    auth: dict[str, str],
    sample: SimulatedSample,
    reference_id: str,
    timeline: Timeline,
) -> tuple[str, str] | None:
    """Register and upload the sample, record the consent and wait until ingest accepts the
    sample. Returns (sample id, patient pseudonym), or None once a refusal is printed."""
    specimen = f"SPEC{int(time.time())}"
    registration = _registration(specimen, priority, reference_id, sample)
    say(
        f"4/6 post: hospital {HOSPITAL} registers specimen {specimen} ({priority}) "
        "and streams its reads"
    )
    async with httpx.AsyncClient(base_url=group["ingest"].url, headers=auth, timeout=600) as lis:
        view = await _register_and_upload(lis, registration, sample)
        if view is None:
            return None
        say(f"    {view['sample_id']}: {view['status']} ({timeline.mark('posted'):.1f}s)")

        say(
            "5/6 consent: the hospital records the patient's written consent (research use allowed)"
        )
        recorded = await _record_consent(group["consent"].url, auth, specimen)
        if recorded.status_code != 201:
            say(f"    consent refused: {recorded.status_code} {recorded.text}")
            return None
        pseudonym: str = recorded.json()["patient_pseudonym"]
        say(
            f"    version {recorded.json()['version']} for patient {pseudonym[:16]}... "
            f"({timeline.mark('consent'):.1f}s)"
        )
        while view["status"] == "awaiting_consent":  # ingest applies the consent event
            await asyncio.sleep(0.2)
            view = (await lis.get(f"/v1/samples/{view['sample_id']}")).json()
        if view["status"] != "received":
            say(f"    ingest did not accept the sample: {view['status']} {view['reasons']}")
            return None
    sample_id: str = view["sample_id"]
    say(f"    accepted as {sample_id}: {view['read_pairs']:,} read pairs checked")
    return sample_id, pseudonym


async def _register_and_upload(
    lis: httpx.AsyncClient, registration: JsonObject, sample: SimulatedSample
) -> JsonObject | None:
    """The sample's view after its registration and both uploads, or None once a refusal is
    printed."""
    created = await lis.post("/v1/samples", json=registration)
    if created.status_code not in (200, 201):
        say(f"    ingest refused the sample: {created.status_code} {created.text}")
        return None
    view: JsonObject = created.json()
    for mate, path in (("R1", sample.reads_1), ("R2", sample.reads_2)):
        response = await lis.put(view["upload"][mate], content=_chunks(path))
        if response.status_code != 200:
            say(f"    upload of {mate} refused: {response.status_code} {response.text}")
            return None
        view = response.json()
    return view


# --- 6/6: the events on Kafka ---------------------------------------------------------------------
@dataclass
class _Seen:
    """The sample's events seen so far on the watched topics."""

    aligned: SampleAligned | None = None
    called: VariantsCalled | None = None
    ready: VariantsReady | None = None

    def take(self, event: Event, topic: str, timeline: Timeline) -> bool:
        """Print the event and keep it; False if a stage failed (the demo then stops)."""
        if isinstance(event, SampleReceived):
            say(f"    [{timeline.mark('received'):6.1f}s] sample.received on {topic}")
        elif isinstance(event, SampleAligned):
            self.aligned = event
            m = event.metrics
            say(
                f"    [{timeline.mark('aligned'):6.1f}s] sample.aligned: {m.reads_total:,} reads, "
                f"mapped {m.mapping_rate:.2%}, duplicates {m.duplicate_rate:.2%}, "
                f"mean coverage {m.mean_coverage:.1f}x"
            )
        elif isinstance(event, VariantsCalled):
            self.called = event
            c = event.counts
            say(
                f"    [{timeline.mark('called'):6.1f}s] variants.called: {c.records:,} records "
                f"({c.snv:,} SNVs, {c.indel:,} indels)"
            )
        elif isinstance(event, VariantsReady):
            self.ready = event
            say(
                f"    [{timeline.mark('ready'):6.1f}s] variants.ready: "
                f"{event.genotypes_loaded:,} genotypes in the national registry"
            )
        elif isinstance(event, StageFailed):
            say(
                f"    [{timeline.mark('failed'):6.1f}s] {event.stage.value} FAILED: "
                f"{event.error_code}: {event.reason}"
            )
            return False
        return True

    def stage(self) -> str:
        """The stage at work now, for a progress note."""
        return "loading" if self.called else "calling" if self.aligned else "aligning"


@dataclass(frozen=True)
class _Outcome:
    """The sample's three results, all seen."""

    aligned: SampleAligned
    called: VariantsCalled
    ready: VariantsReady


async def _follow(
    watcher: AIOKafkaConsumer, sample_id: str, seconds: int, timeline: Timeline
) -> _Outcome | None:
    """Print the sample's events until it is in the registry; None (printed why) if a stage
    failed or ``seconds`` passed first."""
    seen = _Seen()
    key = sample_id.encode()
    deadline = time.monotonic() + seconds
    last_note = time.monotonic()
    while seen.ready is None:
        if time.monotonic() > deadline:
            say(f"    gave up after {seconds}s; see .stack/logs/")
            return None
        batch = await watcher.getmany(timeout_ms=1000)
        for tp, records in batch.items():
            for record in records:
                if record.key != key:
                    continue
                if not seen.take(WATCHED[tp.topic].from_bytes(record.value), tp.topic, timeline):
                    return None
        if time.monotonic() - last_note > 15:
            say(f"    ... {seen.stage()} ({time.monotonic() - timeline.started:.0f}s)")
            last_note = time.monotonic()
    if seen.aligned is None or seen.called is None:
        raise RuntimeError(f"{sample_id} reached the registry before its alignment and calling")
    return _Outcome(aligned=seen.aligned, called=seen.called, ready=seen.ready)


# --- the summary ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _RegistryAnswers:
    """What the registry answered the treating hospital, a researcher and the patient."""

    hospital_view: httpx.Response
    seen_variants: int  # over all pages of the hospital's view
    research: tuple[JsonObject, httpx.Response] | None  # (the variant asked about, the answer)
    access: httpx.Response


async def _ask_registry(
    url: str, auth: dict[str, str], keys: dict[str, str], pseudonym: str
) -> _RegistryAnswers:
    clinical = {**auth, "X-Purpose": "demo: the treating physician reviews the results"}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        hospital_view = await client.get(
            f"/v1/patients/{pseudonym}/variants", params={"limit": 10_000}, headers=clinical
        )
        first = hospital_view.json()["variants"][0] if hospital_view.status_code == 200 else None
        seen_variants = 0
        page = hospital_view
        while page.status_code == 200:  # the clinical view comes a page at a time
            seen_variants += len(page.json()["variants"])
            cursor = page.json().get("next_cursor")
            if cursor is None:
                break
            page = await client.get(
                f"/v1/patients/{pseudonym}/variants",
                params={"limit": 10_000, "cursor": cursor},
                headers=clinical,
            )
        research = None
        if first is not None:
            answer = await client.get(
                "/v1/research/alleles",
                params={k: first[k] for k in ("chrom", "pos", "ref", "alt")},
                headers={
                    "Authorization": f"Bearer {keys['research_token']}",
                    "X-Purpose": "demo: allele frequency",
                },
            )
            research = (first, answer)
        # The patient, through the citizens' portal: who has read my data, and why?
        access = await client.get(
            f"/v1/patients/{pseudonym}/access-log",
            headers={
                "Authorization": f"Bearer {keys['portal_token']}",
                "X-Purpose": "demo: the patient looks at who read their data",
            },
        )
    return _RegistryAnswers(hospital_view, seen_variants, research, access)


def _ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _tools(event: SampleAligned | VariantsCalled) -> str:
    return ", ".join(f"{t.name} {t.version}" for t in event.tools)


def _print_summary(
    sample_id: str,
    outcome: _Outcome,
    accuracy: Accuracy,
    answers: _RegistryAnswers,
    timeline: Timeline,
) -> None:
    aligned, called = outcome.aligned, outcome.called
    between = timeline.between
    say("")
    say("summary")
    say(f"  sample       {sample_id} (patient {called.patient_pseudonym[:16]}...)")
    say(f"  ingest       {between('services', 'posted'):6.1f}s  register + upload + checks")
    say(f"  alignment    {between('consent', 'aligned'):6.1f}s  {_tools(aligned)}")
    say(f"  calling      {between('aligned', 'called'):6.1f}s  {_tools(called)}")
    say(
        f"  registry     {between('called', 'ready'):6.1f}s  "
        "COPY load, consent re-checked at commit"
    )
    bam = aligned.bam
    say(
        f"  BAM          s3://{bam.bucket}/{bam.key} "
        f"({bam.size / 1e6:.1f} MB, sha256 {bam.sha256[:12]}...)"
    )
    say(
        f"  VCF          s3://{called.vcf.bucket}/{called.vcf.key} ({called.vcf.size / 1e3:.0f} kB)"
    )
    c = called.counts
    say(
        f"  variants     {c.snv:,} SNVs, {c.indel:,} indels, Ti/Tv {_ratio(c.ti_tv)}, "
        f"het/hom {_ratio(c.het_hom_ratio)}"
    )
    for line in accuracy.summary().splitlines():
        say(f"  accuracy     {line}")
    _print_energy(outcome.ready)
    _print_registry_answers(answers)
    say(f"  total        {time.monotonic() - timeline.started:.1f}s")


def _print_energy(ready: VariantsReady) -> None:
    energy = ready.energy
    if energy is not None:
        say(
            f"  energy       {energy.cpu_seconds:.1f} CPU s of tools -> "
            f"{energy.kwh * 1000:.2f} Wh at "
            f"{energy.watts_per_core:g} W/core, {energy.heat_recovered_kwh * 1000:.2f} Wh of it "
            "reused as heat (estimates from the tools' CPU time; node recovery fraction "
            f"{energy.heat_recovery_fraction:.0%})"
        )


def _print_registry_answers(answers: _RegistryAnswers) -> None:
    hospital_view = answers.hospital_view
    if hospital_view.status_code == 200:
        seen = hospital_view.json()
        say(
            f"  hospital     sees {answers.seen_variants:,} genotypes of its patient in "
            f"{len(seen['samples'])} sample(s) (each demo run adds one)"
        )
    else:
        say(f"  hospital     {hospital_view.status_code} {hospital_view.text}")
    if answers.research is not None:
        first, research = answers.research
        results = research.json().get("results") or [{}]
        withheld = results[0].get("suppressed")
        say(
            f"  research     {first['chrom']}:{first['pos']} {first['ref']}>{first['alt']}: "
            f"carriers {results[0].get('carriers')}, "
            f"frequency {results[0].get('allele_frequency')} "
            + (f"(withheld: {withheld}; " if withheld else "(")
            + "no answer reveals a group of fewer than 5 patients)"
        )
    access = answers.access
    if access.status_code == 200:
        entries = access.json()["entries"]
        newest = entries[0] if entries else {}
        say(
            f"  patient      the portal shows {len(entries)} read(s) of their data "
            "(a page, newest first); "
            f'{newest.get("client_id")} ({newest.get("role")}) for "{newest.get("purpose")}"'
        )
    else:
        say(f"  patient      access log: {access.status_code} {access.text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genomebus demo", description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=1_000_000, help="reference slice length (bp)")
    parser.add_argument("--coverage", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--aligner", choices=["bwa", "minimap2"], default="bwa")
    parser.add_argument(
        "--priority", default="urgent_clinical", choices=["urgent_clinical", "routine", "research"]
    )
    parser.add_argument("--timeout", type=int, default=900, help="seconds to wait for the pipeline")
    args = parser.parse_args(argv)
    # Stop the services we started when we are stopped ourselves, not only on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
