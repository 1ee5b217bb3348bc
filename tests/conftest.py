"""Fixtures shared by every test folder: the real infrastructure and settings pointing at it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import asyncpg
import pytest

from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.settings import ServiceSettings

from . import infra


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[tuple[str, dict[str, str]]]:
    """(where from, endpoints) of the real Kafka, MinIO and PostgreSQL."""
    with ExitStack() as stack:
        try:
            source, found = infra.resolve(stack)
        except infra.InfrastructureMissing as exc:
            pytest.fail(str(exc), pytrace=False)
        kafka = found["GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS"]
        print(f"\nintegration endpoints from the {source}: {kafka}")
        yield source, found


@pytest.fixture(scope="session")
def endpoints(infrastructure: tuple[str, dict[str, str]]) -> dict[str, str]:
    return infrastructure[1]


@pytest.fixture(scope="session")
def settings(endpoints: dict[str, str]) -> ServiceSettings:
    """Settings for the real stack as its administrator (any topic, any group): for tests of
    the shared machinery on private topics, and for helpers that make and read topics."""
    values = {key.removeprefix("GENOMEBUS_").lower(): value for key, value in endpoints.items()}
    values["profile"] = "dev"  # the tests' servers: DSNs without TLS, throwaway databases as owner
    return ServiceSettings(
        service_name="tests",
        handler_retry_initial_s=0.05,
        handler_retry_max_s=0.2,
        handler_max_attempts=3,
        _env_file=None,  # type: ignore[call-arg]
        **values,
    )


@pytest.fixture(scope="session")
def kafka_users(infrastructure: tuple[str, dict[str, str]]) -> dict[str, str]:
    """Passwords of the broker's Kafka users, by user name."""
    try:
        return infra.kafka_users(infrastructure[0])
    except infra.InfrastructureMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def as_service(kafka_users: dict[str, str]) -> Callable[[str], dict[str, Any]]:
    """``as_service("consent")``: the settings that make a test's client that service's bus
    client, with that service's Kafka user and so its ACLs (and no topic creation: the stack
    made the topics, as Strimzi does). Merge into a service's settings."""
    from genomebus_common.contracts.topics import BUS_CLIENTS

    def overrides(name: str) -> dict[str, Any]:
        user = BUS_CLIENTS[name].user
        return {
            "service_name": name,
            "kafka_sasl_username": user,
            "kafka_sasl_password": kafka_users[user],
            "kafka_create_topics": False,
        }

    return overrides


@pytest.fixture(scope="session")
def store(settings: ServiceSettings) -> ObjectStore:
    return ObjectStore.from_settings(settings)


@pytest.fixture
def bucket(store: ObjectStore) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    store.ensure_bucket(name)
    return name


@pytest.fixture
async def fresh_dsn(settings: ServiceSettings) -> AsyncIterator[str]:
    """A DSN to a brand-new database, dropped afterwards: tests never see each other's tables."""
    admin_dsn = settings.postgres_dsn.get_secret_value()
    name = f"test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = admin_dsn.rpartition("/")
    yield f"{base}/{name}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic, group and sample names, so tests never share state
    (never hex: the event contracts refuse anything that looks like a CPR number)."""
    from genomebus_common.contracts.events import new_id

    return new_id("")[:10]


@pytest.fixture(autouse=True)
def a_fresh_process() -> None:
    """Each test starts as a fresh process would: not stopping. A service that stopped in an
    earlier test leaves its process stopping on purpose (no tool may start after a stop), and
    only a service starting again clears that; tests that drive a consumer directly do not."""
    from genomebus_common import shutdown

    shutdown.resume()


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("GENOMEBUS_LOG_LEVEL", "WARNING")
    # Tests that run bwa in this process use the stack's bwa (with -J), as the services do. If
    # it is not built, those tests fail with the pipeline's own message saying so.
    from genomebus_devstack.procs import StackError
    from genomebus_devstack.tools import use_patched_bwa

    try:
        use_patched_bwa()
    except StackError as exc:
        config.issue_config_time_warning(pytest.PytestWarning(str(exc)), stacklevel=2)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Any test that reaches the real stack, through any fixture, is an integration test, so
    `make test-unit` (`-m "not integration"`) never needs Kafka, MinIO or PostgreSQL."""
    for item in items:
        if "infrastructure" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
