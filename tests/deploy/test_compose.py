"""Static checks of docker-compose.yml and the shared service Dockerfile (deploy/docker/Dockerfile).

No Docker engine is needed: docker-compose.yml is validated against the official Compose
Specification schema (pinned, see compose_spec.py) and the deployment rules genomebus relies on are
asserted directly. Obtaining the schema may download one Go module through the module proxy; when
that is impossible the tests fail, they never skip.
"""

from __future__ import annotations

import copy
import glob
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from .compose_spec import (
    COMPOSE_GO_VERSION,
    Dockerfile,
    SchemaUnavailable,
    compose_validator,
    load_compose_schema,
    schema_errors,
)

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
POSTGRES_INIT_DIR = REPO / "deploy" / "compose" / "postgres-init"

# Every service reads these (pydantic-settings, prefix GENOMEBUS_).
SHARED_SETTINGS = (
    "GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS",
    "GENOMEBUS_SERVICE_NAME",
    "GENOMEBUS_LOG_LEVEL",
)
S3_SETTINGS = (
    "GENOMEBUS_S3_ENDPOINT",
    "GENOMEBUS_S3_ACCESS_KEY",
    "GENOMEBUS_S3_SECRET_KEY",
    "GENOMEBUS_S3_SECURE",
)
OBJECT_SERVICES = {"ingest", "alignment", "calling", "registry"}  # consent keeps no objects
DB_SERVICES = {"ingest", "consent", "registry"}
INFRASTRUCTURE = {"kafka", "minio", "minio-init", "postgres"}
REQUIRED_TOOLS = {
    "alignment": {"bwa", "minimap2", "samtools"},
    "calling": {"samtools", "bcftools", "tabix"},
}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------


def _service_dirs() -> dict[str, Path]:
    """Workspace services: services/<name>/pyproject.toml, i.e. packages genomebus-<name>."""
    found = {p.parent.name: p.parent for p in sorted((REPO / "services").glob("*/pyproject.toml"))}
    assert found, "no services/*/pyproject.toml found"
    return found


# The shared Dockerfile builds every service; these run only on Kubernetes (see deploy/k8s and
# test_k8s_compose.py), so compose has no service for them.
K8S_ONLY = {"heat"}
ALL_SERVICES = sorted(_service_dirs())
SERVICES = sorted(set(ALL_SERVICES) - K8S_ONLY)


@pytest.fixture(scope="session")
def compose() -> dict:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(doc, dict), "docker-compose.yml is not a mapping"
    return doc


@pytest.fixture(scope="session")
def schema_validator():
    try:
        return compose_validator(load_compose_schema())
    except (SchemaUnavailable, OSError, ValueError) as exc:
        return f"cannot obtain the pinned Compose Specification schema: {exc}"


def _require(schema_validator):
    """Called in the test body, so an unavailable schema is a test failure (never a skip)."""
    if isinstance(schema_validator, str):
        pytest.fail(schema_validator, pytrace=False)
    return schema_validator


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...] form
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def _resolve_defaults(value: str) -> str:
    """Substitute ${VAR:-default} with its default, as Compose does when VAR is unset."""
    return INTERPOLATION.sub(lambda m: m["arg"] if m["op"] in (":-", "-") else m.group(0), value)


def _depends_on(service: dict) -> dict[str, dict]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return deps


