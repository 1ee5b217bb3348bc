"""Settings every service shares, read from the environment with one prefix: ``GENOMEBUS_``.

Defaults work with the local stack: ``genomebus stack up`` writes the endpoints it chose into
``.stack/env``, and that file is read when present (a real environment variable always wins).
Set ``GENOMEBUS_ENV_FILE`` to read another file. A service extends ``ServiceSettings`` with its
own fields; every field carries a description, which the README's configuration table shows.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from genomebus_common.contracts.identifiers import Pseudonymiser

ENV_PREFIX = "GENOMEBUS_"


def _default_env_files() -> tuple[Path, ...]:
    """The local stack's endpoint file: explicit, else the nearest ``.stack/env`` upwards."""
    explicit = os.environ.get(f"{ENV_PREFIX}ENV_FILE")
    if explicit:
        return (Path(explicit),)
    here = Path.cwd()
    for folder in (here, *here.parents):
        candidate = folder / ".stack" / "env"
        if candidate.is_file():
            return (candidate,)
    return ()


class ServiceSettings(BaseSettings):
    """Connection and behaviour settings shared by all genomebus services."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", env_file_encoding="utf-8", frozen=True
    )

    #: Set by the services that keep tables (ingest, consent, registry): their DSNs are checked.
    uses_database: ClassVar[bool] = False
    #: False for a process that never talks to Kafka (the migrate step): its SASL settings
    #: are then not required.
    uses_kafka: ClassVar[bool] = True
    #: False for a service that holds no objects (consent, heat): no S3 keys are required.
    uses_object_store: ClassVar[bool] = True

    service_name: str = Field(
        "genomebus",
        description="Name in logs, traces and the Kafka consumer group (genomebus.<name>).",
        examples=["alignment"],
    )
    log_level: str = Field("INFO", description="Python log level.", examples=["DEBUG"])
    profile: Literal["dev", "production"] = Field(
        "production",
        description="`dev` only for the local stack and tests: it lets a service use a database "
        "DSN without a password or TLS, and run as its database's owner. Anywhere else leave "
        "`production`: DSNs need a password and sslmode=verify-full, and a service refuses to "
        "run as the role that owns its tables.",
        examples=["dev"],
    )

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        description="Comma-separated Kafka bootstrap servers.",
        examples=["kafka:9092"],
    )
    kafka_client_id: str | None = Field(
        None, description="Kafka client id; defaults to the service name."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = Field(
        "PLAINTEXT",
        description="How clients reach Kafka: SASL_SSL on Kubernetes (Strimzi's TLS listener "
        "with SCRAM users); SASL_PLAINTEXT only for the loopback dev stack; PLAINTEXT for a "
        "broker without identities (docker compose).",
        examples=["SASL_SSL"],
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism, with a SASL_* protocol."
    )
    kafka_sasl_username: str | None = Field(
        None,
        description="This service's Kafka user (its ACLs say what it may read and write); "
        "required with a SASL_* protocol.",
        examples=["genomebus-alignment"],
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, description="The Kafka user's password; required with a SASL_* protocol."
    )
    kafka_ssl_cafile: str | None = Field(
        None,
        description="CA certificate(s) that signed the brokers' TLS certificates (Strimzi: the "
        "cluster CA); unset uses the system's trust store.",
        examples=["/etc/genomebus/kafka-ca/ca.crt"],
    )
    kafka_create_topics: bool = Field(
        True,
        description="Create missing topics (and their DLQs) at start-up. Turn off where an "
        "operator owns the topics (Strimzi on Kubernetes; the dev stack's `up`, whose service "
        "launcher turns it off): a service then refuses to start until the topics it uses "
        "exist, rather than create single-replica ones (and its Kafka user may not create any).",
    )
    kafka_max_poll_interval_s: int = Field(
        6 * 3600,
        ge=10,
        description="Longest one event may take to handle before Kafka gives its partition to "
        "another worker; alignment of a whole genome takes hours.",
    )
    handler_max_attempts: int = Field(
        5,
        ge=1,
        description="Attempts at one event when it fails for a transient cause, before it goes "
        "to the dead-letter topic (nothing is dropped: it can be replayed from there).",
    )
    handler_retry_initial_s: float = Field(
        0.5, gt=0, description="First backoff between attempts; doubles each attempt."
    )
    handler_retry_max_s: float = Field(30.0, gt=0, description="Longest backoff between attempts.")

    s3_endpoint: str = Field(
        "127.0.0.1:9000",
        description="S3/MinIO endpoint as host:port (no scheme).",
        examples=["minio:9000"],
    )
    s3_access_key: str = Field("minioadmin", description="S3 access key.")
    s3_secret_key: SecretStr = Field(SecretStr("minioadmin"), description="S3 secret key.")
    s3_secure: bool = Field(False, description="Use HTTPS to reach the object store.")
    s3_region: str | None = Field(None, description="S3 region, when the server needs one.")
    s3_part_size_mb: int = Field(
        8,
        ge=5,
        le=5120,
        description="Multipart part size: bounds the memory one streamed transfer uses.",
    )

    s3_parallel_uploads: int = Field(
        2, ge=1, le=8, description="Parts uploaded at once; memory is about parts x part size."
    )

    postgres_dsn: SecretStr = Field(
        SecretStr("postgresql://postgres@127.0.0.1:5432/genomebus"),
        description="PostgreSQL DSN of this service's own database, as its runtime role (only "
        "the privileges the service needs; see docs/security.md).",
        examples=[
            "postgresql://genomebus_registry_runtime:secret@postgres:5432/genomebus_registry"
            "?sslmode=verify-full&sslrootcert=/etc/genomebus/postgres-ca/ca.crt"
        ],
    )
    postgres_migrate_dsn: SecretStr | None = Field(
        None,
        description="DSN of the role that owns this service's database: when set, the service "
        "applies its migrations and its runtime role's grants through it at start-up, then "
        "serves as GENOMEBUS_POSTGRES_DSN's role. Leave unset where a migrate step "
        "(`genomebus-migrate`, a Kubernetes init container) does that, so the service never "
        "holds the owner's password.",
        examples=[
            "postgresql://genomebus_registry:secret@postgres:5432/genomebus_registry"
            "?sslmode=verify-full&sslrootcert=/etc/genomebus/postgres-ca/ca.crt"
        ],
    )
    postgres_pool_max: int = Field(10, ge=1, description="Largest PostgreSQL connection pool.")

    http_host: str = Field(
        "127.0.0.1",
        description="Address the service's HTTP server (API, health, readiness) listens on.",
        examples=["0.0.0.0"],
    )
    http_port: int = Field(8080, ge=0, le=65535, description="Port of the HTTP server.")
    work_dir: str = Field(
        "/tmp/genomebus",
        description="Scratch space for tool runs and the local reference cache.",
    )

    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces endpoint; unset keeps traces in-process (not exported).",
        examples=["http://otel-collector:4318/v1/traces"],
    )

    @model_validator(mode="after")
    def _database_credentials(self) -> ServiceSettings:
        """Outside development, a service's DSNs must authenticate and verify the server."""
        if self.profile == "dev" or not self.uses_database:
            return self
        dsns = {"GENOMEBUS_POSTGRES_DSN": self.postgres_dsn}
        if self.postgres_migrate_dsn is not None:
            dsns["GENOMEBUS_POSTGRES_MIGRATE_DSN"] = self.postgres_migrate_dsn
        problems = [
            f"{name}: {problem}"
            for name, dsn in dsns.items()
            for problem in dsn_problems(dsn.get_secret_value())
        ]
        users = {urlsplit(d.get_secret_value()).username for d in dsns.values()}
        if len(dsns) == 2 and len(users) == 1:
            problems.append(
                "GENOMEBUS_POSTGRES_DSN and GENOMEBUS_POSTGRES_MIGRATE_DSN log in as "
                "the same role: the service must run as a runtime role, not the owner"
            )
        if problems:
            raise ValueError(
                "; ".join(problems) + " (GENOMEBUS_PROFILE=dev allows this on a "
                "development stack only)"
            )
        return self

    @model_validator(mode="after")
    def _no_default_object_store_keys(self) -> ServiceSettings:
        """MinIO's well-known ``minioadmin`` keys work only on a development stack: anywhere
        else a service starting with them is misconfigured (or talks to an open store)."""
        if self.profile == "dev" or not self.uses_object_store:
            return self
        if "minioadmin" in (self.s3_access_key, self.s3_secret_key.get_secret_value()):
            raise ValueError(
                "GENOMEBUS_S3_ACCESS_KEY/GENOMEBUS_S3_SECRET_KEY are MinIO's default "
                "credentials (GENOMEBUS_PROFILE=dev allows this on a development "
                "stack only): give the service its own S3 identity"
            )
        return self

    @model_validator(mode="after")
    def _sasl_needs_a_user(self) -> ServiceSettings:
        """Fail at start, naming the variables, not at the first connection with an obscure
        handshake error."""
        if (
            self.uses_kafka
            and self.kafka_security_protocol.startswith("SASL_")
            and not (self.kafka_sasl_username and self.kafka_sasl_password)
        ):
            raise ValueError(
                f"GENOMEBUS_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "GENOMEBUS_KAFKA_SASL_USERNAME and GENOMEBUS_KAFKA_SASL_PASSWORD"
            )
        return self

    @property
    def consumer_group(self) -> str:
        return f"genomebus.{self.service_name}"

    @classmethod
    def load(cls, **overrides: Any) -> ServiceSettings:
        """Read the environment (and the local stack's env file, if any)."""
        return cls(_env_file=_default_env_files() or None, **overrides)  # type: ignore[call-arg]


