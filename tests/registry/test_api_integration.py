"""The HTTP API as hospitals and researchers use it: bearer tokens, a required purpose, the
treating hospital's view (research restriction does not apply, withdrawal does) and research."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from genomebus_registry.inject import Registry

from .conftest import TOKENS, UploadedVcf, consent, delivery, pseudonym, variants_called

pytestmark = pytest.mark.integration

PURPOSE = {"X-Purpose": "treatment planning, oncology"}


def auth(client_id: str, purpose: str | None = "treatment planning, oncology") -> dict[str, str]:
    headers = {"Authorization": f"Bearer {TOKENS[client_id]}"}
    if purpose is not None:
        headers["X-Purpose"] = purpose
    return headers


async def test_the_treating_hospital_sees_its_patient_even_when_research_is_restricted(
    app_client: httpx.AsyncClient, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    registry: Registry = app_client.app.state.resources  # type: ignore[attr-defined]
    patient = pseudonym("api-restricted")
    await registry.handlers.consent_changed(consent(patient, 1, research=False), delivery())
    event = variants_called(
        upload_vcf([(10, "A", "G", "0/1", 30, 99), (20, "C", "T", "1/1", 5, 7)]), patient
    )
    await registry.handlers.variants_called(event, delivery())
    url = f"/v1/patients/{patient}/variants"

    own = await app_client.get(url, headers=auth("rh-lis"))
    assert own.status_code == 200, own.text
    body = own.json()
    assert body["samples"] == [
        {
            "sample_id": event.sample_id,
            "hospital_id": "RH",
            "reference_id": "toy-ref",
            "reference_digest": event.reference.digest,
        }
    ]
    assert [(v["pos"], v["zygosity"], v["dp"], v["gq"]) for v in body["variants"]] == [
        (10, "heterozygous", 30, 99),
        (20, "homozygous", 5, 7),
    ]

    # Another hospital learns nothing, not even that the patient exists; a researcher may not ask.
    other = await app_client.get(url, headers=auth("ouh-lis"))
    assert other.status_code == 404 and other.headers["content-type"] == "application/problem+json"
    assert (await app_client.get(url, headers=auth("researcher"))).status_code == 403
    # The research side does not see this patient at all.
    research = await app_client.get(
        "/v1/research/alleles",
        params={"chrom": "chrT", "pos": 10, "ref": "A", "alt": "G"},
        headers=auth("researcher", "population frequency"),
    )
    assert research.status_code == 200 and research.json()["results"] == []

    # Withdrawal: the treating hospital is refused on the next request.
    await registry.handlers.consent_changed(
        consent(patient, 2, research=False, withdrawn=True), delivery()
    )
    withdrawn = await app_client.get(url, headers=auth("rh-lis"))
    assert withdrawn.status_code == 403 and "withdrawn" in withdrawn.json()["detail"]

    audit = await registry.pool.fetch(
        "SELECT actor, action, purpose, outcome, patients FROM audit_log "
        "WHERE action NOT IN ('consent.changed', 'sample.loaded') ORDER BY id"
    )
    assert [(a["actor"], a["outcome"]) for a in audit] == [
        ("rh-lis", "answered"),
        ("ouh-lis", "denied: patient_not_found"),
        ("researcher", "denied: role_forbidden"),
        ("researcher", "answered"),
        ("rh-lis", "denied: consent_forbids"),
    ]
    assert audit[0]["purpose"] == "treatment planning, oncology" and audit[0]["patients"] == [
        patient
    ]
    assert audit[1]["patients"] == [] and audit[3]["patients"] == []


async def test_credentials_purpose_and_limits_are_checked(
    app_client: httpx.AsyncClient,
) -> None:
    alleles = {"chrom": "chrT", "pos": 10, "ref": "A", "alt": "G"}
    missing_token = await app_client.get("/v1/research/alleles", params=alleles, headers=PURPOSE)
    assert (
        missing_token.status_code == 401 and missing_token.headers["www-authenticate"] == "Bearer"
    )
    wrong = await app_client.get(
        "/v1/research/alleles", params=alleles, headers={**PURPOSE, "Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    no_purpose = await app_client.get(
        "/v1/research/alleles", params=alleles, headers=auth("researcher", None)
    )
    assert no_purpose.status_code == 400 and no_purpose.json()["type"].endswith("purpose_required")
    cpr = await app_client.get(
        "/v1/research/alleles", params=alleles, headers=auth("researcher", "about 241190-1234")
    )
    assert cpr.status_code == 400 and "241190" not in cpr.text
    hospital = await app_client.get("/v1/research/alleles", params=alleles, headers=auth("rh-lis"))
    assert hospital.status_code == 403

    too_long = await app_client.get(
        "/v1/research/regions",
        params={"chrom": "chrT", "start": 1, "end": 100_001},
        headers=auth("researcher"),
    )
    assert too_long.status_code == 422 and "100000" in too_long.json()["detail"]
    backwards = await app_client.get(
        "/v1/research/regions",
        params={"chrom": "chrT", "start": 50, "end": 10},
        headers=auth("researcher"),
    )
    assert backwards.status_code == 422
    for where in ({"start": 2**31, "end": 2**31 + 10}, {"start": 1, "end": 2**40}):
        beyond = await app_client.get(
            "/v1/research/regions", params={"chrom": "chrT", **where}, headers=auth("researcher")
        )
        assert beyond.status_code == 422, "a position no contig has: refused, not a database error"
    ok = await app_client.get(
        "/v1/research/regions",
        params={"chrom": "chrT", "start": 1, "end": 100_000},
        headers=auth("researcher"),
    )
    assert ok.status_code == 200 and ok.json() == {
        "chrom": "chrT",
        "start": 1,
        "end": 100_000,
        "variants": [],
        "next_cursor": None,
    }
    forged = await app_client.get(
        "/v1/research/regions",
        headers=auth("researcher"),
        params={"chrom": "chrT", "start": 1, "end": 10, "cursor": "x!y"},
    )
    assert forged.status_code == 422 and "cursor" in forged.text
    bad_pseudonym = await app_client.get(
        "/v1/patients/241190-1234/variants", headers=auth("rh-lis")
    )
    assert bad_pseudonym.status_code == 422 and "241190" not in bad_pseudonym.text
    health = await app_client.get("/readyz")
    assert health.status_code == 200 and health.json()["checks"]["postgres"] is True


async def test_a_hospital_that_removed_its_only_sample_of_a_patient_no_longer_treats_them(
    app_client: httpx.AsyncClient, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    """OUH sent a sample under the wrong patient and removed it: that gives OUH no view of the
    patient's genome from Rigshospitalet's samples."""
    from genomebus_common.contracts.events import SampleRemoved

    registry: Registry = app_client.app.state.resources  # type: ignore[attr-defined]
    patient = pseudonym("api-wrong-patient")
    await registry.handlers.consent_changed(consent(patient, 1), delivery())
    vcf = upload_vcf([(10, "A", "G", "0/1", 30, 99)])
    mistaken = variants_called(vcf, patient, hospital_id="OUH")
    await registry.handlers.variants_called(mistaken, delivery())
    await registry.handlers.variants_called(variants_called(vcf, patient), delivery())
    url = f"/v1/patients/{patient}/variants"
    assert (await app_client.get(url, headers=auth("ouh-lis"))).status_code == 200

    await registry.handlers.sample_removed(
        SampleRemoved(
            correlation_id=mistaken.sample_id,
            sample_id=mistaken.sample_id,
            patient_pseudonym=patient,
            hospital_id="OUH",
            reason="wrong patient",
            requested_by="OUH",
        ),
        delivery(),
    )
    assert (await app_client.get(url, headers=auth("ouh-lis"))).status_code == 404
    assert (await app_client.get(url, headers=auth("rh-lis"))).status_code == 200
