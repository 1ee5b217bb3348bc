"""CLI behaviour that needs no running stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from genomebus_devstack import cli


def test_env_without_stack_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["stack", "--state-dir", str(tmp_path), "env"]) == 1
    assert "not up" in capsys.readouterr().err


def test_status_of_empty_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["stack", "--state-dir", str(tmp_path), "status"]) == 1
    out = capsys.readouterr().out
    for component in ("kafka", "minio", "postgres"):
        assert f"{component:<9} stopped" in out
    assert "tools" in out


def test_logs_of_empty_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["stack", "--state-dir", str(tmp_path), "logs", "kafka", "-n", "5"]) == 0
    assert "no log yet" in capsys.readouterr().out


def test_logs_tail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "minio.log").write_text("".join(f"m{i}\n" for i in range(10)))
    assert cli.main(["stack", "--state-dir", str(tmp_path), "logs", "minio", "-n", "2"]) == 0
    assert capsys.readouterr().out.split() == ["m8", "m9"]


def test_unknown_command_is_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["stack", "explode"])
    assert info.value.code == 2
