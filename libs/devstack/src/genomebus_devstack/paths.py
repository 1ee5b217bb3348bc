"""Where the stack keeps its state and where installed tools are cached.

Two roots, on purpose:
- the *state dir* (default ``<repo>/.stack``) is per checkout: data, logs, pid files, ports;
  deleting it resets the stack without reinstalling anything;
- the *tools dir* (default ``~/.cache/genomebus``) is shared by all checkouts, because the Kafka
  jars and the MinIO build are expensive to produce and identical everywhere.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import pins

STATE_DIR_ENV = "GENOMEBUS_STACK_DIR"
TOOLS_DIR_ENV = "GENOMEBUS_TOOLS_DIR"
COMPONENTS: tuple[str, ...] = ("kafka", "minio", "postgres", "tools")


def _is_workspace_root(directory: Path) -> bool:
    """True if ``directory/pyproject.toml`` declares a uv workspace (the monorepo root)."""
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return "workspace" in data.get("tool", {}).get("uv", {})


def repo_root(start: Path | None = None) -> Path:
    """Walk up from ``start`` (default: cwd) to the uv workspace root; fall back to ``start``.

    Running ``genomebus`` from any subfolder of the checkout must find the same state dir.
    """
    start = (start or Path.cwd()).resolve()
    for directory in (start, *start.parents):
        if _is_workspace_root(directory):
            return directory
    return start


def state_dir(start: Path | None = None) -> Path:
    """The state dir: ``$GENOMEBUS_STACK_DIR`` or ``<repo root>/.stack``."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return repo_root(start) / ".stack"


def tools_dir() -> Path:
    """The shared tools cache: ``$GENOMEBUS_TOOLS_DIR`` or ``~/.cache/genomebus``."""
    override = os.environ.get(TOOLS_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return Path.home() / ".cache" / "genomebus"


@dataclass(frozen=True)
class Layout:
    """All paths the stack uses, derived from the two roots so nothing else hard-codes them."""

    state: Path
    tools: Path

    @classmethod
    def discover(cls, state: Path | None = None) -> Layout:
        return cls(state=(state or state_dir()).resolve(), tools=tools_dir())

    # -- state dir --------------------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.state / "logs"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    @property
    def run(self) -> Path:
        return self.state / "run"

    def pidfile(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    @property
    def ports_file(self) -> Path:
        return self.state / "ports.json"

    @property
    def env_file(self) -> Path:
        return self.state / "env"

    @property
    def lock_file(self) -> Path:
        return self.state / ".lock"

    @property
    def kafka_home(self) -> Path:
        return self.state / "kafka"

    @property
    def kafka_data(self) -> Path:
        return self.kafka_home / "data"

    @property
    def minio_home(self) -> Path:
        return self.state / "minio"

    @property
    def minio_data(self) -> Path:
        return self.minio_home / "data"

    @property
    def postgres_home(self) -> Path:
        """Preferred cluster home, owned by the ``postgres`` user when run as root (initdb
        refuses root). See ``postgres.home`` for when it has to live elsewhere."""
        return self.state / "postgres"

    @property
    def postgres_roles_file(self) -> Path:
        """Passwords of the services' database roles (``dbroles``), generated at the first up."""
        return self.state / "postgres-roles.json"

    # -- tools cache ------------------------------------------------------------------------
    @property
    def kafka_lib(self) -> Path:
        return self.tools / "kafka" / f"{pins.KAFKA_VERSION}-log4j{pins.LOG4J_VERSION}" / "lib"

    @property
    def minio_root(self) -> Path:
        return self.tools / "minio" / pins.MINIO_VERSION

    @property
    def minio_bin(self) -> Path:
        return self.minio_root / "bin" / "minio"

    @property
    def kustomize_root(self) -> Path:
        return self.tools / "kustomize" / pins.KUSTOMIZE_VERSION

    @property
    def kustomize_bin(self) -> Path:
        return self.kustomize_root / "bin" / "kustomize"

    @property
    def bwa_root(self) -> Path:
        """The patched bwa build (``bwabuild``), keyed by Debian's version and our patch level."""
        return self.tools / "bwa" / pins.BWA_BUILD

    @property
    def bwa_bin_dir(self) -> Path:
        return self.bwa_root / "bin"

    @property
    def bwa_bin(self) -> Path:
        return self.bwa_bin_dir / "bwa"

    @property
    def go_modcache(self) -> Path:
        return self.tools / "go" / "mod"

    @property
    def go_buildcache(self) -> Path:
        return self.tools / "go" / "build"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically into a file only its owner can read: the stack's secrets
    (credentials, keys, the env file). The temporary file is created 0600, so the secret is
    never readable by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o600)  # an older tmp left behind keeps its mode through O_TRUNC
    tmp.replace(path)
