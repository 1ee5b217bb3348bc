"""kustomize install: pinned, cached by version, fast when present, clear when Go is missing."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from genomebus_devstack import kustomize, pins, procs, stack
from genomebus_devstack.paths import Layout
from genomebus_devstack.procs import StackError


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(state=tmp_path / "state", tools=tmp_path / "tools")


def _fake_go(tmp_path: Path, script: str) -> Path:
    """A `go` on PATH that records its arguments and environment and does what ``script`` says."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    go = bindir / "go"
    go.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = version ]; then echo "go version go1.99 linux/amd64"; exit 0; fi\n'
        f'echo "$@" > "{tmp_path}/go-args"; env > "{tmp_path}/go-env"\n' + script
    )
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    return bindir


def test_layout_is_keyed_by_the_pinned_version(layout: Layout) -> None:
    assert layout.kustomize_bin == (
        layout.tools / "kustomize" / pins.KUSTOMIZE_VERSION / "bin" / "kustomize"
    )
    assert kustomize.module_ref() == f"sigs.k8s.io/kustomize/kustomize/v5@{pins.KUSTOMIZE_VERSION}"


def test_installed_binary_is_not_rebuilt(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    layout.kustomize_bin.parent.mkdir(parents=True)
    layout.kustomize_bin.write_text("#!/bin/sh\n")
    monkeypatch.setattr(procs.shutil, "which", lambda *a, **k: pytest.fail("looked for go"))
    assert kustomize.install(layout, echo=lambda _: None).startswith("cached: ")


def test_missing_go_says_how_to_fix(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    real = procs.shutil.which
    monkeypatch.setattr(
        procs.shutil, "which", lambda n, *a, **k: None if n == "go" else real(n, *a, **k)
    )
    with pytest.raises(StackError, match=r"`go` not found.*Go toolchain"):
        kustomize.install(layout, echo=lambda _: None)
    assert not layout.kustomize_bin.exists()


def test_builds_the_pinned_module_with_a_local_toolchain(
    layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake build writes a binary that reports the pinned version, as the real one does.
    bindir = _fake_go(
        tmp_path,
        f'printf "#!/bin/sh\\necho {pins.KUSTOMIZE_VERSION}\\n" > "$GOBIN/kustomize"\n'
        'chmod +x "$GOBIN/kustomize"\n',
    )
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    summary = kustomize.install(layout, echo=lambda _: None)
    assert summary.startswith("built in ")
    assert layout.kustomize_bin.is_file()
    assert kustomize.binary(layout) == layout.kustomize_bin
    args = (tmp_path / "go-args").read_text().split()
    assert args[0] == "install" and args[-1] == kustomize.module_ref()
    env = dict(
        line.split("=", 1) for line in (tmp_path / "go-env").read_text().splitlines() if "=" in line
    )
    assert env["GOTOOLCHAIN"] == "local"  # never downloads a toolchain
    assert env["GOMODCACHE"] == str(layout.go_modcache)
    assert not (layout.kustomize_root / "gobin.tmp").exists()


def test_a_binary_reporting_another_version_is_refused(
    layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = _fake_go(
        tmp_path,
        'printf "#!/bin/sh\\necho v5.0.0\\n" > "$GOBIN/kustomize"\nchmod +x "$GOBIN/kustomize"\n',
    )
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(StackError, match="expected " + pins.KUSTOMIZE_VERSION):
        kustomize.install(layout, echo=lambda _: None)
    assert not layout.kustomize_bin.exists()  # never taken as installed


def test_a_failed_build_leaves_nothing_installed(
    layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = _fake_go(tmp_path, 'echo "module lookup disabled" >&2; exit 1\n')
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(StackError, match="go install .* failed"):
        kustomize.install(layout, echo=lambda _: None)
    assert not layout.kustomize_bin.exists()


def test_missing_binary_is_an_error_naming_the_install_command(layout: Layout) -> None:
    with pytest.raises(StackError, match="genomebus stack install"):
        kustomize.binary(layout)


def test_stack_install_includes_kustomize(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    done: list[str] = []
    for module, name in (
        (stack.tools, "tools"),
        (stack.kafka, "kafka"),
        (stack.minio, "minio"),
        (stack.kustomize, "kustomize"),
    ):
        monkeypatch.setattr(module, "install", lambda *a, _n=name, **k: done.append(_n) or "ok")
    monkeypatch.setattr(stack, "_install_postgres", lambda *a: done.append("postgres") or "ok")
    stack.install(layout, echo=lambda _: None)
    assert "kustomize" in done


def test_the_installed_kustomize_is_the_pinned_one() -> None:
    """The real tools cache: `genomebus stack install` has built the pinned version."""
    binary = kustomize.binary()
    out = subprocess.run([str(binary), "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == pins.KUSTOMIZE_VERSION
