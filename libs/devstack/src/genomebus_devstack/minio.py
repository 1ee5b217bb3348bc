"""MinIO (S3 API) built from source with ``go install`` and run as a single local server.

Why build from source: MinIO no longer publishes binaries for recent releases and the machines
this project runs on only reach package registries; the Go module proxy serves MinIO's source.
The build takes minutes on 2 cores, so it is cached under the tools dir keyed by the pinned
pseudo-version, and concurrent installs wait for each other instead of building twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from . import gobuild, pins
from .paths import Layout, write_private
from .procs import StackError, pid_alive, proc_cmdline, spawn

HOST = "127.0.0.1"
ACCESS_KEY = "genomebus"
BUILD_INFO = "build.json"


# --- install --------------------------------------------------------------------------------------
def module_ref() -> str:
    return f"{pins.MINIO_MODULE}@{pins.MINIO_VERSION}"


def foreign_builds(ref: str) -> list[int]:
    """Pids of other ``go install <ref>`` processes (e.g. a build started by a setup script)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = proc_cmdline(int(entry.name))
        if argv and Path(argv[0]).name == "go" and "install" in argv and ref in argv:
            found.append(int(entry.name))
    return found


def describe_binary(layout: Layout) -> str:
    size_mib = layout.minio_bin.stat().st_size / 2**20
    return f"{layout.minio_bin} ({size_mib:.1f} MiB{gobuild.describe(layout.minio_bin)})"


def install(layout: Layout, echo: Callable[[str], None] = print) -> str:
    """Build the pinned MinIO into the tools cache unless it is there. Returns a summary."""
    if layout.minio_bin.is_file():
        return f"cached: {describe_binary(layout)}"
    layout.minio_root.mkdir(parents=True, exist_ok=True)
    with open(layout.minio_root.with_suffix(".lock"), "w") as lock:
        waited = _wait_for_other_builds(lock, layout, echo)
        if layout.minio_bin.is_file():
            return f"built by another process (waited {waited:.0f}s): {describe_binary(layout)}"
        seconds = gobuild.go_install(
            layout,
            module_ref(),
            layout.minio_bin,
            what="MinIO",
            how_long="takes several minutes on 2 cores",
            echo=echo,
        )
        return f"built in {seconds:.0f}s: {describe_binary(layout)}"


def _wait_for_other_builds(lock: IO[str], layout: Layout, echo: Callable[[str], None]) -> float:
    """Take the build lock, then wait for any build not using the lock. Returns seconds waited."""
    started = time.monotonic()
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        echo("another `genomebus stack install` is building MinIO; waiting for it")
        fcntl.flock(lock, fcntl.LOCK_EX)
    announced: set[int] = set()
    while not layout.minio_bin.is_file() and (pids := foreign_builds(module_ref())):
        for pid in set(pids) - announced:
            echo(
                f"a build of {module_ref()} is already running (pid {pid}); waiting for it "
                f"instead of starting a second one"
            )
            announced.add(pid)
        while any(pid_alive(pid) for pid in pids):
            time.sleep(2)
    return time.monotonic() - started


# --- credentials ----------------------------------------------------------------------------------
def credentials(layout: Layout) -> tuple[str, str]:
    """Root user and password, generated once per state dir and kept in a 0600 file."""
    path = layout.minio_home / "credentials.json"
    if path.is_file():
        data = json.loads(path.read_text())
        return data["access_key"], data["secret_key"]
    access, secret = ACCESS_KEY, secrets.token_urlsafe(24)
    write_private(path, json.dumps({"access_key": access, "secret_key": secret}) + "\n")
    return access, secret


def kms_key(layout: Layout) -> str:
    """The dev stack's static KMS key (``<name>:<base64 of 32 bytes>``), generated once per
    state dir and kept beside the credentials: every object MinIO stores is encrypted with it
    (SSE-S3, ``MINIO_KMS_AUTO_ENCRYPTION``). Losing it loses the data, as in production."""
    import base64

    path = layout.minio_home / "kms.key"
    if path.is_file():
        return path.read_text().strip()
    value = "genomebus-dev:" + base64.b64encode(secrets.token_bytes(32)).decode()
    write_private(path, value + "\n")
    return value


# --- run ------------------------------------------------------------------------------------------
def start(layout: Layout, *, port: int, console_port: int) -> subprocess.Popen[bytes]:
    if not layout.minio_bin.is_file():
        raise StackError(f"{layout.minio_bin} is missing; run `genomebus stack install`")
    layout.minio_data.mkdir(parents=True, exist_ok=True)
    access, secret = credentials(layout)
    env = dict(
        os.environ,
        MINIO_ROOT_USER=access,
        MINIO_ROOT_PASSWORD=secret,
        MINIO_CI_CD="1",
        MINIO_UPDATE="off",
        MINIO_BROWSER="on",
        # server-side encryption of every object, with the stack's own key
        MINIO_KMS_SECRET_KEY=kms_key(layout),
        MINIO_KMS_AUTO_ENCRYPTION="on",
    )
    argv = [
        str(layout.minio_bin),
        "server",
        str(layout.minio_data),
        "--address",
        f"{HOST}:{port}",
        "--console-address",
        f"{HOST}:{console_port}",
    ]
    return spawn(argv, log=layout.log("minio"), env=env, cwd=layout.minio_home)


def probe(endpoint: str, timeout: float = 2.0) -> bool:
    """True if MinIO's liveness endpoint answers HTTP 200."""
    try:
        with urllib.request.urlopen(f"http://{endpoint}/minio/health/live", timeout=timeout) as r:
            status: int = r.status
            return status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False
