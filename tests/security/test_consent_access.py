"""Who may change and read consent, tried as a hostile hospital would.

Observed against the old main: RH recorded ``research_use=own_treatment_only``; OUH then recorded
``allowed`` for the same national id (201), and could read the patient's whole history (200).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from genomebus_common.contracts.identifiers import Pseudonymiser, parse_cpr
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_consent.config import ConsentSettings
from genomebus_consent.main import build_app

from ..consent.conftest import consent_body, random_cpr, treats

pytestmark = pytest.mark.integration
TOKENS = {
    "RH": secrets.token_urlsafe(16),
    "OUH": secrets.token_urlsafe(16),
    "portal": secrets.token_urlsafe(16),
}


@pytest.fixture
async def consent(
    settings: ServiceSettings, fresh_dsn: str
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """The consent API as RH, OUH and the citizens' portal each call it."""
    key = secrets.token_hex(32)
    app = build_app(
        ConsentSettings(
            **{
                **settings.model_dump(),
                "service_name": "consent",
                "postgres_dsn": fresh_dsn,
                "pseudonym_key": key,
                "consent_clients": {
                    c: hashlib.sha256(t.encode()).hexdigest() for c, t in TOKENS.items()
                },
            },
            _env_file=None,  # type: ignore[call-arg]
        )
    )
    app.state.pseudonym = lambda cpr: Pseudonymiser.from_secret(key).pseudonym(parse_cpr(cpr))
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        clients = {}
        for who, token in TOKENS.items():
            clients[who] = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://consent",
                    timeout=60,
                    headers={"Authorization": f"Bearer {token}"},
                )
            )
            clients[who].app = app  # type: ignore[attr-defined]
        yield clients


def _without_volatile(response: httpx.Response) -> tuple[int, dict, tuple]:
    """Everything a caller sees but the per-request header values that differ anyway."""
    headers = tuple(
        sorted((k, v) for k, v in response.headers.items() if k not in ("date", "content-length"))
    )
    return response.status_code, response.json(), headers


async def test_another_hospital_cannot_lift_a_restriction_nor_read_the_history(
    consent: dict[str, httpx.AsyncClient],
) -> None:
    cpr = random_cpr()
    pseudonym = consent["RH"].app.state.pseudonym(cpr)  # type: ignore[attr-defined]
    await treats(consent["RH"].app, "RH", cpr)  # type: ignore[attr-defined]
    restricted = await consent["RH"].post(
        "/v1/consents", json=consent_body(cpr, research_use="own_treatment_only")
    )
    assert restricted.status_code == 201

    lifted = await consent["OUH"].post(
        "/v1/consents", json=consent_body(cpr, research_use="allowed")
    )
    assert lifted.status_code == 404, f"OUH changed RH's patient's consent: {lifted.status_code}"
    read = await consent["OUH"].get(f"/v1/consents/{pseudonym}")
    assert read.status_code == 404, "OUH read the history of a patient it does not treat"

    # what OUH is told is exactly what it is told about a national id nobody consented for,
    # and about one whose consent was withdrawn
    nobody = consent["RH"].app.state.pseudonym(random_cpr())  # type: ignore[attr-defined]
    withdrawn_cpr = random_cpr()
    await treats(consent["RH"].app, "RH", withdrawn_cpr)  # type: ignore[attr-defined]
    await consent["RH"].post("/v1/consents", json=consent_body(withdrawn_cpr))
    await consent["RH"].post(
        "/v1/consents",
        json=consent_body(
            withdrawn_cpr,
            analysis_consent_given=False,
            withdrawn=True,
            consent_document=None,
            consent_date=None,
        ),
    )
    withdrawn = consent["RH"].app.state.pseudonym(withdrawn_cpr)  # type: ignore[attr-defined]
    expected = _without_volatile(read)
    assert expected == _without_volatile(await consent["OUH"].get(f"/v1/consents/{nobody}"))
    assert expected == _without_volatile(await consent["OUH"].get(f"/v1/consents/{withdrawn}"))

    history = (await consent["RH"].get(f"/v1/consents/{pseudonym}")).json()
    assert [v["research_use"] for v in history["versions"]] == ["own_treatment_only"]


