"""kustomize, built with ``go install`` at the pinned version, for rendering ``deploy/k8s``.

Why not ``kubectl kustomize``: kubectl is not on every machine (CI starts from a fresh one), and
the kustomize it embeds follows kubectl's release, not ours. The Go module proxy serves
kustomize's source, so it is built like MinIO: once, into the tools cache keyed by the pinned
version (about 40 s cold on 2 cores), and a no-op afterwards. The manifest tests use
:func:`binary`, which fails loudly, never skips, when the build is missing.
"""

from __future__ import annotations

import fcntl
import subprocess
from collections.abc import Callable
from pathlib import Path

from . import gobuild, pins
from .paths import Layout
from .procs import StackError

BUILD_INFO = "build.json"


def module_ref() -> str:
    return f"{pins.KUSTOMIZE_MODULE}@{pins.KUSTOMIZE_VERSION}"


def version_of(binary: Path) -> str:
    """What ``kustomize version`` prints (``v5.7.1``), or "" when it does not run."""
    try:
        out = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _describe(layout: Layout) -> str:
    return (
        f"kustomize {pins.KUSTOMIZE_VERSION}: {layout.kustomize_bin}"
        f"{gobuild.describe(layout.kustomize_bin)}"
    )


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
        seconds = gobuild.go_install(
            layout,
            module_ref(),
            layout.kustomize_bin,
            what="kustomize",
            how_long="under a minute",
            echo=echo,
            extra_env={"GOFLAGS": "-mod=mod"},
            check=lambda built: (
                None
                if (v := version_of(built)) == pins.KUSTOMIZE_VERSION
                else f"reports version {v!r}, expected {pins.KUSTOMIZE_VERSION}"
            ),
        )
        return f"built in {seconds:.0f}s: {_describe(layout)}"


def binary(layout: Layout | None = None) -> Path:
    """The installed pinned kustomize; a StackError saying how to get it when it is missing."""
    layout = layout or Layout.discover()
    if not layout.kustomize_bin.is_file():
        raise StackError(
            f"{layout.kustomize_bin} is missing: run `genomebus stack install` "
            f"(or `make install`) to build kustomize {pins.KUSTOMIZE_VERSION}"
        )
    return layout.kustomize_bin
