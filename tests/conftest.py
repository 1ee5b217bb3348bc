"""Fixtures shared by every test folder: the real infrastructure and settings pointing at it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack

import asyncpg
import pytest

from genomebus_common.objectstore import ObjectStore
from genomebus_common.settings import ServiceSettings

from . import infra


@pytest.fixture(scope="session")
def endpoints() -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        try:
            source, found = infra.resolve(stack)
        except infra.InfrastructureMissing as exc:
            pytest.fail(str(exc), pytrace=False)
        print(f"\nintegration endpoints from the {source}: {found['GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS']}")
        yield found


@pytest.fixture(scope="session")
def settings(endpoints: dict[str, str]) -> ServiceSettings:
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
    from genomebus_common.events import new_id

    return new_id("")[:10]


@pytest.fixture(autouse=True)
def a_fresh_process() -> None:
    """Each test starts as a fresh process would: not stopping. A service that stopped in an
    earlier test leaves its process stopping on purpose (no tool may start after a stop), and
    only a service starting again clears that; tests that drive a consumer directly do not."""
    from genomebus_common import tools

    tools.resume()


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
