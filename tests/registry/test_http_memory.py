"""The HTTP router over in-memory queries: authentication, the purpose header, parameter and
cursor validation, and the error bodies, without PostgreSQL or Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from genomebus_registry.adapters import http
from genomebus_registry.core.access import PatientNotFound
from genomebus_registry.core.answers import AlleleAnswer, RegionAnswer
from genomebus_registry.core.cursors import RegionCursor

from .conftest import CLIENTS, TOKENS, pseudonym
from .memory import MemoryQueries


@pytest.fixture
def queries() -> MemoryQueries:
    return MemoryQueries()


@pytest.fixture
async def api(queries: MemoryQueries) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    http.install(app, CLIENTS, max_region_bp=1000)
    app.state.resources = SimpleNamespace(queries=queries)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
        yield client


def auth(client_id: str, purpose: str | None = "a study") -> dict[str, str]:
    headers = {"Authorization": f"Bearer {TOKENS[client_id]}"}
    return headers | ({"X-Purpose": purpose} if purpose is not None else {})


async def test_the_caller_is_the_token_s_client_with_its_purpose(
    api: httpx.AsyncClient, queries: MemoryQueries
) -> None:
    queries.answers["allele"] = AlleleAnswer(chrom="chrT", pos=5, ref="A", alt="G", results=[])
    response = await api.get(
        "/v1/research/alleles",
        params={"chrom": "chrT", "pos": 5, "ref": "a", "alt": "g"},
        headers=auth("researcher", "allele frequency study"),
    )
    assert response.status_code == 200, response.text
    (method, caller, arguments), *_ = queries.asked
    assert (method, caller.client_id, caller.role, caller.purpose) == (
        "allele",
        "researcher",
        "research",
        "allele frequency study",
    )
    assert (arguments["ref"], arguments["alt"]) == ("A", "G")  # upper-cased before asking


@pytest.mark.parametrize(
    ("purpose", "status"), [(None, 400), ("   ", 400), ("x" * 501, 400), ("0101701234", 400)]
)
async def test_a_missing_or_unsafe_purpose_is_refused_before_any_query(
    api: httpx.AsyncClient, queries: MemoryQueries, purpose: str | None, status: int
) -> None:
    response = await api.get(
        "/v1/research/alleles",
        params={"chrom": "chrT", "pos": 5, "ref": "A", "alt": "G"},
        headers=auth("researcher", purpose),
    )
    assert response.status_code == status
    assert queries.asked == []


async def test_a_region_that_is_backwards_or_too_long_is_refused(
    api: httpx.AsyncClient, queries: MemoryQueries
) -> None:
    for start, end in ((500, 400), (1, 1001)):
        response = await api.get(
            "/v1/research/regions",
            params={"chrom": "chrT", "start": start, "end": end},
            headers=auth("researcher"),
        )
        assert response.status_code == 422, response.text
    assert queries.asked == []


async def test_a_region_cursor_comes_back_as_it_was_handed_out(
    api: httpx.AsyncClient, queries: MemoryQueries
) -> None:
    queries.answers["region"] = RegionAnswer(chrom="chrT", start=1, end=1000, variants=[])
    cursor = RegionCursor(reference_digest="SQC.x", key=42)
    response = await api.get(
        "/v1/research/regions",
        params={"chrom": "chrT", "start": 1, "end": 1000, "cursor": cursor.encode()},
        headers=auth("researcher"),
    )
    assert response.status_code == 200, response.text
    assert queries.asked[0][2]["after"] == cursor
    forged = await api.get(
        "/v1/research/regions",
        params={"chrom": "chrT", "start": 1, "end": 1000, "cursor": "bm90LWEtY3Vyc29y"},
        headers=auth("researcher"),
    )
    assert forged.status_code == 422
    assert len(queries.asked) == 1


async def test_a_refusal_of_the_queries_keeps_its_status(
    api: httpx.AsyncClient, queries: MemoryQueries
) -> None:
    patient = pseudonym("nobody")
    queries.answers["patient_variants"] = PatientNotFound(f"no patient {patient}")
    response = await api.get(f"/v1/patients/{patient}/variants", headers=auth("rh-lis"))
    assert response.status_code == 404
    assert queries.asked[0][1].hospital_id == "RH"


async def test_no_token_is_no_query(api: httpx.AsyncClient, queries: MemoryQueries) -> None:
    response = await api.get(
        "/v1/research/alleles",
        params={"chrom": "chrT", "pos": 5, "ref": "A", "alt": "G"},
        headers={"X-Purpose": "a study"},
    )
    assert response.status_code == 401
    assert queries.asked == []
