"""What every genomebus process reads, and how: one prefix (``GENOMEBUS_``), the environment
first, then the local stack's endpoint file.

``genomebus stack up`` writes the endpoints it chose into ``.stack/env``; that file is read when
present (a real environment variable always wins). Set ``GENOMEBUS_ENV_FILE`` to read another
file. Every other fragment (Kafka, object store, PostgreSQL, HTTP...) builds on
``CommonSettings``, so a service's settings class is the fragments it uses and nothing more:
code that needs the object store takes ``ObjectStoreSettings``, and mypy refuses a service that
never declared one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "GENOMEBUS_"

#: Shared by every fragment: composed classes merge their bases' configurations, and one
#: fragment with another prefix or without ``frozen`` would change the whole composition.
SETTINGS_CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX,
    extra="ignore",
    env_file_encoding="utf-8",
    frozen=True,
    # A refused setting is logged at start-up: the error names the field and the rule, never
    # the values (the pseudonym key and the DSNs' passwords are among them).
    hide_input_in_errors=True,
)


def default_env_files() -> tuple[Path, ...]:
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


class CommonSettings(BaseSettings):
    """Who the process is, how it logs and traces, and how strict its checks are."""

    model_config = SETTINGS_CONFIG

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
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces endpoint; unset keeps traces in-process (not exported).",
        examples=["http://otel-collector:4318/v1/traces"],
    )

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """Read the environment (and the local stack's env file, if any); ``overrides`` are
        field values (of any field's type: pydantic validates them as it does the variables)."""
        # ``_env_file`` is pydantic-settings' init-time source option, unknown to its signature.
        return cls(_env_file=default_env_files() or None, **overrides)  # type: ignore[call-arg]  # pydantic-settings' _env_file
