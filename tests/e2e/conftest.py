"""The real services as processes on the real stack, fed by a LIS client, watched on Kafka."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from genomebus_common.contracts.events import ConsentChanged
from genomebus_common.runtime.objectstore import ObjectStore, file_sha256
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit.reference import Manifest, ReferenceRegistry
from genomebus_devstack.services import ServiceGroup, ServiceProcess
from genomebus_testdata import SimulatedSample, make_reference, read_pairs_for, simulate_sample

from .otlp import Receiver, otlp_receiver

HOSPITAL = "E2E"
LIS_TOKEN = secrets.token_urlsafe(16)
CONSENT_TOKEN = secrets.token_urlsafe(16)
PSEUDONYM_KEY = secrets.token_hex(32)
NATIONAL_ID = "070583-4321"  # made up, well formed


@dataclass
class Pipeline:
    services: ServiceGroup
    env: dict[str, str]
    log_dir: Path

    def lis(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.services["ingest"].url,
            headers={"Authorization": f"Bearer {LIS_TOKEN}"},
            timeout=300,
        )

    def consent_client(self) -> httpx.Client:
        """The consent API as a hospital's clinician records consent through it."""
        return httpx.Client(
            base_url=self.services["consent"].url,
            headers={"Authorization": f"Bearer {CONSENT_TOKEN}"},
            timeout=60,
        )

    def extra_worker(self, name: str, work_dir: Path) -> ServiceProcess:
        return ServiceProcess(name, {**self.env, "GENOMEBUS_WORK_DIR": str(work_dir)}, self.log_dir)


@pytest.fixture(scope="session")
def reference_fasta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_reference(tmp_path_factory.mktemp("e2e-reference"), length=1_000_000)


@pytest.fixture(scope="session")
def registered_reference(
    store: ObjectStore, reference_fasta: Path, tmp_path_factory: pytest.TempPathFactory
) -> Manifest:
    folder = tmp_path_factory.mktemp("e2e-registry")
    return ReferenceRegistry(store, folder / "cache").register(
        reference_fasta.stem, reference_fasta, folder
    )


@pytest.fixture(scope="session")
def sample_30x(reference_fasta: Path, tmp_path_factory: pytest.TempPathFactory) -> SimulatedSample:
    return simulate_sample(
        reference_fasta,
        tmp_path_factory.mktemp("e2e-sample-30x"),
        read_pairs=read_pairs_for(30, 1_000_000),
        seed=2026,
    )


@pytest.fixture(scope="session")
def traces() -> Iterator[Receiver]:
    """Where every e2e service exports its spans (OTLP/HTTP, the services' real exporter)."""
    with otlp_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def pipeline(
    endpoints: dict[str, str],
    registered_reference: Manifest,
    tmp_path_factory: pytest.TempPathFactory,
    traces: Receiver,
) -> Iterator[Pipeline]:
    work = tmp_path_factory.mktemp("e2e-services")
    env = {
        **endpoints,
        "GENOMEBUS_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "GENOMEBUS_HOSPITAL_TOKENS": json.dumps(
            {HOSPITAL: hashlib.sha256(LIS_TOKEN.encode()).hexdigest()}
        ),
        "GENOMEBUS_LOG_LEVEL": "INFO",
        "GENOMEBUS_HANDLER_MAX_ATTEMPTS": "2",
        "GENOMEBUS_HANDLER_RETRY_INITIAL_S": "0.2",
        "GENOMEBUS_CONSENT_CLIENTS": json.dumps(
            {HOSPITAL: hashlib.sha256(CONSENT_TOKEN.encode()).hexdigest()}
        ),
        "GENOMEBUS_OTLP_ENDPOINT": traces.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # spans reach the receiver within a fraction of a second
        # Every e2e sample is scattered: the 30x sample (30 Mbp) is 3 chunks of 3 bwa batches,
        # and the 1 Mb reference 3 regions, so the tests go through units and gathers.
        "GENOMEBUS_BWA_BATCH_BASES": "4000000",
        "GENOMEBUS_CHUNK_BASES": "12000000",
        "GENOMEBUS_REGION_SIZE_BP": "400000",
    }
    services = [
        ServiceProcess(name, {**env, "GENOMEBUS_WORK_DIR": str(work / name)}, work / "logs")
        for name in ("ingest", "consent", "alignment", "calling", "registry")
    ]
    with ServiceGroup(services) as group:
        yield Pipeline(group, env, work / "logs")