def dsn_problems(dsn: str) -> list[str]:
    """What makes a PostgreSQL DSN unfit outside development (empty when it is fit).

    A password (or a client certificate) is required: a password-less DSN only works where the
    server trusts anyone, and ``sslmode=verify-full``: anything less lets a machine in the
    middle read the data or the password (``require`` encrypts without checking who answers).
    """
    parts = urlsplit(dsn)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    problems = []
    if parts.scheme not in ("postgresql", "postgres"):
        problems.append("not a postgresql:// DSN")
    if not parts.username:
        problems.append("names no role")
    if not parts.password and "sslcert" not in query:
        problems.append("has no password (nor a client certificate)")
    if query.get("sslmode") != "verify-full":
        problems.append(f"sslmode is {query.get('sslmode', 'unset')!r}, not 'verify-full'")
    return problems


class PseudonymSettings(BaseSettings):
    """The pseudonym key, for the services that receive national ids (ingest, consent).

    Both read the same variables: one patient's national id must become the same pseudonym in
    each, or consent would never reach that patient's samples.
    """

    pseudonym_key: SecretStr = Field(
        description="Secret for the keyed HMAC that turns national ids into pseudonyms: 64 hex "
        "digits or 32+ bytes of text. Only ingest and consent hold it.",
    )
    pseudonym_key_version: int = Field(1, ge=1, description="Version written into pseudonyms.")

    def pseudonymiser(self) -> Pseudonymiser:
        from genomebus_common.contracts.identifiers import Pseudonymiser

        return Pseudonymiser.from_secret(
            self.pseudonym_key.get_secret_value(), self.pseudonym_key_version
        )


