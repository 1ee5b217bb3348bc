"""State dir discovery: the same .stack from anywhere in the checkout, overridable by env."""

from __future__ import annotations

from pathlib import Path

import pytest

from genomebus_devstack import paths


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.STATE_DIR_ENV, raising=False)
    monkeypatch.delenv(paths.TOOLS_DIR_ENV, raising=False)


def _workspace(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["libs/*"]\n')
    member = root / "libs" / "x"
    member.mkdir(parents=True)
    (member / "pyproject.toml").write_text('[project]\nname = "x"\n')
    return member


def test_repo_root_walks_up_past_member_pyprojects(tmp_path: Path) -> None:
    member = _workspace(tmp_path / "repo")
    assert paths.repo_root(member) == (tmp_path / "repo").resolve()
    assert paths.state_dir(member) == (tmp_path / "repo" / ".stack").resolve()


def test_repo_root_falls_back_to_start(tmp_path: Path) -> None:
    assert paths.repo_root(tmp_path) == tmp_path.resolve()


def test_state_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(paths.STATE_DIR_ENV, str(tmp_path / "elsewhere"))
    assert paths.state_dir(_workspace(tmp_path / "repo")) == (tmp_path / "elsewhere").resolve()


def test_tools_dir_default_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert paths.tools_dir() == Path.home() / ".cache" / "genomebus"
    monkeypatch.setenv(paths.TOOLS_DIR_ENV, str(tmp_path))
    assert paths.tools_dir() == tmp_path.resolve()


def test_layout_is_keyed_by_pins(tmp_path: Path) -> None:
    from genomebus_devstack import pins

    layout = paths.Layout(state=tmp_path / "s", tools=tmp_path / "t")
    assert pins.KAFKA_VERSION in str(layout.kafka_lib)
    assert layout.minio_bin == tmp_path / "t" / "minio" / pins.MINIO_VERSION / "bin" / "minio"
    assert layout.log("kafka") == tmp_path / "s" / "logs" / "kafka.log"
    assert layout.env_file == tmp_path / "s" / "env"
    assert layout.ports_file == tmp_path / "s" / "ports.json"
