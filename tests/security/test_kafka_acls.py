"""Identities and ACLs on the real broker: each service is its own Kafka user, may write only what
it produces and read only what it consumes; a wrong password gets nothing.

The users and their passwords are the stack's (``kafka_users``); the rules come from
``genomebus_common.contracts.topics.BUS_CLIENTS`` through ``kafka_acls``. On a broker without
identities or an authorizer every test here fails: refusals never come, and the ACL listing is
refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)

from genomebus_common.contracts.events import ConsentChanged, Priority, ResearchUse
from genomebus_common.contracts.topics import (
    BUS_CLIENTS,
    CONSENT_CHANGED,
    SAMPLE_RECEIVED_LANES,
    VARIANTS_CALLED,
    message_key,
)
from genomebus_common.runtime.broker import ensure_topics
from genomebus_common.runtime.kafka_acls import all_rules
from genomebus_common.runtime.kafka_client import client_options
from genomebus_common.runtime.settings import ServiceSettings

from ..common.kafka_helpers import read_until

pytestmark = pytest.mark.integration

ServiceAs = Callable[[str], ServiceSettings]
ROUTINE_LANE = SAMPLE_RECEIVED_LANES[Priority.ROUTINE].name


@pytest.fixture
def service(settings: ServiceSettings, as_service: Callable[[str], dict[str, Any]]) -> ServiceAs:
    """``service("alignment")``: settings that connect as that service's Kafka user."""
    return lambda name: ServiceSettings(**{**settings.model_dump(), **as_service(name)})


def consent_version(unique: str) -> ConsentChanged:
    return ConsentChanged(
        correlation_id=f"acl-{unique}",
        patient_pseudonym="pk1_" + "ac1" * 21 + "a",
        version=1,
        analysis_consent_given=True,
        research_use=ResearchUse.ALLOWED,
        recorded_by="tests/security",
    )


async def produce(settings: ServiceSettings, topic: str, value: bytes, key: bytes) -> None:
    producer = AIOKafkaProducer(**client_options(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def test_alignment_may_not_publish_a_consent(service: ServiceAs, unique: str) -> None:
    """A compromised or buggy worker cannot forge a patient's consent (or its withdrawal)."""
    event = consent_version(unique)
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(
            service("alignment"), CONSENT_CHANGED.name, event.to_bytes(), message_key(event)
        )


@pytest.mark.parametrize("other", ["ingest", "calling", "registry", "heat", "ops"])
async def test_only_the_consent_user_publishes_consent(
    service: ServiceAs, settings: ServiceSettings, unique: str, other: str
) -> None:
    event = consent_version(unique)
    await produce(service("consent"), CONSENT_CHANGED.name, event.to_bytes(), message_key(event))
    ours = event.correlation_id
    found = await read_until(
        settings,
        CONSENT_CHANGED.name,
        lambda r: ConsentChanged.from_bytes(r.value).correlation_id == ours,
    )
    assert found.key == message_key(event)
    # A user that may write some topic is refused this one; one that may write none (heat) is
    # refused even the idempotent producer's id, a cluster-level grant nobody has.
    with pytest.raises((TopicAuthorizationFailedError, ClusterAuthorizationFailedError)):
        await produce(service(other), CONSENT_CHANGED.name, event.to_bytes(), message_key(event))


@pytest.mark.parametrize(
    ("name", "topic"),
    [
        ("registry", ROUTINE_LANE),  # samples are alignment's to read
        ("consent", CONSENT_CHANGED.name),  # it writes consent; it has no reason to read it
        ("heat", VARIANTS_CALLED.name),  # it reads the research lane, nothing else
        ("calling", CONSENT_CHANGED.name + ".dlq"),  # dead letters are the operators'
        ("ingest", VARIANTS_CALLED.name),
    ],
)
async def test_a_service_cannot_read_a_topic_it_does_not_consume(
    service: ServiceAs, name: str, topic: str
) -> None:
    assert topic not in BUS_CLIENTS[name].reads
    # No consumer group (the topic's partitions assigned directly): only the topic is at stake.
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(service(name)),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await consumer.start()
            await asyncio.wait_for(consumer.getmany(timeout_ms=5000), 20)
    finally:
        await consumer.stop()


async def test_a_service_cannot_join_another_services_consumer_group(service: ServiceAs) -> None:
    """Joining alignment's group would take its partitions (and commit its offsets)."""
    ingest = service("ingest")
    assert CONSENT_CHANGED.name in BUS_CLIENTS["ingest"].reads
    consumer = AIOKafkaConsumer(
        CONSENT_CHANGED.name,
        **client_options(ingest),
        group_id="genomebus.alignment.routine",
        enable_auto_commit=False,
    )
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            await consumer.start()
            await asyncio.wait_for(consumer.getmany(timeout_ms=5000), 20)
    finally:
        await consumer.stop()


@pytest.mark.parametrize("user", ["genomebus-alignment", "admin", "nobody"])
async def test_a_wrong_password_is_refused(settings: ServiceSettings, user: str) -> None:
    from aiokafka.conn import create_conn

    host, port = settings.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)
    with pytest.raises(SaslAuthenticationFailed):
        conn = await create_conn(
            host,
            int(port),
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username=user,
            sasl_plain_password="not-the-password",
        )
        conn.close()


@pytest.mark.parametrize("name", sorted(BUS_CLIENTS))
async def test_each_service_sees_exactly_its_own_topics(service: ServiceAs, name: str) -> None:
    """What a service's start-up checks is there, and nothing else is even listed to it."""
    settings = service(name)
    client = BUS_CLIENTS[name]
    await ensure_topics(settings, needed=client.topics)  # raises TopicsMissing otherwise
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        listed = set(await admin.list_topics())
    finally:
        await admin.close()
    assert listed == set(client.topics)


async def test_the_broker_holds_exactly_the_tables_acls(settings: ServiceSettings) -> None:
    """`genomebus stack up` made the ACLs from the table; nothing more for our users."""
    from genomebus_devstack.kafka_access import binding, describe

    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        held = await describe(admin)
    finally:
        await admin.close()
    assert held == {binding(rule) for rule in all_rules()}
