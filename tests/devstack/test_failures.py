"""Clear failures: missing toolchains and servers that never become ready."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from genomebus_devstack import kafka, minio, procs, stack
from genomebus_devstack.paths import Layout
from genomebus_devstack.procs import StackError


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(state=tmp_path / "state", tools=tmp_path / "tools")


def _hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    real = procs.shutil.which
    monkeypatch.setattr(
        procs.shutil, "which", lambda n, *a, **k: None if n in names else real(n, *a, **k)
    )


def test_missing_java(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "java")
    with pytest.raises(StackError, match=r"`java` not found.*openjdk-17"):
        kafka.install(layout)


def test_missing_maven(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "mvn")
    with pytest.raises(StackError, match=r"`mvn` not found.*maven"):
        kafka.install(layout)


def test_missing_go(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "go")
    monkeypatch.setattr(minio, "foreign_builds", lambda ref: [])
    with pytest.raises(StackError, match=r"`go` not found.*Go toolchain"):
        minio.install(layout, echo=lambda _: None)


def _starting(layout: Layout, code: str) -> stack._Starting:
    log = layout.log("minio")
    process = procs.spawn([sys.executable, "-c", code], log=log)
    return stack._Starting(
        "minio", stack.time.monotonic(), process, procs.PidRecord.capture(process.pid)
    )


def _closed_ports() -> dict[str, int]:
    from genomebus_devstack.ports import PORT_NAMES, pick_port

    taken: set[int] = set()
    for _ in PORT_NAMES:
        taken.add(pick_port(taken))
    return dict(zip(PORT_NAMES, sorted(taken), strict=True))


def test_server_exiting_during_startup_shows_its_log(layout: Layout) -> None:
    item = _starting(
        layout,
        "import time; print('minio: fatal: bad disk', flush=True); time.sleep(0.5); "
        "raise SystemExit(3)",
    )
    with pytest.raises(StackError) as info:
        stack._wait_new(layout, item, _closed_ports(), echo=lambda _: None)
    text = str(info.value)
    assert "minio exited during startup (exit code 3)" in text
    assert "fatal: bad disk" in text and str(layout.log("minio")) in text


def test_server_not_ready_in_time_is_stopped(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(stack.READY_TIMEOUT, "minio", 1.0)
    item = _starting(layout, "import time; print('still booting', flush=True); time.sleep(60)")
    with pytest.raises(StackError) as info:
        stack._wait_new(layout, item, _closed_ports(), echo=lambda _: None)
    assert "did not become ready within 1s" in str(info.value)
    assert "still booting" in str(info.value)
    assert not procs.pid_alive(item.process.pid)  # type: ignore[union-attr]
