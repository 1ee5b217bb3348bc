"""Pipelines of external tools: how their endings are classified, and FIFO feeding.

Uses only POSIX tools (sh, cat, head, yes), so these run wherever the services do.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from genomebus_common.contracts.errors import ToolFailed, ToolFailedTransiently
from genomebus_common.stagekit.tools import (
    BGZF_EOF,
    Command,
    Data,
    FifoFeeder,
    Pipeline,
    ProcessOutcome,
    ToolTimedOut,
    classify_failure,
    has_bgzf_eof,
    make_fifo,
    read_fai,
    run_pipeline,
    run_tool,
    time_limit,
    time_limit_for,
    tool_version,
)


def test_run_tool_returns_stdout() -> None:
    assert run_tool(["sh", "-c", "echo hello; echo noise >&2"]) == "hello\n"


def test_pipeline_connects_stages_and_writes_file(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    run_pipeline([["sh", "-c", "printf 'b\\na\\nc\\n'"], ["sort"], ["head", "-n", "2"]], stdout=out)
    assert out.read_text() == "a\nb\n"


def test_nonzero_exit_is_permanent_with_stderr_tail() -> None:
    with pytest.raises(ToolFailed, match=r"sh exited with status 3; stderr: \.\.\.bad input here"):
        run_tool(["sh", "-c", "echo 'bad input here' >&2; exit 3"])


def test_killed_by_signal_is_transient() -> None:
    with pytest.raises(ToolFailedTransiently, match="killed by SIGKILL"):
        run_tool(["sh", "-c", "kill -KILL $$"])


def test_resource_exhaustion_is_transient() -> None:
    with pytest.raises(ToolFailedTransiently, match="host resources exhausted"):
        run_tool(["sh", "-c", "echo 'write failed: No space left on device' >&2; exit 1"])


def test_missing_tool_is_transient() -> None:
    with pytest.raises(ToolFailedTransiently) as info:
        run_tool(["genomebus-no-such-tool", "--flag"])
    assert info.value.code == "tool_missing"


def test_missing_tool_mid_pipeline_leaves_no_orphans() -> None:
    started = time.monotonic()
    with pytest.raises(ToolFailedTransiently, match="not installed"):
        run_pipeline([["sleep", "30"], ["genomebus-no-such-tool"]])
    assert time.monotonic() - started < 5  # the sleep was killed, not waited for


def test_sigpipe_upstream_is_a_consequence_not_the_cause() -> None:
    """`yes` dies of SIGPIPE because the next stage failed: the failure is the next stage's."""
    with pytest.raises(ToolFailed, match=r"^sh exited with status 4.*consumer broke") as info:
        consumer = "head -c 10 >/dev/null; echo consumer broke >&2; exit 4"
        run_pipeline([["yes"], ["sh", "-c", consumer]])
    assert not isinstance(info.value, ToolFailedTransiently)
    assert "yes SIGPIPE" in str(info.value)


def test_signal_anywhere_wins_over_exit_statuses_it_caused() -> None:
    outcomes = [
        ProcessOutcome("bwa mem", ("bwa",), 0, ""),
        ProcessOutcome("samtools sort", ("samtools",), -9, ""),
        ProcessOutcome("samtools markdup", ("samtools",), 1, "truncated file"),
    ]
    error = classify_failure(outcomes)
    assert isinstance(error, ToolFailedTransiently)
    assert str(error).startswith("samtools sort was killed by SIGKILL")
    assert classify_failure([ProcessOutcome("x", ("x",), 0, "")]) is None


def test_abort_from_another_thread_stops_everything() -> None:
    started = time.monotonic()
    pipeline = Pipeline([["sleep", "30"], ["cat"]]).start()
    threading.Timer(0.2, pipeline.abort).start()
    with pytest.raises(ToolFailed, match="aborted by the caller"):
        pipeline.wait()
    assert time.monotonic() - started < 5


def test_exception_inside_context_kills_the_processes() -> None:
    with pytest.raises(RuntimeError), Pipeline([["sleep", "30"]]) as pipeline:
        raise RuntimeError("handler failed")
    assert pipeline.outcomes[0].returncode < 0


