"""Running external bioinformatics tools as streaming pipelines, and judging how they ended.

Both the alignment and calling services chain tools (``bwa | samtools ...``, ``bcftools | ...``).
Chaining them through OS pipes keeps memory bounded whatever the sample's size: nothing passes
through Python but the small reports. What this module adds over ``subprocess`` is the part that
is easy to get wrong: deciding *why* a pipeline failed, so the retry policy (``errors.py``) gets
the right class.

- A tool killed by a signal (the kernel's OOM killer, an operator) did not reject its input:
  ``ToolFailedTransiently``. So does a tool that is not installed, or that ran out of disk or
  memory: the same input may succeed on a healthier host.
- A tool that exits non-zero on its own did reject its input: ``ToolFailed`` (permanent).
- A process that died of SIGPIPE because a later stage had already failed is a consequence, not
  a cause: it is reported but does not decide the class.

Each process writes its stderr to an anonymous temporary file (never a pipe, which would fill and
deadlock a chatty tool such as bwa); the tail is quoted in the error message.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import functools
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from genomebus_common import shutdown
from genomebus_common.contracts.errors import GenomebusError, ToolFailed, ToolFailedTransiently

#: How much of a failed tool's stderr goes into the error message.
STDERR_TAIL_CHARS = 1500

#: stderr phrases that show the host, not the input, was at fault.
_RESOURCE_EXHAUSTION = (
    "No space left on device",
    "Disk quota exceeded",
    "Cannot allocate memory",
    "Out of memory",
    "out of memory",
    # htslib's words when a write returns short (a full disk, without saying so)
    "File write failed",
    "writing output failed",
)

#: Below this much free scratch space a tool failure is put down to the host: a tool that
#: filled the disk often reports only a failed write, or, its stderr file being on the same
#: disk, nothing at all.
LOW_SCRATCH_BYTES = 512 * 1024 * 1024

#: The empty BGZF block every complete BGZF file (BAM, .vcf.gz, BCF) ends with (SAM spec 4.1.2).
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


# --- command lines with data placeholders ------------------------------------------------------


@dataclass(frozen=True)
class Data:
    """A placeholder for a data path (or per-sample value) in a command template.

    Provenance must record how a tool was run without recording where the data were: the same
    template renders the real argv for execution and ``<name>`` for the ``ToolProvenance``.
    """

    name: str


Arg = str | Data


@dataclass(frozen=True)
class Command:
    """One tool invocation: a template of literal arguments and ``Data`` placeholders."""

    template: tuple[Arg, ...]

    @classmethod
    def of(cls, *args: Arg) -> Command:
        return cls(tuple(args))

    @property
    def tool(self) -> str:
        head = self.template[0]
        assert isinstance(head, str), "the executable must be a literal"
        return head

    def argv(self, values: Mapping[str, str | os.PathLike[str]]) -> list[str]:
        out: list[str] = []
        for arg in self.template:
            if isinstance(arg, Data):
                if arg.name not in values:
                    raise KeyError(f"no value for placeholder <{arg.name}> in {self.display()}")
                out.append(os.fspath(values[arg.name]))
            else:
                out.append(arg)
        return out

    def display(self) -> str:
        return " ".join(
            f"<{a.name}>" if isinstance(a, Data) else shlex.quote(a) for a in self.template
        )


def display_pipeline(commands: Iterable[Command]) -> str:
    return " | ".join(c.display() for c in commands)


# --- outcomes and their classification ---------------------------------------------------------


@dataclass(frozen=True)
class ProcessOutcome:
    name: str
    argv: tuple[str, ...]
    returncode: int
    stderr_tail: str
    #: User + system CPU the process (and its reaped children) used; 0.0 when it could not be
    #: read (the process was reaped before we looked, e.g. after an abort).
    cpu_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def signal_name(self) -> str | None:
        if self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    def describe(self) -> str:
        how = (
            f"was killed by {self.signal_name}"
            if self.returncode < 0
            else f"exited with status {self.returncode}"
        )
        tail = self.stderr_tail.strip()
        return f"{self.name} {how}" + (f"; stderr: ...{tail}" if tail else "; no stderr")


def classify_failure(
    outcomes: Sequence[ProcessOutcome], *, aborted: bool = False
) -> GenomebusError | None:
    """The error a set of finished processes amounts to, or ``None`` when all succeeded.

    ``aborted`` means the caller killed the pipeline itself (e.g. its input turned out bad);
    the SIGTERMs it sent are then not evidence of anything.
    """
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return None
    ours = {-signal.SIGTERM, -signal.SIGKILL} if aborted else set()
    causes = [o for o in failed if o.returncode not in ours]
    if aborted and not causes:
        return ToolFailed("pipeline aborted by the caller: " + "; ".join(o.name for o in failed))
    # SIGPIPE victims are consequences of a later stage dying, unless nothing else failed.
    primary = [o for o in causes if o.returncode != -signal.SIGPIPE] or causes
    first = next((o for o in primary if o.returncode < 0), primary[0])
    others = [o for o in failed if o is not first]
    message = first.describe()
    if others:
        message += (
            " (also: "
            + ", ".join(f"{o.name} {o.signal_name or o.returncode}" for o in others)
            + ")"
        )
    if first.returncode < 0:
        return ToolFailedTransiently(message)
    if any(p in first.stderr_tail for p in _RESOURCE_EXHAUSTION):
        return ToolFailedTransiently("host resources exhausted: " + message)
    return ToolFailed(message)


# --- running ----------------------------------------------------------------------------------


def _tail(f: IO[bytes]) -> str:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - STDERR_TAIL_CHARS * 2))
    text = f.read().decode("utf-8", errors="replace")
    return text[-STDERR_TAIL_CHARS:]


def _display_name(argv: Sequence[str]) -> str:
    """``samtools sort`` rather than ``samtools``: which stage failed matters in the message."""
    name = os.path.basename(argv[0])
    if len(argv) > 1 and re.fullmatch(r"[a-z][a-z0-9_]*", argv[1]) and name in _SUBCOMMAND_TOOLS:
        return f"{name} {argv[1]}"
    return name


_SUBCOMMAND_TOOLS = {"samtools", "bcftools", "bwa"}


def _missing(argv: Sequence[str]) -> ToolFailedTransiently:
    return ToolFailedTransiently(
        f"tool not installed or not executable: {argv[0]!r}", code="tool_missing"
    )


# --- CPU accounting (the measured part of a stage's energy estimate) ----------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds_at_exit(proc: subprocess.Popen[bytes]) -> float:
    """The user + system CPU of a process that is ending, read before it is reaped.

    ``waitid(..., WNOWAIT)`` waits for the exit but leaves the zombie in place, whose
    ``/proc/<pid>/stat`` still holds its CPU times (and those of the children it reaped, e.g.
    ``samtools sort`` helpers); ``Popen.wait`` then reaps it as usual. Linux only, like the
    tools; elsewhere, or when the process is already gone, the answer is 0.0.
    """
    if proc.returncode is not None:
        return 0.0
    try:
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        with open(f"/proc/{proc.pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (ChildProcessError, FileNotFoundError, ProcessLookupError, AttributeError, OSError):
        return 0.0
    # After the ")" closing the command name: state is field 3, utime..cstime are fields 14-17.
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / _CLOCK_TICKS


class ResourceMeter:
    """Sums the CPU and wall time of every pipeline run while it is active (see ``metered``)."""

    def __init__(self) -> None:
        self.cpu_seconds = 0.0
        self.wall_seconds = 0.0
        self.processes = 0
        self._lock = threading.Lock()

    def add(self, outcomes: Sequence[ProcessOutcome], wall_seconds: float) -> None:
        with self._lock:
            self.cpu_seconds += sum(o.cpu_seconds for o in outcomes)
            self.wall_seconds += wall_seconds
            self.processes += len(outcomes)


_current_meter: contextvars.ContextVar[ResourceMeter | None] = contextvars.ContextVar(
    "genomebus_resource_meter", default=None
)


@contextlib.contextmanager
def metered() -> Iterator[ResourceMeter]:
    """Count the tools a stage runs, in this context and the threads it hands work to.

    A context variable, not a global: two samples handled at once in one process each get
    their own meter (``asyncio.to_thread`` copies the context, so the meter follows the work).
    """
    meter = ResourceMeter()
    token = _current_meter.set(meter)
    try:
        yield meter
    finally:
        _current_meter.reset(token)


class ToolTimedOut(ToolFailedTransiently):
    """A tool ran past its time limit and was killed: a hung tool or a sick node, not bad input.

    Transient, so the unit of work is retried (on this or another worker); a unit that times
    out on every attempt ends in the dead-letter topic like any other exhausted retry.
    """

    code = "tool_timed_out"


@dataclass(frozen=True)
class Deadline:
    """When the tools of one unit of work must have finished, and why that long."""

    at: float  # time.monotonic()
    seconds: float
    what: str


_current_deadline: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "genomebus_tool_deadline", default=None
)


def time_limit_for(input_bytes: int, *, floor_s: float, bytes_per_s: float) -> float:
    """A time limit that grows with the input: ``floor_s`` plus the input at a rate far below
    what a healthy node achieves (so only a hung or starved tool ever reaches it)."""
    if bytes_per_s <= 0:
        raise ValueError("bytes_per_s must be positive")
    return floor_s + max(input_bytes, 0) / bytes_per_s


@contextlib.contextmanager
def time_limit(seconds: float, what: str) -> Iterator[Deadline]:
    """Every pipeline started in this context (and in threads it hands work to) is killed when
    ``seconds`` have passed since entering it, and then raises ``ToolTimedOut``.

    One deadline for the whole unit of work rather than per tool: a unit that runs five tools
    one after the other must not get five times its budget. Nested limits keep the earlier one.
    """
    if seconds <= 0:
        raise ValueError("a time limit must be positive")
    deadline = Deadline(time.monotonic() + seconds, seconds, what)
    outer = _current_deadline.get()
    if outer is not None and outer.at < deadline.at:
        deadline = outer
    token = _current_deadline.set(deadline)
    try:
        yield deadline
    finally:
        _current_deadline.reset(token)


_running: weakref.WeakSet[Pipeline] = weakref.WeakSet()
_running_lock = threading.Lock()


def _abort_running() -> int:
    """Kill every pipeline still running in this process; returns how many were running.

    A service that is stopping (SIGTERM from Kubernetes or an operator) must not leave a bwa or
    bcftools running without a parent: the tool would go on burning CPU and writing scratch
    files for a result nobody will read, since the message is redelivered elsewhere (its
    offset was never committed). ``shutdown.begin`` calls this (registered below).
    """
    with _running_lock:
        pipelines = list(_running)
    for pipeline in pipelines:
        pipeline.abort(stopping=True)
    return len(pipelines)


class Pipeline:
    """Processes connected stdout to stdin, the last one's output going to a file (or captured).

    Use as a context manager: leaving the block by an exception kills whatever still runs, so a
    failed handler never leaves orphans writing into its working directory.
    """

    def __init__(
        self,
        commands: Sequence[Sequence[str]],
        *,
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
        stdout: Path | None = None,
        capture: bool = False,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not commands:
            raise ValueError("a pipeline needs at least one command")
        if stdout is not None and capture:
            raise ValueError("either write the output to a file or capture it, not both")
        self.commands = [list(c) for c in commands]
        self._stdin = stdin
        self._stdout_path = stdout
        self._capture = capture
        self._cwd = cwd
        #: Added to this process's environment for the tools (e.g. htslib's S3 credentials).
        self._env = {**os.environ, **env} if env else None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stderrs: list[IO[bytes]] = []
        self._aborted = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        self.output: bytes | None = None
        self.outcomes: list[ProcessOutcome] = []
        self._started = time.monotonic()
        self._deadline = _current_deadline.get()
        self._watchdog: threading.Timer | None = None
        self.timed_out = False

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()
        if self._procs and not self.outcomes:
            self._collect()

    def start(self) -> Pipeline:
        self._started = time.monotonic()
        if self._deadline is not None and self._deadline.at <= self._started:
            self.timed_out = True
            raise self._timeout_error()
        with _running_lock:
            if shutdown.stopping():
                raise ToolFailedTransiently(
                    "not started: the service is shutting down", code="service_stopping"
                )
            _running.add(self)
        with contextlib.ExitStack() as files:
            out_file = (
                files.enter_context(open(self._stdout_path, "wb"))
                if self._stdout_path is not None
                else None
            )
            try:
                upstream: int | IO[Any] | None = self._stdin
                for i, argv in enumerate(self.commands):
                    last = i == len(self.commands) - 1
                    if last:
                        stdout: int | IO[Any] = (
                            out_file
                            if out_file is not None
                            else (subprocess.PIPE if self._capture else subprocess.DEVNULL)
                        )
                    else:
                        stdout = subprocess.PIPE
                    err = tempfile.TemporaryFile()  # noqa: SIM115 - kept in self._stderrs, read and closed by _collect
                    try:
                        proc = subprocess.Popen(
                            argv,
                            stdin=upstream,
                            stdout=stdout,
                            stderr=err,
                            cwd=self._cwd,
                            env=self._env,
                        )
                    except (FileNotFoundError, PermissionError) as exc:
                        err.close()
                        raise _missing(argv) from exc
                    with self._lock:
                        self._procs.append(proc)
                        self._stderrs.append(err)
                        aborted_meanwhile = self._aborted.is_set()
                    if aborted_meanwhile:  # abort() ran between our start and this spawn
                        proc.terminate()
                    # Drop the parent's copy of the pipe: the upstream sees SIGPIPE if this dies.
                    previous = self._procs[i - 1].stdout if i > 0 else None
                    if previous is not None:
                        previous.close()
                    upstream = proc.stdout
            except BaseException:
                self.abort()
                self._collect()
                raise
        if self._deadline is not None:
            self._watchdog = threading.Timer(self._deadline.at - time.monotonic(), self._time_out)
            self._watchdog.daemon = True
            self._watchdog.start()
        return self

    def abort(self, *, stopping: bool = False) -> None:
        """Kill every stage (from another thread too); ``wait`` then reports ``aborted``.

        ``stopping``: the service is shutting down, so the input is not at fault and the
        failure is transient (the message is redelivered, to this or another worker).
        """
        self._stopping = self._stopping or stopping
        self._aborted.set()
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()

    @property
    def aborted(self) -> bool:
        return self._aborted.is_set()

    def _time_out(self) -> None:
        self.timed_out = True
        self.abort()

    def _timeout_error(self) -> ToolTimedOut:
        deadline = self._deadline
        assert deadline is not None
        names = ", ".join(_display_name(c) for c in self.commands)
        return ToolTimedOut(
            f"{deadline.what}: time limit of {deadline.seconds:.0f} s reached; killed {names}"
        )

    def _collect(self) -> list[ProcessOutcome]:
        last = self._procs[-1] if self._procs else None
        if self._capture and last is not None and last.stdout is not None:
            self.output = last.stdout.read()
            last.stdout.close()
        outcomes = []
        for proc, err in zip(self._procs, self._stderrs, strict=True):
            cpu = cpu_seconds_at_exit(proc)
            rc = proc.wait()
            args = proc.args  # always the list it was started with
            argv = tuple(map(str, args)) if isinstance(args, list | tuple) else (str(args),)
            outcomes.append(ProcessOutcome(_display_name(argv), argv, rc, _tail(err), cpu))
        if self._watchdog is not None:  # only now: the wait above is what it guards
            self._watchdog.cancel()
        for err in self._stderrs:
            err.close()
        self.outcomes = outcomes
        with _running_lock:
            _running.discard(self)
        meter = _current_meter.get()
        if meter is not None:
            meter.add(outcomes, time.monotonic() - self._started)
        return outcomes

    def wait(self, *, check: bool = True) -> list[ProcessOutcome]:
        """Wait for every stage; with ``check``, raise the classified error of a failure."""
        outcomes = self.outcomes or self._collect()
        if check and self._stopping:
            raise ToolFailedTransiently(
                "stopped: the service is shutting down", code="service_stopping"
            )
        if check and self.timed_out:
            raise self._timeout_error()
        if check:
            error = classify_failure(outcomes, aborted=self.aborted)
            if error is not None:
                if not isinstance(error, ToolFailedTransiently) and (full := self._full_disk()):
                    raise ToolFailedTransiently(f"host resources exhausted: {full}; {error.reason}")
                raise error
        return outcomes

    def _full_disk(self) -> str | None:
        """Which scratch filesystem this pipeline wrote to is (nearly) full, if one is."""
        places = {Path(tempfile.gettempdir())}
        if self._stdout_path is not None:
            places.add(self._stdout_path.parent)
        if self._cwd is not None:
            places.add(self._cwd)
        for place in sorted(places):
            try:
                free = shutil.disk_usage(place).free
            except OSError:
                continue
            if free < LOW_SCRATCH_BYTES:
                return f"{place} has {free // (1024 * 1024)} MiB free"
        return None


def run_pipeline(
    commands: Sequence[Sequence[str]],
    *,
    stdout: Path | None = None,
    capture: bool = False,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> bytes | None:
    """Run a pipeline to completion; return the captured output (small reports only)."""
    with Pipeline(commands, stdout=stdout, capture=capture, cwd=cwd, env=env) as pipeline:
        pipeline.wait()
    return pipeline.output


def run_tool(
    argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> str:
    """Run one tool and return its stdout as text: for reports (stats, headers), not data."""
    output = run_pipeline([argv], capture=True, cwd=cwd, env=env)
    return (output or b"").decode("utf-8", errors="replace")


# --- versions ---------------------------------------------------------------------------------

# How each tool states its version: bwa has no --version and prints it in its usage (exit 1).
_VERSION_PROBES: dict[str, tuple[list[str], str]] = {
    "bwa": ([], r"Version:\s*(\S+)"),
    "minimap2": (["--version"], r"^(\S+)"),
}


@functools.cache
def tool_version(tool: str) -> str:
    """The version the installed tool reports about itself (not what we believe is installed)."""
    args, pattern = _VERSION_PROBES.get(tool, (["--version"], rf"^{re.escape(tool)}\s+(\S+)"))
    try:
        done = subprocess.run(
            [tool, *args], check=False, capture_output=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise _missing([tool]) from exc
    except subprocess.TimeoutExpired as exc:  # an overloaded host, not a broken tool
        raise ToolFailedTransiently(f"{tool} took over 30 s to state its version") from exc
    text = (done.stdout + b"\n" + done.stderr).decode("utf-8", errors="replace")
    match = re.search(pattern, text.strip(), flags=re.MULTILINE)
    if not match:
        raise ToolFailedTransiently(f"cannot read the version of {tool!r} from: {text[:200]!r}")
    return match.group(1)


# --- named pipes fed from Python streams ------------------------------------------------------


class FifoFeeder(threading.Thread):
    """Writes chunks into a named pipe that a tool opens as if it were a file.

    bwa and minimap2 take their two FASTQ files as paths, so a stream from the object store can
    reach them only through a FIFO. Opening a FIFO for writing blocks until a reader opens it;
    if the tool dies first that open would block for ever, so it is polled non-blocking until a
    reader appears or ``cancel()`` is called. A reader that goes away mid-stream (the tool died)
    ends the thread quietly with ``reader_gone`` set: the tool's own exit explains the failure.
    An exception from the chunk source (bad input) is kept in ``error`` and ``on_error`` is
    called, typically to abort the pipeline at once rather than let it finish on partial data.
    """

    def __init__(
        self,
        path: Path,
        chunks: Iterable[bytes],
        *,
        name: str | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        poll_s: float = 0.02,
    ) -> None:
        super().__init__(name=name or f"fifo-feeder:{path.name}", daemon=True)
        self.path = path
        self._chunks = chunks
        self._on_error = on_error
        self._poll_s = poll_s
        self._cancel = threading.Event()
        self.error: BaseException | None = None
        self.reader_gone = False
        self.finished = False
        self.bytes_written = 0

    def cancel(self) -> None:
        self._cancel.set()

    def _open(self) -> int | None:
        while not self._cancel.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                time.sleep(self._poll_s)
                continue
            os.set_blocking(fd, True)
            return fd
        return None

    def run(self) -> None:
        fd: int | None = None
        chunks: Iterator[bytes] = iter(self._chunks)
        try:
            fd = self._open()
            if fd is None:
                return
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                    self.bytes_written += written
            self.finished = True
        except BrokenPipeError:
            self.reader_gone = True
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self.error = exc
            if self._on_error is not None:
                self._on_error(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            if fd is not None:
                os.close(fd)


def make_fifo(path: Path) -> Path:
    if path.exists() or path.is_symlink():
        path.unlink()
    os.mkfifo(path, 0o600)
    return path


# --- file checks ------------------------------------------------------------------------------


def has_bgzf_eof(path: Path) -> bool:
    """Whether the file ends with the BGZF EOF block, i.e. its writer finished and closed it."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() < len(BGZF_EOF):
                return False
            f.seek(-len(BGZF_EOF), os.SEEK_END)
            return f.read() == BGZF_EOF
    except FileNotFoundError:
        return False


def require_bgzf_eof(path: Path, what: str) -> None:
    if not path.exists():
        raise ToolFailed(f"{what} was not written: {path.name} is missing")
    if not has_bgzf_eof(path):
        raise ToolFailed(f"{what} is truncated: {path.name} lacks the BGZF EOF block")


def require_nonempty(path: Path, what: str) -> None:
    if not path.exists() or path.stat().st_size == 0:
        raise ToolFailed(f"{what} was not written: {path.name} is missing or empty")


def read_fai(path: Path) -> list[tuple[str, int]]:
    """Contig names and lengths, in order, from a samtools ``.fai`` index."""
    contigs = []
    with open(path, encoding="ascii") as f:
        for line in f:
            if line.strip():
                name, length = line.split("\t")[:2]
                contigs.append((name, int(length)))
    return contigs


shutdown.on_stop(_abort_running)
