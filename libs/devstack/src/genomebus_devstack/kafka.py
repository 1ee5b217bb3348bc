"""Apache Kafka as one local KRaft node (broker + controller), run from Maven Central jars.

Why jars from Maven and not the release tarball: the machines this project runs on reach package
registries only. ``kafka-pom.xml`` names the broker artifact and the log4j binding the tarball
would have shipped; maven-dependency-plugin copies the runtime classpath into the tools cache.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import time
import uuid
from importlib import resources
from pathlib import Path

from . import kafka_users, pins
from .paths import Layout
from .procs import StackError, require_binary, run_logged, spawn

HOST = "127.0.0.1"
COMPLETE_MARKER = ".complete"
JVM_OPTS: tuple[str, ...] = ("-Xms256m", "-Xmx768m", "-XX:+UseG1GC")
_CLUSTER_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{21}$")


# --- install --------------------------------------------------------------------------------------
def java_major(java: str) -> int:
    """Major version of ``java`` (``java -version`` prints e.g. ``openjdk version "17.0.15"``)."""
    out = subprocess.run(
        [java, "-version"], capture_output=True, text=True, errors="replace", check=False
    )
    return parse_java_major(out.stderr + out.stdout)


def parse_java_major(text: str) -> int:
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not match:
        raise StackError(f"cannot read the Java version from: {text.strip()[:200]!r}")
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_x".
    return int(match.group(2) or 0) if major == 1 else major


def check_java() -> str:
    java = require_binary(
        "java",
        f"Kafka needs a JRE >= {pins.JAVA_MIN_MAJOR}: "
        "`apt-get install -y openjdk-17-jre-headless`.",
    )
    major = java_major(java)
    if major < pins.JAVA_MIN_MAJOR:
        raise StackError(
            f"{java} is Java {major}; Kafka {pins.KAFKA_VERSION} needs Java "
            f">= {pins.JAVA_MIN_MAJOR} (`apt-get install -y openjdk-17-jre-headless`)."
        )
    return java


def installed_jars(lib: Path) -> list[Path]:
    """The cached classpath, or [] unless a previous install finished (marker written last)."""
    if not (lib / COMPLETE_MARKER).is_file():
        return []
    return sorted(lib.glob("*.jar"))


def install(layout: Layout) -> str:
    """Resolve Kafka's runtime jars into the tools cache (no-op when cached). Returns a summary."""
    check_java()
    lib = layout.kafka_lib
    jars = installed_jars(lib)
    if jars:
        return f"cached: {len(jars)} jars in {lib}"
    mvn = require_binary(
        "mvn", "Resolving Kafka from Maven Central needs Maven: `apt-get install -y maven`."
    )
    staging = lib.with_name(f"lib.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    started = time.monotonic()
    with resources.as_file(resources.files(__package__) / "kafka-pom.xml") as pom:
        run_logged(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(pom),
                f"-Dkafka.version={pins.KAFKA_VERSION}",
                f"-Dlog4j.version={pins.LOG4J_VERSION}",
                f"{pins.MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            log=layout.log("install"),
            what="resolving Kafka jars with Maven",
            timeout=1800,
        )
    jars = sorted(staging.glob("*.jar"))
    if not any(j.name == f"kafka_2.13-{pins.KAFKA_VERSION}.jar" for j in jars):
        raise StackError(f"Maven finished but {staging} has no kafka_2.13-{pins.KAFKA_VERSION}.jar")
    (staging / COMPLETE_MARKER).write_text(f"{len(jars)} jars\n")
    shutil.rmtree(lib, ignore_errors=True)
    staging.replace(lib)
    return f"resolved {len(jars)} jars from Maven Central in {time.monotonic() - started:.1f}s"


# --- configuration --------------------------------------------------------------------------------
def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes as 22 base64url chars, never starting with '-'.

    Kafka's own ``Uuid.randomUuid`` rejects ids starting with '-' because they read as a flag.
    """
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if is_valid_cluster_id(candidate):
            return candidate


def is_valid_cluster_id(value: str) -> bool:
    return bool(_CLUSTER_ID_RE.match(value))


def render_properties(
    *, port: int, controller_port: int, data_dir: Path, admin_password: str, host: str = HOST
) -> str:
    """server.properties for a single combined broker+controller, with identities and ACLs.

    Replication factors are 1 because there is one node (the defaults of 3 make the internal
    topics fail to create). ``controller.quorum.bootstrap.servers`` (not static voters) matches
    ``StorageTool format --standalone``.

    Security, as in production (Strimzi): clients authenticate with SASL SCRAM-SHA-512 on the
    ``CLIENT`` listener (no TLS: loopback only), and KRaft's StandardAuthorizer denies whatever
    no ACL allows; ``admin`` is the one super user. The controller listener authenticates too
    (SASL PLAIN, its one user in this file): left PLAINTEXT, the broker's own requests to the
    controller would come from ``User:ANONYMOUS``, which would then have to be a super user,
    and any local process reaching the port would be one. The file holds the administrator's
    password, so it is written readable by the owner only.

    The client listener also takes SASL PLAIN, for the administrator only (no other user is in
    its JAAS list): Debian's kcat links librdkafka 2.0.2, whose SCRAM repeats the client nonce
    in its final message, which Kafka 4 refuses (fixed in librdkafka 2.6.1), so without PLAIN
    no kcat could look at the stack. The services and tools all use SCRAM.
    """
    admin_login = f'username="admin" password="{admin_password}"'
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "listeners": f"CLIENT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"CLIENT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "CLIENT",
        "listener.security.protocol.map": "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.client.scram-sha-512.sasl.jaas.config": (
            f"org.apache.kafka.common.security.scram.ScramLoginModule required {admin_login};"
        ),
        # PLAIN knows the administrator alone: for Debian's kcat (see the docstring).
        "listener.name.client.plain.sasl.jaas.config": (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_admin="{admin_password}";'
        ),
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'{admin_login} user_admin="{admin_password}";'
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin",
        "allow.everyone.if.no.acl.found": "false",
        "controller.quorum.bootstrap.servers": f"{host}:{controller_port}",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        # As on Kubernetes: topics exist because `up` made them (or a test did, as the
        # administrator), never because a client mistyped a name.
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    header = "# Written by `genomebus stack up` at every start; edit genomebus_devstack/kafka.py.\n"
    return header + "".join(f"{key}={value}\n" for key, value in props.items())


def render_log4j2(log_file: Path) -> str:
    """log4j2 config sending everything to the component log (Kafka's own config targets stdout
    plus several files under kafka.logs.dir; one file is easier to tail)."""
    return (
        "status = warn\n"
        # Keep logging while Kafka's own shutdown hook runs, so `down` leaves a complete log.
        "shutdownHook = disable\n"
        "appender.file.type = File\n"
        "appender.file.name = FILE\n"
        f"appender.file.fileName = {log_file}\n"
        "appender.file.append = true\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.file.ref = FILE\n"
        # The per-request and state-change chatter is useless for a dev stack.
        "logger.request.name = kafka.request.logger\n"
        "logger.request.level = WARN\n"
        "logger.state.name = state.change.logger\n"
        "logger.state.level = WARN\n"
    )


# --- run ------------------------------------------------------------------------------------------
def _classpath(layout: Layout) -> str:
    return f"{layout.kafka_lib}/*"


def _formatted_users_file(layout: Layout) -> Path:
    """Which users the storage was formatted with (SCRAM credentials in the metadata log)."""
    return layout.kafka_home / "formatted-users.json"


def formatted_users(layout: Layout) -> list[str] | None:
    """Users whose credentials the metadata log holds; None when the storage is unformatted, or
    was formatted before the stack had users (it then has none, not even the administrator)."""
    if not (layout.kafka_data / "meta.properties").is_file():
        return None
    marker = _formatted_users_file(layout)
    return list(json.loads(marker.read_text())) if marker.is_file() else None


def _write_formatted_users(layout: Layout, users: list[str]) -> None:
    _formatted_users_file(layout).write_text(json.dumps(sorted(users)) + "\n")


def _write_private(path: Path, text: str) -> None:
    """Write a file that holds a password: owner-only from the first byte."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def kcat_config(layout: Layout) -> Path:
    """``kcat -F <this> -b $GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS ...`` looks at the stack."""
    return layout.kafka_home / "kcat.conf"


def write_kcat_config(layout: Layout) -> Path:
    password = kafka_users.load(layout.kafka_home)[kafka_users.ADMIN]
    _write_private(kcat_config(layout), render_kcat_config(password))
    return kcat_config(layout)


def render_kcat_config(admin_password: str) -> str:
    """librdkafka settings for Debian's kcat: the administrator over PLAIN, since its SCRAM
    does not work with Kafka 4 (see ``render_properties``)."""
    return (
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanisms=PLAIN\n"
        f"sasl.username={kafka_users.ADMIN}\nsasl.password={admin_password}\n"
    )


def prepare(layout: Layout, *, port: int, controller_port: int) -> list[str]:
    """Write the config files and format the storage once, with every user's SCRAM credentials.

    Returns notes for the person running ``up``. Storage with no administrator whose password
    we know (formatted by an earlier version of the stack, without users, or the users file
    deleted) cannot be given one afterwards, since adding users takes one: it is formatted again,
    dropping the local topics and their messages. Users new to the table are added after the
    start instead (``add_missing_users``), keeping the data.
    """
    notes: list[str] = []
    home = layout.kafka_home
    home.mkdir(parents=True, exist_ok=True)
    layout.kafka_data.mkdir(parents=True, exist_ok=True)
    known = kafka_users.load(home)
    users = kafka_users.ensure(home, kafka_users.bus_users())
    _write_private(
        home / "server.properties",
        render_properties(
            port=port,
            controller_port=controller_port,
            data_dir=layout.kafka_data,
            admin_password=users[kafka_users.ADMIN],
        ),
    )
    (home / "log4j2.properties").write_text(render_log4j2(layout.log("kafka")))
    if (layout.kafka_data / "meta.properties").is_file():
        held = formatted_users(layout)
        if held is not None and kafka_users.ADMIN in known:
            # A user whose password was lost from the users file got a new one: it is set
            # again after the start, like a new user's.
            _write_formatted_users(layout, [name for name in held if name in known])
            return notes
        shutil.rmtree(layout.kafka_data)
        layout.kafka_data.mkdir(parents=True)
        why = (
            "was formatted without users (before SASL/ACLs)"
            if held is None
            else f"has an administrator whose password {kafka_users.users_file(home)} lost"
        )
        notes.append(f"storage {why}: formatted it again; local topics and messages are gone")
    id_file = home / "cluster.id"
    cluster_id = id_file.read_text().strip() if id_file.is_file() else ""
    if not is_valid_cluster_id(cluster_id):
        cluster_id = new_cluster_id()
        id_file.write_text(cluster_id + "\n")
    scram = [
        arg
        for name, password in users.items()
        for arg in ("--add-scram", kafka_users.format_argument(name, password))
    ]
    run_logged(
        [
            "java",
            "-cp",
            _classpath(layout),
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "--cluster-id",
            cluster_id,
            "--config",
            str(home / "server.properties"),
            "--ignore-formatted",
            *scram,
        ],
        log=layout.log("kafka"),
        what="formatting Kafka storage",
        timeout=120,
    )
    _write_formatted_users(layout, list(users))
    return notes


def start(
    layout: Layout, *, port: int, controller_port: int
) -> tuple[subprocess.Popen[bytes], list[str]]:
    """Spawn the broker; returns it and ``prepare``'s notes."""
    notes = prepare(layout, port=port, controller_port=controller_port)
    argv = [
        "java",
        *JVM_OPTS,
        f"-Dlog4j2.configurationFile={layout.kafka_home / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={layout.logs}",
        "-cp",
        _classpath(layout),
        "kafka.Kafka",
        str(layout.kafka_home / "server.properties"),
    ]
    return spawn(argv, log=layout.log("kafka"), cwd=layout.kafka_home), notes


def admin_options(layout: Layout) -> dict[str, str]:
    """aiokafka keyword arguments that authenticate as the stack's administrator."""
    password = kafka_users.load(layout.kafka_home).get(kafka_users.ADMIN)
    if password is None:
        raise StackError(
            f"no Kafka administrator in {kafka_users.users_file(layout.kafka_home)}; "
            "run `genomebus stack up`"
        )
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": kafka_users.MECHANISM,
        "sasl_plain_username": kafka_users.ADMIN,
        "sasl_plain_password": password,
    }


