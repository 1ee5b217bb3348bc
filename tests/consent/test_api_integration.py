"""Hospitals and the portal record consent versions; consent pseudonymises, keeps every version
and announces each one on Kafka, keyed by the patient's pseudonym, without the national id."""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg
import httpx
import pytest

from genomebus_common.contracts.events import ConsentChanged
from genomebus_common.contracts.headers import H_CORRELATION_ID, H_EVENT_TYPE
from genomebus_common.contracts.identifiers import Pseudonymiser, parse_cpr
from genomebus_common.contracts.topics import CONSENT_CHANGED
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_consent.config import ConsentSettings
from genomebus_ingest.config import IngestSettings

from ..common.kafka_helpers import headers, read_until
from .conftest import consent_body, random_cpr
from .fhir_data import research_deny_consent

pytestmark = pytest.mark.integration


def national_id_forms(cpr: str) -> tuple[str, str]:
    return cpr, cpr.replace("-", "")


async def record(client: httpx.AsyncClient, body: dict, **kwargs: object) -> dict:
    response = await client.post("/v1/consents", json=body, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 201, response.text
    return response.json()


async def test_versions_grow_and_the_database_refuses_to_overwrite(
    hospital: httpx.AsyncClient, consent_settings: ConsentSettings
) -> None:
    cpr = random_cpr()
    first = await record(hospital, consent_body(cpr))
    second = await record(
        hospital, consent_body(cpr, research_use="own_treatment_only", reason="no research use")
    )
    third = await record(
        hospital,
        consent_body(
            cpr,
            analysis_consent_given=False,
            research_use="own_treatment_only",
            withdrawn=True,
            reason="patient withdrew",
        ),
    )
    assert [first["version"], second["version"], third["version"]] == [1, 2, 3]
    pseudonym = first["patient_pseudonym"]
    assert {second["patient_pseudonym"], third["patient_pseudonym"]} == {pseudonym}
    assert third["withdrawn"] and third["recorded_by_client"] == "RH"

    history = (await hospital.get(f"/v1/consents/{pseudonym}")).json()
    assert history["current_version"] == 3
    assert [(v["version"], v["research_use"], v["withdrawn"]) for v in history["versions"]] == [
        (1, "allowed", False),
        (2, "own_treatment_only", False),
        (3, "own_treatment_only", True),
    ]

    conn = await asyncpg.connect(consent_settings.postgres_dsn.get_secret_value())
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only: UPDATE"):
            await conn.execute(
                "UPDATE consent_versions SET research_use = 'allowed' WHERE version = 2"
            )
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only: DELETE"):
            await conn.execute("DELETE FROM consent_versions")
        with pytest.raises(asyncpg.CheckViolationError, match="not the next one"):
            await conn.execute(
                """INSERT INTO consent_versions (patient_pseudonym, version, analysis_consent_given,
                   research_use, withdrawn, recorded_by, recorded_by_client, source, event_id)
                   VALUES ($1, 7, false, 'own_treatment_only', false, 'x', 'x', 'api', $2)""",
                pseudonym,
                uuid.uuid4(),
            )
        rows = await conn.fetch(
            "SELECT version, research_use FROM consent_versions ORDER BY version"
        )
    finally:
        await conn.close()
    assert [(r["version"], r["research_use"]) for r in rows] == [
        (1, "allowed"),
        (2, "own_treatment_only"),
        (3, "own_treatment_only"),
    ]


async def test_concurrent_changes_get_distinct_consecutive_versions(
    hospital: httpx.AsyncClient,
) -> None:
    cpr = random_cpr()
    bodies = [consent_body(cpr, reason=f"change {i}") for i in range(8)]
    results = await asyncio.gather(*(record(hospital, b) for b in bodies))
    assert sorted(r["version"] for r in results) == list(range(1, 9))
    history = (await hospital.get(f"/v1/consents/{results[0]['patient_pseudonym']}")).json()
    assert [v["version"] for v in history["versions"]] == list(range(1, 9))


async def test_events_arrive_in_version_order_keyed_by_pseudonym_and_the_national_id_nowhere(
    hospital: httpx.AsyncClient,
    consent_settings: ConsentSettings,
    settings: ServiceSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    cpr = random_cpr()
    responses = [
        await hospital.post("/v1/consents", json=consent_body(cpr)),
        await hospital.post(
            "/v1/consents", json=consent_body(cpr, secondary_findings="do_not_report")
        ),
        await hospital.post(
            "/v1/fhir/Consent",
            json=research_deny_consent(cpr),
            headers={"Content-Type": "application/fhir+json"},
        ),
    ]
    assert [r.status_code for r in responses] == [201, 201, 201], [r.text for r in responses]
    pseudonym = responses[0].json()["patient_pseudonym"]
    responses.append(await hospital.get(f"/v1/consents/{pseudonym}"))
    refused = await hospital.post("/v1/consents", json=consent_body(cpr, consent_document=None))
    assert refused.status_code == 422
    responses.append(refused)

    ours: list = []

    def collect(record: object) -> bool:
        if record.key == pseudonym.encode():  # type: ignore[attr-defined]
            ours.append(record)
        return len(ours) == 3

    await read_until(settings, CONSENT_CHANGED.name, collect)  # as the administrator
    events = [ConsentChanged.from_bytes(r.value) for r in ours]
    assert [e.version for e in events] == [1, 2, 3]
    assert [str(e.event_id) for e in events] == [r.json()["event_id"] for r in responses[:3]]
    assert (
        events[2].research_use == "own_treatment_only"
        and events[2].secondary_findings == "do_not_report"
    )
    assert all(e.patient_pseudonym == pseudonym for e in events)
    correlations = [headers(r)[H_CORRELATION_ID] for r in ours]
    assert [c.rsplit(".", 1)[0] for c in correlations] == [f"consent.v{n}" for n in (1, 2, 3)]
    assert len(set(correlations)) == 3, "each consent change is its own journey"
    assert {headers(r)[H_EVENT_TYPE] for r in ours} == {"consent.changed"}

    seen: list[bytes] = [r.value + r.key + repr(r.headers).encode() for r in ours]
    seen += [r.content + repr(r.headers).encode() for r in responses]
    seen += [repr(vars(r)).encode() for r in caplog.records]  # messages and structured extras
    assert any(r.getMessage() == "consent version recorded" for r in caplog.records)
    conn = await asyncpg.connect(consent_settings.postgres_dsn.get_secret_value())
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        assert {"consent_versions", "idempotency_keys", "genomebus_outbox"} <= {
            t["tablename"] for t in tables
        }
        for t in tables:
            rows = await conn.fetch(f'SELECT t::text AS row FROM "{t["tablename"]}" t')
            seen += [r["row"].encode() for r in rows]
        seen += [
            bytes(r["payload"]) for r in await conn.fetch("SELECT payload FROM genomebus_outbox")
        ]
    finally:
        await conn.close()
    # The scan sees real content (the pseudonym is everywhere the national id must not be).
    assert sum(pseudonym.encode() in blob for blob in seen) >= len(ours) + 3 + 3
    for form in national_id_forms(cpr):
        assert not any(form.encode() in blob for blob in seen), (
            f"national id found ({len(seen)} blobs)"
        )


async def test_the_pseudonym_is_ingests_for_the_same_cpr_and_key(
    hospital: httpx.AsyncClient,
    consent_settings: ConsentSettings,
    pseudonym_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cpr = random_cpr()
    created = await record(hospital, consent_body(cpr))
    # Ingest's settings read from the same environment; its pseudonymiser built as its main does.
    monkeypatch.setenv("GENOMEBUS_PSEUDONYM_KEY", pseudonym_key)
    monkeypatch.setenv("GENOMEBUS_PSEUDONYM_KEY_VERSION", "1")
    ingest, consent = IngestSettings.load(), ConsentSettings.load()
    assert ingest.pseudonym_key == consent.pseudonym_key == consent_settings.pseudonym_key
    assert ingest.pseudonym_key_version == consent.pseudonym_key_version == 1
    ingests = Pseudonymiser.from_secret(
        ingest.pseudonym_key.get_secret_value(), ingest.pseudonym_key_version
    ).pseudonym(parse_cpr(cpr))
    assert created["patient_pseudonym"] == ingests
    # The hyphen is formatting, not identity.
    again = await record(hospital, consent_body(cpr.replace("-", "")))
    assert again["patient_pseudonym"] == ingests and again["version"] == 2


async def test_invalid_requests_get_precise_problem_details(hospital: httpx.AsyncClient) -> None:
    bad_date = "320190-1234"
    response = await hospital.post("/v1/consents", json=consent_body(bad_date))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "urn:genomebus:problem:consent_rejected"
    assert problem["errors"] == [
        "national_id: national id has no real birth date in its first six digits"
    ]
    assert bad_date not in response.text and bad_date[:6] not in response.text  # no part of it

    malformed = await hospital.post("/v1/consents", json=consent_body("12345"))
    assert malformed.status_code == 422 and malformed.json()["detail"].startswith("national_id: ")

    cpr = random_cpr()
    missing = await hospital.post(
        "/v1/consents", json=consent_body(cpr, consent_document=None, consent_date=None)
    )
    assert missing.status_code == 422
    reasons = missing.json()["errors"]
    assert [r.split(":")[0] for r in reasons] == ["consent_document", "consent_date"]
    assert "sundhedsloven § 29" in reasons[0]

    contradiction = await hospital.post("/v1/consents", json=consent_body(cpr, withdrawn=True))
    assert contradiction.status_code == 422
    assert [r.split(":")[0] for r in contradiction.json()["errors"]] == [
        "analysis_consent_given",
        "research_use",
    ]

    cpr_in_text = await hospital.post("/v1/consents", json=consent_body(cpr, reason=f"for {cpr}"))
    assert cpr_in_text.status_code == 422
    assert cpr_in_text.json()["errors"][0]["field"] == "reason"
    assert cpr not in cpr_in_text.text

    for response in (missing, contradiction):
        assert cpr not in response.text and cpr.replace("-", "") not in response.text

    anonymous = await hospital.post(
        "/v1/consents", json=consent_body(cpr), headers={"Authorization": ""}
    )
    assert anonymous.status_code == 401
    assert (await hospital.get("/v1/consents/pk1_" + "0" * 64)).status_code == 404
    assert (await hospital.get("/v1/consents/not-a-pseudonym")).status_code == 422


async def test_a_retry_with_the_same_idempotency_key_creates_no_second_version(
    hospital: httpx.AsyncClient, consent_settings: ConsentSettings
) -> None:
    cpr = random_cpr()
    body = consent_body(cpr)
    key = {"Idempotency-Key": f"rh-{uuid.uuid4()}"}
    first = await hospital.post("/v1/consents", json=body, headers=key)
    retry = await hospital.post("/v1/consents", json=body, headers=key)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers

    reused = await hospital.post(
        "/v1/consents", json=consent_body(cpr, research_use="own_treatment_only"), headers=key
    )
    assert (
        reused.status_code == 409
        and reused.json()["type"] == "urn:genomebus:problem:idempotency_conflict"
    )

    other = await record(hospital, body, headers={"Idempotency-Key": f"rh-{uuid.uuid4()}"})
    assert other["version"] == 2

    conn = await asyncpg.connect(consent_settings.postgres_dsn.get_secret_value())
    try:
        assert await conn.fetchval("SELECT count(*) FROM consent_versions") == 2
        assert await conn.fetchval("SELECT count(*) FROM genomebus_outbox") == 2
    finally:
        await conn.close()


async def test_fhir_consent_becomes_a_version_and_bad_codes_are_named(
    hospital: httpx.AsyncClient,
) -> None:
    cpr = random_cpr()
    created = await hospital.post(
        "/v1/fhir/Consent",
        json=research_deny_consent(cpr),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert created.status_code == 201, created.text
    version = created.json()
    assert version["version"] == 1 and version["source"] == "fhir"
    assert version["research_use"] == "own_treatment_only"
    assert version["analysis_consent_given"] and version["secondary_findings"] == "do_not_report"
    assert version["consent_document"].endswith("consent-0042.pdf")

    api = await record(hospital, consent_body(cpr))
    assert api["patient_pseudonym"] == version["patient_pseudonym"] and api["version"] == 2

    bad = research_deny_consent(cpr)
    bad["scope"]["coding"][0]["code"] = "adr"
    refused = await hospital.post("/v1/fhir/Consent", json=bad)
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        "Consent.scope.coding[0].code: 'adr' is not accepted; accepted: treatment, research"
    ]
    assert cpr not in refused.text

    not_json = await hospital.post(
        "/v1/fhir/Consent", content=b"{", headers={"Content-Type": "application/fhir+json"}
    )
    assert not_json.status_code == 422

    # The portal changes research use alone: the rest of version 2 carries over into version 3.
    research = research_deny_consent(
        cpr,
        scope={
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}
            ]
        },
        category=[
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentcategorycodes",
                        "code": "research",
                    }
                ]
            }
        ],
        provision={"type": "deny"},
    )
    changed = await hospital.post("/v1/fhir/Consent", json=research)
    assert changed.status_code == 201, changed.text
    assert changed.json()["version"] == 3 and changed.json()["research_use"] == "own_treatment_only"
    assert changed.json()["consent_document"] == api["consent_document"]

    stranger = research_deny_consent(
        random_cpr(), scope=research["scope"], provision={"type": "permit"}
    )
    nothing_to_change = await hospital.post("/v1/fhir/Consent", json=stranger)
    assert nothing_to_change.status_code == 422
    assert nothing_to_change.json()["errors"][0].startswith("scope:")
