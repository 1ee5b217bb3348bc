"""Ingest's /metrics: samples by state, read from its database when Prometheus scrapes."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from genomebus_common.stagekit.reference import Manifest

from .conftest import give_consent
from .fastq_data import pair
from .test_api_integration import CPR, registration

pytestmark = pytest.mark.integration


async def states(lis: httpx.AsyncClient) -> dict[str, float]:
    response = await lis.get("/metrics")
    assert response.status_code == 200
    return {
        sample.labels["state"]: sample.value
        for family in text_string_to_metric_families(response.text)
        if family.name == "genomebus_samples"
        for sample in family.samples
    }


async def test_samples_by_state_follow_the_database(
    lis: httpx.AsyncClient, toy_reference: Manifest
) -> None:
    empty = await states(lis)
    assert set(empty) >= {
        "awaiting_reads",
        "awaiting_consent",
        "received",
        "rejected",
        "quarantined",
        "removed",
    }
    assert not any(empty.values()), "a fresh database holds no samples"

    r1, r2 = pair(10)
    sample = (await lis.post("/v1/samples", json=registration(toy_reference, r1, r2))).json()
    assert (await states(lis))["awaiting_reads"] == 1
    await lis.put(sample["upload"]["R1"], content=r1)
    await lis.put(sample["upload"]["R2"], content=r2)
    waiting = await states(lis)
    assert waiting["awaiting_reads"] == 0 and waiting["awaiting_consent"] == 1
    await give_consent(lis, CPR, 1)
    released = await states(lis)
    assert released["awaiting_consent"] == 0 and released["received"] == 1
