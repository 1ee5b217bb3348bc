"""Finding and running the Debian tools the test data are made with.

Why a module of its own: a missing tool must stop the caller with one clear sentence naming the
Debian package to install, never with a bare ``FileNotFoundError`` halfway through a simulation,
and never with a silent skip (the tests rely on that to fail loudly on a half-installed machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO

# Tool -> the Debian package that ships it (for the error message).
PACKAGES: dict[str, str] = {
    "bwa": "bwa",
    "samtools": "samtools",
    "bcftools": "bcftools",
    "bgzip": "tabix",
    "tabix": "tabix",
    "mason_variator": "seqan-apps",
    "mason_simulator": "seqan-apps",
}

# One argument of a tool's command line: every one is passed on as ``str(argument)``.
ToolArg = str | os.PathLike[str] | int | float

# seqan-apps installs mason outside PATH on Debian.
_EXTRA_DIRS = ("/usr/lib/seqan/bin",)


class ToolMissing(RuntimeError):
    """A required command-line tool or data file is not installed."""


class ToolFailed(RuntimeError):
    """A tool ran and exited non-zero; the message carries the tail of its stderr."""


def find_tool(name: str) -> Path:
    """The absolute path of ``name``; ``GENOMEBUS_<NAME>`` in the environment overrides the
    search."""
    override = os.environ.get(f"GENOMEBUS_{name.upper()}")
    if override:
        path = Path(override)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise ToolMissing(f"GENOMEBUS_{name.upper()}={override} is not an executable file")
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_EXTRA_DIRS))
    if found is None:
        package = PACKAGES.get(name, name)
        raise ToolMissing(f"{name} not found: install the Debian package {package!r}")
    return Path(found)


def run(
    args: Sequence[ToolArg],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout: int | None = subprocess.DEVNULL,
) -> subprocess.CompletedProcess[bytes]:
    """Run a tool (first element is a tool name, resolved with `find_tool`) and raise on failure."""
    argv = [str(find_tool(str(args[0])))] + [str(a) for a in args[1:]]
    merged_env = {**os.environ, **env} if env else None
    proc = subprocess.run(
        argv, cwd=cwd, env=merged_env, stdout=stdout, stderr=subprocess.PIPE, check=False
    )
    if proc.returncode != 0:
        raise ToolFailed(_failure_message(argv, proc.returncode, proc.stderr))
    return proc


def run_pipeline(stages: Sequence[Sequence[ToolArg]], *, cwd: Path | None = None) -> None:
    """Run ``a | b | c`` without a shell and fail if ANY stage fails (what ``pipefail`` does).

    Each stage's stderr goes to a temporary file rather than a pipe: bwa writes megabytes of
    progress to stderr, and an unread pipe would deadlock the whole chain.
    """
    procs: list[tuple[list[str], subprocess.Popen[bytes], IO[bytes]]] = []
    with ExitStack() as stack:
        previous: subprocess.Popen[bytes] | None = None
        try:
            for index, stage in enumerate(stages):
                argv = [str(find_tool(str(stage[0])))] + [str(a) for a in stage[1:]]
                errfile = stack.enter_context(tempfile.TemporaryFile())
                last = index == len(stages) - 1
                proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    stdin=previous.stdout if previous else subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL if last else subprocess.PIPE,
                    stderr=errfile,
                )
                if previous is not None and previous.stdout is not None:
                    previous.stdout.close()  # the producer gets SIGPIPE if the consumer dies
                procs.append((argv, proc, errfile))
                previous = proc
            failures = []
            for argv, proc, stderr_file in procs:
                code = proc.wait()
                if code != 0:
                    stderr_file.seek(0)
                    failures.append(_failure_message(argv, code, stderr_file.read()))
            if failures:
                raise ToolFailed("\n".join(failures))
        finally:
            for _, proc, _ in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _failure_message(argv: Sequence[str], code: int, stderr: bytes) -> str:
    tail = stderr.decode(errors="replace").strip().splitlines()[-15:]
    return f"{' '.join(argv)} exited with {code}:\n  " + "\n  ".join(tail)
