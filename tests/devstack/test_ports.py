"""Port choice and persistence: stable across restarts, never the well-known defaults."""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path

import pytest

from genomebus_devstack.ports import (
    DEFAULT_PORTS,
    PORT_NAMES,
    PORT_RANGE,
    load_ports,
    pick_port,
    port_is_free,
    resolve_ports,
)


def test_first_resolve_picks_distinct_non_default_ports_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    ports, notes = resolve_ports(path, needed=PORT_NAMES, rng=random.Random(1))
    assert notes == []
    assert set(ports) == set(PORT_NAMES)
    assert len(set(ports.values())) == len(PORT_NAMES)
    assert not set(ports.values()) & DEFAULT_PORTS
    assert all(PORT_RANGE[0] <= p <= PORT_RANGE[1] for p in ports.values())
    assert json.loads(path.read_text()) == ports


def test_second_resolve_reuses_persisted_ports(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    first, _ = resolve_ports(path, needed=PORT_NAMES)
    second, notes = resolve_ports(path, needed=PORT_NAMES)
    assert second == first
    assert notes == []


def test_taken_port_is_replaced_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    first, _ = resolve_ports(path, needed=PORT_NAMES, rng=random.Random(2))
    taken = first["kafka"]
    second, notes = resolve_ports(path, needed=PORT_NAMES, is_free=lambda p: p != taken)
    assert second["kafka"] != taken
    assert {k: v for k, v in second.items() if k != "kafka"} == {
        k: v for k, v in first.items() if k != "kafka"
    }
    assert len(notes) == 1 and str(taken) in notes[0] and "kafka" in notes[0]
    assert load_ports(path) == second


def test_ports_of_running_components_are_kept_even_if_bound(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    first, _ = resolve_ports(path, needed=PORT_NAMES)
    # Our own running postgres holds its port: it must not be "moved".
    second, notes = resolve_ports(
        path, needed=["kafka"], keep=["postgres"], is_free=lambda p: p != first["postgres"]
    )
    assert second == first and notes == []


def test_pick_port_avoids_taken_and_not_free() -> None:
    rng = random.Random(3)
    taken = set(range(PORT_RANGE[0], PORT_RANGE[0] + 6000))  # half the range
    busy = set(range(PORT_RANGE[0] + 6000, PORT_RANGE[0] + 9000))
    for _ in range(200):
        port = pick_port(taken, is_free=lambda p: p not in busy, rng=rng)
        assert port not in taken and port not in busy and port not in DEFAULT_PORTS


def test_pick_port_gives_up_with_clear_error() -> None:
    with pytest.raises(RuntimeError, match="no free TCP port"):
        pick_port([], is_free=lambda p: False, attempts=5)


def test_port_is_free_sees_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)


def test_corrupt_ports_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    path.write_text("{not json")
    assert load_ports(path) == {}
    ports, _ = resolve_ports(path, needed=PORT_NAMES)
    assert set(ports) == set(PORT_NAMES)
