"""The ``<state>/env`` file: the one contract between the dev stack and everything that uses it.

Services' shared settings and the test fixtures read these exact variable names, so the file is
plain ``KEY=VALUE`` lines (no ``export``): readable by Python, by ``docker --env-file`` style
loaders, and by ``set -a; . .stack/env`` in a shell.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

from . import dbroles
from .paths import Layout, write_private

KAFKA_BOOTSTRAP = "GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS"
KAFKA_SECURITY_PROTOCOL = "GENOMEBUS_KAFKA_SECURITY_PROTOCOL"
KAFKA_SASL_MECHANISM = "GENOMEBUS_KAFKA_SASL_MECHANISM"
KAFKA_SASL_USERNAME = "GENOMEBUS_KAFKA_SASL_USERNAME"
KAFKA_SASL_PASSWORD = "GENOMEBUS_KAFKA_SASL_PASSWORD"
S3_ENDPOINT = "GENOMEBUS_S3_ENDPOINT"
S3_ACCESS_KEY = "GENOMEBUS_S3_ACCESS_KEY"
S3_SECRET_KEY = "GENOMEBUS_S3_SECRET_KEY"
S3_SECURE = "GENOMEBUS_S3_SECURE"
POSTGRES_DSN = "GENOMEBUS_POSTGRES_DSN"
ENV_KEYS: tuple[str, ...] = (
    KAFKA_BOOTSTRAP,
    KAFKA_SECURITY_PROTOCOL,
    KAFKA_SASL_MECHANISM,
    KAFKA_SASL_USERNAME,
    KAFKA_SASL_PASSWORD,
    S3_ENDPOINT,
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    S3_SECURE,
    POSTGRES_DSN,
    # The database services' own roles (dbroles): what the service launcher hands each of them.
    dbroles.PROFILE_KEY,
    *(
        key
        for s in dbroles.DATABASE_SERVICES
        for key in (dbroles.dsn_key(s), dbroles.migrate_dsn_key(s))
    ),
)


class StackNotUpError(RuntimeError):
    """Raised by :func:`endpoints` when there is no running stack to point at."""


def build_env(
    *,
    host: str,
    kafka_port: int,
    kafka_admin_password: str,
    minio_port: int,
    access_key: str,
    secret_key: str,
    postgres_port: int,
    database: str,
    role_passwords: Mapping[str, dbroles.RolePasswords],
) -> dict[str, str]:
    """The endpoint variables for a stack listening on ``host`` (ordered as in ENV_KEYS).

    Like the MinIO root and the PostgreSQL superuser, the Kafka identity here is the stack's
    administrator: what a developer's shell, the tests' helpers and the tools run as. The
    services do not: the launcher (``services.ServiceProcess``) gives each its own Kafka user,
    S3 identity and database roles. ``GENOMEBUS_POSTGRES_DSN`` is the superuser's (tests make
    throwaway databases with it); each database service gets its runtime and owner DSNs under
    its own name.
    """
    admin = f"postgresql://postgres@{host}:{postgres_port}/{database}"
    return {
        KAFKA_BOOTSTRAP: f"{host}:{kafka_port}",
        KAFKA_SECURITY_PROTOCOL: "SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
        KAFKA_SASL_USERNAME: "admin",
        KAFKA_SASL_PASSWORD: kafka_admin_password,
        S3_ENDPOINT: f"{host}:{minio_port}",
        S3_ACCESS_KEY: access_key,
        S3_SECRET_KEY: secret_key,
        S3_SECURE: "false",
        POSTGRES_DSN: admin,
        **dbroles.env_entries(admin, role_passwords),
    }


def render_env(values: dict[str, str]) -> str:
    """``KEY=VALUE`` lines. Values never contain newlines or '=' at their start, by construction."""
    for key, value in values.items():
        if "\n" in value or "\n" in key:
            raise ValueError(f"newline in env entry {key!r}")
    return "".join(f"{key}={value}\n" for key, value in values.items())


def parse_env(text: str) -> dict[str, str]:
    """Inverse of :func:`render_env`; tolerates blank lines, comments and a leading ``export``."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"not a KEY=VALUE line: {raw!r}")
        values[key.strip()] = value
    return values


def write_env(path: Path, values: dict[str, str]) -> None:
    """Write atomically, readable only by the owner (it carries the MinIO, database and Kafka
    administrator's secrets)."""
    write_private(path, render_env(values))


def shell_exports(values: dict[str, str]) -> str:
    """``export KEY=VALUE`` lines, quoted for POSIX shells (what ``genomebus stack env`` prints)."""
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in values.items())


def path_export(first: Path) -> str:
    """``export PATH=<first>:"$PATH"``: what ``genomebus stack env`` adds after the endpoints so
    a shell (and a test run started from it) finds the patched bwa first, like the services.
    Not in the env file: that holds endpoints only, and a PATH written there would freeze the
    PATH of whoever ran ``up``."""
    return f'export PATH={shlex.quote(str(first))}:"$PATH"\n'


def endpoints(state_dir: str | Path | None = None) -> dict[str, str]:
    """The running stack's endpoints, as written by ``genomebus stack up``.

    ``state_dir`` defaults to ``$GENOMEBUS_STACK_DIR`` or ``<repo root>/.stack``. Raises
    :class:`StackNotUpError` (with the command to run) if the stack is not up.
    """
    layout = Layout.discover(Path(state_dir) if state_dir is not None else None)
    path = layout.env_file
    try:
        values = parse_env(path.read_text())
    except FileNotFoundError:
        raise StackNotUpError(
            f"the genomebus dev stack is not up (no {path}). Start it with `genomebus stack up` "
            f"(or `uv run genomebus stack up`), or point GENOMEBUS_STACK_DIR at a running stack."
        ) from None
    missing = [key for key in ENV_KEYS if key not in values]
    if missing:
        raise StackNotUpError(f"{path} lacks {', '.join(missing)}; rerun `genomebus stack up`")
    return values
