"""Pid files: `down` may only ever signal processes that are still the ones `up` started."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from genomebus_devstack import procs


def _sleeper(tmp_path: Path) -> subprocess.Popen[bytes]:
    return procs.spawn(
        [sys.executable, "-c", "import time; time.sleep(60)"], log=tmp_path / "logs" / "sleeper.log"
    )


def test_record_round_trip_and_ownership(tmp_path: Path) -> None:
    proc = _sleeper(tmp_path)
    try:
        record = procs.PidRecord.capture(proc.pid)
        assert record.argv[0] == sys.executable
        path = tmp_path / "run" / "x.pid"
        procs.write_pidfile(path, record)
        assert procs.read_pidfile(path) == record
        assert procs.running_record(path) == record
    finally:
        proc.kill()
        proc.wait()
    # Dead process: the pid file is stale and gets removed.
    assert procs.running_record(path) is None
    assert not path.exists()


def test_foreign_command_line_is_not_ours(tmp_path: Path) -> None:
    proc = _sleeper(tmp_path)
    try:
        real = procs.PidRecord.capture(proc.pid)
        forged = procs.PidRecord(
            pid=proc.pid, argv=["java", "kafka.Kafka"], starttime=real.starttime
        )
        assert not forged.is_ours()
        assert procs.terminate(forged) == "not running"
        assert proc.poll() is None  # still alive: terminate refused to signal it
        reused = procs.PidRecord(pid=proc.pid, argv=real.argv, starttime=(real.starttime or 0) + 1)
        assert not reused.is_ours()
    finally:
        proc.kill()
        proc.wait()


def test_terminate_stops_our_process(tmp_path: Path) -> None:
    proc = _sleeper(tmp_path)
    record = procs.PidRecord.capture(proc.pid)
    assert procs.terminate(record, grace=5) == "stopped"
    assert not procs.pid_alive(proc.pid)


def test_terminate_escalates_to_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    log = tmp_path / "stubborn.log"
    proc = procs.spawn([sys.executable, "-c", code], log=log)
    deadline = time.monotonic() + 10
    while "ready" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    record = procs.PidRecord.capture(proc.pid)
    assert procs.terminate(record, grace=0.5) == "killed after timeout"
    assert not procs.pid_alive(proc.pid)


def test_corrupt_pidfile_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "x.pid"
    path.write_text("12345\n")  # an old-style bare pid: no command line to verify, never trusted
    assert procs.read_pidfile(path) is None


def test_failure_carries_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    err = procs.failure("kafka did not become ready", log)
    text = str(err)
    assert "kafka did not become ready" in text
    assert "line 99" in text and "line 80" in text and "line 79" not in text
    assert "(log is empty)" in str(procs.failure("x", tmp_path / "missing.log"))


def test_run_logged_failure_is_clear(tmp_path: Path) -> None:
    log = tmp_path / "install.log"
    try:
        procs.run_logged(
            [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], log=log, what="the step"
        )
    except procs.StackError as exc:
        assert "the step failed (exit code 3)" in str(exc) and "boom" in str(exc)
    else:
        raise AssertionError("expected StackError")


def test_require_binary_message() -> None:
    try:
        procs.require_binary("definitely-not-a-binary-xyz", "Install it with apt.")
    except procs.StackError as exc:
        assert "definitely-not-a-binary-xyz" in str(exc) and "Install it with apt." in str(exc)
    else:
        raise AssertionError("expected StackError")