# --------------------------------------------------------------------------------------------
# schema validation
# --------------------------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification(compose, schema_validator):
    errors = schema_errors(_require(schema_validator), compose)
    assert not errors, (
        "docker-compose.yml violates the Compose Specification "
        f"(compose-go {COMPOSE_GO_VERSION}):\n" + "\n".join(errors)
    )


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        pytest.param(
            lambda d: d["services"]["ingest"].__setitem__(
                "depends_on", {"x": {"condition": "bogus"}}
            ),
            "services/ingest/depends_on",
            id="unknown-depends_on-condition",
        ),
        pytest.param(
            lambda d: d["services"]["kafka"].__setitem__(
                "healthchek", d["services"]["kafka"]["healthcheck"]
            ),
            "healthchek",
            id="misspelt-service-key",
        ),
        pytest.param(
            lambda d: d["services"]["postgres"]["healthcheck"].__setitem__("intervall", "5s"),
            "intervall",
            id="misspelt-healthcheck-key",
        ),
        pytest.param(lambda d: d.__setitem__("servics", {}), "servics", id="unknown-top-level-key"),
    ],
)
def test_validator_rejects_broken_compose_documents(compose, schema_validator, breakage, expected):
    """Proves the validation can fail: each deliberately broken copy must be rejected, for its
    fault."""
    broken = copy.deepcopy(compose)
    breakage(broken)
    errors = schema_errors(_require(schema_validator), broken)
    assert errors, "a broken compose document passed schema validation"
    assert any(expected in error for error in errors), (
        f"rejected, but not for {expected!r}: {errors}"
    )


# --------------------------------------------------------------------------------------------
# genomebus services in compose
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_is_built_from_its_dockerfile(compose, name):
    service = compose["services"].get(name)
    assert service is not None, f"services/{name} has no compose service named {name!r}"
    build = service.get("build")
    assert isinstance(build, dict), f"{name}: build must be a mapping with context and dockerfile"
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    assert context == REPO, (
        f"{name}: build context must be the repository root (uv.lock lives there)"
    )
    dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
    assert dockerfile == REPO / "deploy" / "docker" / "Dockerfile", f"{name}: builds {dockerfile}"
    assert dockerfile.is_file(), f"{dockerfile} does not exist"
    assert build.get("args", {}).get("SERVICE") == name, f"{name}: build arg SERVICE"


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_gets_the_shared_settings(compose, name):
    env = _env(compose["services"][name])
    missing = [key for key in SHARED_SETTINGS if not env.get(key)]
    assert not missing, f"{name}: shared settings not set: {missing}"
    assert env["GENOMEBUS_SERVICE_NAME"] == name

    for server in env["GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS"].split(","):
        host, _, port = server.strip().rpartition(":")
        assert host in compose["services"] and port.isdigit(), (
            f"{name}: bad Kafka server {server!r}"
        )
        assert compose["services"][host]["image"].startswith("apache/kafka:")

    if name not in OBJECT_SERVICES:
        # least privilege: neither the object store's address nor its keys
        assert not [key for key in S3_SETTINGS if key in env], f"{name} keeps no objects"
        return
    missing = [key for key in S3_SETTINGS if not env.get(key)]
    assert not missing, f"{name}: object store settings not set: {missing}"
    s3 = env["GENOMEBUS_S3_ENDPOINT"]
    assert "://" not in s3, f"{name}: GENOMEBUS_S3_ENDPOINT is host:port, not a URL ({s3!r})"
    host, _, port = s3.rpartition(":")
    assert host in compose["services"] and port.isdigit(), f"{name}: bad S3 endpoint {s3!r}"
    assert compose["services"][host]["image"].startswith("minio/minio:")
    assert _resolve_defaults(env["GENOMEBUS_S3_SECURE"]).lower() == "false"

    minio_env = _env(compose["services"][host])
    assert env["GENOMEBUS_S3_ACCESS_KEY"] == minio_env["MINIO_ROOT_USER"]
    assert env["GENOMEBUS_S3_SECRET_KEY"] == minio_env["MINIO_ROOT_PASSWORD"]


