"""A stage computes its output once per sample and publishes it on every delivery."""

from __future__ import annotations

from typing import Any

import pytest

from genomebus_common.events import SampleReceived
from genomebus_common.objectstore import ObjectStore
from genomebus_common.stage import compute_once_then_publish

from .factories import sample_received

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

    first, computed = await compute_once_then_publish(broker, store, bucket, "s/record.json", SampleReceived, compute)  # type: ignore[arg-type]
    again, recomputed = await compute_once_then_publish(broker, store, bucket, "s/record.json", SampleReceived, compute)  # type: ignore[arg-type]
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