class EnergySettings(BaseSettings):
    """How CPU time becomes an energy estimate on this node (mixed into the stages' settings;
    the estimate itself is in ``energy.py``)."""

    model_config = SettingsConfigDict(env_prefix="GENOMEBUS_", extra="ignore")

    energy_watts_per_core: float = Field(
        10.0,
        ge=0,
        description="Power of one busy core in watts, for the energy estimate (measure it on "
        "your hardware: package power under load / cores).",
    )
    node_name: str | None = Field(
        None,
        description="The node this process runs on (Kubernetes: the downward API's "
        "spec.nodeName); names it in energy figures and picks its heat-recovery fraction.",
    )
    heat_recovery_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of this node's heat that is reused, when no recovery file names it.",
    )
    heat_recovery_file: str | None = Field(
        None,
        description="JSON object {node name: fraction}, kept by the heat controller from the "
        "nodes' labels; wins over heat_recovery_fraction for a node it names.",
    )

    def recovery_fraction(self) -> float:
        """The current fraction for this node; re-read each time, since the file may change."""
        if self.heat_recovery_file and self.node_name:
            try:
                table = json.loads(Path(self.heat_recovery_file).read_text())
                value = table.get(self.node_name)
                if value is not None:
                    return min(1.0, max(0.0, float(value)))
            except (OSError, ValueError, AttributeError, TypeError) as exc:
                log.warning(
                    "heat recovery file unreadable, using the configured fraction",
                    extra={"path": self.heat_recovery_file, "error": str(exc)},
                )
        return self.heat_recovery_fraction


def settings_table(
    settings_classes: tuple[type[BaseSettings], ...] = (
        ServiceSettings,
        PseudonymSettings,
        EnergySettings,
    ),
) -> str:
    """A Markdown table of every shared setting (the README embeds it; a test keeps it current)."""
    rows = ["| variable | default | description |", "| --- | --- | --- |"]
    fields = {n: f for cls in settings_classes for n, f in cls.model_fields.items()}
    for name, field in fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, SecretStr):
            default = default.get_secret_value() if name.endswith("_dsn") else "(secret)"
        shown = (
            "(required)"
            if field.is_required()
            else f"`{default}`"
            if default not in (None, "")
            else "unset"
        )
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {shown} | {field.description or ''} |")
    return "\n".join(rows)


class ScatterSettings(BaseSettings):
    """How a scattered stage bounds its units of work (mixed into alignment's and calling's
    settings; the scatter itself is in ``scatter.py`` and ``stage.py``)."""

    model_config = SettingsConfigDict(env_prefix="GENOMEBUS_", extra="ignore")

    unit_time_floor_s: float = Field(
        900.0,
        gt=0,
        description="Every unit of work may run at least this long before its tools are "
        "killed as hung (and the unit retried).",
    )
    unit_min_bytes_per_s: float = Field(
        50_000.0,
        gt=0,
        description="On top of the floor, a unit may take its input's size at this rate: far "
        "below a healthy node's (about 1 MB/s of gzip FASTQ per 2 cores for bwa), so only a "
        "hung or starved tool reaches the limit.",
    )