def test_each_database_service_uses_only_its_own_database(compose):
    services = compose["services"]
    postgres_env = _env(services["postgres"])
    seen: dict[str, str] = {}
    for name in SERVICES:
        dsn = _env(services[name]).get("GENOMEBUS_POSTGRES_DSN")
        if name not in DB_SERVICES:
            assert dsn is None, f"{name} does not use PostgreSQL and must get no DSN"
            assert "postgres" not in _depends_on(services[name]), f"{name} needs no PostgreSQL"
            continue
        assert dsn, f"{name}: GENOMEBUS_POSTGRES_DSN is not set"
        url = urlsplit(_resolve_defaults(dsn))
        assert url.scheme in {"postgresql", "postgres"}, (
            f"{name}: {dsn!r} is not a postgresql:// DSN"
        )
        assert url.hostname == "postgres" and url.port == 5432, f"{name}: DSN host {url.netloc!r}"
        database = url.path.lstrip("/")
        assert database == f"genomebus_{name}", f"{name} connects to database {database!r}"
        assert url.username == f"genomebus_{name}", f"{name} logs in as {url.username!r}"
        assert database not in seen, f"{name} and {seen.get(database)} share database {database}"
        seen[database] = name
        # The password in the DSN is the one the init script gives this service's role.
        password_var = f"GENOMEBUS_{name.upper()}_DB_PASSWORD"
        assert url.password == _resolve_defaults(postgres_env[password_var]), (
            f"{name}: DSN password differs from the postgres service's {password_var}"
        )
        assert _depends_on(services[name]).get("postgres", {}).get("condition") == "service_healthy"

    # The init script creates exactly the databases the services use, and is mounted.
    scripts = sorted(POSTGRES_INIT_DIR.glob("*.sh"))
    assert scripts, f"no init script in {POSTGRES_INIT_DIR}"
    created = set(
        re.findall(
            r"^create_service_db\s+(\w+)", "".join(s.read_text() for s in scripts), re.MULTILINE
        )
    )
    assert created == DB_SERVICES, (
        f"init script creates databases for {created}, expected {DB_SERVICES}"
    )
    mounts = [v.split(":") for v in services["postgres"]["volumes"] if isinstance(v, str)]
    assert any(
        (COMPOSE_FILE.parent / src).resolve() == POSTGRES_INIT_DIR
        and dst == "/docker-entrypoint-initdb.d"
        for src, dst, *_ in mounts
    ), "deploy/compose/postgres-init is not mounted at /docker-entrypoint-initdb.d"


KEY_HOLDERS = {"ingest", "consent"}  # the services that receive national ids


def test_pseudonym_key_is_a_secret_from_the_environment(compose):
    for name in SERVICES:
        env = _env(compose["services"][name])
        if name not in KEY_HOLDERS:
            assert "GENOMEBUS_PSEUDONYM_KEY" not in env, (
                f"{name} must not receive the pseudonym key"
            )
            continue
        value = env.get("GENOMEBUS_PSEUDONYM_KEY", "")
        match = INTERPOLATION.fullmatch(value)
        assert match, (
            f"{name}: GENOMEBUS_PSEUDONYM_KEY must come from the environment, got {value!r}"
        )
        # ${VAR:?msg} or ${VAR?msg} (required) or plain ${VAR}; never a default value to fall
        # back on.
        assert match["op"] in (None, ":?", "?"), f"{name}: the pseudonym key must have no default"


def test_services_depend_only_on_healthy_infrastructure(compose):
    services = compose["services"]
    for name in SERVICES:
        deps = _depends_on(services[name])
        assert {"kafka", "minio"} <= set(deps), f"{name} must wait for kafka and minio"
        others = set(deps) - INFRASTRUCTURE
        assert not others, f"{name} depends on {others}: services only talk through Kafka"
        assert "healthcheck" in services[name], f"{name} has no healthcheck"


def test_depends_on_conditions_are_satisfiable(compose):
    services = compose["services"]
    for name, service in services.items():
        for dep, spec in _depends_on(service).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            condition = spec.get("condition")
            assert condition in {"service_healthy", "service_completed_successfully"}, (
                f"{name} -> {dep}: use service_healthy or service_completed_successfully, "
                f"not {condition}"
            )
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], (
                    f"{name} waits for {dep} to be healthy, it has no healthcheck"
                )
            else:
                assert str(services[dep].get("restart", "no")) == "no", f"{dep} is a one-shot job"


