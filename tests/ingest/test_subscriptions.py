"""Ingest's subscriber wiring on FastStream's in-memory test broker (no Kafka): each topic
reaches its use case parsed, in the consumer group the ACLs grant, and a malformed record is
dead-lettered with its reason instead of reaching the core."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaMessage, TestKafkaBroker

from genomebus_common.contracts.events import Stage, StageProgress
from genomebus_common.contracts.headers import H_DLQ_REASON
from genomebus_common.contracts.topics import CONSENT_CHANGED, STAGE_PROGRESS
from genomebus_ingest.adapters.kafka import subscribe
from genomebus_ingest.config import IngestSettings

from ..common.factories import PSEUDONYM, REFERENCE, consent_changed
from ..common.wiring import Recorder, groups, runtime

CONSENT = consent_changed(3)
PROGRESS = StageProgress(
    correlation_id="S-1",
    sample_id="S-1",
    patient_pseudonym=PSEUDONYM,
    reference=REFERENCE,
    stage=Stage.ALIGNMENT,
    unit_kind="read_chunk",
    units_done=1,
    units_total=2,
)


def _subscribed() -> tuple[Any, Recorder]:
    rt = runtime("ingest")
    core = Recorder()
    settings = IngestSettings.model_construct(kafka_max_poll_interval_s=300)
    subscribe(rt, settings, lambda: core)  # type: ignore[arg-type, return-value]
    return rt, core


async def test_each_topic_reaches_its_use_case_parsed_in_its_group() -> None:
    rt, core = _subscribed()
    assert groups(rt.broker) == {
        CONSENT_CHANGED.name: "genomebus.ingest",
        STAGE_PROGRESS.name: "genomebus.ingest.progress",  # progress never waits for consent
    }
    async with TestKafkaBroker(rt.broker) as broker:
        await broker.publish(CONSENT.to_bytes(), topic=CONSENT_CHANGED.name, key=b"p")
        await broker.publish(PROGRESS.to_bytes(), topic=STAGE_PROGRESS.name, key=b"S-1")
    assert [(name, args[0]) for name, args in core.calls] == [
        ("apply_consent", CONSENT),
        ("apply_progress", PROGRESS),
    ]
    delivery = core.calls[0][1][1]
    assert delivery.topic == CONSENT_CHANGED.name and delivery.key == b"p"


async def test_a_malformed_consent_record_is_dead_lettered_with_its_reason() -> None:
    rt, core = _subscribed()
    parked: list[dict[str, str]] = []

    @rt.broker.subscriber(f"{CONSENT_CHANGED.name}.dlq")
    async def dlq(message: KafkaMessage) -> None:
        parked.append({k: str(v) for k, v in message.headers.items()})

    async with TestKafkaBroker(rt.broker) as broker:
        await broker.publish(b'{"version": "three"}', topic=CONSENT_CHANGED.name, key=b"p")
    assert core.calls == []
    assert len(parked) == 1 and "not a valid ConsentChanged" in parked[0][H_DLQ_REASON]
