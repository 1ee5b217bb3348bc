"""The registry's subscriber wiring on FastStream's in-memory test broker (no Kafka): four
topics, four consumer groups (a withdrawal never queues behind a load), each event handed to its
handler parsed."""

from __future__ import annotations

from faststream.kafka import TestKafkaBroker

from genomebus_common.contracts.topics import (
    CONSENT_CHANGED,
    SAMPLE_ALIGNED,
    SAMPLE_REMOVED,
    VARIANTS_CALLED,
)
from genomebus_registry.adapters.kafka import Topics, subscribe

from ..common.factories import consent_changed, sample_removed
from ..common.wiring import Recorder, groups, runtime


async def test_each_topic_in_its_own_group_reaches_its_handler() -> None:
    rt = runtime("registry")
    handlers = Recorder()
    subscribe(rt.consumer, lambda: handlers, topics=Topics(), max_poll_interval_ms=60_000)  # type: ignore[arg-type, return-value]
    assert groups(rt.broker) == {
        VARIANTS_CALLED.name: "genomebus.registry",
        SAMPLE_REMOVED.name: "genomebus.registry.removals",
        SAMPLE_ALIGNED.name: "genomebus.registry.energy",
        CONSENT_CHANGED.name: "genomebus.registry.consent",
    }
    withdrawal = consent_changed(2, withdrawn=True)
    removal = sample_removed("S-1")
    async with TestKafkaBroker(rt.broker) as broker:
        await broker.publish(withdrawal.to_bytes(), topic=CONSENT_CHANGED.name, key=b"p")
        await broker.publish(removal.to_bytes(), topic=SAMPLE_REMOVED.name, key=b"S-1")
    assert [(name, args[0]) for name, args in handlers.calls] == [
        ("consent_changed", withdrawal),
        ("sample_removed", removal),
    ]
