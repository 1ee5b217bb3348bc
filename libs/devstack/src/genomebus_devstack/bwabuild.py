"""genomebus's ``bwa``: bwa 0.7.17's ``bwa mem`` plus ``-J`` (where the input starts in a sample).

Why a build of our own: alignment cuts a sample's reads into chunks aligned apart, and bwa mem
breaks ties between equally good hits with a hash of each read's index *in its run*. A chunk
aligned alone numbers its reads from 0, so a few tie placements differ from the whole sample
aligned in one piece. ``-J INT`` (the index of the chunk's first read in the whole sample) starts
that count where the chunk starts, and with it chunked output equals one run.

How it is built, from Debian packages only (``pins.DEBIAN_PACKAGES``, installed by the tools
step): Debian's libbwa-dev ships bwa's alignment code as ``/usr/lib/libbwa.a`` (headers in
``/usr/include/bwa``) but not its command line. ``bwa/genomebus_bwa.c``, in this package,
re-does bwa 0.7.17's ``bwa mem`` front end for the options genomebus passes, adds ``-J``, and
runs Debian's ``/usr/bin/bwa`` for every other command (``bwa index``). gcc compiles it against
the library (about a second); the result is checked (version string, ``-J`` in the usage) and
its folder renamed into ``<tools>/bwa/<BWA_BUILD>`` in one step, so an interrupted build never
looks installed. The build record beside ``bin/`` holds the sha256 of the C source and of
libbwa.a: when either changes (an edit, a Debian update) the next install rebuilds; otherwise
it only reads the record and hashes two small files.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from . import pins
from .paths import Layout
from .procs import StackError, require_binary, run_logged

BUILD_INFO = "build.json"
# What `bwa mem` (no arguments) prints for the option.
J_USAGE_MARK = "-J INT"


# --- probing a bwa -------------------------------------------------------------------------------
def probe(binary: str | Path) -> tuple[str | None, bool]:
    """(version ``binary`` reports, whether its ``bwa mem`` usage offers ``-J``).

    bwa has no --version: bare ``bwa`` and bare ``bwa mem`` print their usage on stderr.
    """

    def usage(*args: str) -> str:
        try:
            result = subprocess.run(
                [str(binary), *args],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=30,
                check=False,
            )
        except OSError:
            return ""
        return result.stdout + result.stderr

    version = next(
        (
            line.split(":", 1)[1].strip()
            for line in usage().splitlines()
            if line.startswith("Version:")
        ),
        None,
    )
    return version, J_USAGE_MARK in usage("mem")


# --- inputs --------------------------------------------------------------------------------------
def driver_source() -> bytes:
    """bwa/genomebus_bwa.c, as shipped inside this package."""
    return (resources.files(__package__) / pins.BWA_DRIVER_SOURCE).read_bytes()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint() -> dict[str, str | None]:
    """What the build is made of: sha256 of the C source and of libbwa.a (None when absent)."""
    library = Path(pins.BWA_LIBRARY)
    return {
        "source_sha256": hashlib.sha256(driver_source()).hexdigest(),
        "libbwa_sha256": _sha256(library) if library.is_file() else None,
    }


def _debian_versions(*packages: str) -> dict[str, str | None]:
    """{package: installed version or None}, from dpkg-query."""
    found: dict[str, str | None] = dict.fromkeys(packages)
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package} ${Version}\n", *packages],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    except OSError:
        return found
    for line in out.splitlines():
        name, _, version = line.partition(" ")
        if name.split(":")[0] in found and version:
            found[name.split(":")[0]] = version
    return found


def _gcc_version(gcc: str) -> str:
    out = subprocess.run([gcc, "-dumpfullversion"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"


def compile_command(gcc: str, source: Path, output: Path) -> list[str]:
    """The gcc line (the Dockerfile's bwa stage repeats it; tests/devstack/test_bwa.py checks)."""
    return [
        gcc,
        *pins.BWA_CFLAGS.split(),
        f"-I{pins.BWA_INCLUDE_DIR}",
        str(source),
        pins.BWA_LIBRARY,
        *pins.BWA_LIBS.split(),
        *pins.BWA_LDFLAGS.split(),
        "-o",
        str(output),
    ]


# --- install -------------------------------------------------------------------------------------
def describe(layout: Layout) -> str:
    """ "bwa 0.7.17-r1188+genomebus.1: <path> (built in 1s with gcc 12.2.0, libbwa-dev ...)"."""
    detail = ""
    info_path = layout.bwa_root / BUILD_INFO
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        libbwa = info.get("debian", {}).get("libbwa-dev") or "?"
        detail = (
            f" (built in {info['build_seconds']:.1f}s with gcc {info.get('gcc', '?')}, "
            f"libbwa-dev {libbwa})"
        )
    return f"bwa {pins.BWA_VERSION_STRING}: {layout.bwa_bin}{detail}"


def installed(layout: Layout) -> bool:
    """The build folder is complete and built from this C source and this libbwa.a (no process
    is run)."""
    try:
        info = json.loads((layout.bwa_root / BUILD_INFO).read_text())
    except (FileNotFoundError, ValueError):
        return False
    now = fingerprint()
    return (
        layout.bwa_bin.is_file()
        and os.access(layout.bwa_bin, os.X_OK)
        and now["libbwa_sha256"] is not None
        and all(info.get(key) == value for key, value in now.items())
    )


def install(layout: Layout, echo: Callable[[str], None] = print) -> str:
    """Build genomebus's bwa into the tools cache unless it is there. Returns a summary."""
    if installed(layout):
        return f"cached: {describe(layout)}"
    parent = layout.bwa_root.parent
    parent.mkdir(parents=True, exist_ok=True)
    with open(parent / f"{pins.BWA_BUILD}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            echo("another install is building bwa; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if installed(layout):
            return f"built by another process: {describe(layout)}"
        build(layout, echo)
        return f"built: {describe(layout)}"


def _require_debian_bwa() -> dict[str, str | None]:
    """libbwa-dev and bwa installed, both bwa 0.7.17 (what the front end re-does)."""
    versions = _debian_versions("bwa", "libbwa-dev")
    for package, path in (("libbwa-dev", pins.BWA_LIBRARY), ("bwa", pins.BWA_STOCK)):
        if not Path(path).is_file():
            raise StackError(f"{path} is missing: install the Debian package {package}")
        version = versions[package]
        if version is not None and not version.startswith(f"{pins.BWA_UPSTREAM_VERSION}-"):
            raise StackError(
                f"Debian's {package} is {version}; genomebus's bwa mem re-does bwa "
                f"{pins.BWA_UPSTREAM_VERSION}'s front end (bwabuild.py): check it against the new "
                f"version's fastmap.c before changing pins.BWA_UPSTREAM_VERSION"
            )
    if not (Path(pins.BWA_INCLUDE_DIR) / "bwamem.h").is_file():
        raise StackError(f"{pins.BWA_INCLUDE_DIR}/bwamem.h is missing: reinstall libbwa-dev")
    return versions


def build(layout: Layout, echo: Callable[[str], None]) -> float:
    """Compile, check, move into place; returns the seconds it took. Caller holds the lock."""
    gcc = require_binary("gcc", "Building bwa needs gcc (Debian package gcc).")
    versions = _require_debian_bwa()
    log = layout.log("install")
    log.parent.mkdir(parents=True, exist_ok=True)
    echo(
        f"building bwa {pins.BWA_BUILD}: {pins.BWA_DRIVER_SOURCE} on Debian's libbwa "
        f"(output in {log})"
    )
    started = time.monotonic()
    parent = layout.bwa_root.parent
    scratch = parent / f"{pins.BWA_BUILD}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)  # an interrupted earlier build
    (scratch / "root" / "bin").mkdir(parents=True)
    source = scratch / Path(pins.BWA_DRIVER_SOURCE).name
    source.write_bytes(driver_source())
    fingerprint_before = fingerprint()
    built = scratch / "root" / "bin" / "bwa"
    run_logged(
        compile_command(gcc, source, built),
        log=log,
        cwd=scratch,
        what=f"gcc {pins.BWA_DRIVER_SOURCE}",
        timeout=300,
    )
    version, has_j = probe(built)
    if version != pins.BWA_VERSION_STRING or not has_j:
        raise StackError(
            f"{built}: reports version {version!r}, -J "
            f"{'present' if has_j else 'absent'}; expected "
            f"{pins.BWA_VERSION_STRING} with -J"
        )
    seconds = time.monotonic() - started
    (scratch / "root" / BUILD_INFO).write_text(
        json.dumps(
            {
                "build_seconds": round(seconds, 2),
                "version": version,
                "source": pins.BWA_DRIVER_SOURCE,
                **fingerprint_before,
                "library": pins.BWA_LIBRARY,
                "debian": versions,
                "gcc": _gcc_version(gcc),
                "command": compile_command("gcc", Path(source.name), Path("bin/bwa")),
                "size_bytes": built.stat().st_size,
            },
            indent=1,
        )
        + "\n"
    )
    if layout.bwa_root.exists():  # incomplete or from other inputs: never reached by rename
        shutil.rmtree(layout.bwa_root)
    (scratch / "root").rename(layout.bwa_root)  # one step: the folder is complete or absent
    shutil.rmtree(scratch)
    shutil.rmtree(parent / "sources", ignore_errors=True)  # source tarballs of earlier builds
    return seconds
