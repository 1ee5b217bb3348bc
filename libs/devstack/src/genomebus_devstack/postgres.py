"""A private PostgreSQL cluster in the state dir, run with Debian's server binaries.

Why a private cluster: the system cluster (port 5432, /var/lib/postgresql) belongs to the
machine, not to this checkout; we never touch it. Why the ``postgres`` user: initdb and the
server refuse to run as root, so when the CLI runs as root every server-side command goes through
``runuser -u postgres`` and the cluster's directories are owned by that user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from . import pins
from .paths import Layout
from .procs import PidRecord, StackError, failure, run_logged

HOST = "127.0.0.1"
SERVER_USER = "postgres"
# Unix socket paths are limited to 107 bytes (sun_path) including ".s.PGSQL.<port>".
_MAX_SOCKET_DIR = 90


def bin_path(tool: str) -> str:
    return str(Path(pins.POSTGRES_BIN_DIR) / tool)


def installed() -> bool:
    return all(
        Path(bin_path(t)).is_file() for t in ("initdb", "pg_ctl", "postgres", "psql", "pg_isready")
    )


def _as_server_user() -> list[str]:
    """Command prefix that runs the server tools as a non-root user."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        raise StackError(
            "running as root needs `runuser` (util-linux) to start PostgreSQL as "
            f"the {SERVER_USER} user"
        )
    return ["runuser", "-u", SERVER_USER, "--"]


