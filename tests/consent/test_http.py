"""The HTTP adapter on the in-memory store: routes, status codes and problem bodies, without
PostgreSQL or Kafka."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from genomebus_common.contracts.events import SampleRegistered
from genomebus_common.contracts.identifiers import Pseudonymiser, parse_cpr
from genomebus_consent.adapters import http
from genomebus_consent.adapters.memory import MemoryConsentStore
from genomebus_consent.core.consents import ConsentService

from .conftest import TOKENS, consent_body, random_cpr
from .fhir_data import research_deny_consent

PROBLEM = "urn:genomebus:problem:"


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, ConsentService]]:
    app = FastAPI()
    service = ConsentService(
        store=MemoryConsentStore(), pseudonymiser=Pseudonymiser.from_secret(secrets.token_hex(32))
    )
    app.state.resources = service
    http.install(app, {c: hashlib.sha256(t.encode()).hexdigest() for c, t in TOKENS.items()})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://consent",
        headers={"Authorization": f"Bearer {TOKENS['RH']}"},
    ) as client:
        yield client, service


async def _treats(service: ConsentService, cpr: str) -> str:
    pseudonym = service.pseudonymiser.pseudonym(parse_cpr(cpr))
    await service.sample_registered(
        SampleRegistered(
            correlation_id="RH.treats",
            sample_id="RH.S1x",
            patient_pseudonym=pseudonym,
            hospital_id="RH",
        )
    )
    return pseudonym


async def test_record_replay_and_read(api: tuple[httpx.AsyncClient, ConsentService]) -> None:
    client, service = api
    cpr = random_cpr()
    pseudonym = await _treats(service, cpr)
    headers = {"Idempotency-Key": "abc"}
    created = await client.post("/v1/consents", json=consent_body(cpr), headers=headers)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"/v1/consents/{pseudonym}"
    assert "Idempotent-Replayed" not in created.headers
    replayed = await client.post("/v1/consents", json=consent_body(cpr), headers=headers)
    assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == created.json()
    conflict = await client.post(
        "/v1/consents", json=consent_body(cpr, reason="other"), headers=headers
    )
    assert (conflict.status_code, conflict.json()["type"]) == (
        409,
        f"{PROBLEM}idempotency_conflict",
    )

    fhir = await client.post("/v1/fhir/Consent", json=research_deny_consent(cpr))
    assert fhir.status_code == 201 and fhir.json()["source"] == "fhir"
    history = (await client.get(f"/v1/consents/{pseudonym}")).json()
    assert [v["version"] for v in history["versions"]] == [1, 2]
    assert cpr not in created.text and cpr not in str(history)


async def test_refusals_as_problems(api: tuple[httpx.AsyncClient, ConsentService]) -> None:
    client, service = api
    cpr = random_cpr()
    pseudonym = await _treats(service, cpr)
    nobody = await client.post("/v1/consents", json=consent_body(random_cpr()))
    assert (nobody.status_code, nobody.json()["type"]) == (404, f"{PROBLEM}consent_not_found")
    invalid = await client.post("/v1/consents", json=consent_body(cpr, consent_document=None))
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0].startswith("consent_document:")
    not_json = await client.post("/v1/fhir/Consent", content=b"{", headers={"Content-Type": "x"})
    assert not_json.status_code == 422 and "not JSON" in not_json.text
    log = await client.get(f"/v1/patients/{pseudonym}/access-log")
    assert (log.status_code, log.json()["type"]) == (403, f"{PROBLEM}portal_only")
    unauthenticated = await client.get(f"/v1/consents/{pseudonym}", headers={"Authorization": ""})
    assert unauthenticated.status_code == 401
