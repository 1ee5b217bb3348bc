"""``genomebus-contracts generate|check``: write or verify the generated documents.

Three kinds, each made from the code it describes so it cannot fall behind: the event
contracts (``libs/common/contracts``: JSON Schemas and the AsyncAPI document), the README's
table of shared settings, and one configuration reference per service
(``docs/config/<service>.md``). ``check`` fails, naming each stale file, when any differs.

The services' settings are found by name (``genomebus_<service>.config``): libs/common may not
import a service, and only this repository tool needs them all.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from pydantic_settings import BaseSettings

from genomebus_common.contracts import schemas as contracts
from genomebus_common.runtime.settings import config_reference, settings_table

REPO_ROOT = contracts.CONTRACTS_DIR.parents[2]
README = REPO_ROOT / "README.md"
CONFIG_DOCS_DIR = REPO_ROOT / "docs" / "config"
_TABLE_START, _TABLE_END = "<!-- settings-table:start -->\n", "\n<!-- settings-table:end -->"

#: Each process with a configuration reference -> "module:settings class".
SERVICE_SETTINGS: dict[str, str] = {
    "ingest": "genomebus_ingest.config:IngestSettings",
    "alignment": "genomebus_alignment.config:AlignmentSettings",
    "calling": "genomebus_calling.config:CallingSettings",
    "consent": "genomebus_consent.config:ConsentSettings",
    "registry": "genomebus_registry.config:RegistrySettings",
    "heat": "genomebus_heat.config:HeatSettings",
    "migrate": "genomebus_common.runtime.migrate:MigrateSettings",
}


def settings_class(service: str) -> type[BaseSettings]:
    module_name, _, class_name = SERVICE_SETTINGS[service].partition(":")
    found = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(found, type) and issubclass(found, BaseSettings)):
        raise TypeError(f"{SERVICE_SETTINGS[service]} is not a settings class")
    return found


def readme_with_table(text: str) -> str:
    """``text`` (the README) with its configuration table rendered from the settings."""
    start, end = text.index(_TABLE_START) + len(_TABLE_START), text.index(_TABLE_END)
    return text[:start] + settings_table() + text[end:]


def config_docs() -> dict[str, str]:
    """File name (relative to ``docs/config``) -> exact text of each service's reference."""
    return {
        f"{service}.md": config_reference(service, settings_class(service))
        for service in SERVICE_SETTINGS
    }


def expected(contracts_dir: Path = contracts.CONTRACTS_DIR) -> dict[Path, str]:
    """Every generated file -> the text the code makes for it."""
    files = {contracts_dir / name: text for name, text in contracts.rendered().items()}
    if README.is_file():
        files[README] = readme_with_table(README.read_text())
    files.update({CONFIG_DOCS_DIR / name: text for name, text in config_docs().items()})
    return files


def drift(contracts_dir: Path = contracts.CONTRACTS_DIR) -> list[Path]:
    """The generated files missing or different from what the code makes."""
    return [
        path
        for path, text in expected(contracts_dir).items()
        if not path.is_file() or path.read_text() != text
    ]


def write(contracts_dir: Path = contracts.CONTRACTS_DIR) -> list[Path]:
    """Write the generated files that differ; returns those written."""
    stale = drift(contracts_dir)
    files = expected(contracts_dir)
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
    return stale


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genomebus-contracts", description=__doc__)
    parser.add_argument("action", choices=["generate", "check"])
    parser.add_argument("--dir", type=Path, default=contracts.CONTRACTS_DIR)
    args = parser.parse_args(argv)
    if args.action == "generate":
        for path in write(args.dir):
            print(f"wrote {path}")
        return 0
    stale = drift(args.dir)
    if stale:
        names = ", ".join(_shown(path) for path in stale)
        print(f"generated documents differ from the code: {names}", file=sys.stderr)
        print("run: genomebus-contracts generate", file=sys.stderr)
        return 1
    print("contracts, settings table and configuration references up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
