"""The registry process on the real broker: consent, alignment's energy estimate and called
variants in from Kafka, the sample's VariantsReady out on Kafka through the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from genomebus_common.contracts.events import VariantsReady
from genomebus_common.contracts.topics import VARIANTS_READY
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_registry.adapters.kafka import Topics
from genomebus_registry.config import RegistrySettings
from genomebus_registry.inject import Parts, Registry, build_app

from ..common.kafka_helpers import create_topics, read_until
from .conftest import UploadedVcf, consent, pseudonym, variants_called
from .test_energy_integration import ALIGNMENT, sample_aligned

pytestmark = pytest.mark.integration


async def test_variants_called_on_kafka_become_variants_ready_on_kafka(
    registry_settings: RegistrySettings,
    settings: ServiceSettings,
    unique: str,
    upload_vcf: Callable[..., UploadedVcf],
) -> None:
    admin = settings
    # Private input topics and consumer groups: no other test's events reach this registry.
    called_topic, consent_topic = f"test.{unique}.variants.called", f"test.{unique}.consent.changed"
    aligned_topic = f"test.{unique}.sample.aligned"
    await create_topics(admin, called_topic, consent_topic, aligned_topic)
    # On private topics the registry runs as the administrator: its own user reads only the
    # real ones (tests/security checks that it does).
    settings = registry_settings.model_copy(
        update={
            "consume_events": True,
            "service_name": f"registry-{unique}",
            "kafka_sasl_username": admin.kafka_sasl_username,
            "kafka_sasl_password": admin.kafka_sasl_password,
            "kafka_create_topics": True,
        }
    )
    app = build_app(
        settings,
        Parts(
            topics=Topics(
                variants_called=called_topic,
                consent_changed=consent_topic,
                sample_aligned=aligned_topic,
            )
        ),
    )
    patient = pseudonym(f"broker-{unique}")
    event = variants_called(
        upload_vcf([(10, "A", "G", "0/1", 30, 99)]), patient, sample_id=f"S-{unique}"
    )

    async with app.router.lifespan_context(app):
        registry: Registry = app.state.resources
        broker = app.state.runtime.broker
        change = consent(patient, 1)
        await broker.publish(change.to_bytes(), topic=consent_topic, key=patient.encode())
        aligned = sample_aligned(event.sample_id, patient, ALIGNMENT)
        await broker.publish(aligned.to_bytes(), topic=aligned_topic, key=event.sample_id.encode())
        await broker.publish(event.to_bytes(), topic=called_topic, key=event.sample_id.encode())
        record = await read_until(
            settings,
            VARIANTS_READY.name,
            lambda r: r.key == event.sample_id.encode(),
            timeout_s=60,
        )
        consents = await registry.pool.fetchval(
            "SELECT version FROM consents WHERE patient_pseudonym = $1", patient
        )
        assert consents == 1
        outbox = await registry.pool.fetchval("SELECT count(*) FROM genomebus_outbox")
        for _ in range(50):  # the relay marks the row sent just after publishing it
            unsent = await registry.pool.fetchval(
                "SELECT count(*) FROM genomebus_outbox WHERE published_at IS NULL"
            )
            if not unsent:
                break
            await asyncio.sleep(0.1)
        for _ in range(300):  # alignment's estimate comes through its own consumer group
            recorded = await registry.pool.fetchval(
                "SELECT cpu_seconds FROM sample_energy WHERE sample_id = $1 AND stage = "
                "'alignment'",
                event.sample_id,
            )
            if recorded is not None:
                break
            await asyncio.sleep(0.1)

    ready = VariantsReady.model_validate_json(record.value)
    assert (ready.sample_id, ready.patient_pseudonym, ready.genotypes_loaded) == (
        event.sample_id,
        patient,
        1,
    )
    assert record.topic == VARIANTS_READY.name
    assert outbox == 1 and unsent == 0
    assert recorded == ALIGNMENT.cpu_seconds