def test_kafka_is_a_single_kraft_node_on_4_1(compose):
    kafka = compose["services"]["kafka"]
    image, _, tag = kafka["image"].partition(":")
    assert image == "apache/kafka"
    assert re.fullmatch(r"4\.1\.\d+", tag), f"kafka image tag must be 4.1.x, got {tag!r}"
    assert tag != "4.0.0"
    env = {k: _resolve_defaults(v) for k, v in _env(kafka).items()}
    assert env["KAFKA_NODE_ID"] == "1"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env.get("KAFKA_CONTROLLER_QUORUM_VOTERS") or env.get(
        "KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS"
    )
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in {
        listener.split(":")[0] for listener in env["KAFKA_LISTENERS"].split(",")
    }
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
    ):
        assert env.get(key) == "1", f"{key} must be 1 on a single broker"
    assert env.get("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS") == "0"


def test_infrastructure_images_are_pinned_and_state_is_on_named_volumes(compose):
    services = compose["services"]
    for name in INFRASTRUCTURE:
        image = services[name]["image"]
        _repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
        assert tag and tag != "latest", f"{name}: image {image!r} is not pinned by tag"
    assert services["minio"]["image"].split(":")[1].startswith("RELEASE.")
    assert services["minio-init"]["image"].startswith("minio/mc:RELEASE.")
    assert services["postgres"]["image"].split(":")[1].startswith("15")

    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if source and not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"
    for name in ("kafka", "minio", "postgres"):
        assert any(
            isinstance(v, str) and v.split(":")[0] in declared for v in services[name]["volumes"]
        )

    networks = set(compose.get("networks") or {})
    assert len(networks) == 1, f"expected one network, got {networks}"
    for name, service in services.items():
        assert set(service.get("networks") or []) == networks, f"{name} is not on the stack network"


# --------------------------------------------------------------------------------------------
# Dockerfiles
# --------------------------------------------------------------------------------------------


def _console_scripts(name: str) -> dict[str, str]:
    pyproject = tomllib.loads((REPO / "services" / name / "pyproject.toml").read_text())
    return pyproject["project"].get("scripts", {})


def _workspace_member_manifests() -> set[str]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    members = root["tool"]["uv"]["workspace"]["members"]
    found = set()
    for pattern in members:
        for path in glob.glob(str(REPO / pattern)):
            if (Path(path) / "pyproject.toml").is_file():
                found.add(str(Path(path).relative_to(REPO) / "pyproject.toml"))
    return found


DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"


def _tools_by_service(df: Dockerfile) -> dict[str, set[str]]:
    """The runtime stage's ``case "$SERVICE" in name) tools="..." ;;`` table."""
    text = " ".join(i.args for i in df.final_stage() if i.keyword == "RUN")
    return {m[1]: set(m[2].split()) for m in re.finditer(r'(\w+)\) tools="([^"]*)"', text)}