def add_missing_users(layout: Layout, bootstrap: str) -> list[str]:
    """Give users new to the table (a bus client added since the storage was formatted) their
    SCRAM credentials, through Kafka's own ConfigCommand as the administrator (aiokafka has no
    AlterUserScramCredentials). Passwords go through files readable by the owner only, never
    the command line. Returns the users added."""
    held = formatted_users(layout) or []
    users = kafka_users.load(layout.kafka_home)
    missing = [name for name in users if name not in held]
    if not missing:
        return []
    home = layout.kafka_home
    admin = users[kafka_users.ADMIN]
    _write_private(
        home / "admin-client.properties",
        (
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="admin" password="{admin}";\n'
        ),
    )
    try:
        for name in missing:
            _write_private(
                home / "new-user.properties",
                # a properties file: no brackets around the value, unlike the CLI
                f"{kafka_users.MECHANISM}=iterations={kafka_users.ITERATIONS},"
                f"password={users[name]}\n",
            )
            run_logged(
                [
                    "java",
                    "-cp",
                    _classpath(layout),
                    "kafka.admin.ConfigCommand",
                    "--bootstrap-server",
                    bootstrap,
                    "--command-config",
                    str(home / "admin-client.properties"),
                    "--alter",
                    "--entity-type",
                    "users",
                    "--entity-name",
                    name,
                    "--add-config-file",
                    str(home / "new-user.properties"),
                ],
                log=layout.log("kafka"),
                what=f"adding Kafka user {name}",
                timeout=120,
            )
            held.append(name)
            _write_formatted_users(layout, held)
    finally:
        (home / "new-user.properties").unlink(missing_ok=True)
    return missing


async def _describe(
    bootstrap: str,
    timeout: float,  # noqa: ASYNC109 - bounds each step and is the client's request timeout
    options: dict[str, str],
) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]  # aiokafka ships no py.typed

    client = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **options
    )
    try:
        await asyncio.wait_for(client.start(), timeout)
        cluster = await asyncio.wait_for(client.describe_cluster(), timeout)
    finally:
        # Closing a half-started client may fail; that says nothing about the broker.
        with contextlib.suppress(Exception):
            await client.close()
    return [f"{b['host']}:{b['port']}" for b in cluster.get("brokers", [])]


def probe(bootstrap: str, options: dict[str, str], timeout: float = 3.0) -> list[str] | None:
    """Brokers listed by a metadata request (authenticated with ``options``), or None if Kafka
    does not answer one.

    An open port is not enough: the socket accepts connections before the broker has
    registered with the controller, and clients then fail with obscure errors.
    """
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        brokers = asyncio.run(_describe(bootstrap, timeout, options))
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return None
    return brokers or None
