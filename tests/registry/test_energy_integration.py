"""Energy per sample: the registry keeps each stage's estimate (alignment's from sample.aligned,
calling's from variants.called), announces the known total on variants.ready, and shows the
treating hospital its sample's figures, always labelled as estimates with their method."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import httpx
import pytest

from genomebus_common.contracts.energy import METHOD, TOTAL_METHOD, total
from genomebus_common.contracts.events import (
    AlignmentMetrics,
    EnergyEstimate,
    SampleAligned,
    ToolProvenance,
    VariantsReady,
)
from genomebus_registry.adapters.postgres.handlers import RegistryHandlers
from genomebus_registry.inject import Registry

from ..common.factories import object_ref
from .conftest import REFERENCE, TOKENS, UploadedVcf, consent, delivery, pseudonym, variants_called

pytestmark = pytest.mark.integration


def estimate(cpu_seconds: float, fraction: float, node: str | None = "node-a") -> EnergyEstimate:
    kwh = cpu_seconds * 10.0 / 3.6e6
    return EnergyEstimate(
        method=METHOD,
        cpu_seconds=cpu_seconds,
        wall_seconds=cpu_seconds / 2,
        watts_per_core=10.0,
        kwh=kwh,
        heat_recovery_fraction=fraction,
        heat_recovered_kwh=kwh * fraction,
        node=node,
    )


ALIGNMENT = estimate(360.0, 0.5)
CALLING = estimate(36.0, 0.0, node="node-b")


def sample_aligned(sample_id: str, patient: str, energy: EnergyEstimate | None) -> SampleAligned:
    return SampleAligned(
        correlation_id=sample_id,
        sample_id=sample_id,
        patient_pseudonym=patient,
        reference=REFERENCE,
        hospital_id="RH",
        bam=object_ref("sample.bam", b"bam-" + sample_id.encode()),
        bam_index=object_ref("sample.bam.bai", b"bai"),
        metrics=AlignmentMetrics(
            reads_total=10, mapping_rate=1.0, duplicate_rate=0.0, mean_coverage=30
        ),
        tools=[ToolProvenance(name="bwa", version="0.7.17")],
        energy=energy,
    )


async def energy_rows(pool: asyncpg.Pool, sample_id: str) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in await pool.fetch(
            "SELECT stage, cpu_seconds, kwh, heat_recovered_kwh, node, method FROM sample_energy "
            "WHERE sample_id = $1 ORDER BY stage",
            sample_id,
        )
    ]


async def ready_events(pool: asyncpg.Pool) -> list[VariantsReady]:
    rows = await pool.fetch("SELECT payload FROM genomebus_outbox ORDER BY id")
    return [VariantsReady.model_validate_json(bytes(r["payload"])) for r in rows]


async def test_both_stages_are_recorded_once_and_variants_ready_carries_their_total(
    handlers: RegistryHandlers, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    patient = pseudonym("energy-1")
    await handlers.consent_changed(consent(patient, 1), delivery())
    called = variants_called(upload_vcf([(10, "A", "G", "0/1", 30, 99)]), patient)
    called = called.model_copy(update={"energy": CALLING})
    aligned = sample_aligned(called.sample_id, patient, ALIGNMENT)

    await handlers.sample_aligned(aligned, delivery())
    await handlers.sample_aligned(aligned, delivery())  # redelivered: the same row, not two
    await handlers.variants_called(called, delivery())
    await handlers.variants_called(called, delivery())

    assert await energy_rows(pool, called.sample_id) == [
        ("alignment", 360.0, ALIGNMENT.kwh, ALIGNMENT.heat_recovered_kwh, "node-a", METHOD),
        ("calling", 36.0, CALLING.kwh, 0.0, "node-b", METHOD),
    ]
    (ready,) = await ready_events(pool)
    assert ready.energy == total([ALIGNMENT, CALLING])
    assert (
        ready.energy is not None and ready.energy.estimate and ready.energy.method == TOTAL_METHOD
    )
    assert ready.energy.heat_recovered_kwh == pytest.approx(ALIGNMENT.heat_recovered_kwh)


async def test_what_is_known_at_load_is_announced_and_late_or_odd_events_are_still_recorded(
    handlers: RegistryHandlers, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    patient = pseudonym("energy-2")
    await handlers.consent_changed(consent(patient, 1), delivery())
    called = variants_called(upload_vcf([(10, "A", "G", "0/1", 30, 99)]), patient)
    await handlers.variants_called(called.model_copy(update={"energy": CALLING}), delivery())
    (ready,) = await ready_events(pool)
    assert ready.energy == total([CALLING]), "alignment's estimate had not arrived at load"

    # Alignment's estimate arriving after the load is kept all the same, as is one for a sample
    # the registry never loaded; an event without an estimate records nothing.
    await handlers.sample_aligned(sample_aligned(called.sample_id, patient, ALIGNMENT), delivery())
    await handlers.sample_aligned(sample_aligned("S-never-loaded", patient, ALIGNMENT), delivery())
    await handlers.sample_aligned(sample_aligned("S-no-estimate", patient, None), delivery())
    assert [r[0] for r in await energy_rows(pool, called.sample_id)] == ["alignment", "calling"]
    assert [r[0] for r in await energy_rows(pool, "S-never-loaded")] == ["alignment"]
    assert await energy_rows(pool, "S-no-estimate") == []

    # A quarantined sample's calling still cost energy: recorded, but nothing is announced.
    withdrawn = pseudonym("energy-withdrawn")
    await handlers.consent_changed(consent(withdrawn, 1, withdrawn=True), delivery())
    late = variants_called(upload_vcf([(20, "C", "T", "0/1", 30, 99)]), withdrawn)
    await handlers.variants_called(late.model_copy(update={"energy": CALLING}), delivery())
    assert [r[0] for r in await energy_rows(pool, late.sample_id)] == ["calling"]
    assert len(await ready_events(pool)) == 1


def auth(client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[client_id]}", "X-Purpose": "energy report"}


async def test_the_treating_hospital_sees_its_samples_energy_as_labelled_estimates(
    app_client: httpx.AsyncClient, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    registry: Registry = app_client.app.state.resources  # type: ignore[attr-defined]
    patient = pseudonym("energy-api")
    await registry.handlers.consent_changed(consent(patient, 1), delivery())
    called = variants_called(upload_vcf([(10, "A", "G", "0/1", 30, 99)]), patient)
    await registry.handlers.sample_aligned(
        sample_aligned(called.sample_id, patient, ALIGNMENT), delivery()
    )
    url = f"/v1/samples/{called.sample_id}/energy"

    # Before calling has reported (the sample is not loaded yet): alignment only, and said so.
    early = await app_client.get(url, headers=auth("rh-lis"))
    assert early.status_code == 200, early.text
    assert [s["stage"] for s in early.json()["stages"]] == ["alignment"]
    assert early.json()["missing_stages"] == ["calling"]

    await registry.handlers.variants_called(
        called.model_copy(update={"energy": CALLING}), delivery()
    )
    body = (await app_client.get(url, headers=auth("rh-lis"))).json()
    assert body["estimate"] is True and body["missing_stages"] == []
    assert [
        (s["stage"], s["estimate"]["estimate"], s["estimate"]["method"]) for s in body["stages"]
    ] == [("alignment", True, METHOD), ("calling", True, METHOD)]
    expected = total([ALIGNMENT, CALLING])
    assert expected is not None
    assert body["total"]["method"] == TOTAL_METHOD
    assert body["total"]["kwh"] == pytest.approx(expected.kwh)
    assert body["total"]["heat_recovered_kwh"] == pytest.approx(expected.heat_recovered_kwh)

    # Another hospital learns nothing; a researcher may not ask; every question is audited.
    other = await app_client.get(url, headers=auth("ouh-lis"))
    assert other.status_code == 404
    assert (await app_client.get(url, headers=auth("researcher"))).status_code == 403
    assert (
        await app_client.get("/v1/samples/S-unknown/energy", headers=auth("rh-lis"))
    ).status_code == 404
    audit = await registry.pool.fetch(
        "SELECT actor, outcome, patients FROM audit_log WHERE action = 'treatment.sample_energy' "
        "ORDER BY id"
    )
    assert [(a["actor"], a["outcome"]) for a in audit] == [
        ("rh-lis", "answered"),
        ("rh-lis", "answered"),
        ("ouh-lis", "denied: sample_not_found"),
        ("researcher", "denied: role_forbidden"),
        ("rh-lis", "denied: sample_not_found"),
    ]
    assert audit[0]["patients"] == [patient] and audit[2]["patients"] == []
