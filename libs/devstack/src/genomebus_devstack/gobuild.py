"""Building a pinned Go program into the tools cache: the one way MinIO and kustomize are made.

Both come from the Go module proxy as source (neither publishes binaries we may use), so both
are ``go install``ed with the machine's own toolchain (``GOTOOLCHAIN=local``: never a download),
static (``CGO_ENABLED=0``), stripped, with the module and build caches inside the tools dir so
a second build is fast. The binary is built into a scratch ``GOBIN`` and moved into place only
once it is complete (and, where the caller checks, reports the right version), so an
interrupted build never leaves a half-written file that later runs would take as installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .paths import Layout
from .procs import StackError, failure, require_binary

BUILD_INFO = "build.json"


def go_install(
    layout: Layout,
    module_ref: str,
    target: Path,
    *,
    what: str,
    how_long: str,
    echo: Callable[[str], None],
    check: Callable[[Path], str | None] = lambda built: None,
    extra_env: dict[str, str] | None = None,
) -> float:
    """``go install module_ref`` into ``target``; returns the seconds it took.

    ``check`` inspects the built binary before it is moved into place and returns what is wrong
    with it, or None. A build record (seconds, Go version, size) is left beside ``target``'s
    folder for ``describe``.
    """
    go = require_binary(
        "go", f"Building {what} needs a Go toolchain on PATH, e.g. /usr/local/go/bin."
    )
    go_version = subprocess.run(
        [go, "version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    log = layout.log("install")
    echo(f"building {module_ref} with {go_version} ({how_long}; output in {log})")
    scratch = target.parent.parent / "gobin.tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        GOBIN=str(scratch),
        GOMODCACHE=str(layout.go_modcache),
        GOCACHE=str(layout.go_buildcache),
        CGO_ENABLED="0",
        GOTOOLCHAIN="local",
        **(extra_env or {}),
    )
    started = time.monotonic()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        result = subprocess.run(
            [go, "install", "-trimpath", "-ldflags", "-s -w", module_ref],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.monotonic() - started
    built = scratch / target.name
    if result.returncode != 0 or not built.is_file():
        raise failure(f"`go install {module_ref}` failed (exit code {result.returncode})", log)
    problem = check(built)
    if problem is not None:
        raise StackError(f"{built}: {problem}")
    target.parent.mkdir(parents=True, exist_ok=True)
    built.replace(target)
    scratch.rmdir()
    (target.parent.parent / BUILD_INFO).write_text(
        json.dumps(
            {
                "build_seconds": round(seconds, 1),
                "go": (go_version.split()[2:3] or ["go"])[0],
                "size_bytes": target.stat().st_size,
            }
        )
        + "\n"
    )
    return seconds


def describe(target: Path) -> str:
    """ ", built in 23s with go1.26.8" from the build record, or "" when there is none."""
    info_path = target.parent.parent / BUILD_INFO
    if not info_path.is_file():
        return ""
    info = json.loads(info_path.read_text())
    return f", built in {info['build_seconds']:.0f}s with {info.get('go', 'go')}"