def _server_owner() -> tuple[int, int] | None:
    """(uid, gid) that must own the cluster dirs, or None when we run as that user already."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise StackError(
            f"user {SERVER_USER!r} does not exist; it comes with "
            f"`apt-get install -y {pins.POSTGRES_PACKAGE}`"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _reachable_by(path: Path, uid: int, gid: int) -> bool:
    """Can ``uid`` traverse every existing ancestor of ``path``? (stat checks, no subprocess)"""
    for directory in (path, *path.parents):
        try:
            st = directory.stat()
        except FileNotFoundError:
            continue  # created later by us, world-traversable (0755)
        if st.st_uid == uid:
            continue
        if not (st.st_mode & 0o001 or (st.st_gid == gid and st.st_mode & 0o010)):
            return False
    return True


def home(layout: Layout) -> Path:
    """Where the cluster lives: ``<state>/postgres``, unless the server user cannot reach it.

    As root, the state dir may sit under a 0700 directory (e.g. a checkout in /root); the
    ``postgres`` user cannot enter it, so the cluster moves to a /var/tmp directory named after
    the state dir. Everything else of the stack stays in the state dir.
    """
    owner = _server_owner()
    if owner is None or _reachable_by(layout.state, *owner):
        return layout.postgres_home
    digest = hashlib.sha1(str(layout.state).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"genomebus-postgres-{digest}"


def data_dir(layout: Layout) -> Path:
    return home(layout) / "data"


def socket_dir(layout: Layout) -> Path:
    """``<home>/run``, or a short /tmp path when that is too long for a Unix socket."""
    preferred = home(layout) / "run"
    if len(str(preferred)) <= _MAX_SOCKET_DIR:
        return preferred
    digest = hashlib.sha1(str(layout.state).encode()).hexdigest()[:12]
    return Path("/tmp") / f"genomebus-pg-{digest}"


def _owned_dir(path: Path, owner: tuple[int, int] | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(path, *owner)
    path.chmod(0o700)


def prepare(layout: Layout) -> None:
    """Create the cluster (initdb) on first use, in directories the server user owns."""
    owner = _server_owner()
    where = home(layout)
    _owned_dir(where, owner)
    _owned_dir(socket_dir(layout), owner)
    if owner is not None:
        check = subprocess.run(
            [*_as_server_user(), "test", "-w", str(where)], capture_output=True, check=False
        )
        if check.returncode != 0:
            raise StackError(
                f"user {SERVER_USER} cannot write {where}; set GENOMEBUS_STACK_DIR "
                f"to a directory it can reach, e.g. /var/tmp/genomebus-stack"
            )
    if (where / "data" / "PG_VERSION").is_file():
        return
    run_logged(
        [
            *_as_server_user(),
            bin_path("initdb"),
            "-D",
            str(where / "data"),
            "-A",
            "trust",
            "-U",
            SERVER_USER,
            "--no-locale",
            "-E",
            "UTF8",
        ],
        log=layout.log("postgres"),
        what="initdb",
        timeout=120,
    )


#: Server settings beyond the defaults, for the registry's bulk loads: 128 MB of shared buffers
#: and a checkpoint every 1 GB of WAL (the defaults) make index maintenance and checkpoints the
#: cost of a 10M-row load. Modest enough for a laptop.
SERVER_SETTINGS: dict[str, str] = {
    "shared_buffers": "512MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
}


def start(layout: Layout, *, port: int, timeout: int = 60) -> PidRecord:
    """Start the server with pg_ctl (it daemonizes and waits for readiness), return its record.

    No ``pg_ctl -l``: the server inherits pg_ctl's stdout, which is our log file opened by us,
    so the log can live in the state dir even where the server user could not open it.
    """
    prepare(layout)
    settings = " ".join(f"-c {name}={value}" for name, value in SERVER_SETTINGS.items())
    options = f"-p {port} -k {socket_dir(layout)} -c listen_addresses={HOST} {settings}"
    run_logged(
        [
            *_as_server_user(),
            bin_path("pg_ctl"),
            "-D",
            str(data_dir(layout)),
            "-w",
            "-t",
            str(timeout),
            "-o",
            options,
            "start",
        ],
        log=layout.log("postgres"),
        what="pg_ctl start",
        timeout=timeout + 15,
    )
    pid = postmaster_pid(layout)
    if pid is None:
        raise failure("PostgreSQL started but wrote no postmaster.pid", layout.log("postgres"))
    ensure_database(port)
    return PidRecord.capture(pid)


#: Client authentication of the stack's cluster. initdb's ``-A trust`` let any role in without a
#: password; now only the superuser is trusted (on loopback: the stack's tools and the tests use
#: it), and the services' roles must give their passwords, as they must in production.
HBA_CONF = f"""# Written by `genomebus stack up` (libs/devstack/src/genomebus_devstack/postgres.py).
local   all   all                            trust
host    all   {SERVER_USER}    127.0.0.1/32  trust
host    all   {SERVER_USER}    ::1/128       trust
host    all   all         127.0.0.1/32  scram-sha-256
host    all   all         ::1/128       scram-sha-256
"""


def configure_auth(layout: Layout, port: int) -> bool:
    """Install :data:`HBA_CONF` and reload the server if it differed; True if it changed."""
    path = data_dir(layout) / "pg_hba.conf"
    if path.read_text() == HBA_CONF:
        return False
    tmp = path.with_name("pg_hba.conf.genomebus")
    tmp.write_text(HBA_CONF)
    owner = _server_owner()
    if owner is not None:
        os.chown(tmp, *owner)
    tmp.chmod(0o600)
    tmp.replace(path)
    reloaded = _psql(port, "SELECT pg_reload_conf()")
    errors = _psql(port, "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")
    if reloaded.returncode != 0 or errors.stdout.strip() != "0":
        raise StackError(
            f"PostgreSQL did not take {path}: {reloaded.stderr.strip()} "
            f"{errors.stdout.strip()} {errors.stderr.strip()}"
        )
    return True


def postmaster_pid(layout: Layout) -> int | None:
    try:
        return int((data_dir(layout) / "postmaster.pid").read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None


def stop(layout: Layout, timeout: int = 30) -> None:
    """``pg_ctl stop -m fast``: a clean shutdown of *our* data dir only."""
    subprocess.run(
        [
            *_as_server_user(),
            bin_path("pg_ctl"),
            "-D",
            str(data_dir(layout)),
            "-m",
            "fast",
            "-w",
            "-t",
            str(timeout),
            "stop",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )


def _psql(port: int, sql: str, database: str = "postgres") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            bin_path("psql"),
            "-X",
            "-h",
            HOST,
            "-p",
            str(port),
            "-U",
            SERVER_USER,
            "-d",
            database,
            "-tA",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, PGCONNECT_TIMEOUT="5"),
    )


def ensure_database(port: int, database: str = pins.POSTGRES_DATABASE) -> None:
    """Create the application database if missing (the pipeline's services expect it)."""
    exists = _psql(port, f"SELECT 1 FROM pg_database WHERE datname = '{database}'")
    if exists.returncode != 0:
        raise StackError(f"cannot query PostgreSQL on {HOST}:{port}: {exists.stderr.strip()}")
    if exists.stdout.strip() == "1":
        return
    created = _psql(port, f'CREATE DATABASE "{database}"')
    if created.returncode != 0:
        raise StackError(f"CREATE DATABASE {database} failed: {created.stderr.strip()}")


def probe(port: int, database: str = pins.POSTGRES_DATABASE) -> bool:
    """True if the server accepts a query in the application database."""
    if not installed():
        return False
    result = _psql(port, "SELECT 1", database=database)
    return result.returncode == 0 and result.stdout.strip() == "1"
