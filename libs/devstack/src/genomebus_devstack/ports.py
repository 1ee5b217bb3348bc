"""Choosing and remembering the stack's TCP ports.

Why not the defaults (9092/9000/5432): a developer machine often already runs a system PostgreSQL
or another Kafka there, and CI may run several checkouts side by side. Ports are picked once at
the first ``up`` and persisted in ``ports.json`` so endpoints stay stable across restarts; a
persisted port that someone else took meanwhile is replaced (and the CLI says so).
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Callable, Iterable
from pathlib import Path

# Every port the stack listens on. Kafka needs two listeners; MinIO serves S3 and its console.
PORT_NAMES: tuple[str, ...] = ("kafka", "kafka_controller", "minio", "minio_console", "postgres")
# Well-known defaults we deliberately avoid, even when free.
DEFAULT_PORTS: frozenset[int] = frozenset({5432, 9000, 9001, 9092, 9093, 2181, 8080})
# Below Linux's ephemeral range (32768-60999), so outgoing connections rarely collide with them.
PORT_RANGE: tuple[int, int] = (20000, 32000)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a server could listen on ``host:port`` right now.

    SO_REUSEADDR makes sockets in TIME_WAIT (left by our own previous run) not count as taken,
    matching how the servers themselves bind; a live listener still makes bind fail.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(
    taken: Iterable[int],
    *,
    is_free: Callable[[int], bool] = port_is_free,
    rng: random.Random | None = None,
    attempts: int = 500,
) -> int:
    """A free port in PORT_RANGE that is neither a well-known default nor in ``taken``."""
    rng = rng or random.Random()
    avoid = set(taken) | DEFAULT_PORTS
    low, high = PORT_RANGE
    for _ in range(attempts):
        port = rng.randint(low, high)
        if port not in avoid and is_free(port):
            return port
    raise RuntimeError(f"no free TCP port found in {low}-{high} after {attempts} attempts")


def load_ports(path: Path) -> dict[str, int]:
    """Persisted ports (only known names with integer values; anything else is ignored)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {name: int(data[name]) for name in PORT_NAMES if isinstance(data.get(name), int)}


def save_ports(path: Path, ports: dict[str, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(sorted(ports.items())), indent=2) + "\n")
    tmp.replace(path)


def resolve_ports(
    path: Path,
    *,
    needed: Iterable[str],
    keep: Iterable[str] = (),
    is_free: Callable[[int], bool] = port_is_free,
    rng: random.Random | None = None,
) -> tuple[dict[str, int], list[str]]:
    """Ports for all of PORT_NAMES, persisted, plus notes about ports that had to change.

    ``needed`` are the names of ports about to be bound (their component is not running): a
    persisted one that is no longer free gets a new port. ``keep`` are ports of components
    already running (bound by us, so naturally not free): they are never changed.
    """
    ports = load_ports(path)
    keep = set(keep)
    needed = set(needed)
    notes: list[str] = []
    for name in PORT_NAMES:
        current = ports.get(name)
        if current is None:
            ports[name] = pick_port(_others(ports, name), is_free=is_free, rng=rng)
        elif name in needed and name not in keep and not is_free(current):
            ports[name] = pick_port(_others(ports, name) | {current}, is_free=is_free, rng=rng)
            notes.append(
                f"port {current} ({name}) is taken by another process; "
                f"using {ports[name]} instead (saved in {path.name})"
            )
    if ports != load_ports(path):
        save_ports(path, ports)
    return ports, notes


def _others(ports: dict[str, int], name: str) -> set[int]:
    return {port for key, port in ports.items() if key != name}
