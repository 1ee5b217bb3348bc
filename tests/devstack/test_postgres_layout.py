"""Where the private PostgreSQL cluster lives, given that the server cannot run as root."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from genomebus_devstack import postgres
from genomebus_devstack.paths import Layout

STRANGER = (54321, 54321)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory directly under /tmp (pytest's own tmp dirs sit under a 0700 parent)."""
    path = Path(tempfile.mkdtemp(prefix="genomebus-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_reachable_through_world_traversable_parents(open_dir: Path) -> None:
    assert postgres._reachable_by(open_dir / "repo" / ".stack", *STRANGER)


def test_unreachable_below_a_private_dir(open_dir: Path) -> None:
    private = open_dir / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    assert not postgres._reachable_by(private / ".stack", *STRANGER)
    assert postgres._reachable_by(private / ".stack", os.getuid(), os.getgid())  # owner may


def test_home_moves_out_of_unreachable_state_dir(open_dir: Path) -> None:
    private = open_dir / "private"
    private.mkdir()
    private.chmod(0o700)
    moved = Layout(state=private / ".stack", tools=open_dir / "tools")
    if os.geteuid() != 0:  # without root the server runs as us: it can always reach the state dir
        assert postgres.home(moved) == moved.postgres_home
        return
    assert str(postgres.home(moved)).startswith("/var/tmp/genomebus-postgres-")
    assert postgres.home(moved) == postgres.home(Layout(state=private / ".stack", tools=open_dir))
    kept = Layout(state=open_dir / ".stack", tools=open_dir / "tools")
    assert postgres.home(kept) == open_dir / ".stack" / "postgres"


def test_socket_dir_stays_short(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120) / ".stack"
    sock = postgres.socket_dir(Layout(state=deep, tools=tmp_path))
    assert len(str(sock / ".s.PGSQL.65535")) < 107
