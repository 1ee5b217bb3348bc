"""Where the tests find the real Kafka, MinIO and PostgreSQL.

In order: endpoints given in the environment (``GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS`` and
friends); else containers, when a Docker engine answers a ping; else the local stack that
``genomebus stack up`` (run by ``make test``) started. The database services' owner and runtime
roles come with the local stack; on other servers they are made here, as the stack makes them.
When none is there the tests fail with this message: an integration test never skips.

Kafka identities: the endpoints carry the administrator's (``GENOMEBUS_KAFKA_SASL_*``), which
the shared fixtures and helpers use to make and read any topic. Tests that act as a service use
that service's user (``kafka_users``): the local stack's users file, or the JSON file
``GENOMEBUS_TEST_KAFKA_USERS`` names ({user: password}) for endpoints from the environment.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

KEYS = (
    "GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS",
    "GENOMEBUS_S3_ENDPOINT",
    "GENOMEBUS_S3_ACCESS_KEY",
    "GENOMEBUS_S3_SECRET_KEY",
    "GENOMEBUS_POSTGRES_DSN",
)
#: Passed on when set (a broker with identities); a broker without any needs none of them.
OPTIONAL_KEYS = (
    "GENOMEBUS_KAFKA_SECURITY_PROTOCOL",
    "GENOMEBUS_KAFKA_SASL_MECHANISM",
    "GENOMEBUS_KAFKA_SASL_USERNAME",
    "GENOMEBUS_KAFKA_SASL_PASSWORD",
    "GENOMEBUS_KAFKA_SSL_CAFILE",
)
USERS_FILE_ENV = "GENOMEBUS_TEST_KAFKA_USERS"
REPO_ROOT = Path(__file__).resolve().parents[1]


class InfrastructureMissing(RuntimeError):
    pass


def from_environment() -> dict[str, str] | None:
    present = {k: os.environ[k] for k in KEYS if os.environ.get(k)}
    if not present:
        return None
    missing = [k for k in KEYS if k not in present]
    if missing:
        raise InfrastructureMissing(
            f"some endpoints are set in the environment but not these: {', '.join(missing)}"
        )
    optional = {k: os.environ[k] for k in OPTIONAL_KEYS if os.environ.get(k)}
    return {
        **present,
        **optional,
        "GENOMEBUS_S3_SECURE": os.environ.get("GENOMEBUS_S3_SECURE", "false"),
    }


def docker_engine_answers() -> bool:
    """A ping, not the presence of a client: the docker CLI exists on machines with no engine."""
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # noqa: BLE001 - no docker package, no socket, no answer: all mean "no"
        return False


def from_containers(stack: ExitStack) -> dict[str, str]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.minio import MinioContainer
    from testcontainers.community.postgres import PostgresContainer

    kafka = stack.enter_context(KafkaContainer("apache/kafka:4.1.1").with_kraft())
    minio = stack.enter_context(MinioContainer("minio/minio:RELEASE.2025-09-07T16-13-09Z"))
    postgres = stack.enter_context(PostgresContainer("postgres:15", driver=None))
    s3 = minio.get_config()
    return {
        "GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS": kafka.get_bootstrap_server(),
        "GENOMEBUS_S3_ENDPOINT": s3["endpoint"],
        "GENOMEBUS_S3_ACCESS_KEY": s3["access_key"],
        "GENOMEBUS_S3_SECRET_KEY": s3["secret_key"],
        "GENOMEBUS_S3_SECURE": "false",
        "GENOMEBUS_POSTGRES_DSN": postgres.get_connection_url(),
    }


def from_local_stack() -> dict[str, str]:
    from genomebus_devstack import endpoints

    return dict(endpoints())


def with_database_roles(found: dict[str, str]) -> dict[str, str]:
    """The database services' roles and databases on a server the local stack did not set up,
    made as `genomebus stack up` makes them (fresh passwords for this run), unless given."""
    from genomebus_devstack import dbroles

    wanted = [
        k
        for s in dbroles.DATABASE_SERVICES
        for k in (dbroles.dsn_key(s), dbroles.migrate_dsn_key(s))
    ]
    given = {k: os.environ[k] for k in wanted if os.environ.get(k)}
    if len(given) == len(wanted):
        return {**found, **given, dbroles.PROFILE_KEY: "dev"}
    admin = found["GENOMEBUS_POSTGRES_DSN"]
    passwords = {s: dbroles.RolePasswords.generate() for s in dbroles.DATABASE_SERVICES}
    dbroles.provision(admin, passwords)
    return {**found, **dbroles.env_entries(admin, passwords)}


def resolve(stack: ExitStack) -> tuple[str, dict[str, str]]:
    """(where from, endpoints). Raises InfrastructureMissing with what to do."""
    env = from_environment()
    if env:
        return "environment", with_database_roles(env)
    if docker_engine_answers():
        return "testcontainers", with_database_roles(from_containers(stack))
    try:
        return "local stack", from_local_stack()
    except Exception as exc:
        raise InfrastructureMissing(
            "no Kafka/MinIO/PostgreSQL for the integration tests: no endpoints in the "
            "environment, no Docker engine, and the local stack is not up "
            f"({exc}). Run `make test` (it starts the stack) or `.venv/bin/genomebus stack up`."
        ) from exc


def kafka_users(source: str) -> dict[str, str]:
    """Passwords by Kafka user name, for tests that act as one service. Raises
    InfrastructureMissing, saying where they were looked for, when there are none."""
    import json

    explicit = os.environ.get(USERS_FILE_ENV)
    if explicit:
        return dict(json.loads(Path(explicit).read_text()))
    if source == "local stack":
        from genomebus_devstack import kafka_users as users
        from genomebus_devstack.paths import Layout

        found = users.load(Layout.discover().kafka_home)
        if found:
            return found
    raise InfrastructureMissing(
        f"no Kafka users for the {source}: tests that act as a service need each service's "
        f"user; set {USERS_FILE_ENV} to a JSON file of {{user: password}}, or run the tests "
        "against the local stack (`make test`)."
    )
