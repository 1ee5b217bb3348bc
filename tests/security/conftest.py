"""Security tests drive the real services as a hostile caller would: ingest (in-process and as
its own process, fixtures shared with tests/ingest), consent, and the registry as an outsider
meets it (its HTTP API on the real PostgreSQL and MinIO, data loaded through its own event
handlers, exactly as tests/registry's API tests do it)."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from genomebus_devstack.services import ServiceProcess
from genomebus_registry.inject import Registry

from ..ingest.conftest import ingest_settings, lis, toy_reference  # noqa: F401  (fixtures)

# The registry's fixtures (a fresh database per test, a bucket, VCF uploads, settings with the
# test clients), shared rather than copied.
from ..registry.conftest import (  # noqa: F401 - fixtures, used by name
    TOKENS,
    Record,
    UploadedVcf,
    app_client,
    consent,
    delivery,
    pseudonym,
    registry_settings,
    upload_vcf,
    variants_called,
)

HOSPITAL_TOKENS = {"RH": secrets.token_urlsafe(16), "OUH": secrets.token_urlsafe(16)}


def digests(tokens: dict[str, str]) -> str:
    return json.dumps(
        {who: hashlib.sha256(token.encode()).hexdigest() for who, token in tokens.items()}
    )


@pytest.fixture(scope="session")
def ingest_process(
    endpoints: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """Ingest as its own process on the real stack, serving two hospitals."""
    work: Path = tmp_path_factory.mktemp("security-ingest")
    env = {
        **endpoints,
        "GENOMEBUS_PSEUDONYM_KEY": secrets.token_hex(32),
        "GENOMEBUS_HOSPITAL_TOKENS": digests(HOSPITAL_TOKENS),
        "GENOMEBUS_WORK_DIR": str(work / "work"),
    }
    process = ServiceProcess("ingest", env, work / "logs").start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


# --- the registry ----------------------------------------------------------------------------


@pytest.fixture
def api(app_client: httpx.AsyncClient) -> httpx.AsyncClient:  # noqa: F811 - this folder's api replaces the registry's
    """The registry's app, started (pool, migrations) and spoken to over HTTP in-process."""
    return app_client


def registry_of(api: httpx.AsyncClient) -> Registry:
    return api.app.state.resources  # type: ignore[attr-defined]


def auth(client_id: str, purpose: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[client_id]}", "X-Purpose": purpose}


async def enrol(
    api: httpx.AsyncClient,
    upload: Callable[..., UploadedVcf],
    name: str,
    records: Sequence[Record],
    *,
    hospital_id: str = "RH",
) -> str:
    """One research-consenting patient with one sample of ``records``; returns the pseudonym."""
    registry = registry_of(api)
    patient = pseudonym(name)
    await registry.handlers.consent_changed(consent(patient, 1), delivery())
    event = variants_called(upload(records), patient, hospital_id=hospital_id)
    await registry.handlers.variants_called(event, delivery())
    return patient