async def test_a_restriction_the_patient_set_is_lifted_only_by_the_patient(
    consent: dict[str, httpx.AsyncClient],
) -> None:
    cpr = random_cpr()
    await treats(consent["RH"].app, "RH", cpr)  # type: ignore[attr-defined]
    assert (await consent["RH"].post("/v1/consents", json=consent_body(cpr))).status_code == 201
    by_patient = await consent["portal"].post(
        "/v1/consents",
        json=consent_body(cpr, research_use="own_treatment_only", recorded_by="the patient"),
    )
    assert by_patient.status_code == 201
    by_hospital = await consent["RH"].post(
        "/v1/consents", json=consent_body(cpr, research_use="allowed")
    )
    assert by_hospital.status_code == 403, "a hospital lifted the patient's own restriction"
    # a hospital may still record a withdrawal for its patient
    withdrawal = consent_body(
        cpr,
        analysis_consent_given=False,
        withdrawn=True,
        research_use="own_treatment_only",
        consent_document=None,
        consent_date=None,
        reason="patient withdrew at the clinic",
    )
    assert (await consent["RH"].post("/v1/consents", json=withdrawal)).status_code == 201
    again = await consent["portal"].post(
        "/v1/consents", json=consent_body(cpr, research_use="allowed", recorded_by="the patient")
    )
    assert again.status_code == 201


async def test_a_restriction_the_patient_confirmed_is_the_patients(
    consent: dict[str, httpx.AsyncClient],
) -> None:
    """RH records the restriction, the patient confirms it through the portal: RH may no longer
    lift it (it was the first to record it, but the choice is now the patient's own)."""
    cpr = random_cpr()
    await treats(consent["RH"].app, "RH", cpr)  # type: ignore[attr-defined]
    await consent["RH"].post("/v1/consents", json=consent_body(cpr))
    await consent["RH"].post(
        "/v1/consents", json=consent_body(cpr, research_use="own_treatment_only")
    )
    await consent["portal"].post(
        "/v1/consents",
        json=consent_body(cpr, research_use="own_treatment_only", recorded_by="the patient"),
    )
    lifted = await consent["RH"].post(
        "/v1/consents", json=consent_body(cpr, research_use="allowed")
    )
    assert lifted.status_code == 403


async def test_a_hospital_without_a_sample_of_the_patient_learns_nothing_by_writing(
    consent: dict[str, httpx.AsyncClient],
) -> None:
    """OUH writes for a patient RH consented for, and for one nobody consented for: the same
    answer, and neither write is recorded. Once OUH registers a sample, it treats the patient."""
    consented, unknown = random_cpr(), random_cpr()
    await treats(consent["RH"].app, "RH", consented)  # type: ignore[attr-defined]
    assert (
        await consent["RH"].post("/v1/consents", json=consent_body(consented))
    ).status_code == 201
    answers = [
        await consent["OUH"].post("/v1/consents", json=consent_body(cpr, reason="probe"))
        for cpr in (consented, unknown)
    ]
    assert [a.status_code for a in answers] == [404, 404]
    assert _without_volatile(answers[0]) == _without_volatile(answers[1])

    await treats(consent["RH"].app, "OUH", consented)  # type: ignore[attr-defined]
    assert (
        await consent["OUH"].post("/v1/consents", json=consent_body(consented))
    ).status_code == 201


