"""A stage computes its output once per sample and publishes it on every delivery."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import pytest

from genomebus_common.contracts.events import ConsentChanged, ResearchUse, SampleReceived
from genomebus_common.contracts.topics import CONSENT_CHANGED
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit.consent_view import ConsentView
from genomebus_common.stagekit.stage import Quarantine, compute_once_then_publish

from .factories import PSEUDONYM, sample_received

pytestmark = pytest.mark.integration


class RecordingBroker:
    """Stands in for the broker: this test is about the object store record, not Kafka."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    async def publish(self, body: bytes, **kwargs: Any) -> None:
        self.published.append({"body": body, **kwargs})


async def test_second_delivery_republishes_the_recorded_event_without_recomputing(
    store: ObjectStore, bucket: str
) -> None:
    broker = RecordingBroker()
    calls: list[int] = []

    def compute() -> SampleReceived:
        calls.append(1)
        return sample_received("S-stage")

    first, computed = await compute_once_then_publish(
        broker, store, bucket, "s/record.json", SampleReceived, compute
    )  # type: ignore[arg-type]
    again, recomputed = await compute_once_then_publish(
        broker, store, bucket, "s/record.json", SampleReceived, compute
    )  # type: ignore[arg-type]
    assert (computed, recomputed) == (True, False) and calls == [1]
    assert again == first
    assert [p["body"] for p in broker.published] == [first.to_bytes(), first.to_bytes()]
    assert broker.published[0]["key"] == b"S-stage"


async def test_a_failed_computation_leaves_no_record(store: ObjectStore, bucket: str) -> None:
    broker = RecordingBroker()

    def fail() -> SampleReceived:
        raise RuntimeError("tool died")

    with pytest.raises(RuntimeError):
        await compute_once_then_publish(broker, store, bucket, "s/r.json", SampleReceived, fail)  # type: ignore[arg-type]
    assert store.read_model(bucket, "s/r.json", SampleReceived) is None and broker.published == []


def _consent(pseudonym: str, version: int, *, withdrawn: bool) -> ConsentChanged:
    return ConsentChanged(
        correlation_id=f"c-{version}",
        patient_pseudonym=pseudonym,
        version=version,
        analysis_consent_given=not withdrawn,
        research_use=ResearchUse.ALLOWED,
        withdrawn=withdrawn,
        recorded_by="tests",
    )


def test_the_consent_view_keeps_the_newest_version() -> None:
    view = ConsentView("unused:9092")
    view.apply(_consent(PSEUDONYM, 2, withdrawn=True))
    view.apply(_consent(PSEUDONYM, 1, withdrawn=False))  # late and older: ignored
    assert view.withdrawn(PSEUDONYM) is not None and view.latest[PSEUDONYM].version == 2
    view.apply(_consent(PSEUDONYM, 3, withdrawn=False))
    assert view.withdrawn(PSEUDONYM) is None


async def test_a_withdrawal_in_flight_quarantines_instead_of_publishing(
    settings: ServiceSettings, store: ObjectStore, bucket: str, unique: str
) -> None:
    """The view reads the real consent topic; the withdrawal lands while the stage computes."""
    from genomebus_common.runtime.broker import create_broker, ensure_topics, publish_event

    await ensure_topics(settings, [CONSENT_CHANGED])
    patient = "pk1_" + hashlib.sha256(unique.encode()).hexdigest()
    view = ConsentView(settings)
    await view.start()
    broker = RecordingBroker()
    source = sample_received(f"S-{unique}", patient_pseudonym=patient)
    try:
        await view.wait_ready()
        async with create_broker(settings) as kafka:
            await publish_event(kafka, _consent(patient, 1, withdrawn=False))

            def compute() -> SampleReceived:
                # the patient withdraws while the (long) work runs
                asyncio.run_coroutine_threadsafe(
                    publish_event(kafka, _consent(patient, 2, withdrawn=True)), loop
                ).result()
                deadline = time.monotonic() + 30
                while view.withdrawn(patient) is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                return source

            loop = asyncio.get_running_loop()
            published, computed = await compute_once_then_publish(
                broker,
                store,
                bucket,
                "s/out/record.json",
                SampleReceived,
                compute,  # type: ignore[arg-type]
                source=source,
                consent=view,
            )
        assert published is None and computed and broker.published == []
        record = store.read_model(bucket, "s/out/quarantine.json", Quarantine)
        assert (
            record is not None
            and record.consent_version == 2
            and record.sample_id == source.sample_id
        )

        # A redelivery after the withdrawal does no work and publishes nothing either.
        again, recomputed = await compute_once_then_publish(
            broker,
            store,
            bucket,
            "s/out/record.json",
            SampleReceived,
            compute,  # type: ignore[arg-type]
            source=source,
            consent=view,
        )
        assert again is None and not recomputed and broker.published == []
    finally:
        await view.stop()


async def test_a_removed_sample_loses_its_outputs_and_is_never_redone(
    store: ObjectStore, bucket: str
) -> None:
    from genomebus_common.stagekit.stage import REMOVED_RECORD, remove_outputs

    broker = RecordingBroker()
    calls: list[int] = []

    def compute() -> SampleReceived:
        calls.append(1)
        store.write_model(bucket, "s/x/output.bam", sample_received("S-out"))  # an output file
        return sample_received("S-removed")

    await compute_once_then_publish(
        broker, store, bucket, "s/x/record.json", SampleReceived, compute
    )  # type: ignore[arg-type]
    deleted = remove_outputs(store, bucket, "s/x", "S-removed", "the lab mixed up two samples")
    assert deleted == 2
    left = [o.object_name for o in store.client.list_objects(bucket, prefix="s/x/", recursive=True)]
    assert left == [f"s/x/{REMOVED_RECORD}"]
    again, computed = await compute_once_then_publish(
        broker, store, bucket, "s/x/record.json", SampleReceived, compute
    )  # type: ignore[arg-type]
    assert again is None and not computed and calls == [1] and len(broker.published) == 1
