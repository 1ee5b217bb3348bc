"""``genomebus stack install|up|down|status|logs|env`` — the developer entry point — and
``genomebus reference add|list|show`` (``genomebus_ops.reference_cli``).

argparse only, so the CLI starts fast and works before anything else of the workspace is
installed. Errors meant for people (StackError) print without a traceback and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import envfile, stack, tools
from .paths import COMPONENTS, Layout
from .procs import StackError, tail

LOG_NAMES: tuple[str, ...] = ("kafka", "minio", "postgres", "install")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genomebus", description="genomebus developer tools")
    groups = parser.add_subparsers(dest="group", required=True)
    groups.add_parser(
        "reference",
        help="register and inspect reference genomes (`genomebus reference --help`)",
        add_help=False,
    )
    stack_parser = groups.add_parser(
        "stack",
        help="the local Kafka + MinIO + PostgreSQL + bio tools stack",
        description="Run a real local stack as plain processes. State lives in "
        "$GENOMEBUS_STACK_DIR (default <repo>/.stack), downloads and builds in "
        "$GENOMEBUS_TOOLS_DIR (default ~/.cache/genomebus).",
    )
    stack_parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="state directory (overrides GENOMEBUS_STACK_DIR)",
    )
    commands = stack_parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "install",
        help=(
            "install Kafka jars, build MinIO, kustomize and the patched bwa, apt-install the tools"
        ),
    )
    commands.add_parser("up", help="install, then start everything and wait until it answers")
    commands.add_parser("down", help="stop the processes `up` started")
    st = commands.add_parser("status", help="health of each component; exit 0 only if all healthy")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    logs = commands.add_parser("logs", help="show the end of a component's log")
    logs.add_argument("component", nargs="?", choices=LOG_NAMES, help="default: all servers")
    logs.add_argument("-n", "--lines", type=int, default=40, help="lines per log (default 40)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    commands.add_parser(
        "env",
        help="print `export` lines for the endpoints and a PATH with the "
        'patched bwa first (eval "$(...)")',
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["reference"]:
        # the operator's command, also installed alone as genomebus-reference
        from genomebus_ops.reference_cli import main as reference_main

        return reference_main(argv[1:])
    return _stack(argv)


def _stack(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    layout = Layout.discover(args.state_dir)
    try:
        if args.command == "install":
            started = time.monotonic()
            stack.install(layout)
            print(f"installed in {time.monotonic() - started:.1f}s", flush=True)
            return 0
        if args.command == "up":
            try:
                stack.up(layout)
            except StackError:
                print(
                    "genomebus: `up` failed; components it already started keep running "
                    "(`genomebus stack down` stops them)",
                    file=sys.stderr,
                )
                raise
            return 0
        if args.command == "down":
            stack.down(layout)
            return 0
        if args.command == "status":
            return _status(layout, as_json=args.json)
        if args.command == "logs":
            return _logs(layout, args.component, args.lines, args.follow)
        if args.command == "env":
            sys.stdout.write(envfile.shell_exports(envfile.endpoints(layout.state)))
            sys.stdout.write(envfile.path_export(tools.bwa_bin_dir(layout)))
            return 0
    except (StackError, envfile.StackNotUpError) as exc:
        print(f"genomebus: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("genomebus: interrupted", file=sys.stderr)
        return 130
    raise AssertionError(args.command)


def _status(layout: Layout, *, as_json: bool) -> int:
    rows = stack.status(layout)
    assert [r.component for r in rows] == list(COMPONENTS)
    if as_json:
        print(json.dumps([row.__dict__ | {"healthy": row.healthy} for row in rows], indent=2))
    else:
        print(f"state: {layout.state}")
        print(stack.format_status(rows))
    return 0 if all(row.healthy for row in rows) else 1


def _logs(layout: Layout, component: str | None, lines: int, follow: bool) -> int:
    names = [component] if component else list(stack.SERVERS)
    for name in names:
        path = layout.log(name)
        if len(names) > 1:
            print(f"==> {path} <==")
        if not path.exists():
            print(f"(no log yet: {path})")
        for text in tail(path, lines):
            print(text)
    if follow:
        _follow([layout.log(n) for n in names])
    return 0


def _follow(paths: list[Path]) -> None:
    """Minimal `tail -f` over several files (prints new complete lines as they appear)."""
    offsets = {p: p.stat().st_size if p.exists() else 0 for p in paths}
    try:
        while True:
            for path in paths:
                if not path.exists():
                    continue
                size = path.stat().st_size
                if size < offsets[path]:  # truncated / rotated
                    offsets[path] = 0
                if size > offsets[path]:
                    with open(path, "rb") as handle:
                        handle.seek(offsets[path])
                        chunk = handle.read()
                    complete = chunk[: chunk.rfind(b"\n") + 1]  # keep partial lines for later
                    offsets[path] += len(complete)
                    prefix = f"[{path.stem}] " if len(paths) > 1 else ""
                    for text in complete.decode(errors="replace").splitlines():
                        print(prefix + text, flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
