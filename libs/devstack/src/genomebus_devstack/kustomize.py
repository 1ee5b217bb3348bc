"""kustomize, built with ``go install`` at the pinned version, for rendering ``deploy/k8s``.

Why not ``kubectl kustomize``: kubectl is not on every machine (CI starts from a fresh one), and
the kustomize it embeds follows kubectl's release, not ours. The Go module proxy serves
kustomize's source, so it is built like MinIO: once, into the tools cache keyed by the pinned
version (about 40 s cold on 2 cores), and a no-op afterwards. The manifest tests use
:func:`binary`, which fails loudly, never skips, when the build is missing.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from . import pins
from .paths import Layout
from .procs import StackError, failure, require_binary

BUILD_INFO = "build.json"


def module_ref() -> str:
    return f"{pins.KUSTOMIZE_MODULE}@{pins.KUSTOMIZE_VERSION}"


def version_of(binary: Path) -> str:
    """What ``kustomize version`` prints (``v5.7.1``), or "" when it does not run."""
    try:
        out = subprocess.run([str(binary), "version"], capture_output=True, text=True,
                             timeout=30, check=False)
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _describe(layout: Layout) -> str:
    info_path = layout.kustomize_root / BUILD_INFO
    built = ""
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        built = f", built in {info['build_seconds']:.0f}s with {info.get('go', 'go')}"
    return f"kustomize {pins.KUSTOMIZE_VERSION}: {layout.kustomize_bin}{built}"


def install(layout: Layout, echo: Callable[[str], None] = print) -> str:
    """Build the pinned kustomize into the tools cache unless it is there. Returns a summary."""
    if layout.kustomize_bin.is_file():
        return f"cached: {_describe(layout)}"
    layout.kustomize_root.mkdir(parents=True, exist_ok=True)
    with open(layout.kustomize_root.with_suffix(".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            echo("another install is building kustomize; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if layout.kustomize_bin.is_file():
            return f"built by another process: {_describe(layout)}"
        go = require_binary("go", "Building kustomize needs a Go toolchain (1.24+) on PATH, "
                                  "e.g. /usr/local/go/bin.")
        go_version = subprocess.run([go, "version"], capture_output=True, text=True,
                                    check=False).stdout.strip()
        echo(f"building {module_ref()} with {go_version} (under a minute; output in "
             f"{layout.log('install')})")
        # Build into a scratch GOBIN and move the binary into place last, so an interrupted
        # build never leaves a half-written file that later runs would take as installed.
        scratch = layout.kustomize_root / "gobin.tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, GOBIN=str(scratch), GOMODCACHE=str(layout.go_modcache),
                   GOCACHE=str(layout.go_buildcache), CGO_ENABLED="0", GOTOOLCHAIN="local",
                   GOFLAGS="-mod=mod")
        started = time.monotonic()
        log = layout.log("install")
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            result = subprocess.run([go, "install", "-trimpath", "-ldflags", "-s -w", module_ref()],
                                    env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, check=False)
        seconds = time.monotonic() - started
        built = scratch / "kustomize"
        if result.returncode != 0 or not built.is_file():
            raise failure(f"`go install {module_ref()}` failed (exit code {result.returncode})", log)
        reported = version_of(built)
        if reported != pins.KUSTOMIZE_VERSION:
            raise StackError(f"{built} reports version {reported!r}, expected "
                             f"{pins.KUSTOMIZE_VERSION}")
        layout.kustomize_bin.parent.mkdir(parents=True, exist_ok=True)
        built.replace(layout.kustomize_bin)
        scratch.rmdir()
        (layout.kustomize_root / BUILD_INFO).write_text(json.dumps(
            {"build_seconds": round(seconds, 1), "go": (go_version.split()[2:3] or ["go"])[0],
             "size_bytes": layout.kustomize_bin.stat().st_size}) + "\n")
        return f"built in {seconds:.0f}s: {_describe(layout)}"


def binary(layout: Layout | None = None) -> Path:
    """The installed pinned kustomize; a StackError saying how to get it when it is missing."""
    layout = layout or Layout.discover()
    if not layout.kustomize_bin.is_file():
        raise StackError(f"{layout.kustomize_bin} is missing: run `genomebus stack install` "
                         f"(or `make install`) to build kustomize {pins.KUSTOMIZE_VERSION}")
    return layout.kustomize_bin
