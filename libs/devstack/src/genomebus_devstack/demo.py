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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

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
from genomebus_testdata import evaluate, make_reference, read_pairs_for, simulate_sample

from .envfile import endpoints
from .paths import state_dir, write_private
from .services import ServiceGroup, ServiceProcess

HOSPITAL, DEMO_CPR = "DEMO", "010190-1234"  # a made-up, well-formed national id
WATCHED = {
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
    held = json.loads(path.read_text()) if path.exists() else {}
    wanted = {
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
        found = consumer.partitions_for_topic(topic)
        if found:
            return found
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic} does not exist")


async def run(args: argparse.Namespace) -> int:
    folder = state_dir()
    stack = endpoints()
    settings = ServiceSettings(
        **{k.removeprefix("GENOMEBUS_").lower(): v for k, v in stack.items()}, _env_file=None
    )  # type: ignore[call-arg]
    timeline = Timeline()

    say(
        f"1/6 data: {args.length / 1e6:g} Mb of GRCh37 chrX from smalt-examples, {args.coverage:g}x, seed {args.seed}"
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
        f"    {manifest.reference.id} = {manifest.reference.digest} ({timeline.mark('reference'):.1f}s)"
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
    args, group, watcher, keys, sample, reference_fasta, store, reference_id, timeline
) -> int:
    specimen = f"SPEC{int(time.time())}"
    registration = {
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
        "priority": args.priority,
        "reference_id": reference_id,
        "reads": {
            "r1_sha256": file_sha256(sample.reads_1),
            "r2_sha256": file_sha256(sample.reads_2),
        },
    }
    auth = {"Authorization": f"Bearer {keys['lis_token']}"}
    say(
        f"4/6 post: hospital {HOSPITAL} registers specimen {specimen} ({args.priority}) and streams its reads"
    )
    async with httpx.AsyncClient(base_url=group["ingest"].url, headers=auth, timeout=600) as lis:
        created = await lis.post("/v1/samples", json=registration)
        if created.status_code not in (200, 201):
            say(f"    ingest refused the sample: {created.status_code} {created.text}")
            return 1
        view = created.json()
        for mate, path in (("R1", sample.reads_1), ("R2", sample.reads_2)):
            response = await lis.put(view["upload"][mate], content=_chunks(path))
            if response.status_code != 200:
                say(f"    upload of {mate} refused: {response.status_code} {response.text}")
                return 1
            view = response.json()
        say(f"    {view['sample_id']}: {view['status']} ({timeline.mark('posted'):.1f}s)")

        say(
            "5/6 consent: the hospital records the patient's written consent (research use allowed)"
        )
        recorded = await _record_consent(group["consent"].url, auth, specimen)
        if recorded.status_code != 201:
            say(f"    consent refused: {recorded.status_code} {recorded.text}")
            return 1
        pseudonym = recorded.json()["patient_pseudonym"]
        say(
            f"    version {recorded.json()['version']} for patient {pseudonym[:16]}... "
            f"({timeline.mark('consent'):.1f}s)"
        )
        while view["status"] == "awaiting_consent":  # ingest applies the consent event
            await asyncio.sleep(0.2)
            view = (await lis.get(f"/v1/samples/{view['sample_id']}")).json()
        if view["status"] != "received":
            say(f"    ingest did not accept the sample: {view['status']} {view['reasons']}")
            return 1
    sample_id = view["sample_id"]
    say(f"    accepted as {sample_id}: {view['read_pairs']:,} read pairs checked")

    say("6/6 following the events on Kafka")
    aligned: SampleAligned | None = None
    called: VariantsCalled | None = None
    ready: VariantsReady | None = None
    deadline = time.monotonic() + args.timeout
    last_note = time.monotonic()
    while ready is None:
        if time.monotonic() > deadline:
            say(f"    gave up after {args.timeout}s; see .stack/logs/")
            return 1
        batch = await watcher.getmany(timeout_ms=1000)
        for tp, records in batch.items():
            for record in records:
                if record.key != sample_id.encode():
                    continue
                event: Event = WATCHED[tp.topic].from_bytes(record.value)
                if isinstance(event, SampleReceived):
                    say(f"    [{timeline.mark('received'):6.1f}s] sample.received on {tp.topic}")
                elif isinstance(event, SampleAligned):
                    aligned = event
                    m = event.metrics
                    say(
                        f"    [{timeline.mark('aligned'):6.1f}s] sample.aligned: {m.reads_total:,} reads, "
                        f"mapped {m.mapping_rate:.2%}, duplicates {m.duplicate_rate:.2%}, "
                        f"mean coverage {m.mean_coverage:.1f}x"
                    )
                elif isinstance(event, VariantsCalled):
                    called = event
                    c = event.counts
                    say(
                        f"    [{timeline.mark('called'):6.1f}s] variants.called: {c.records:,} records "
                        f"({c.snv:,} SNVs, {c.indel:,} indels)"
                    )
                elif isinstance(event, VariantsReady):
                    ready = event
                    say(
                        f"    [{timeline.mark('ready'):6.1f}s] variants.ready: {event.genotypes_loaded:,} "
                        f"genotypes in the national registry"
                    )
                elif isinstance(event, StageFailed):
                    say(
                        f"    [{timeline.mark('failed'):6.1f}s] {event.stage.value} FAILED: {event.error_code}: {event.reason}"
                    )
                    return 1
        if time.monotonic() - last_note > 15:
            stage = "loading" if called else "calling" if aligned else "aligning"
            say(f"    ... {stage} ({time.monotonic() - timeline.started:.0f}s)")
            last_note = time.monotonic()

    vcf = Path(sample.truth_vcf).parent / f"{sample_id}.calls.vcf.gz"
    store.download(called.vcf, vcf)
    store.download(called.vcf_index, vcf.with_name(vcf.name + ".tbi"))
    accuracy = evaluate(vcf, sample.truth_vcf, reference_fasta)
    registry = group["registry"].url
    async with httpx.AsyncClient(base_url=registry, timeout=60) as client:
        hospital_view = await client.get(
            f"/v1/patients/{pseudonym}/variants",
            params={"limit": 10_000},
            headers={**auth, "X-Purpose": "demo: the treating physician reviews the results"},
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
                headers={**auth, "X-Purpose": "demo: the treating physician reviews the results"},
            )
        research = None
        if first is not None:
            research = await client.get(
                "/v1/research/alleles",
                params={k: first[k] for k in ("chrom", "pos", "ref", "alt")},
                headers={
                    "Authorization": f"Bearer {keys['research_token']}",
                    "X-Purpose": "demo: allele frequency",
                },
            )
        # The patient, through the citizens' portal: who has read my data, and why?
        access = await client.get(
            f"/v1/patients/{pseudonym}/access-log",
            headers={
                "Authorization": f"Bearer {keys['portal_token']}",
                "X-Purpose": "demo: the patient looks at who read their data",
            },
        )
    say("")
    say("summary")
    say(f"  sample       {sample_id} (patient {called.patient_pseudonym[:16]}...)")
    say(
        f"  ingest       {timeline.between('services', 'posted'):6.1f}s  register + upload + checks"
    )
    say(
        f"  alignment    {timeline.between('consent', 'aligned'):6.1f}s  {', '.join(f'{t.name} {t.version}' for t in aligned.tools)}"
    )  # type: ignore[union-attr]
    say(
        f"  calling      {timeline.between('aligned', 'called'):6.1f}s  {', '.join(f'{t.name} {t.version}' for t in called.tools)}"
    )
    say(
        f"  registry     {timeline.between('called', 'ready'):6.1f}s  COPY load, consent re-checked at commit"
    )
    say(
        f"  BAM          s3://{aligned.bam.bucket}/{aligned.bam.key} ({aligned.bam.size / 1e6:.1f} MB, sha256 {aligned.bam.sha256[:12]}...)"
    )  # type: ignore[union-attr]
    say(
        f"  VCF          s3://{called.vcf.bucket}/{called.vcf.key} ({called.vcf.size / 1e3:.0f} kB)"
    )
    c = called.counts
    ratio = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
    say(
        f"  variants     {c.snv:,} SNVs, {c.indel:,} indels, Ti/Tv {ratio(c.ti_tv)}, het/hom {ratio(c.het_hom_ratio)}"
    )
    for line in accuracy.summary().splitlines():
        say(f"  accuracy     {line}")
    energy = ready.energy if ready is not None else None  # type: ignore[union-attr]
    if energy is not None:
        say(
            f"  energy       {energy.cpu_seconds:.1f} CPU s of tools -> {energy.kwh * 1000:.2f} Wh at "
            f"{energy.watts_per_core:g} W/core, {energy.heat_recovered_kwh * 1000:.2f} Wh of it "
            "reused as heat (estimates from the tools' CPU time; node recovery fraction "
            f"{energy.heat_recovery_fraction:.0%})"
        )
    if hospital_view.status_code == 200:
        seen = hospital_view.json()
        say(
            f"  hospital     sees {seen_variants:,} genotypes of its patient in "
            f"{len(seen['samples'])} sample(s) (each demo run adds one)"
        )
    else:
        say(f"  hospital     {hospital_view.status_code} {hospital_view.text}")
    if research is not None:
        results = research.json().get("results") or [{}]
        withheld = results[0].get("suppressed")
        say(
            f"  research     {first['chrom']}:{first['pos']} {first['ref']}>{first['alt']}: carriers "
            f"{results[0].get('carriers')}, frequency {results[0].get('allele_frequency')} "
            + (f"(withheld: {withheld}; " if withheld else "(")
            + "no answer reveals a group of fewer than 5 patients)"
        )
    if access.status_code == 200:
        entries = access.json()["entries"]
        newest = entries[0] if entries else {}
        say(
            f"  patient      the portal shows {len(entries)} read(s) of their data (a page, newest first); "
            f'{newest.get("client_id")} ({newest.get("role")}) for "{newest.get("purpose")}"'
        )
    else:
        say(f"  patient      access log: {access.status_code} {access.text}")
    say(f"  total        {time.monotonic() - timeline.started:.1f}s")
    return 0


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
