"""Starting, identifying and stopping the processes the stack owns.

Why pid files carry the command line and start time: ``down`` must never kill a process it did
not start. A bare pid can be reused by an unrelated process after a reboot or a crash, so a pid
only counts as ours while ``/proc/<pid>/cmdline`` and its start time still match what we recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


class StackError(RuntimeError):
    """A failure with a message meant for the person at the terminal (no traceback needed)."""


# --- /proc helpers --------------------------------------------------------------------------------
def proc_cmdline(pid: int) -> list[str] | None:
    """The argv of ``pid`` or None if it does not exist (or is a zombie with an empty cmdline)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if not raw:
        return None
    return raw.rstrip(b"\0").decode(errors="replace").split("\0")


def proc_starttime(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is parenthesised and may contain spaces: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie (a zombie child of ours still 'exists' to kill(0))."""
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


# --- pid files ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PidRecord:
    """What we remember about a process we started."""

    pid: int
    argv: list[str]
    starttime: int | None

    @classmethod
    def capture(cls, pid: int) -> PidRecord:
        """Record a just-started process from /proc (the source of truth ``is_ours`` compares to).

        Right after ``Popen`` returns, the kernel may still be inside execve with the new argv
        not yet mapped (``/proc/<pid>/cmdline`` reads empty for a moment): poll briefly.
        """
        deadline = time.monotonic() + 2.0
        while (argv := proc_cmdline(pid)) is None:
            if not pid_alive(pid) or time.monotonic() > deadline:
                raise StackError(f"process {pid} exited right after it was started")
            time.sleep(0.005)
        return cls(pid=pid, argv=argv, starttime=proc_starttime(pid))

    def is_ours(self) -> bool:
        """True while the pid still runs the exact command line we started, since the same boot."""
        if not pid_alive(self.pid):
            return False
        if proc_cmdline(self.pid) != self.argv:
            return False
        return self.starttime is None or proc_starttime(self.pid) == self.starttime


def write_pidfile(path: Path, record: PidRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=1) + "\n")
    tmp.replace(path)


def read_pidfile(path: Path) -> PidRecord | None:
    """The record, or None if absent or unreadable (a corrupt pid file is treated as stale)."""
    try:
        data = json.loads(path.read_text())
        return PidRecord(
            pid=int(data["pid"]), argv=list(data["argv"]), starttime=data.get("starttime")
        )
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def running_record(path: Path) -> PidRecord | None:
    """The pid file's record if that process is still ours; removes stale pid files."""
    record = read_pidfile(path)
    if record is None:
        return None
    if record.is_ours():
        return record
    path.unlink(missing_ok=True)
    return None


# --- start / stop ---------------------------------------------------------------------------------
def spawn(
    argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a long-running server detached from our terminal, stdout+stderr appended to ``log``.

    ``start_new_session`` keeps Ctrl-C in the shell that ran ``genomebus stack up`` from
    reaching the servers: they must outlive the CLI.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )


def terminate(record: PidRecord, *, grace: float = 20.0) -> str:
    """SIGTERM the process, wait up to ``grace`` seconds, then SIGKILL. Returns what happened.

    Only called on records that passed ``is_ours`` so we never signal a stranger.
    """
    if not record.is_ours():
        return "not running"
    try:
        os.kill(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        return "not running"
    if wait_gone(record.pid, grace):
        return "stopped"
    if record.is_ours():
        try:
            os.kill(record.pid, signal.SIGKILL)
        except ProcessLookupError:
            return "stopped"
        wait_gone(record.pid, 5.0)
        return "killed after timeout"
    return "stopped"


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return not pid_alive(pid)


def _reap(pid: int) -> None:
    """Collect our own exited child so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# --- misc -----------------------------------------------------------------------------------------
def tail(path: Path, lines: int = 20) -> list[str]:
    """Last ``lines`` lines of a log file (empty if it does not exist)."""
    try:
        with open(path, errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]
    except FileNotFoundError:
        return []


def failure(message: str, log: Path, lines: int = 20) -> StackError:
    """A StackError that carries the last lines of the component's log, what one reads next."""
    last = tail(log, lines)
    body = "\n".join(f"    {line}" for line in last) if last else "    (log is empty)"
    return StackError(f"{message}\n  last {len(last)} lines of {log}:\n{body}")


def require_binary(name: str, hint: str) -> str:
    """Absolute path of ``name`` on PATH, or a StackError saying how to get it."""
    found = shutil.which(name)
    if not found:
        raise StackError(f"`{name}` not found on PATH. {hint}")
    return found


def run_logged(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    what: str,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> None:
    """Run a setup command (mvn, go, apt-get, initdb...) appending its output to ``log``.

    Setup output is long and rarely interesting; on failure the tail is shown instead.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        try:
            result = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env else None,
                cwd=cwd,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise failure(f"{what} timed out after {timeout:.0f}s", log) from exc
    if result.returncode != 0:
        raise failure(f"{what} failed (exit code {result.returncode})", log)


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident set (VmHWM) in MB, NaN when it has gone: what a benchmark or a
    memory test reads from a service process."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
