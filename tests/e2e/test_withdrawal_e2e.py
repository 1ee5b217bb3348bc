"""A patient withdraws while their sample is in the pipeline: it stops, nothing reaches research."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from genomebus_common.contracts.events import SampleReceived
from genomebus_common.contracts.topics import VARIANTS_READY, sample_received_topic
from genomebus_common.runtime.db import with_database
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit.reference import Manifest
from genomebus_common.stagekit.stage import QUARANTINE_RECORD, Quarantine
from genomebus_testdata import simulate_sample

from ..common.kafka_helpers import read_until
from .conftest import Pipeline, consent_for, post_sample, publish_consent

pytestmark = pytest.mark.integration
PATIENT = "120466-2468"  # made up, well formed


async def test_withdrawal_mid_pipeline_quarantines_and_nothing_is_research_visible(
    pipeline: Pipeline,
    registered_reference: Manifest,
    reference_fasta: Path,
    settings: ServiceSettings,
    consent_kafka: ServiceSettings,
    store: ObjectStore,
    endpoints: dict[str, str],
    tmp_path: Path,
) -> None:
    await publish_consent(consent_kafka, consent_for(PATIENT, 1))
    sample = simulate_sample(reference_fasta, tmp_path / "s", read_pairs=20000, seed=9)
    with pipeline.lis() as lis:
        sample_id = post_sample(
            lis,
            sample,
            registered_reference.reference.id,
            f"Q{uuid.uuid4().hex[:8]}",
            national_id=PATIENT,
        )["sample_id"]
    received = SampleReceived.from_bytes(
        (
            await read_until(
                settings, sample_received_topic("routine"), lambda r: r.key == sample_id.encode()
            )
        ).value  # type: ignore[arg-type]
    )
    await publish_consent(consent_kafka, consent_for(PATIENT, 2, withdrawn=True))

    registry_dsn = with_database(endpoints["GENOMEBUS_POSTGRES_DSN"], "genomebus_registry")

    async def where_quarantined() -> str | None:
        for bucket, stage in (
            ("genomebus-alignments", "alignment"),
            ("genomebus-variants", "calling"),
        ):
            key = f"samples/{sample_id}/{stage}/{QUARANTINE_RECORD}"
            if store.read_model(bucket, key, Quarantine) is not None:
                return stage
        conn = await asyncpg.connect(registry_dsn)
        try:
            if await conn.fetchval(
                "SELECT quarantined FROM samples WHERE sample_id = $1", sample_id
            ):
                return "registry"
        finally:
            await conn.close()
        return None

    deadline, stage = time.monotonic() + 120, None
    while stage is None and time.monotonic() < deadline:
        stage = await where_quarantined()
        await asyncio.sleep(0.5)
    assert stage is not None, "some stage must record the quarantine"
    print(f"\nquarantined by {stage}")

    with pytest.raises(AssertionError, match="no matching record"):
        await read_until(
            settings, VARIANTS_READY.name, lambda r: r.key == sample_id.encode(), timeout_s=8
        )
    conn = await asyncpg.connect(registry_dsn)
    try:
        visible = await conn.fetchval(
            "SELECT count(*) FROM research_genotypes WHERE patient_pseudonym = $1",
            received.patient_pseudonym,
        )
    finally:
        await conn.close()
    assert visible == 0
