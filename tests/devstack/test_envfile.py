"""The env file contract read by the services' settings and the test fixtures."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

import genomebus_devstack
from genomebus_devstack import dbroles, envfile

PASSWORDS = {
    s: dbroles.RolePasswords(owner=f"{s}-owner-password", runtime=f"{s}-runtime-password")
    for s in dbroles.DATABASE_SERVICES
}


def _values() -> dict[str, str]:
    return envfile.build_env(
        host="127.0.0.1",
        kafka_port=21001,
        kafka_admin_password="k4fka",
        minio_port=21002,
        access_key="genomebus",
        secret_key="s3cr-et_x",
        postgres_port=21003,
        database="genomebus",
        role_passwords=PASSWORDS,
    )


def test_exact_names_and_values() -> None:
    assert _values() == {
        "GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:21001",
        # the stack's administrator: services get their own users from the launcher
        "GENOMEBUS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "GENOMEBUS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "GENOMEBUS_KAFKA_SASL_USERNAME": "admin",
        "GENOMEBUS_KAFKA_SASL_PASSWORD": "k4fka",
        "GENOMEBUS_S3_ENDPOINT": "127.0.0.1:21002",
        "GENOMEBUS_S3_ACCESS_KEY": "genomebus",
        "GENOMEBUS_S3_SECRET_KEY": "s3cr-et_x",
        "GENOMEBUS_S3_SECURE": "false",
        "GENOMEBUS_POSTGRES_DSN": "postgresql://postgres@127.0.0.1:21003/genomebus",
        "GENOMEBUS_PROFILE": "dev",
        **{
            key: value
            for s in dbroles.DATABASE_SERVICES
            for key, value in {
                f"GENOMEBUS_{s.upper()}_POSTGRES_DSN": f"postgresql://genomebus_{s}_runtime:{s}-runtime-password@127.0.0.1:21003/genomebus_{s}",
                f"GENOMEBUS_{s.upper()}_POSTGRES_MIGRATE_DSN": f"postgresql://genomebus_{s}:{s}-owner-password@127.0.0.1:21003/genomebus_{s}",
            }.items()
        },
    }
    assert tuple(_values()) == envfile.ENV_KEYS


def test_round_trip_and_no_export_keyword(tmp_path: Path) -> None:
    path = tmp_path / "env"
    envfile.write_env(path, _values())
    text = path.read_text()
    assert "export" not in text
    assert all(line.count("=") >= 1 for line in text.splitlines())
    assert envfile.parse_env(text) == _values()
    assert path.stat().st_mode & 0o077 == 0  # holds the S3 secret and Kafka's admin password


def test_parse_tolerates_comments_and_export() -> None:
    assert envfile.parse_env("# c\n\nexport A=1\nB=x=y\n") == {"A": "1", "B": "x=y"}
    with pytest.raises(ValueError):
        envfile.parse_env("garbage\n")


def test_endpoints_reads_state_dir(tmp_path: Path) -> None:
    envfile.write_env(tmp_path / "env", _values())
    assert genomebus_devstack.endpoints(tmp_path) == _values()


def test_endpoints_uses_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    envfile.write_env(tmp_path / "env", _values())
    monkeypatch.setenv("GENOMEBUS_STACK_DIR", str(tmp_path))
    assert genomebus_devstack.endpoints() == _values()


def test_endpoints_when_stack_not_up(tmp_path: Path) -> None:
    with pytest.raises(genomebus_devstack.StackNotUpError, match="genomebus stack up"):
        genomebus_devstack.endpoints(tmp_path)


def test_endpoints_with_incomplete_file(tmp_path: Path) -> None:
    (tmp_path / "env").write_text("GENOMEBUS_S3_SECURE=false\n")
    with pytest.raises(genomebus_devstack.StackNotUpError, match="GENOMEBUS_KAFKA_BOOTSTRAP"):
        genomebus_devstack.endpoints(tmp_path)


def test_shell_exports_are_evaluable() -> None:
    values = dict(_values(), GENOMEBUS_S3_SECRET_KEY="a b'c$d")
    script = envfile.shell_exports(values) + 'printf %s "$GENOMEBUS_S3_SECRET_KEY"'
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out == "a b'c$d"
    assert all(line.startswith("export ") for line in envfile.shell_exports(values).splitlines())
    assert (
        shlex.split(envfile.shell_exports(_values()).splitlines()[0])[1]
        == "GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:21001"
    )
