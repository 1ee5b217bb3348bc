"""A registry on the real PostgreSQL and MinIO: small VCFs built here, events built like producers
build them, handlers and queries called directly (and, in one test, through the real broker)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pysam
import pytest

from genomebus_common.contracts.events import (
    ConsentChanged,
    ObjectRef,
    ReferenceGenome,
    ResearchUse,
    SampleRemoved,
    ToolProvenance,
    VariantCounts,
    VariantsCalled,
    new_id,
)
from genomebus_common.runtime.broker import Delivery
from genomebus_common.runtime.db import connect_pool
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_registry.adapters.postgres.handlers import RegistryHandlers
from genomebus_registry.adapters.postgres.queries import Queries
from genomebus_registry.config import RegistryClient, RegistrySettings
from genomebus_registry.core.access import Caller
from genomebus_registry.inject import build_app
from genomebus_registry.schema import migrations

from ..common.factories import object_ref

REFERENCE = ReferenceGenome(id="toy-ref", digest="SQC." + "B" * 32)
CONTIG = "chrT"
TOKENS = {
    "rh-lis": "token-rh",
    "ouh-lis": "token-ouh",
    "researcher": "token-research",
    "citizen-portal": "token-portal",
}
CLIENTS = {
    "rh-lis": RegistryClient(
        token_sha256=hashlib.sha256(b"token-rh").hexdigest(), role="hospital", hospital_id="RH"
    ),
    "ouh-lis": RegistryClient(
        token_sha256=hashlib.sha256(b"token-ouh").hexdigest(), role="hospital", hospital_id="OUH"
    ),
    "researcher": RegistryClient(
        token_sha256=hashlib.sha256(b"token-research").hexdigest(), role="research"
    ),
    "citizen-portal": RegistryClient(
        token_sha256=hashlib.sha256(b"token-portal").hexdigest(), role="portal"
    ),
}
RESEARCHER = Caller("researcher", "research", None, "allele frequency study")

# (pos, ref, alt, GT, DP, GQ)
Record = tuple[int, str, str, str, int | None, int | None]


def pseudonym(name: str) -> str:
    return "pk1_" + hashlib.sha256(name.encode()).hexdigest()


def write_vcf(folder: Path, records: Sequence[Record], sample: str = "SAMPLE") -> Path:
    """A bgzipped, tabix-indexed single-sample VCF on contig chrT."""
    lines = [
        "##fileformat=VCFv4.2",
        f"##contig=<ID={CONTIG},length=1000000>",
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">',
        '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
        "\t".join(
            ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", sample]
        ),
    ]
    for pos, ref, alt, gt, dp, gq in sorted(records):
        dp_s, gq_s = ("." if dp is None else str(dp)), ("." if gq is None else str(gq))
        lines.append(
            f"{CONTIG}\t{pos}\t.\t{ref}\t{alt}\t50\tPASS\tDP={dp_s}\tGT:DP:GQ\t{gt}:{dp_s}:{gq_s}"
        )
    plain = folder / f"{new_id('')}.vcf"
    plain.write_text("\n".join(lines) + "\n")
    gz = Path(str(plain) + ".gz")
    pysam.tabix_compress(str(plain), str(gz), force=True)
    pysam.tabix_index(str(gz), preset="vcf", force=True)
    return gz


@dataclass
class UploadedVcf:
    vcf: ObjectRef
    index: ObjectRef
    records: int


@pytest.fixture
def upload_vcf(store: ObjectStore, bucket: str, tmp_path: Path) -> Callable[..., UploadedVcf]:
    def upload(records: Sequence[Record], sample: str = "SAMPLE") -> UploadedVcf:
        gz = write_vcf(tmp_path, records, sample)
        key = f"vcf/{gz.name}"
        vcf = store.put_file(bucket, key, gz, content_type="application/gzip")
        index = store.put_file(bucket, key + ".tbi", Path(str(gz) + ".tbi"))
        return UploadedVcf(vcf, index, len(records))

    return upload


def variants_called(
    uploaded: UploadedVcf,
    patient: str,
    *,
    sample_id: str | None = None,
    hospital_id: str | None = "RH",
    reference: ReferenceGenome = REFERENCE,
) -> VariantsCalled:
    sample_id = sample_id or new_id("S-")
    return VariantsCalled(
        correlation_id=sample_id,
        sample_id=sample_id,
        patient_pseudonym=patient,
        reference=reference,
        hospital_id=hospital_id,
        bam=object_ref("sample.bam", b"bam-" + sample_id.encode()),
        vcf=uploaded.vcf,
        vcf_index=uploaded.index,
        counts=VariantCounts(records=uploaded.records, snv=uploaded.records, indel=0),
        tools=[ToolProvenance(name="bcftools", version="1.21")],
    )


def removal(
    event: VariantsCalled, reason: str = "specimen mix-up reported by the lab"
) -> SampleRemoved:
    """Rigshospitalet withdraws the sample of ``event``."""
    return SampleRemoved(
        correlation_id=event.correlation_id,
        sample_id=event.sample_id,
        patient_pseudonym=event.patient_pseudonym,
        hospital_id="RH",
        reason=reason,
        requested_by="RH",
    )


def consent(
    patient: str,
    version: int,
    *,
    research: bool = True,
    withdrawn: bool = False,
    analysis: bool = True,
) -> ConsentChanged:
    return ConsentChanged(
        correlation_id=f"consent-{version}",
        patient_pseudonym=patient,
        version=version,
        analysis_consent_given=analysis,
        research_use=ResearchUse.ALLOWED if research else ResearchUse.OWN_TREATMENT_ONLY,
        withdrawn=withdrawn,
        recorded_by="consent-desk",
        reason="patient form",
    )


_offsets = iter(range(1, 10**9))


def delivery(topic: str = "test") -> Delivery:
    return Delivery(topic=topic, partition=0, offset=next(_offsets), key=None)


@pytest.fixture
async def pool(fresh_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    async with connect_pool(fresh_dsn, migrations(), max_size=6) as pool:
        yield pool


@pytest.fixture
def handlers(pool: asyncpg.Pool, store: ObjectStore, tmp_path: Path) -> RegistryHandlers:
    return RegistryHandlers(pool=pool, store=store, work_dir=tmp_path / "work")


@pytest.fixture
def queries(pool: asyncpg.Pool) -> Queries:
    return Queries(pool, min_cell_count=5)


@pytest.fixture
def registry_settings(
    settings: ServiceSettings,
    as_service: Callable[[str], dict[str, Any]],
    fresh_dsn: str,
    tmp_path: Path,
) -> RegistrySettings:
    """The registry service as it runs: with its own Kafka user and so its ACLs."""
    return RegistrySettings(
        **{
            **settings.model_dump(),
            **as_service("registry"),
            "postgres_dsn": fresh_dsn,
            "registry_clients": {cid: c.model_dump() for cid, c in CLIENTS.items()},
            "work_dir": str(tmp_path / "work"),
            "consume_events": False,
        },
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def app_client(registry_settings: RegistrySettings) -> AsyncIterator[httpx.AsyncClient]:
    """The registry's app, started (pool, migrations) and spoken to over HTTP in-process."""
    app = build_app(registry_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry", timeout=60
        ) as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client
