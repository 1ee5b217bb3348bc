"""An ingest app on the real PostgreSQL, MinIO and Kafka, driven like a LIS drives it."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from genomebus_common.objectstore import ObjectStore
from genomebus_common.reference import Manifest, ReferenceRegistry
from genomebus_common.settings import ServiceSettings
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
def ingest_settings(settings: ServiceSettings, fresh_dsn: str, tmp_path: Path) -> IngestSettings:
    return IngestSettings(
        **{
            **settings.model_dump(),
            "service_name": "ingest",
            "postgres_dsn": fresh_dsn,
            "pseudonym_key": PSEUDONYM_KEY,
            "hospital_tokens": {h: hashlib.sha256(t.encode()).hexdigest() for h, t in TOKENS.items()},
            "work_dir": str(tmp_path),
        },
        _env_file=None,  # type: ignore[call-arg]
    )


def pseudonym_of(cpr: str) -> str:
    from genomebus_common.identifiers import Pseudonymiser, parse_cpr

    return Pseudonymiser.from_secret(PSEUDONYM_KEY).pseudonym(parse_cpr(cpr))


async def give_consent(
    lis: httpx.AsyncClient, cpr: str, version: int, *, given: bool = True, withdrawn: bool = False
) -> None:
    """Deliver a consent.changed event to the running ingest, as its Kafka consumer would."""
    from genomebus_common.broker import Delivery
    from genomebus_common.events import ConsentChanged, ResearchUse

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


@pytest.fixture
async def lis(ingest_settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated as Rigshospitalet's LIS; the app runs its full lifespan."""
    app = build_app(ingest_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://ingest",
            headers={"Authorization": f"Bearer {TOKENS['RH']}"},
            timeout=60,
        ) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client
