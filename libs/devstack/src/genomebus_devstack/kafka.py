"""Apache Kafka as one local KRaft node (broker + controller), run from Maven Central jars.

Why jars from Maven and not the release tarball: the machines this project runs on reach package
registries only. ``kafka-pom.xml`` names the broker artifact and the log4j binding the tarball
would have shipped; maven-dependency-plugin copies the runtime classpath into the tools cache.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import re
import shutil
import subprocess
import time
import uuid
from importlib import resources
from pathlib import Path

from . import pins
from .paths import Layout
from .procs import StackError, require_binary, run_logged, spawn

HOST = "127.0.0.1"
COMPLETE_MARKER = ".complete"
JVM_OPTS: tuple[str, ...] = ("-Xms256m", "-Xmx768m", "-XX:+UseG1GC")
_CLUSTER_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{21}$")


# --- install ----------------------------------------------------------------------------------------
def java_major(java: str) -> int:
    """Major version of ``java`` (``java -version`` prints e.g. ``openjdk version "17.0.15"``)."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, errors="replace",
                         check=False)
    return parse_java_major(out.stderr + out.stdout)


def parse_java_major(text: str) -> int:
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not match:
        raise StackError(f"cannot read the Java version from: {text.strip()[:200]!r}")
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_x".
    return int(match.group(2) or 0) if major == 1 else major


def check_java() -> str:
    java = require_binary("java", f"Kafka needs a JRE >= {pins.JAVA_MIN_MAJOR}: "
                                  "`apt-get install -y openjdk-17-jre-headless`.")
    major = java_major(java)
    if major < pins.JAVA_MIN_MAJOR:
        raise StackError(f"{java} is Java {major}; Kafka {pins.KAFKA_VERSION} needs Java "
                         f">= {pins.JAVA_MIN_MAJOR} (`apt-get install -y openjdk-17-jre-headless`).")
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
    mvn = require_binary("mvn", "Resolving Kafka from Maven Central needs Maven: "
                                "`apt-get install -y maven`.")
    staging = lib.with_name(f"lib.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    started = time.monotonic()
    with resources.as_file(resources.files(__package__) / "kafka-pom.xml") as pom:
        run_logged(
            [mvn, "-B", "-q", "-f", str(pom),
             f"-Dkafka.version={pins.KAFKA_VERSION}", f"-Dlog4j.version={pins.LOG4J_VERSION}",
             f"{pins.MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
            log=layout.log("install"), what="resolving Kafka jars with Maven", timeout=1800,
        )
    jars = sorted(staging.glob("*.jar"))
    if not any(j.name == f"kafka_2.13-{pins.KAFKA_VERSION}.jar" for j in jars):
        raise StackError(f"Maven finished but {staging} has no kafka_2.13-{pins.KAFKA_VERSION}.jar")
    (staging / COMPLETE_MARKER).write_text(f"{len(jars)} jars\n")
    shutil.rmtree(lib, ignore_errors=True)
    staging.replace(lib)
    return f"resolved {len(jars)} jars from Maven Central in {time.monotonic() - started:.1f}s"


# --- configuration ----------------------------------------------------------------------------------
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


def render_properties(*, port: int, controller_port: int, data_dir: Path, host: str = HOST) -> str:
    """server.properties for a single combined broker+controller.

    Replication factors are 1 because there is one node (the defaults of 3 make the internal
    topics fail to create). ``controller.quorum.bootstrap.servers`` (not static voters) matches
    ``StorageTool format --standalone``.
    """
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.quorum.bootstrap.servers": f"{host}:{controller_port}",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "auto.create.topics.enable": "true",
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


# --- run --------------------------------------------------------------------------------------------
def _classpath(layout: Layout) -> str:
    return f"{layout.kafka_lib}/*"


def prepare(layout: Layout, *, port: int, controller_port: int) -> None:
    """Write the config files and format the storage once (formatting an existing dir is skipped)."""
    home = layout.kafka_home
    home.mkdir(parents=True, exist_ok=True)
    layout.kafka_data.mkdir(parents=True, exist_ok=True)
    (home / "server.properties").write_text(
        render_properties(port=port, controller_port=controller_port, data_dir=layout.kafka_data))
    (home / "log4j2.properties").write_text(render_log4j2(layout.log("kafka")))
    if (layout.kafka_data / "meta.properties").is_file():
        return
    id_file = home / "cluster.id"
    cluster_id = id_file.read_text().strip() if id_file.is_file() else ""
    if not is_valid_cluster_id(cluster_id):
        cluster_id = new_cluster_id()
        id_file.write_text(cluster_id + "\n")
    run_logged(
        ["java", "-cp", _classpath(layout), "kafka.tools.StorageTool", "format", "--standalone",
         "--cluster-id", cluster_id, "--config", str(home / "server.properties"),
         "--ignore-formatted"],
        log=layout.log("kafka"), what="formatting Kafka storage", timeout=120,
    )


def start(layout: Layout, *, port: int, controller_port: int) -> subprocess.Popen[bytes]:
    prepare(layout, port=port, controller_port=controller_port)
    argv = [
        "java", *JVM_OPTS,
        f"-Dlog4j2.configurationFile={layout.kafka_home / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={layout.logs}",
        "-cp", _classpath(layout),
        "kafka.Kafka", str(layout.kafka_home / "server.properties"),
    ]
    return spawn(argv, log=layout.log("kafka"), cwd=layout.kafka_home)


async def _describe(bootstrap: str, timeout: float) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap,
                                 request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(client.start(), timeout)
        cluster = await asyncio.wait_for(client.describe_cluster(), timeout)
    finally:
        # Closing a half-started client may fail; that says nothing about the broker.
        with contextlib.suppress(Exception):
            await client.close()
    return [f"{b['host']}:{b['port']}" for b in cluster.get("brokers", [])]


def probe(bootstrap: str, timeout: float = 3.0) -> list[str] | None:
    """Brokers listed by a metadata request, or None if Kafka does not answer one.

    An open port is not enough: the socket accepts connections before the broker has
    registered with the controller, and clients then fail with obscure errors.
    """
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        brokers = asyncio.run(_describe(bootstrap, timeout))
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return None
    return brokers or None
