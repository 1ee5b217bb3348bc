"""Consent's one subscription on FastStream's in-memory test broker (no Kafka): ingest's
``sample.registered`` reaches the use case that records the treating hospital."""

from __future__ import annotations

from faststream.kafka import TestKafkaBroker

from genomebus_common.contracts.events import SampleRegistered
from genomebus_common.contracts.topics import SAMPLE_REGISTERED
from genomebus_consent.adapters.kafka import subscribe

from ..common.factories import PSEUDONYM
from ..common.wiring import Recorder, groups, runtime


async def test_a_registration_reaches_the_use_case_in_consents_group() -> None:
    rt = runtime("consent")
    consents = Recorder()
    subscribe(rt.consumer, lambda: consents)  # type: ignore[arg-type, return-value]
    assert groups(rt.broker) == {SAMPLE_REGISTERED.name: "genomebus.consent"}
    registered = SampleRegistered(
        correlation_id="S-1", sample_id="S-1", patient_pseudonym=PSEUDONYM, hospital_id="RH"
    )
    async with TestKafkaBroker(rt.broker) as broker:
        await broker.publish(registered.to_bytes(), topic=SAMPLE_REGISTERED.name, key=b"p")
    assert consents.calls == [("sample_registered", (registered,))]
