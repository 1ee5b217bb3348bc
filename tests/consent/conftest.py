"""A consent app on the real PostgreSQL and Kafka, driven as a hospital or the portal drives it."""

from __future__ import annotations

import hashlib
import json
import random
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from genomebus_common.runtime.settings import ServiceSettings
from genomebus_consent.config import ConsentSettings
from genomebus_consent.main import build_app

TOKENS = {"RH": "token-for-rigshospitalet", "portal": "token-for-the-citizen-portal"}


def random_cpr() -> str:
    """A valid CPR number nobody else's test uses: Kafka topics outlive a test's database."""
    born = date(1950, 1, 1) + timedelta(days=random.randrange(365 * 50))
    seventh = 0 if born.year < 2000 else 4  # 0-3: 1900s; 4: 2000-2036
    return f"{born:%d%m%y}-{seventh}{random.randrange(1000):03d}"


def consent_body(national_id: str, **overrides: Any) -> dict[str, Any]:
    """A written analysis consent, as a hospital records it."""
    body: dict[str, Any] = {
        "national_id": national_id,
        "analysis_consent_given": True,
        "consent_document": "RH-CONSENT-2026-0042",
        "consent_date": "2026-03-02T10:15:00+01:00",
        "secondary_findings": "report",
        "research_use": "allowed",
        "withdrawn": False,
        "recorded_by": "Genetic counsellor A. Jensen",
        "reason": "first consent",
    }
    body.update(overrides)
    return body


@pytest.fixture
def pseudonym_key() -> str:
    """A fresh key per test: pseudonyms (and so Kafka keys) never meet an earlier run's."""
    return secrets.token_hex(32)


@pytest.fixture
def consent_settings(
    settings: ServiceSettings,
    as_service: Callable[[str], dict[str, Any]],
    fresh_dsn: str,
    pseudonym_key: str,
) -> ConsentSettings:
    """The consent service as it runs: with its own Kafka user, whose ACLs let it write
    consent.changed and nothing else."""
    return ConsentSettings(
        **{
            **settings.model_dump(),
            **as_service("consent"),
            "postgres_dsn": fresh_dsn,
            "pseudonym_key": pseudonym_key,
            "consent_clients": {
                c: hashlib.sha256(t.encode()).hexdigest() for c, t in TOKENS.items()
            },
        },
        _env_file=None,  # type: ignore[call-arg]
    )


async def treats(app: Any, hospital: str, national_id: str) -> None:
    """``hospital`` registered a sample of this patient: the sample.registered event ingest
    publishes, delivered to the consent app as its consumer would."""
    from genomebus_common.contracts.events import SampleRegistered
    from genomebus_common.contracts.identifiers import parse_cpr

    service = app.state.resources
    await service.sample_registered(
        SampleRegistered(
            correlation_id=f"{hospital}.treats",
            sample_id=f"{hospital}.S{secrets.token_hex(4)}x",
            patient_pseudonym=service.pseudonymiser.pseudonym(parse_cpr(national_id)),
            hospital_id=hospital,
        )
    )


def registering_first(app: Any, hospital: str) -> Any:
    """An httpx request hook: before each consent POST, ``hospital`` registers a sample of the
    patient it names, as a LIS does before it records consent (consent's access rule)."""
    from genomebus_consent.core.fhir import from_fhir

    async def hook(request: httpx.Request) -> None:
        if request.method != "POST" or request.url.path not in ("/v1/consents", "/v1/fhir/Consent"):
            return
        try:
            body = json.loads(request.content)
            national_id = body.get("national_id") or from_fhir(body, client=hospital).national_id
            await treats(app, hospital, national_id)
        except Exception:  # noqa: BLE001 (an invalid body: the API itself says what is wrong)
            return

    return hook


@pytest.fixture
async def hospital(consent_settings: ConsentSettings) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated as Rigshospitalet, which registered a sample of every patient it
    records consent for; the app runs its full lifespan (DB, Kafka, relay)."""
    app = build_app(consent_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://consent",
            headers={"Authorization": f"Bearer {TOKENS['RH']}"},
            timeout=60,
            event_hooks={"request": [registering_first(app, "RH")]},
        ) as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client
