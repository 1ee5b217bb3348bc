"""The stack as a whole: install, up, down and status over the three servers and the tools.

Why this layer exists apart from the CLI: the component modules know how to run one thing; this
module owns the cross-cutting rules (one lock per state dir, ports chosen before anything starts,
idempotent ``up``, ``down`` touching only our own processes, the env file written last so its
presence means "everything answered").
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from . import bwabuild, dbroles, envfile, identities, kafka, kustomize, minio, pins, postgres, tools
from .paths import Layout
from .ports import resolve_ports
from .procs import (
    PidRecord,
    StackError,
    failure,
    pid_alive,
    proc_cmdline,
    running_record,
    terminate,
    wait_gone,
    write_pidfile,
)

HOST = "127.0.0.1"
SERVERS: tuple[str, ...] = ("kafka", "minio", "postgres")
# Which persisted ports each server binds.
SERVER_PORTS: dict[str, tuple[str, ...]] = {
    "kafka": ("kafka", "kafka_controller"),
    "minio": ("minio", "minio_console"),
    "postgres": ("postgres",),
}
READY_TIMEOUT: dict[str, float] = {"kafka": 90.0, "minio": 60.0, "postgres": 60.0}
STOP_GRACE: dict[str, float] = {"kafka": 30.0, "minio": 15.0, "postgres": 30.0}

Echo = Callable[[str], None]


def default_echo(line: str) -> None:
    """Print a progress line; a closed stdout (``... | head``) must not abort a half-done
    up/down."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def line(
    phase: str, component: str, state: str, detail: str = "", seconds: float | None = None
) -> str:
    """One progress line; fixed columns so a run reads as a table."""
    timing = f" ({seconds:.1f}s)" if seconds is not None else ""
    return f"{phase:<8} {component:<9} {state:<15} {detail}{timing}".rstrip()


