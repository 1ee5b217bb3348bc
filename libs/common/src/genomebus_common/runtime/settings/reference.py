"""The configuration reference as Markdown, made from the settings classes themselves.

The README's table (the shared fragments) and each service's ``docs/config/<service>.md`` are
rendered here and checked by ``genomebus-contracts check``: a field's description is its only
documentation, so a new or renamed variable cannot go undocumented.
"""

from __future__ import annotations

import enum
import inspect
import json
import sys

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from genomebus_common.runtime.settings.base import ENV_PREFIX, CommonSettings
from genomebus_common.runtime.settings.http import HttpSettings
from genomebus_common.runtime.settings.kafka import KafkaSettings
from genomebus_common.runtime.settings.objectstore import ObjectStoreSettings
from genomebus_common.runtime.settings.postgres import PostgresSettings
from genomebus_common.runtime.settings.pseudonym import PseudonymSettings
from genomebus_common.runtime.settings.stage import (
    EnergySettings,
    ScatterSettings,
    WorkDirSettings,
)

#: The shared fragments, in the order the references show them, each with its heading.
FRAGMENTS: tuple[tuple[str, type[BaseSettings]], ...] = (
    ("Identity, logs and traces", CommonSettings),
    ("Kafka", KafkaSettings),
    ("Object store", ObjectStoreSettings),
    ("PostgreSQL", PostgresSettings),
    ("HTTP server", HttpSettings),
    ("Scratch space", WorkDirSettings),
    ("Pseudonyms", PseudonymSettings),
    ("Energy estimate", EnergySettings),
    ("Units of work", ScatterSettings),
)

SHARED: tuple[type[BaseSettings], ...] = tuple(fragment for _, fragment in FRAGMENTS)

#: ``json_schema_extra`` key for a default the reference should describe rather than compute
#: (one that depends on the machine or the pod, which a checked-in document cannot).
DOCUMENTED_DEFAULT = "documented_default"

_HEADER = ["| variable | default | description |", "| --- | --- | --- |"]


def declared_fields(fragment: type[BaseSettings]) -> list[str]:
    """The fields ``fragment`` adds to what its bases have (a fragment's own variables)."""
    inherited = {
        name
        for base in fragment.__bases__
        if issubclass(base, BaseSettings)
        for name in base.model_fields
    }
    return [name for name in fragment.model_fields if name not in inherited]


def _shown(value: object) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, list) and all(isinstance(v, enum.Enum) for v in value):
        return ",".join(_shown(v) for v in value)  # read back comma-separated
    if isinstance(value, list | dict):
        return json.dumps(value)  # read back as JSON
    return str(value)


def shown_default(name: str, field: FieldInfo) -> str:
    """The default as the reference shows it: secrets hidden (a DSN's default has none)."""
    if field.is_required():
        return "(required)"
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get(DOCUMENTED_DEFAULT), str):
        return str(extra[DOCUMENTED_DEFAULT])
    default = field.get_default(call_default_factory=True)
    if isinstance(default, SecretStr):
        default = default.get_secret_value() if name.endswith("_dsn") else "(secret)"
    if default is None or default == "":
        return "unset"
    return f"`{_shown(default)}`"


def _description(settings: type[BaseSettings], name: str) -> str:
    """The field's description; a service that only overrides a shared field's default
    (``service_name: str = "alignment"``) keeps the shared field's description."""
    for cls in settings.__mro__:
        fields = cls.model_fields if issubclass(cls, BaseSettings) else {}
        description = fields[name].description if name in fields else None
        if description:
            return description.replace("|", "\\|").replace("\n", " ")
    return ""


def _rows(settings: type[BaseSettings], names: list[str]) -> list[str]:
    return [
        f"| `{ENV_PREFIX}{name.upper()}` | {shown_default(name, settings.model_fields[name])} "
        f"| {_description(settings, name)} |"
        for name in names
    ]


def settings_table(
    settings_classes: tuple[type[BaseSettings], ...] = SHARED,
) -> str:
    """A Markdown table of every shared setting (the README embeds it; a check keeps it
    current); each class contributes the fields it declares, in order."""
    rows = list(_HEADER)
    seen: set[str] = set()
    for cls in settings_classes:
        names = [n for n in declared_fields(cls) if n not in seen]
        seen.update(names)
        rows += _rows(cls, names)
    return "\n".join(rows)


def config_reference(service: str, settings: type[BaseSettings]) -> str:
    """``docs/config/<service>.md``: every variable ``settings`` reads, the service's own
    first, then one section per shared fragment it is made of."""
    shared = {name for _, f in FRAGMENTS if issubclass(settings, f) for name in declared_fields(f)}
    own = [name for name in settings.model_fields if name not in shared]
    summary = inspect.cleandoc(sys.modules[settings.__module__].__doc__ or "").split("\n\n")[0]
    lines = [
        f"# Configuration of {service}",
        "",
        f"<!-- Generated from {settings.__module__}.{settings.__qualname__} by "
        "`genomebus-contracts generate`; `genomebus-contracts check` fails when it differs. -->",
        "",
        summary.replace("\n", " "),
        "",
        f"Every setting is an environment variable (prefix `{ENV_PREFIX}`). On the local stack "
        "`.stack/env` is read too (a variable set in the environment wins); unknown variables "
        "are ignored, so a misspelt name does nothing.",
    ]
    if own:
        lines += ["", f"## {service}'s own settings", "", *_HEADER, *_rows(settings, own)]
    for heading, fragment in FRAGMENTS:
        if issubclass(settings, fragment):
            names = declared_fields(fragment)
            lines += ["", f"## {heading}", "", *_HEADER, *_rows(settings, names)]
    return "\n".join(lines) + "\n"
