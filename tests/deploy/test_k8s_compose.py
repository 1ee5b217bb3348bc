"""docker-compose.yml and the Kubernetes base describe the same services with the same settings.

What may differ is listed here, each with its reason; anything else that differs fails, in
either direction (a setting added to one and forgotten in the other).
"""

from __future__ import annotations

import pytest
import yaml

from .k8s_support import K8S_DIR, REPO, Manifests, render, service_of

COMPOSE_INFRASTRUCTURE = {"kafka", "minio", "minio-init", "postgres"}

# Services only Kubernetes runs.
K8S_ONLY_SERVICES = {
    "heat": "steers a KEDA ScaledObject and reads node labels: only meaningful in a cluster",
}

# Variables only the Kubernetes pods set, per service, and why.
K8S_EVERYWHERE = {
    # Strimzi owns the topics on Kubernetes; compose's services create theirs at start-up.
    "GENOMEBUS_KAFKA_CREATE_TOPICS",
    # Kubernetes: each service its own SCRAM user over TLS, with its ACLs (Strimzi KafkaUsers);
    # compose runs a broker without identities (the local dev stack has them: `genomebus stack`).
    "GENOMEBUS_KAFKA_SECURITY_PROTOCOL",
    "GENOMEBUS_KAFKA_SASL_MECHANISM",
    "GENOMEBUS_KAFKA_SASL_USERNAME",
    "GENOMEBUS_KAFKA_SASL_PASSWORD",
    "GENOMEBUS_KAFKA_SSL_CAFILE",
}
# Variables only compose sets, and why.
COMPOSE_EVERYWHERE = {
    # compose is a development setup (DSNs without TLS, each service as its database's owner);
    # Kubernetes keeps the code's default, production, under which the settings refuse both.
    "GENOMEBUS_PROFILE",
}
K8S_ONLY_VARIABLES: dict[str, set[str]] = {
    # The same key version in both (compose relies on the default 1).
    "ingest": {"GENOMEBUS_PSEUDONYM_KEY_VERSION"},
    "consent": {"GENOMEBUS_PSEUDONYM_KEY_VERSION"},
    "registry": {"GENOMEBUS_MIN_CELL_COUNT"},
    # Per-lane Deployments, CPU sized to the container, energy per node from the downward API
    # and the heat controller's ConfigMap.
    "alignment": {
        "GENOMEBUS_LANES",
        "GENOMEBUS_THREADS",
        "GENOMEBUS_SORT_MEMORY_MB",
        "GENOMEBUS_NODE_NAME",
        "GENOMEBUS_ENERGY_WATTS_PER_CORE",
        "GENOMEBUS_HEAT_RECOVERY_FILE",
    },
    "calling": {
        "GENOMEBUS_THREADS",
        "GENOMEBUS_NODE_NAME",
        "GENOMEBUS_ENERGY_WATTS_PER_CORE",
        "GENOMEBUS_HEAT_RECOVERY_FILE",
    },
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def base() -> Manifests:
    return Manifests("base", render(K8S_DIR / "base"))


@pytest.fixture(scope="module")
def dev() -> Manifests:
    return Manifests("dev", render(K8S_DIR / "overlays" / "dev"))


def compose_services(compose: dict) -> dict[str, dict]:
    return {n: s for n, s in compose["services"].items() if n not in COMPOSE_INFRASTRUCTURE}


def compose_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items() if k.startswith("GENOMEBUS_")}


def k8s_env(m: Manifests, service: str) -> dict[str, dict]:
    env: dict[str, dict] = {}
    for deployment in m.deployments(service):
        env.update(
            {k: v for k, v in m.container_env(deployment).items() if k.startswith("GENOMEBUS_")}
        )
    return env


def test_the_same_services(compose: dict, base: Manifests) -> None:
    k8s = {service_of(d) for d in base.deployments()}
    assert set(compose_services(compose)) == k8s - set(K8S_ONLY_SERVICES)
    assert set(K8S_ONLY_SERVICES) <= k8s


def test_the_same_settings_per_service(compose: dict, base: Manifests) -> None:
    for name, service in compose_services(compose).items():
        in_compose = set(compose_env(service))
        in_k8s = set(k8s_env(base, name))
        missing = in_compose - in_k8s - COMPOSE_EVERYWHERE
        assert not missing, f"{name}: compose sets {missing}, Kubernetes does not"
        assert in_compose >= COMPOSE_EVERYWHERE and not COMPOSE_EVERYWHERE & in_k8s, name
        extra = in_k8s - in_compose - K8S_EVERYWHERE - K8S_ONLY_VARIABLES.get(name, set())
        assert not extra, f"{name}: Kubernetes sets {extra}, compose does not (or list why here)"
        stale = (K8S_EVERYWHERE | K8S_ONLY_VARIABLES.get(name, set())) - in_k8s
        assert not stale, f"{name}: listed as Kubernetes-only but not set there: {stale}"


def test_the_same_service_names_and_images(compose: dict, base: Manifests, dev: Manifests) -> None:
    for name, service in compose_services(compose).items():
        values = {k: v.get("value") for k, v in k8s_env(base, name).items()}
        # The service name is also the consumer group: it must be the same everywhere.
        assert (
            values["GENOMEBUS_SERVICE_NAME"]
            == compose_env(service)["GENOMEBUS_SERVICE_NAME"]
            == name
        )
        # only the services that keep objects are given the object store (least privilege)
        assert (compose_env(service).get("GENOMEBUS_S3_SECURE") or "").lower() == (
            values.get("GENOMEBUS_S3_SECURE") or ""
        ).lower()
        repository, _, tag = service["image"].partition(":")
        for deployment in dev.deployments(name):
            image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
            # dev runs what `docker compose build` tagged
            assert image == f"{repository}:{tag}", deployment["metadata"]["name"]
