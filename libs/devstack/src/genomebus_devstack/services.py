"""genomebus's own services as local processes: for the demo, the end-to-end tests and benches.

Each service runs from the workspace's console script with the stack's endpoints plus its own
settings in the environment, as its own Kafka user (``kafka_identity``: the ACLs of
``genomebus_common.contracts.topics.BUS_CLIENTS`` apply to it as on Kubernetes), logs to
``<state>/logs/<service>.log``, and counts as started when its ``/readyz`` answers 200 (Kafka
and its database reachable, consumers subscribed). Its PATH starts with the patched bwa's
folder (``tools.bwa_bin_dir``): services run ``bwa`` by name and chunked alignment needs its
``-J``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import dbroles
from .envfile import KAFKA_BOOTSTRAP, StackNotUpError, endpoints
from .identities import service_s3_env
from .kafka_users import identity_env
from .paths import Layout
from .ports import port_is_free
from .procs import StackError
from .tools import bwa_bin_dir, with_service_path

# Services that keep tables: each gets a database of its own on the shared server.
DATABASE_SERVICES = frozenset(dbroles.DATABASE_SERVICES)
# Services that run bwa: they refuse to start without the patched build (no silent fallback).
BWA_SERVICES = frozenset({"alignment"})


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_env(env: Mapping[str, str], service: str) -> dict[str, str]:
    """A database service's DSNs, from the stack's per-service entries (``dbroles``).

    The service runs as its runtime role and migrates as its database's owner; never as the
    stack's superuser. Missing entries mean an env file from before the roles existed.
    """
    runtime, owner = env.get(dbroles.dsn_key(service)), env.get(dbroles.migrate_dsn_key(service))
    if not runtime or not owner:
        raise StackError(
            f"{service}: no database credentials ({dbroles.dsn_key(service)}, "
            f"{dbroles.migrate_dsn_key(service)}): run `genomebus stack up`"
        )
    return {"GENOMEBUS_POSTGRES_DSN": runtime, "GENOMEBUS_POSTGRES_MIGRATE_DSN": owner}


@dataclass
class ServiceProcess:
    """One running genomebus service."""

    name: str
    env: Mapping[str, str]
    log_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self) -> ServiceProcess:
        if not port_is_free(self.port):
            raise StackError(f"{self.name}: port {self.port} is taken")
        script = Path(sys.executable).with_name(f"genomebus-{self.name}")
        if not script.exists():
            raise StackError(f"{script} is missing: run `make install`")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.name in BWA_SERVICES and not (bwa_bin_dir() / "bwa").is_file():
            raise StackError(
                f"{self.name}: {bwa_bin_dir() / 'bwa'} (the patched bwa) is missing: "
                f"run `genomebus stack install`"
            )
        env = with_service_path(
            {
                # a development stack: DSNs without TLS are allowed (settings refuse them otherwise)
                dbroles.PROFILE_KEY: "dev",
                **os.environ,
                **self.env,
                **service_s3_env(self.name),  # its own S3 identity, never the stack's root
                **self.kafka_identity(),  # its own Kafka user, never the stack's admin
                "GENOMEBUS_SERVICE_NAME": self.name,
                "GENOMEBUS_HTTP_PORT": str(self.port),
            }
        )
        if self.name in DATABASE_SERVICES:
            env |= database_env(env, self.name)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(script)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def kafka_identity(self) -> dict[str, str]:
        """The service's own Kafka user when it runs against this checkout's stack (the
        stack's env file names the administrator; a service must not run as one). Endpoints
        that point elsewhere keep whatever identity ``env`` gives."""
        layout = Layout.discover()
        try:
            stack = endpoints(layout.state)
        except StackNotUpError:
            return {}
        if self.env.get(KAFKA_BOOTSTRAP) != stack[KAFKA_BOOTSTRAP]:
            return {}
        return identity_env(self.name, layout.kafka_home)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                return response.status == 200 and json.load(response).get("ready") is True
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise StackError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.ready():
                return
            time.sleep(0.2)
        raise StackError(f"{self.name} not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


class ServiceGroup:
    """Several services started together and stopped together, in reverse order."""

    def __init__(self, services: list[ServiceProcess]) -> None:
        self.services = {s.name: s for s in services}

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]

    def __enter__(self) -> ServiceGroup:
        try:
            for service in self.services.values():
                service.start()
            for service in self.services.values():
                service.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
