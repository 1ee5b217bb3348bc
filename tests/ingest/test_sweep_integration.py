"""Samples that nothing else would move on are moved on by ingest's sweep, by themselves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from genomebus_common.stagekit.reference import Manifest
from genomebus_ingest.config import IngestSettings

from .conftest import give_consent, lis_client, upload_with_the_check_dropped
from .fastq_data import pair
from .test_api_integration import registration

pytestmark = pytest.mark.integration


@pytest.fixture
async def swept_lis(ingest_settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest with a sweep every 0.2 s of whatever was untouched for 0.5 s."""
    settings = ingest_settings.model_copy(
        update={"sweep_interval_s": 0.2, "sweep_stale_after_s": 0.5}
    )
    async with lis_client(settings) as client:
        yield client


async def status_becomes(lis: httpx.AsyncClient, sample_id: str, status: str) -> dict:
    for _ in range(100):
        view = (await lis.get(f"/v1/samples/{sample_id}")).json()
        if view["status"] == status:
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"{sample_id} stayed {view['status']}, never {status}")


async def test_a_check_that_died_half_way_is_finished_without_the_lis(
    swept_lis: httpx.AsyncClient, toy_reference: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = await upload_with_the_check_dropped(swept_lis, toy_reference, monkeypatch)
    await status_becomes(swept_lis, sample["sample_id"], "awaiting_consent")


async def test_a_sample_the_consent_could_not_release_then_is_released_later(
    swept_lis: httpx.AsyncClient, toy_reference: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference was unregistered when the consent came: the sample waits, and goes once
    the reference is back, with no new consent version."""
    cpr = "120383-2222"
    r1, r2 = pair(6)
    sample = (
        await swept_lis.post(
            "/v1/samples", json=registration(toy_reference, r1, r2, national_id=cpr)
        )
    ).json()
    await swept_lis.put(sample["upload"]["R1"], content=r1)
    await swept_lis.put(sample["upload"]["R2"], content=r2)
    ingest = swept_lis.app.state.resources  # type: ignore[attr-defined]
    real_find = ingest.references.find
    monkeypatch.setattr(ingest.references, "find", lambda reference_id: None)
    await give_consent(swept_lis, cpr, 1)
    await asyncio.sleep(1.0)  # several sweeps while the reference is still away
    assert (await swept_lis.get(f"/v1/samples/{sample['sample_id']}")).json()[
        "status"
    ] == "awaiting_consent"

    monkeypatch.setattr(ingest.references, "find", real_find)
    released = await status_becomes(swept_lis, sample["sample_id"], "received")
    assert released["consent_version"] == 1 and released["event_id"]
