"""An ingest app on the real PostgreSQL, MinIO and Kafka, driven like a LIS drives it."""

from __future__ import annotations

import contextlib
import hashlib
import random
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit.reference import Manifest, ReferenceRegistry
from genomebus_ingest.config import IngestSettings
from genomebus_ingest.main import build_app

TOKENS = {"RH": "token-for-rigshospitalet", "OUH": "token-for-odense"}
PSEUDONYM_KEY = "5e" * 32


@pytest.fixture(scope="session")
def toy_reference(store: ObjectStore, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    folder = tmp_path_factory.mktemp("ref")
    rng = random.Random(7)
    fasta = folder / "toy.fa"
    fasta.write_text(">chrT\n" + "".join(rng.choice("ACGT") for _ in range(20000)) + "\n")
    registry = ReferenceRegistry(store, folder / "cache")
    return registry.register(f"toy-{uuid.uuid4().hex[:8]}", fasta, folder / "work")


@pytest.fixture
def ingest_settings(
    settings: ServiceSettings,
    as_service: Callable[[str], dict[str, Any]],
    fresh_dsn: str,
    tmp_path: Path,
) -> IngestSettings:
    """The ingest service as it runs: with its own Kafka user and so its ACLs."""
    return IngestSettings(
        **{
            **settings.model_dump(),
            **as_service("ingest"),
            "postgres_dsn": fresh_dsn,
            "pseudonym_key": PSEUDONYM_KEY,
            "hospital_tokens": {
                h: hashlib.sha256(t.encode()).hexdigest() for h, t in TOKENS.items()
            },
            "work_dir": str(tmp_path),
        },
        _env_file=None,  # type: ignore[call-arg]
    )


def pseudonym_of(cpr: str) -> str:
    from genomebus_common.contracts.identifiers import Pseudonymiser, parse_cpr

    return Pseudonymiser.from_secret(PSEUDONYM_KEY).pseudonym(parse_cpr(cpr))


async def give_consent(
    lis: httpx.AsyncClient, cpr: str, version: int, *, given: bool = True, withdrawn: bool = False
) -> None:
    """Deliver a consent.changed event to the running ingest, as its Kafka consumer would."""
    from genomebus_common.contracts.events import ConsentChanged, ResearchUse
    from genomebus_common.runtime.broker import Delivery

    event = ConsentChanged(
        correlation_id=f"consent-{version}",
        patient_pseudonym=pseudonym_of(cpr),
        version=version,
        analysis_consent_given=given,
        research_use=ResearchUse.ALLOWED,
        withdrawn=withdrawn,
        recorded_by="tests",
    )
    delivery = Delivery(topic="genomebus.consent.changed", partition=0, offset=version, key=None)
    await lis.app.state.resources.apply_consent(event, delivery)  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def lis_client(settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated as Rigshospitalet's LIS, to an ingest app running its full
    lifespan (``client.app`` is the app)."""
    app = build_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://ingest",
            headers={"Authorization": f"Bearer {TOKENS['RH']}"},
            timeout=60,
        ) as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client


@pytest.fixture
async def lis(ingest_settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with lis_client(ingest_settings) as client:
        yield client


async def upload_with_the_check_dropped(
    lis: httpx.AsyncClient,
    reference: Manifest,
    monkeypatch: pytest.MonkeyPatch,
    **overrides: object,
) -> dict:
    """Register a sample and upload both files, the check breaking off after R2 is stored (the
    object store dropped): the sample is left in awaiting_reads with both files. Returns it."""
    import genomebus_ingest.core.ingest as service
    from genomebus_common.contracts.errors import ObjectStoreUnavailable

    from .fastq_data import pair
    from .test_api_integration import registration

    real_check = service.check_pair

    def dropped(*args: object) -> None:
        raise ObjectStoreUnavailable("connection reset while reading the reads back")

    r1, r2 = pair(8)
    sample = (
        await lis.post("/v1/samples", json=registration(reference, r1, r2, **overrides))
    ).json()
    await lis.put(sample["upload"]["R1"], content=r1)
    monkeypatch.setattr(service, "check_pair", dropped)
    failed = await lis.put(sample["upload"]["R2"], content=r2)
    assert failed.status_code == 503 and failed.headers["Retry-After"]
    monkeypatch.setattr(service, "check_pair", real_check)
    view = (await lis.get(f"/v1/samples/{sample['sample_id']}")).json()
    assert view["status"] == "awaiting_reads"
    return {**sample, "r2": r2}
