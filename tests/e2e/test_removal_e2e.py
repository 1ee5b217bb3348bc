"""A hospital withdraws a finished sample: every service deletes what it holds of it."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from genomebus_common.contracts.events import VariantsReady
from genomebus_common.contracts.topics import VARIANTS_READY
from genomebus_common.runtime.db import with_database
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit.reference import Manifest
from genomebus_common.stagekit.stage import REMOVED_RECORD
from genomebus_testdata import simulate_sample

from ..common.kafka_helpers import read_until
from .conftest import Pipeline, consent_for, post_sample, publish_consent

pytestmark = pytest.mark.integration
PATIENT = "230571-1357"  # made up, well formed

# Where each service keeps a sample's objects.
PLACES = {
    "ingest": ("genomebus-reads", "samples/{id}/"),
    "alignment": ("genomebus-alignments", "samples/{id}/alignment/"),
    "calling": ("genomebus-variants", "samples/{id}/calling/"),
}


def _objects(store: ObjectStore, bucket: str, prefix: str) -> list[str]:
    return sorted(
        item.object_name
        for item in store.client.list_objects(bucket, prefix=prefix, recursive=True)
        if item.object_name
    )


async def test_a_removed_sample_leaves_no_reads_bam_vcf_or_genotypes(
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
    sample = simulate_sample(reference_fasta, tmp_path / "s", read_pairs=20000, seed=21)
    with pipeline.lis() as lis:
        sample_id = post_sample(
            lis,
            sample,
            registered_reference.reference.id,
            f"R{uuid.uuid4().hex[:8]}",
            national_id=PATIENT,
        )["sample_id"]
        ready = VariantsReady.from_bytes(
            (
                await read_until(
                    settings,
                    VARIANTS_READY.name,
                    lambda r: r.key == sample_id.encode(),
                    timeout_s=180,
                )
            ).value
        )  # type: ignore[arg-type]
        assert ready.genotypes_loaded > 0
        for service, (bucket, prefix) in PLACES.items():
            assert _objects(store, bucket, prefix.format(id=sample_id)), f"{service} kept nothing"

        answer = lis.delete(f"/v1/samples/{sample_id}", params={"reason": "specimen mix-up"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "removed"

    registry_dsn = with_database(endpoints["GENOMEBUS_POSTGRES_DSN"], "genomebus_registry")

    async def what_is_left() -> dict[str, object]:
        left: dict[str, object] = {}
        for service, (bucket, prefix) in PLACES.items():
            kept = [
                n
                for n in _objects(store, bucket, prefix.format(id=sample_id))
                if not n.endswith(REMOVED_RECORD)
            ]
            if kept:
                left[service] = kept
        conn = await asyncpg.connect(registry_dsn)
        try:
            removed = await conn.fetchval(
                "SELECT removed_at IS NOT NULL FROM samples WHERE sample_id = $1", sample_id
            )
            visible = await conn.fetchval(
                "SELECT count(*) FROM research_genotypes WHERE patient_pseudonym = $1",
                ready.patient_pseudonym,
            )
        finally:
            await conn.close()
        if not removed or visible:
            left["registry"] = {"removed": removed, "research_rows": visible}
        return left

    deadline, left = time.monotonic() + 90, await what_is_left()
    while left and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        left = await what_is_left()
    assert left == {}, f"still held after the removal: {left}"
    for service in ("alignment", "calling"):  # a tombstone stops a late redelivery recreating it
        bucket, prefix = PLACES[service]
        assert _objects(store, bucket, prefix.format(id=sample_id)) == [
            prefix.format(id=sample_id) + REMOVED_RECORD
        ]
