"""``genomebus-contracts generate|check``: write or verify the generated contract documents."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import contracts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genomebus-contracts", description=__doc__)
    parser.add_argument("action", choices=["generate", "check"])
    parser.add_argument("--dir", type=Path, default=contracts.CONTRACTS_DIR)
    args = parser.parse_args(argv)
    if args.action == "generate":
        for path in contracts.write(args.dir):
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