def test_command_renders_argv_and_pathless_display() -> None:
    cmd = Command.of("bwa", "mem", "-R", Data("read-group"), Data("ref"), "it's")
    assert cmd.argv({"read-group": "@RG\\tID:x", "ref": Path("/data/ref.fa")}) == [
        "bwa",
        "mem",
        "-R",
        "@RG\\tID:x",
        "/data/ref.fa",
        "it's",
    ]
    assert cmd.display() == "bwa mem -R <read-group> <ref> 'it'\"'\"'s'"
    with pytest.raises(KeyError, match="<ref>"):
        cmd.argv({"read-group": "x"})


def test_tool_version_reads_the_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "gbfaketool"
    fake.write_text('#!/bin/sh\necho "gbfaketool 9.8.7"\necho "Using htslib 1.0"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert tool_version("gbfaketool") == "9.8.7"
    with pytest.raises(ToolFailedTransiently):
        tool_version("genomebus-no-such-tool")


def _chunks(n: int, size: int = 65536) -> Iterator[bytes]:
    for i in range(n):
        yield bytes([i % 256]) * size


def test_fifo_feeder_delivers_everything(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path / "in.fifo")
    out = tmp_path / "out.bin"
    feeder = FifoFeeder(fifo, _chunks(40))
    feeder.start()
    run_pipeline([["cat", str(fifo)]], stdout=out)
    feeder.join(5)
    assert feeder.finished and out.stat().st_size == 40 * 65536 == feeder.bytes_written


def test_fifo_feeder_without_reader_can_be_cancelled(tmp_path: Path) -> None:
    feeder = FifoFeeder(make_fifo(tmp_path / "in.fifo"), _chunks(1))
    feeder.start()
    time.sleep(0.1)
    feeder.cancel()
    feeder.join(2)
    assert not feeder.is_alive() and not feeder.finished and feeder.error is None


def test_fifo_feeder_notices_reader_going_away(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path / "in.fifo")
    feeder = FifoFeeder(fifo, _chunks(1000))
    feeder.start()
    run_pipeline([["head", "-c", "100", str(fifo)]])
    feeder.join(5)
    assert feeder.reader_gone and not feeder.finished and feeder.error is None


def test_fifo_feeder_source_error_is_kept_and_reported(tmp_path: Path) -> None:
    def failing() -> Iterator[bytes]:
        yield b"x" * 10
        raise ValueError("source broke")

    fifo = make_fifo(tmp_path / "in.fifo")
    seen: list[BaseException] = []
    feeder = FifoFeeder(fifo, failing(), on_error=seen.append)
    feeder.start()
    assert run_tool(["cat", str(fifo)]) == "x" * 10
    feeder.join(5)
    assert isinstance(feeder.error, ValueError) and seen == [feeder.error]


def test_bgzf_eof_and_fai(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.gz", tmp_path / "bad.gz"
    good.write_bytes(b"payload" + BGZF_EOF)
    bad.write_bytes(b"payload" + BGZF_EOF[:-1])
    assert has_bgzf_eof(good) and not has_bgzf_eof(bad) and not has_bgzf_eof(tmp_path / "none")
    fai = tmp_path / "ref.fa.fai"
    fai.write_text("chr1\t1000\t6\t60\t61\nchr2\t500\t1030\t60\t61\n")
    assert read_fai(fai) == [("chr1", 1000), ("chr2", 500)]


def test_stopping_the_service_kills_running_tools_and_leaves_no_orphans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from genomebus_common import shutdown

    monkeypatch.setattr(
        shutdown, "_stopping", threading.Event()
    )  # this process goes on after the test

    pipeline = Pipeline([["sleep", "60"], ["cat"]]).start()
    pids = [p.pid for p in pipeline._procs]
    errors: list[BaseException] = []

    def handler() -> None:
        try:
            pipeline.wait()
        except BaseException as exc:  # noqa: BLE001 - what the handler would see
            errors.append(exc)

    worker = threading.Thread(target=handler)
    worker.start()
    started = time.monotonic()
    assert shutdown.begin() >= 1
    worker.join(timeout=10)
    assert not worker.is_alive() and time.monotonic() - started < 5
    assert errors and isinstance(errors[0], ToolFailedTransiently), (
        "a stop is not the input's fault"
    )
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert shutdown.begin() == 0, "a finished pipeline is forgotten"
    with pytest.raises(ToolFailedTransiently, match="shutting down"):
        Pipeline([["true"]]).start()


def test_after_a_stop_the_process_can_run_tools_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from genomebus_common import shutdown
    from genomebus_common.stagekit import tools

    monkeypatch.setattr(shutdown, "_stopping", threading.Event())
    shutdown.begin()
    assert shutdown.stopping()
    shutdown.resume()
    assert not shutdown.stopping()
    assert tools.run_pipeline([["printf", "ok"]], capture=True) == b"ok"


def test_a_tool_that_fails_on_a_full_scratch_disk_is_retried_not_dead_lettered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """samtools on a full disk says only "writing output failed" (or, its stderr file being on
    that disk too, nothing): the sample is not at fault, another attempt or node may do."""
    import collections

    from genomebus_common.contracts.errors import ToolFailed, ToolFailedTransiently
    from genomebus_common.stagekit import tools as tools_module

    usage = collections.namedtuple("usage", "total used free")
    plenty_free = usage(10**12, 0, 10**12)
    monkeypatch.setattr(tools_module.shutil, "disk_usage", lambda path: plenty_free)
    failing = [["sh", "-c", "echo '[markdup] error: writing output failed.' >&2; exit 1"]]
    with pytest.raises(ToolFailedTransiently, match="writing output failed"):
        tools_module.run_pipeline(failing, stdout=tmp_path / "out.bam")

    silent = [["sh", "-c", "exit 1"]]
    with pytest.raises(ToolFailed) as plenty:
        tools_module.run_pipeline(silent, stdout=tmp_path / "out.bam")
    assert not isinstance(plenty.value, ToolFailedTransiently), "a bad input stays permanent"

    monkeypatch.setattr(tools_module.shutil, "disk_usage", lambda path: usage(10**12, 10**12, 4096))
    with pytest.raises(ToolFailedTransiently, match="host resources exhausted: .* MiB free"):
        tools_module.run_pipeline(silent, stdout=tmp_path / "out.bam")


def test_a_hung_tool_is_killed_at_its_time_limit_and_the_unit_is_retried() -> None:
    started = time.monotonic()
    with (
        time_limit(0.5, "unit 3 of sample S"),
        pytest.raises(ToolTimedOut, match=r"unit 3 of sample S: time limit of 0 s reached") as err,
    ):
        run_pipeline([["sleep", "30"], ["cat"]])
    assert time.monotonic() - started < 5
    assert isinstance(err.value, ToolFailedTransiently)  # retried, not dead-lettered at once


def test_the_time_limit_covers_the_whole_unit_not_each_tool() -> None:
    with time_limit(1.0, "unit"):
        run_pipeline([["sleep", "0.6"]])
        with pytest.raises(ToolTimedOut):
            run_pipeline([["sleep", "0.6"]])  # alone within a second, but not after the first
        with pytest.raises(ToolTimedOut):
            run_pipeline([["true"]])  # the budget is spent: not even started


def test_a_time_limit_follows_the_work_into_threads_and_ends_with_its_block() -> None:
    import contextvars

    errors: list[BaseException] = []

    def work() -> None:
        try:
            run_pipeline([["sleep", "5"]])
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    with time_limit(0.3, "threaded"):
        thread = threading.Thread(target=contextvars.copy_context().run, args=(work,))
        thread.start()
        thread.join(10)
    assert len(errors) == 1 and isinstance(errors[0], ToolTimedOut)
    run_pipeline([["sleep", "0.4"]])  # outside the block: no limit


def test_time_limits_grow_with_the_input() -> None:
    assert time_limit_for(0, floor_s=600, bytes_per_s=1e6) == 600
    assert time_limit_for(10**9, floor_s=600, bytes_per_s=1e6) == 1600