def consent_for(national_id: str, version: int = 1, *, withdrawn: bool = False) -> ConsentChanged:
    """The consent.changed event the consent service would publish for this patient."""
    from genomebus_common.contracts.events import ResearchUse
    from genomebus_common.contracts.identifiers import Pseudonymiser, parse_cpr

    return ConsentChanged(
        correlation_id=f"e2e-consent-{version}",
        patient_pseudonym=Pseudonymiser.from_secret(PSEUDONYM_KEY).pseudonym(
            parse_cpr(national_id)
        ),
        version=version,
        analysis_consent_given=not withdrawn,
        consent_document="DOC-1",
        research_use=ResearchUse.ALLOWED,
        withdrawn=withdrawn,
        recorded_by="e2e",
    )


async def publish_consent(consent: ServiceSettings, event: ConsentChanged) -> None:
    """Publish a consent version as the consent service would (``consent``: its settings, so
    its Kafka user: the only one that may write consent.changed)."""
    from genomebus_common.contracts.topics import BUS_CLIENTS
    from genomebus_common.runtime.broker import create_broker, ensure_topics, publish_event

    await ensure_topics(consent, needed=BUS_CLIENTS["consent"].topics)
    async with create_broker(consent) as broker:
        await publish_event(broker, event)


@pytest.fixture(scope="session")
def consent_kafka(
    settings: ServiceSettings, as_service: Callable[[str], dict[str, Any]]
) -> ServiceSettings:
    """Kafka settings of the consent service (its user), for tests that publish consent."""
    return ServiceSettings(**{**settings.model_dump(), **as_service("consent")})


@pytest.fixture(scope="session", autouse=True)
def _consent_given(consent_kafka: ServiceSettings) -> None:
    """The e2e patient has given written consent (published once, as the consent service does)."""
    import asyncio

    asyncio.run(publish_consent(consent_kafka, consent_for(NATIONAL_ID)))


def post_sample(
    lis: httpx.Client,
    sample: SimulatedSample,
    reference_id: str,
    specimen: str,
    *,
    priority: str = "routine",
    national_id: str = NATIONAL_ID,
) -> dict:
    """Register and upload a sample the way a hospital LIS does; returns ingest's final view."""
    body = {
        "hospital_id": HOSPITAL,
        "specimen_id": specimen,
        "lis_order_id": f"O{specimen}",
        "national_id": national_id,
        "sequencing_run": "E2E-RUN",
        "read_group": {"id": f"{specimen}.L1", "library": "LIB1"},
        "priority": priority,
        "reference_id": reference_id,
        "reads": {
            "r1_sha256": file_sha256(sample.reads_1),
            "r2_sha256": file_sha256(sample.reads_2),
        },
    }
    view = lis.post("/v1/samples", json=body)
    assert view.status_code == 201, view.text
    for mate, path in (("R1", sample.reads_1), ("R2", sample.reads_2)):
        with path.open("rb") as handle:
            response = lis.put(view.json()["upload"][mate], content=handle)
        assert response.status_code == 200, response.text
    final = response.json()
    deadline = time.monotonic() + 30
    while final["status"] == "awaiting_consent" and time.monotonic() < deadline:
        time.sleep(0.2)  # ingest may not have applied the consent event yet
        final = lis.get(f"/v1/samples/{final['sample_id']}").json()
    assert final["status"] == "received", final
    return final
