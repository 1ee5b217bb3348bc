"""A hospital posts a sample; genomebus aligns it, calls its variants, and announces each step."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from genomebus_common.contracts.events import (
    Priority,
    SampleAligned,
    SampleReceived,
    StageFailed,
    VariantsCalled,
)
from genomebus_common.contracts.topics import (
    SAMPLE_ALIGNED,
    STAGE_FAILED,
    VARIANTS_CALLED,
    sample_received_topic,
)
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit.reference import Manifest
from genomebus_devstack import kafka
from genomebus_devstack.paths import Layout
from genomebus_testdata import SimulatedSample, evaluate

from ..common.kafka_helpers import read_until
from .conftest import NATIONAL_ID, Pipeline, post_sample

pytestmark = pytest.mark.integration


async def test_post_to_variants_called_with_checked_objects_and_accurate_calls(
    pipeline: Pipeline,
    registered_reference: Manifest,
    sample_30x: SimulatedSample,
    reference_fasta: Path,
    settings: ServiceSettings,
    store: ObjectStore,
    tmp_path: Path,
) -> None:
    specimen = f"A{uuid.uuid4().hex[:8]}"
    with pipeline.lis() as lis:
        view = post_sample(
            lis, sample_30x, registered_reference.reference.id, specimen, priority="urgent_clinical"
        )
    sample_id = view["sample_id"]
    key = sample_id.encode()

    received = SampleReceived.from_bytes(
        (
            await read_until(
                settings, sample_received_topic("urgent_clinical"), lambda r: r.key == key
            )
        ).value  # type: ignore[arg-type]
    )
    aligned = SampleAligned.from_bytes(
        (
            await read_until(settings, SAMPLE_ALIGNED.name, lambda r: r.key == key, timeout_s=240)
        ).value
    )
    called = VariantsCalled.from_bytes(
        (
            await read_until(settings, VARIANTS_CALLED.name, lambda r: r.key == key, timeout_s=240)
        ).value
    )

    assert received.read_pairs == sample_30x.read_pairs
    assert aligned.correlation_id == called.correlation_id == sample_id
    assert aligned.patient_pseudonym == called.patient_pseudonym == received.patient_pseudonym
    assert called.reference == aligned.reference == registered_reference.reference
    assert aligned.metrics.reads_total == 2 * sample_30x.read_pairs
    assert aligned.metrics.mapping_rate > 0.99
    assert 27 < aligned.metrics.mean_coverage < 33
    assert {t.name for t in aligned.tools} >= {"bwa", "samtools"}
    # Scattered and gathered (chunks of whole bwa batches; regions of the reference), the lane
    # carried on, and the units' intermediates removed once gathered.
    assert aligned.scatter is not None and aligned.scatter.units == 3
    assert called.scatter is not None and called.scatter.units == 3
    assert aligned.priority == Priority.URGENT_CLINICAL
    for bucket, folder in (
        ("genomebus-alignments", f"samples/{sample_id}/alignment"),
        ("genomebus-variants", f"samples/{sample_id}/calling"),
    ):
        deadline = time.monotonic() + 30  # removed just after the event is published
        work = f"{folder}/scatter/work/"
        while store.list_keys(bucket, work) and time.monotonic() < deadline:  # noqa: ASYNC110 - polls S3
            await asyncio.sleep(0.2)
        assert store.list_keys(bucket, work) == []
        assert len(store.list_keys(bucket, f"{folder}/scatter/units/")) == 3
    # The hospital sees how far each stage got, in the sample's status.
    finished = {
        "alignment": {"done": 3, "total": 3, "unit_kind": "read_chunk"},
        "calling": {"done": 3, "total": 3, "unit_kind": "region"},
    }
    deadline = time.monotonic() + 30
    with pipeline.lis() as lis:
        while (  # noqa: ASYNC110 - polls ingest's HTTP status: there is no event to await
            progress := lis.get(f"/v1/samples/{sample_id}").json()["progress"] or {}
        ) != finished and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    assert progress["alignment"]["done"] == progress["alignment"]["total"] == 3, progress
    assert progress["calling"]["done"] == progress["calling"]["total"] == 3, progress

    # Every object is there with the checksum its event declares (download verifies it).
    for ref, name in (
        (aligned.bam, "a.bam"),
        (aligned.bam_index, "a.bam.bai"),
        (called.vcf, "c.vcf.gz"),
        (called.vcf_index, "c.vcf.gz.tbi"),
    ):
        store.download(ref, tmp_path / name)
    # ...and the VCF is accurate against the simulation's truth.
    accuracy = evaluate(tmp_path / "c.vcf.gz", sample_30x.truth_vcf, reference_fasta)
    print("\n" + accuracy.summary())
    assert accuracy.snv.f1 >= 0.99, accuracy.summary()
    assert accuracy.indel.f1 >= 0.95, accuracy.summary()
    assert (
        called.counts.snv == accuracy.snv.call_count
        and called.counts.indel == accuracy.indel.call_count
    )

    # An outside consumer (kcat, from Debian) sees the events too.
    kcat = shutil.which("kcat")
    assert kcat, "kcat is missing: run `make install`"
    config = kafka.kcat_config(Layout.discover())  # the stack's administrator, over PLAIN
    out = (
        await asyncio.to_thread(
            subprocess.run,
            [
                kcat,
                "-F",
                str(config),
                "-C",
                "-b",
                settings.kafka_bootstrap_servers,
                "-t",
                VARIANTS_CALLED.name,
                "-o",
                "beginning",
                "-e",
                "-J",
                "-q",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    ).stdout
    seen = [json.loads(line) for line in out.splitlines() if line.strip()]
    mine = [m for m in seen if m["key"] == sample_id]
    assert mine and json.loads(mine[0]["payload"])["vcf"]["sha256"] == called.vcf.sha256
    # kcat -J lists headers as [name, value, name, value, ...]: always whole pairs.
    headers = dict(zip(mine[0]["headers"][::2], mine[0]["headers"][1::2], strict=True))
    assert headers["x-genomebus-event-type"] == "variants.called" and "traceparent" in headers

    # The national id the LIS sent reached no service's log.
    for name in ("ingest", "alignment", "calling"):
        log = pipeline.services[name].log_path.read_text()
        assert NATIONAL_ID not in log and NATIONAL_ID.replace("-", "") not in log, name


async def test_unknown_reference_is_a_clear_permanent_error_in_the_dlq(
    pipeline: Pipeline,
    registered_reference: Manifest,
    settings: ServiceSettings,
    as_service: Callable[[str], dict[str, Any]],
) -> None:
    """A sample for a reference nobody registered goes to the DLQ with the reason, not a loop."""
    from genomebus_common.contracts.events import ReferenceGenome
    from genomebus_common.runtime.broker import create_broker, publish_event

    from ..common.factories import sample_received

    event = sample_received(
        f"E2E.U{uuid.uuid4().hex[:8]}",
        priority="research",
        reference=ReferenceGenome(id="GRCh99", digest=registered_reference.reference.digest),
    )
    ingest = ServiceSettings(**{**settings.model_dump(), **as_service("ingest")})
    async with create_broker(ingest) as broker:  # as ingest publishes a sample
        await publish_event(broker, event)
    failed = StageFailed.from_bytes(
        (
            await read_until(
                settings,
                STAGE_FAILED.name,
                lambda r: r.key == event.sample_id.encode(),
                timeout_s=60,
            )
        ).value
    )
    assert failed.stage.value == "alignment" and failed.error_code == "unknown_reference"
    assert "'GRCh99' is not registered" in failed.reason and not failed.retriable
    dead = await read_until(
        settings,
        sample_received_topic("research") + ".dlq",  # type: ignore[arg-type]
        lambda r: r.key == event.sample_id.encode(),
    )
    assert SampleReceived.from_bytes(dead.value) == event
