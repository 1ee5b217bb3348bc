"""A patient sees who read their data: the citizens' portal asks the registry for the patient's
access log, built from the registry's own audit; no one else may ask. Over HTTP, on the real
PostgreSQL and MinIO."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from .conftest import UploadedVcf, auth, consent, delivery, enrol, registry_of

pytestmark = pytest.mark.integration

CARE = "treatment planning, oncology"
PORTAL = "the patient views who read their data"
VARIANT = (10, "A", "G", "0/1", 30, 99)


def log_url(patient: str) -> str:
    return f"/v1/patients/{patient}/access-log"


async def test_the_portal_sees_a_hospitals_read_with_its_purpose(
    api: httpx.AsyncClient, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    patient = await enrol(api, upload_vcf, "access-log-read", [VARIANT])
    other = await enrol(api, upload_vcf, "access-log-other", [VARIANT])
    read = await api.get(f"/v1/patients/{patient}/variants", headers=auth("rh-lis", CARE))
    assert read.status_code == 200, read.text
    # Someone else's read, and a research count that includes the patient.
    assert (
        await api.get(f"/v1/patients/{other}/variants", headers=auth("rh-lis", "other care"))
    ).status_code == 200
    research = await api.get(
        "/v1/research/alleles",
        headers=auth("researcher", "allele frequency study"),
        params={"chrom": "chrT", "pos": 10, "ref": "A", "alt": "G"},
    )
    assert research.status_code == 200

    seen = await api.get(log_url(patient), headers=auth("citizen-portal", PORTAL))
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert body["patient_pseudonym"] == patient and body["next_cursor"] is None
    entries = body["entries"]
    assert [
        (e["client_id"], e["role"], e["hospital_id"], e["action"], e["purpose"], e["outcome"])
        for e in entries
    ] == [
        ("researcher", "research", None, "research.allele", "allele frequency study", "answered"),
        ("rh-lis", "hospital", "RH", "treatment.patient_variants", CARE, "answered"),
    ], "newest first; the other patient's read is not here"
    when = datetime.fromisoformat(entries[1]["at"])
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=1)

    # The portal's own look is audited (it reads about the patient) but is not a read of the
    # patient's data, so it does not fill the log it reads.
    again = (await api.get(log_url(patient), headers=auth("citizen-portal", PORTAL))).json()
    assert again["entries"] == entries
    audited = await registry_of(api).pool.fetch(
        "SELECT actor, purpose, patients FROM audit_log WHERE action = 'portal.access_log'"
    )
    assert [(a["actor"], a["purpose"], a["patients"]) for a in audited] == [
        ("citizen-portal", PORTAL, [patient])
    ] * 2


async def test_a_refused_read_is_in_the_log_too(
    api: httpx.AsyncClient, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    """After a withdrawal the hospital is refused; the patient sees that it tried, and why."""
    patient = await enrol(api, upload_vcf, "access-log-withdrawn", [VARIANT])
    await registry_of(api).handlers.consent_changed(consent(patient, 2, withdrawn=True), delivery())
    assert (
        await api.get(f"/v1/patients/{patient}/variants", headers=auth("rh-lis", CARE))
    ).status_code == 403
    (entry,) = (await api.get(log_url(patient), headers=auth("citizen-portal", PORTAL))).json()[
        "entries"
    ]
    assert (entry["client_id"], entry["outcome"]) == ("rh-lis", "denied: consent_forbids")


async def test_only_the_portal_may_read_an_access_log_and_the_portal_reads_nothing_else(
    api: httpx.AsyncClient, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    patient = await enrol(api, upload_vcf, "access-log-roles", [VARIANT])
    assert (
        await api.get(f"/v1/patients/{patient}/variants", headers=auth("rh-lis", CARE))
    ).status_code == 200
    for client in ("rh-lis", "ouh-lis", "researcher"):
        refused = await api.get(log_url(patient), headers=auth(client, "curious"))
        assert refused.status_code == 403, (client, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert "rh-lis" not in refused.text and CARE not in refused.text
    no_token = await api.get(log_url(patient), headers={"X-Purpose": PORTAL})
    assert no_token.status_code == 401

    # The portal shows patients who looked; it never looks at genotypes itself.
    portal = auth("citizen-portal", PORTAL)
    assert (await api.get(f"/v1/patients/{patient}/variants", headers=portal)).status_code == 403
    assert (
        await api.get(
            "/v1/research/alleles",
            headers=portal,
            params={"chrom": "chrT", "pos": 10, "ref": "A", "alt": "G"},
        )
    ).status_code == 403
    # Every refusal is audited, naming no patient.
    refusals = await registry_of(api).pool.fetch(
        "SELECT actor, outcome, patients FROM audit_log WHERE outcome LIKE 'denied:%' ORDER BY id"
    )
    assert [(r["actor"], r["outcome"], r["patients"]) for r in refusals] == [
        (client, "denied: role_forbidden", [])
        for client in ("rh-lis", "ouh-lis", "researcher", "citizen-portal", "citizen-portal")
    ]


async def test_the_log_comes_a_bounded_page_at_a_time(
    api: httpx.AsyncClient, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    patient = await enrol(api, upload_vcf, "access-log-pages", [VARIANT])
    for i in range(7):
        read = await api.get(
            f"/v1/patients/{patient}/variants", headers=auth("rh-lis", f"visit {i}")
        )
        assert read.status_code == 200
    portal = auth("citizen-portal", PORTAL)
    pages, cursor = [], None
    while True:
        params: dict[str, str | int] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = await api.get(log_url(patient), headers=portal, params=params)
        assert page.status_code == 200, page.text
        pages.append([e["purpose"] for e in page.json()["entries"]])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == [
        ["visit 6", "visit 5", "visit 4"],
        ["visit 3", "visit 2", "visit 1"],
        ["visit 0"],
    ]

    too_many = await api.get(log_url(patient), headers=portal, params={"limit": 501})
    assert too_many.status_code == 422
    forged = await api.get(log_url(patient), headers=portal, params={"cursor": "eyJ4IjoxfQ"})
    assert forged.status_code == 422 and "cursor" in forged.text
    # A pseudonym no one has read (or that does not exist) has an empty log: nothing to tell.
    nobody = await api.get(log_url("pk1_" + "0" * 64), headers=portal)
    assert nobody.status_code == 200 and nobody.json()["entries"] == []