@contextmanager
def locked(layout: Layout, echo: Echo) -> Iterator[None]:
    """Serialise install/up/down on one state dir (two `up`s racing would start two brokers)."""
    layout.state.mkdir(parents=True, exist_ok=True)
    with open(layout.lock_file, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            echo(f"another genomebus stack command holds {layout.lock_file}; waiting")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --- install -------------------------------------------------------------------------------------
def install(layout: Layout, echo: Echo = default_echo) -> None:
    """Install every part (each is a fast no-op when already present)."""
    layout.state.mkdir(parents=True, exist_ok=True)
    steps: list[tuple[str, Callable[[], str]]] = [
        ("tools", lambda: tools.install(layout)),
        (
            "bwa",
            lambda: bwabuild.install(
                layout, echo=lambda msg: echo(line("install", "bwa", "in progress", msg))
            ),
        ),
        ("postgres", lambda: _install_postgres(layout)),
        ("kafka", lambda: kafka.install(layout)),
        (
            "minio",
            lambda: minio.install(
                layout, echo=lambda msg: echo(line("install", "minio", "in progress", msg))
            ),
        ),
        (
            "kustomize",
            lambda: kustomize.install(
                layout, echo=lambda msg: echo(line("install", "kustomize", "in progress", msg))
            ),
        ),
    ]
    for name, step in steps:
        started = time.monotonic()
        detail = step()
        echo(line("install", name, "ok", detail, time.monotonic() - started))


def _install_postgres(layout: Layout) -> str:
    if postgres.installed():
        return f"PostgreSQL {pins.POSTGRES_MAJOR} in {pins.POSTGRES_BIN_DIR}"
    tools.apt_install([pins.POSTGRES_PACKAGE], layout)
    if not postgres.installed():
        raise StackError(
            f"{pins.POSTGRES_PACKAGE} installed but {pins.POSTGRES_BIN_DIR} lacks "
            "initdb/pg_ctl/psql"
        )
    return f"installed {pins.POSTGRES_PACKAGE}"


# --- discovery -----------------------------------------------------------------------------------
def running(layout: Layout, component: str) -> PidRecord | None:
    """Our live process for ``component`` or None (stale pid files are removed)."""
    record = running_record(layout.pidfile(component))
    if record is None and component == "postgres":
        record = _adopt_postmaster(layout)
    return record


def _adopt_postmaster(layout: Layout) -> PidRecord | None:
    """A postmaster serving *our* data dir whose pid file we lost still belongs to us."""
    pid = postgres.postmaster_pid(layout)
    if pid is None or not pid_alive(pid):
        return None
    argv = proc_cmdline(pid) or []
    if str(postgres.data_dir(layout)) not in argv:
        return None
    record = PidRecord.capture(pid)
    write_pidfile(layout.pidfile("postgres"), record)
    return record


def endpoint(component: str, ports: dict[str, int]) -> str:
    return f"{HOST}:{ports[SERVER_PORTS[component][0]]}"


def probe(layout: Layout, component: str, ports: dict[str, int]) -> tuple[bool, str]:
    """Does the server answer a real request? Returns (healthy, detail)."""
    if component == "kafka":
        try:
            options = kafka.admin_options(layout)
        except StackError:
            return False, "no administrator password (run `genomebus stack up`)"
        brokers = kafka.probe(endpoint("kafka", ports), options)
        return (brokers is not None, f"brokers: {', '.join(brokers)}" if brokers else "")
    if component == "minio":
        return minio.probe(
            endpoint("minio", ports)
        ), f"console http://{HOST}:{ports['minio_console']}"
    if component == "postgres":
        return postgres.probe(ports["postgres"]), f"database {pins.POSTGRES_DATABASE}"
    raise ValueError(component)


# --- up ------------------------------------------------------------------------------------------
@dataclass
class _Starting:
    component: str
    started: float
    process: subprocess.Popen[bytes] | None = None
    record: PidRecord | None = None


def up(layout: Layout, echo: Echo = default_echo) -> dict[str, str]:
    """Install, then start whatever is not running, wait until all answer, write the env file."""
    overall = time.monotonic()
    with locked(layout, echo):
        install(layout, echo)
        alive = {c: running(layout, c) for c in SERVERS}
        keep = [p for c, rec in alive.items() if rec for p in SERVER_PORTS[c]]
        needed = [p for c, rec in alive.items() if not rec for p in SERVER_PORTS[c]]
        ports, notes = resolve_ports(layout.ports_file, needed=needed, keep=keep)
        for note in notes:
            echo(line("up", "ports", "changed", note))
        if not all(alive.values()):
            # Something (re)starts: the env file reappears only once everything answers. A
            # no-op `up` leaves it in place so concurrent readers never see it missing.
            layout.env_file.unlink(missing_ok=True)

        for component, record in alive.items():
            if record is not None:
                _wait_existing(layout, component, record, ports, echo)

        if alive["postgres"] is None:
            # Fail on permissions/initdb before spawning anything else.
            postgres.prepare(layout)
        # Start the slow JVM first, MinIO next, then PostgreSQL (pg_ctl blocks until ready).
        starting: list[_Starting] = []
        for component in ("kafka", "minio"):
            if alive[component] is None:
                starting.append(_spawn(layout, component, ports, echo))
        if alive["postgres"] is None:
            began = time.monotonic()
            where = postgres.home(layout)
            elsewhere = (
                f" (cluster in {where}: user postgres cannot reach the state dir)"
                if where != layout.postgres_home
                else ""
            )
            echo(line("up", "postgres", "starting", endpoint("postgres", ports) + elsewhere))
            record = postgres.start(layout, port=ports["postgres"])
            write_pidfile(layout.pidfile("postgres"), record)
            echo(
                line(
                    "up",
                    "postgres",
                    "healthy",
                    f"{endpoint('postgres', ports)} pid {record.pid}",
                    time.monotonic() - began,
                )
            )
        for item in sorted(starting, key=lambda s: s.component != "minio"):
            _wait_new(layout, item, ports, echo)

        began = time.monotonic()
        passwords = _database_roles(layout, ports["postgres"])
        echo(
            line(
                "up",
                "postgres",
                "roles ok",
                f"owner and runtime role of {', '.join(dbroles.DATABASE_SERVICES)}",
                time.monotonic() - began,
            )
        )
        _provision_kafka(layout, ports, echo)
        access, secret = minio.credentials(layout)
        identities.ensure_s3_identities(layout, endpoint("minio", ports), access, secret)
        admin = kafka.admin_options(layout)["sasl_plain_password"]
        values = envfile.build_env(
            host=HOST,
            kafka_port=ports["kafka"],
            kafka_admin_password=admin,
            minio_port=ports["minio"],
            access_key=access,
            secret_key=secret,
            postgres_port=ports["postgres"],
            database=pins.POSTGRES_DATABASE,
            role_passwords=passwords,
        )
        envfile.write_env(layout.env_file, values)
    echo(
        f"stack up in {time.monotonic() - overall:.1f}s; endpoints in {layout.env_file} "
        f"(`genomebus stack env` prints them as exports)"
    )
    return values


def _database_roles(layout: Layout, port: int) -> dict[str, dbroles.RolePasswords]:
    """Passwords required on loopback, then every database service's roles and database."""
    postgres.configure_auth(layout, port)
    passwords = dbroles.load_passwords(layout.postgres_roles_file)
    dbroles.provision(f"postgresql://{postgres.SERVER_USER}@{HOST}:{port}/postgres", passwords)
    return passwords


def _provision_kafka(layout: Layout, ports: dict[str, int], echo: Echo) -> None:
    """Users new to the table, every topic, and the ACLs: on every ``up``, since the table in
    ``genomebus_common.contracts.topics`` may have changed since the broker started (a no-op
    otherwise)."""
    import asyncio

    from . import kafka_access

    began = time.monotonic()
    bootstrap = endpoint("kafka", ports)
    added = kafka.add_missing_users(layout, bootstrap)
    if added:
        echo(line("up", "kafka", "users added", ", ".join(added), time.monotonic() - began))
    try:
        summary = asyncio.run(kafka_access.provision(bootstrap, kafka.admin_options(layout)))
    except StackError:
        raise
    except Exception as exc:
        raise failure(
            f"kafka: topics or ACLs could not be made: {type(exc).__name__}: {exc}",
            layout.log("kafka"),
        ) from exc
    kafka.write_kcat_config(layout)
    echo(line("up", "kafka", "access", summary, time.monotonic() - began))


def _spawn(layout: Layout, component: str, ports: dict[str, int], echo: Echo) -> _Starting:
    began = time.monotonic()
    echo(line("up", component, "starting", endpoint(component, ports)))
    if component == "kafka":
        process, notes = kafka.start(
            layout, port=ports["kafka"], controller_port=ports["kafka_controller"]
        )
        for note in notes:
            echo(line("up", "kafka", "note", note))
    else:
        process = minio.start(layout, port=ports["minio"], console_port=ports["minio_console"])
    try:
        record = PidRecord.capture(process.pid)
    except StackError:
        process.wait()
        raise failure(
            f"{component} exited at once (exit code {process.returncode})", layout.log(component)
        ) from None
    write_pidfile(layout.pidfile(component), record)
    return _Starting(component, began, process, record)


def _wait_new(layout: Layout, item: _Starting, ports: dict[str, int], echo: Echo) -> None:
    component, process, record = item.component, item.process, item.record
    assert process is not None and record is not None
    deadline = item.started + READY_TIMEOUT[component]
    while True:
        healthy, detail = probe(layout, component, ports)
        if healthy:
            echo(
                line(
                    "up",
                    component,
                    "healthy",
                    f"{endpoint(component, ports)} pid {record.pid}; {detail}",
                    time.monotonic() - item.started,
                )
            )
            return
        if process.poll() is not None:
            layout.pidfile(component).unlink(missing_ok=True)
            raise failure(
                f"{component} exited during startup (exit code {process.returncode})",
                layout.log(component),
            )
        if time.monotonic() > deadline:
            terminate(record, grace=STOP_GRACE[component])
            layout.pidfile(component).unlink(missing_ok=True)
            raise failure(
                f"{component} did not become ready within {READY_TIMEOUT[component]:.0f}s "
                f"(stopped it again)",
                layout.log(component),
            )
        time.sleep(0.3)


def _wait_existing(
    layout: Layout, component: str, record: PidRecord, ports: dict[str, int], echo: Echo
) -> None:
    """A process of ours is already there: fine if healthy, else give it time (it may be
    starting)."""
    began = time.monotonic()
    deadline = began + READY_TIMEOUT[component]
    while True:
        healthy, _ = probe(layout, component, ports)
        if healthy:
            echo(
                line(
                    "up",
                    component,
                    "already running",
                    f"{endpoint(component, ports)} pid {record.pid}",
                    time.monotonic() - began,
                )
            )
            return
        if not record.is_ours():
            raise failure(
                f"{component} (pid {record.pid}) died; run `genomebus stack up` again",
                layout.log(component),
            )
        if time.monotonic() > deadline:
            raise failure(
                f"{component} (pid {record.pid}) runs but does not answer; "
                f"try `genomebus stack down && genomebus stack up`",
                layout.log(component),
            )
        time.sleep(0.3)


# --- down ----------------------------------------------------------------------------------------
def down(layout: Layout, echo: Echo = default_echo) -> None:
    """Stop our servers (only processes whose pid file and command line still match)."""
    overall = time.monotonic()
    with locked(layout, echo):
        layout.env_file.unlink(missing_ok=True)
        for component in SERVERS:
            began = time.monotonic()
            record = running(layout, component)
            if record is None:
                echo(line("down", component, "not running"))
                continue
            if component == "postgres":
                postgres.stop(layout, timeout=int(STOP_GRACE["postgres"]))
                outcome = "stopped" if wait_gone(record.pid, 5) else terminate(record, grace=10)
            else:
                outcome = terminate(record, grace=STOP_GRACE[component])
            layout.pidfile(component).unlink(missing_ok=True)
            echo(line("down", component, outcome, f"pid {record.pid}", time.monotonic() - began))
    echo(f"stack down in {time.monotonic() - overall:.1f}s")


# --- status --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComponentStatus:
    component: str
    state: str  # healthy | stopped | unhealthy
    endpoint: str
    pid: int | None
    detail: str

    @property
    def healthy(self) -> bool:
        return self.state == "healthy"


def status(layout: Layout) -> list[ComponentStatus]:
    from .ports import load_ports

    ports = load_ports(layout.ports_file)
    rows: list[ComponentStatus] = []
    for component in SERVERS:
        record = running(layout, component)
        where = endpoint(component, ports) if SERVER_PORTS[component][0] in ports else "-"
        if record is None:
            rows.append(ComponentStatus(component, "stopped", where, None, ""))
            continue
        healthy, detail = probe(layout, component, ports)
        rows.append(
            ComponentStatus(
                component,
                "healthy" if healthy else "unhealthy",
                where,
                record.pid,
                detail if healthy else "process runs but does not answer",
            )
        )
    report = tools.health(layout)
    rows.append(
        ComponentStatus(
            "tools",
            "healthy" if report.ok else "unhealthy",
            "-",
            None,
            report.summary() if report.ok else "; ".join(report.problems),
        )
    )
    return rows


def format_status(rows: list[ComponentStatus]) -> str:
    out = []
    for row in rows:
        pid = f"pid {row.pid}" if row.pid else "-"
        out.append(
            f"{row.component:<9} {row.state:<10} {row.endpoint:<16} {pid:<11} {row.detail}".rstrip()
        )
    return "\n".join(out)
