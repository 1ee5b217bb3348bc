"""Consent applies to the purpose: a research sample of a patient who restricted use to their
own treatment is held with a reason, never processed (the old main released it)."""

from __future__ import annotations

import random

import httpx
import pytest

from genomebus_common.contracts.events import ConsentChanged, ResearchUse
from genomebus_common.runtime.broker import Delivery
from genomebus_common.stagekit.reference import Manifest

from ..ingest.conftest import pseudonym_of
from ..ingest.fastq_data import pair
from ..ingest.test_api_integration import registration

pytestmark = pytest.mark.integration


async def _consent(
    lis: httpx.AsyncClient, cpr: str, version: int, research_use: ResearchUse
) -> None:
    event = ConsentChanged(
        correlation_id=f"purpose-{version}",
        patient_pseudonym=pseudonym_of(cpr),
        version=version,
        analysis_consent_given=True,
        consent_document="DOC-9",
        research_use=research_use,
        withdrawn=False,
        recorded_by="tests",
    )
    delivery = Delivery(
        topic="genomebus.consent.changed", partition=0, offset=random.randrange(1 << 40), key=None
    )
    await lis.app.state.resources.apply_consent(event, delivery)  # type: ignore[attr-defined]


async def test_a_research_sample_of_a_restricted_patient_is_held_until_research_is_allowed(
    lis: httpx.AsyncClient,
    toy_reference: Manifest,
) -> None:
    cpr = f"{random.randint(10, 28)}0385-{random.randint(1000, 3999)}"
    r1, r2 = pair(5, seed=89)
    research = (
        await lis.post(
            "/v1/samples",
            json=registration(toy_reference, r1, r2, national_id=cpr, priority="research"),
        )
    ).json()
    clinical = (
        await lis.post(
            "/v1/samples",
            json=registration(toy_reference, r1, r2, national_id=cpr, priority="routine"),
        )
    ).json()
    for sample in (research, clinical):
        assert "upload" in sample, sample
        await lis.put(sample["upload"]["R1"], content=r1)
        await lis.put(sample["upload"]["R2"], content=r2)

    await _consent(lis, cpr, 1, ResearchUse.OWN_TREATMENT_ONLY)
    held = (await lis.get(f"/v1/samples/{research['sample_id']}")).json()
    assert held["status"] == "awaiting_consent" and held["event_id"] is None, (
        "a restricted patient's research sample ran"
    )
    assert "own treatment" in held["reasons"][0]
    assert (await lis.get(f"/v1/samples/{clinical['sample_id']}")).json()["status"] == "received"

    await _consent(lis, cpr, 2, ResearchUse.ALLOWED)  # the patient allows research use
    assert (await lis.get(f"/v1/samples/{research['sample_id']}")).json()["status"] == "received"
