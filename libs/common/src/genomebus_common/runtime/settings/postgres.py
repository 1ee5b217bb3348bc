"""How a service with tables reaches its own PostgreSQL database, and the checks on its DSNs.

Outside development a DSN must authenticate and verify the server, and the service must not
log in as the role that owns its tables (whoever holds that role can rewrite the append-only
history): both are refused when the settings are read, before any connection is tried.
"""

from __future__ import annotations

from typing import ClassVar, Self
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, SecretStr, model_validator

from genomebus_common.runtime.settings.base import CommonSettings


class PostgresSettings(CommonSettings):
    """The runtime role's DSN, the owner's (for migrations) and the pool's bound."""

    #: Whether the DSNs are checked outside development. True for every service that keeps
    #: tables; False only for ``ServiceSettings``, the all-fragments composition of tests and
    #: operator tools, which never open a service's pool in production.
    uses_database: ClassVar[bool] = True

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

    @model_validator(mode="after")
    def _database_credentials(self) -> Self:
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
