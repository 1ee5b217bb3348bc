"""``genomebus-contracts generate|check``: write or verify the generated contract documents."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genomebus_common.contracts import schemas as contracts
from genomebus_common.runtime.settings import settings_table

README = contracts.CONTRACTS_DIR.parents[2] / "README.md"
_TABLE_START, _TABLE_END = "<!-- settings-table:start -->\n", "\n<!-- settings-table:end -->"


def update_readme_table(readme: Path = README) -> bool:
    """Rewrite the README's configuration table from the settings; True if it changed."""
    text = readme.read_text()
    start, end = text.index(_TABLE_START) + len(_TABLE_START), text.index(_TABLE_END)
    updated = text[:start] + settings_table() + text[end:]
    if updated != text:
        readme.write_text(updated)
    return updated != text


def write(folder: Path = contracts.CONTRACTS_DIR) -> list[Path]:
    written = []
    if README.is_file() and update_readme_table():
        written.append(README)
    for name, text in contracts.rendered().items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genomebus-contracts", description=__doc__)
    parser.add_argument("action", choices=["generate", "check"])
    parser.add_argument("--dir", type=Path, default=contracts.CONTRACTS_DIR)
    args = parser.parse_args(argv)
    if args.action == "generate":
        for path in write(args.dir):
            print(f"wrote {path}")
        return 0
    stale = contracts.drift(args.dir)
    if stale:
        print("contract documents differ from the code: " + ", ".join(stale), file=sys.stderr)
        print("run: genomebus-contracts generate", file=sys.stderr)
        return 1
    print("contracts up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