async def test_the_patient_sees_who_looked_and_only_the_patient(
    consent: dict[str, httpx.AsyncClient],
) -> None:
    cpr = random_cpr()
    await treats(consent["RH"].app, "RH", cpr)  # type: ignore[attr-defined]
    pseudonym = consent["RH"].app.state.pseudonym(cpr)  # type: ignore[attr-defined]
    await consent["RH"].post("/v1/consents", json=consent_body(cpr))
    await consent["RH"].get(f"/v1/consents/{pseudonym}")
    await consent["OUH"].get(f"/v1/consents/{pseudonym}")
    for hospital in ("RH", "OUH"):
        assert (
            await consent[hospital].get(f"/v1/patients/{pseudonym}/access-log")
        ).status_code == 403
    log = (await consent["portal"].get(f"/v1/patients/{pseudonym}/access-log")).json()
    seen = [(e["client_id"], e["action"], e["outcome"]) for e in reversed(log)]
    assert seen == [
        ("RH", "became_treating", "allowed"),
        ("RH", "record", "allowed"),
        ("RH", "read_history", "allowed"),
        ("OUH", "read_history", "refused"),
    ]
    assert "registered sample RH." in log[-1]["purpose"]


async def test_the_consent_audit_log_cannot_be_edited(
    consent: dict[str, httpx.AsyncClient], fresh_dsn: str
) -> None:
    import asyncpg

    cpr = random_cpr()
    await treats(consent["RH"].app, "RH", cpr)  # type: ignore[attr-defined]
    await consent["RH"].post("/v1/consents", json=consent_body(cpr))
    conn = await asyncpg.connect(fresh_dsn)
    try:
        for statement in (
            "UPDATE consent_access_log SET outcome = 'allowed'",
            "DELETE FROM consent_access_log",
            "TRUNCATE consent_access_log",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_fhir_nested_100k_deep_is_a_422(consent: dict[str, httpx.AsyncClient]) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    response = await consent["RH"].post(
        "/v1/fhir/Consent", content=deep, headers={"Content-Type": "application/fhir+json"}
    )
    assert response.status_code == 422 and "nests deeper" in response.text


async def test_a_registration_at_ingest_makes_the_hospital_treating_at_consent(
    lis: httpx.AsyncClient,
    toy_reference: object,
    settings: ServiceSettings,
    fresh_dsn: str,
) -> None:
    """The real path: once the sample's reads are checked, ingest's outbox publishes
    sample.registered on Kafka, consent takes it, and only then may the registering hospital
    record the patient's consent. A registration alone grants nothing."""
    import asyncio
    import time

    from ..ingest.conftest import PSEUDONYM_KEY
    from ..ingest.conftest import TOKENS as LIS_TOKENS
    from ..ingest.fastq_data import pair
    from ..ingest.test_api_integration import registration

    cpr = random_cpr()
    # A consumer group of its own: a consent service left running by another test (the e2e
    # pipeline's) would otherwise take some of the partitions, and the event with them.
    app = build_app(
        ConsentSettings(
            **{
                **settings.model_dump(),
                "service_name": f"consent-{secrets.token_hex(4)}",
                "postgres_dsn": fresh_dsn,
                "pseudonym_key": PSEUDONYM_KEY,
                "consent_clients": {
                    c: hashlib.sha256(t.encode()).hexdigest() for c, t in LIS_TOKENS.items()
                },
            },
            _env_file=None,  # type: ignore[call-arg]
        )
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://consent",
            timeout=60,
            headers={"Authorization": f"Bearer {LIS_TOKENS['RH']}"},
        ) as rh,
    ):
        assert (
            await rh.post("/v1/consents", json=consent_body(cpr))
        ).status_code == 404  # no sample yet
        r1, r2 = pair(3, seed=97)
        created = await lis.post(
            "/v1/samples", json=registration(toy_reference, r1, r2, national_id=cpr)
        )  # type: ignore[arg-type]
        assert created.status_code == 201
        await asyncio.sleep(2)  # a bare registration (no reads yet) makes no treating hospital
        assert (await rh.post("/v1/consents", json=consent_body(cpr))).status_code == 404
        await lis.put(created.json()["upload"]["R1"], content=r1)
        checked = await lis.put(created.json()["upload"]["R2"], content=r2)
        assert checked.json()["status"] == "awaiting_consent"
        deadline = time.monotonic() + 30
        while (answer := await rh.post("/v1/consents", json=consent_body(cpr))).status_code == 404:
            assert time.monotonic() < deadline, "sample.registered never reached consent"
            await asyncio.sleep(0.3)
        assert answer.status_code == 201
