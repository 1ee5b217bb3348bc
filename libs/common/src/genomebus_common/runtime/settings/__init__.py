"""Settings, read from the environment with one prefix (``GENOMEBUS_``), in fragments.

Each fragment is what one adapter or mechanism reads, with its own checks: ``CommonSettings``
(identity, logs, traces), ``KafkaSettings``, ``ObjectStoreSettings``, ``PostgresSettings``,
``HttpSettings``, ``WorkDirSettings``, ``PseudonymSettings``, ``EnergySettings``,
``ScatterSettings``. A service's settings class (its ``config.py``) composes the fragments it
uses and adds its own fields; shared code takes the fragment it reads (``create_broker`` a
``KafkaSettings``, ``ObjectStore.from_settings`` an ``ObjectStoreSettings``), so mypy refuses a
service calling what it never declared. ``ServiceSettings`` composes every adapter fragment:
for tests and operator tools that talk to all of the stack. Every field carries a description,
from which the configuration references are generated (``reference.py``).
"""

from __future__ import annotations

from genomebus_common.runtime.settings.base import (
    ENV_PREFIX,
    SETTINGS_CONFIG,
    CommonSettings,
    default_env_files,
)
from genomebus_common.runtime.settings.http import HttpSettings
from genomebus_common.runtime.settings.kafka import KafkaSettings
from genomebus_common.runtime.settings.objectstore import ObjectStoreSettings
from genomebus_common.runtime.settings.postgres import PostgresSettings, dsn_problems
from genomebus_common.runtime.settings.pseudonym import PseudonymSettings
from genomebus_common.runtime.settings.reference import (
    DOCUMENTED_DEFAULT,
    FRAGMENTS,
    config_reference,
    declared_fields,
    settings_table,
)
from genomebus_common.runtime.settings.stage import (
    EnergySettings,
    ScatterSettings,
    WorkDirSettings,
)


class ServiceSettings(
    KafkaSettings, ObjectStoreSettings, PostgresSettings, HttpSettings, WorkDirSettings
):
    """Every adapter fragment at once: for tests, benchmarks and operator tools (replay, the
    DLQ and landing CLIs, the dev stack) that reach all of the stack as one identity. A
    service composes only what it uses instead."""

    #: Not a service's own database: its DSNs are the tools' and tests', not checked.
    uses_database = False


__all__ = [
    "DOCUMENTED_DEFAULT",
    "ENV_PREFIX",
    "FRAGMENTS",
    "SETTINGS_CONFIG",
    "CommonSettings",
    "EnergySettings",
    "HttpSettings",
    "KafkaSettings",
    "ObjectStoreSettings",
    "PostgresSettings",
    "PseudonymSettings",
    "ScatterSettings",
    "ServiceSettings",
    "WorkDirSettings",
    "config_reference",
    "declared_fields",
    "default_env_files",
    "dsn_problems",
    "settings_table",
]