def test_one_dockerfile_builds_every_service():
    df = Dockerfile.parse(DOCKERFILE)
    final = df.final_stage()

    # Base images: the official Python 3.11 slim image on Debian bookworm, pinned by tag.
    for ins in df.all("FROM"):
        image = ins.args.split()[0]
        if image.startswith("python:"):
            assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-bookworm", image), f"FROM {image}"
    assert final[0].args.split()[0].startswith("python:3.11"), "runtime stage is not python"
    for stage in df.stages():
        assert any(i.keyword == "ARG" and i.args == "SERVICE" for i in stage), (
            "every stage must declare ARG SERVICE (an ARG does not cross a FROM)"
        )

    # uv from its official pinned image, syncing exactly the chosen package from the frozen lock.
    copies = " ".join(i.args for i in df.all("COPY"))
    uv = re.search(r"--from=ghcr\.io/astral-sh/uv:(\S+)", copies)
    assert uv and re.fullmatch(r"\d+\.\d+\.\d+", uv[1]), "uv image must be pinned to a version"
    syncs = [w for w in df.run_words() if "uv" in w and "sync" in w]
    assert len(syncs) == 2, "dependencies first (cached), then the workspace packages"
    for words in syncs:
        for flag in ("--frozen", "--no-dev"):
            assert flag in words, f"uv sync without {flag}"
        assert words[words.index("--package") + 1] == "genomebus-${SERVICE}"
    copied = {p for i in df.all("COPY") for p in i.args.split() if p.endswith("pyproject.toml")}
    missing = _workspace_member_manifests() - copied
    assert not missing, f"uv needs every workspace manifest to sync --frozen; not copied: {missing}"
    assert "uv.lock" in copies.split(), "uv.lock is not copied"
    assert "services/${SERVICE}/src" in copies.split()

    # Non-root at run time.
    users = [i for i in final if i.keyword == "USER"]
    assert users, "no USER in the runtime stage"
    assert users[-1].args.split(":")[0] not in {"root", "0", ""}, f"runs as {users[-1].args!r}"

    # One entry point name in every image, linked to the chosen service's console script.
    entrypoint = [i for i in final if i.keyword == "ENTRYPOINT"]
    assert entrypoint and entrypoint[-1].exec_form() == ["genomebus-service"]
    links = [w for w in df.run_words() if "ln" in w]
    assert any(
        "genomebus-${SERVICE}" in w and "/app/.venv/bin/genomebus-service" in w for w in links
    ), "genomebus-service must point at genomebus-${SERVICE}"
    assert [i for i in final if i.keyword == "HEALTHCHECK"], "no HEALTHCHECK"
    assert "8080" in " ".join(i.args for i in final if i.keyword == "EXPOSE")
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    assert "GENOMEBUS_SERVICE_NAME=${SERVICE}" in env


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_each_service_can_be_built_from_the_shared_dockerfile(name):
    assert (REPO / "services" / name / "src").is_dir()
    assert f"genomebus-{name}" in _console_scripts(name), f"{name}: pyproject has no such script"
    # Bioinformatics tools come from Debian packages in the runtime image, per service.
    needed = REQUIRED_TOOLS.get(name, set())
    df = Dockerfile.parse(DOCKERFILE)
    installed = _tools_by_service(df).get(name, set())
    # bwa is genomebus's build (Debian's plus `bwa mem -J`), copied from the bwa stage.
    if name == "alignment" and any(
        "--from=bwa" in i.args for i in df.final_stage() if i.keyword == "COPY"
    ):
        installed |= {"bwa"}
    assert needed <= installed, f"{name}: runtime image lacks {needed - installed}"
    assert not (REPO / "services" / name / "Dockerfile").exists(), (
        f"{name}: a Dockerfile of its own would drift from deploy/docker/Dockerfile"
    )


def test_dockerignore_keeps_what_the_builds_need():
    path = REPO / ".dockerignore"
    assert path.is_file(), ".dockerignore is missing"
    patterns = {
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", "**/.venv"} <= patterns
    for needed in (
        "pyproject.toml",
        "uv.lock",
        "libs",
        "services",
        "libs/common",
        "src",
        "*.toml",
        "**",
    ):
        assert needed not in patterns, f".dockerignore excludes {needed}, which the images need"


@pytest.mark.parametrize("name", SERVICES)
def test_services_run_read_only_with_a_writable_tmp(compose, name):
    service = compose["services"][name]
    assert service.get("read_only") is True, f"{name}: root filesystem should be read-only"
    tmpfs = service.get("tmpfs") or []
    tmpfs = [tmpfs] if isinstance(tmpfs, str) else tmpfs
    targets = {t.split(":")[0] for t in tmpfs}
    for volume in service.get("volumes") or []:
        targets.add(volume.split(":")[1] if isinstance(volume, str) else volume.get("target"))
    assert "/tmp" in targets, f"{name}: /tmp must be writable (tmpfs or volume)"
