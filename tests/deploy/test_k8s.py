"""The Kubernetes manifests (deploy/k8s), rendered by the pinned kustomize, checked offline.

Schemas first (core kinds strict against Kubernetes' own, operator kinds against their CRDs or
strict descriptions), then what the manifests must mean: consumer groups and topics as the code
uses them, scaling bounded by partitions, placement and priorities, probes on the real endpoints,
limits, non-root read-only pods, network reach, secrets by reference only, settings the services
really read, and the heat controller wired to what it steers.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from genomebus_common.contracts.events import Priority, Stage
from genomebus_common.contracts.topics import (
    ALL_TOPICS,
    CONSENT_CHANGED,
    SAMPLE_RECEIVED_LANES,
    WORK_LANES,
)

from . import operator_schemas
from .compose_spec import SchemaUnavailable
from .k8s_support import (
    K8S_DIR,
    KUBERNETES_VERSION,
    OVERLAYS,
    REPO,
    Manifests,
    crd_validators,
    errors,
    only_container,
    quantity,
    render,
    selects,
    service_of,
)

SERVICES = {"ingest", "consent", "registry", "alignment", "calling", "heat"}
API_SERVICES = {"ingest", "consent", "registry"}
CPU_HEAVY = {"alignment", "calling"}
DB_SERVICES = {"ingest", "consent", "registry"}
LANE_DEPLOYMENT = {p: f"alignment-{p.value.replace('_', '-')}" for p in Priority}
#: Where the DB services' pods find PostgreSQL's CA (the DSNs' sslrootcert).
POSTGRES_CA = "/etc/genomebus/postgres-ca/ca.crt"
SECRET_SETTINGS = {
    "GENOMEBUS_S3_ACCESS_KEY",
    "GENOMEBUS_S3_SECRET_KEY",
    "GENOMEBUS_POSTGRES_DSN",
    "GENOMEBUS_POSTGRES_MIGRATE_DSN",
    "GENOMEBUS_PSEUDONYM_KEY",
    "GENOMEBUS_HOSPITAL_TOKENS",
    "GENOMEBUS_CONSENT_CLIENTS",
    "GENOMEBUS_REGISTRY_CLIENTS",
    "GENOMEBUS_KAFKA_SASL_PASSWORD",
}


@pytest.fixture(scope="module", params=OVERLAYS)
def m(request: pytest.FixtureRequest) -> Manifests:
    return Manifests(request.param, render(K8S_DIR / "overlays" / request.param))


@pytest.fixture(scope="module")
def overlays() -> dict[str, Manifests]:
    return {name: Manifests(name, render(K8S_DIR / "overlays" / name)) for name in OVERLAYS}


def settings_class(service: str) -> type:
    from genomebus_alignment.config import AlignmentSettings
    from genomebus_calling.config import CallingSettings
    from genomebus_consent.config import ConsentSettings
    from genomebus_heat.config import HeatSettings
    from genomebus_ingest.config import IngestSettings
    from genomebus_registry.config import RegistrySettings

    return {
        "ingest": IngestSettings,
        "consent": ConsentSettings,
        "registry": RegistrySettings,
        "alignment": AlignmentSettings,
        "calling": CallingSettings,
        "heat": HeatSettings,
    }[service]


def literal_settings(m: Manifests, deployment: dict[str, Any]) -> dict[str, str]:
    """The variables with a literal value (ConfigMap or env value), as the process reads them."""
    return {k: v["value"] for k, v in m.container_env(deployment).items() if "value" in v}


def load_settings(m: Manifests, deployment: dict[str, Any], **secrets: Any) -> Any:
    """The service's real settings class, fed the rendered environment (pydantic validates).
    The Kafka password comes from the KafkaUser's Secret at run time: a stand-in here."""
    env = literal_settings(m, deployment)
    cls = settings_class(service_of(deployment))
    prefix = "GENOMEBUS_"
    values = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
    if "GENOMEBUS_KAFKA_SASL_PASSWORD" in m.container_env(deployment):
        secrets.setdefault("kafka_sasl_password", "from-the-kafkauser-secret")
    if "GENOMEBUS_S3_SECRET_KEY" in m.container_env(deployment):
        secrets.setdefault("s3_access_key", "from-the-s3-secret")
        secrets.setdefault("s3_secret_key", "from-the-s3-secret")
    return cls(_env_file=None, **values, **secrets)


# ================================================================================================
# schemas
# ================================================================================================

CORE_GROUPS = (
    "v1",
    "apps/v1",
    "policy/v1",
    "networking.k8s.io/v1",
    "rbac.authorization.k8s.io/v1",
    "scheduling.k8s.io/v1",
)


def test_core_kinds_pass_strict_kubernetes_schemas(m: Manifests) -> None:
    failures = []
    for doc in m.docs:
        if doc["apiVersion"] not in CORE_GROUPS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: /{path}: {exc.message}")
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def operator_validators() -> dict[tuple[str, str], Any]:
    try:
        crds = crd_validators()
    except (SchemaUnavailable, OSError) as exc:
        pytest.fail(f"cannot obtain the pinned CRD schemas: {exc}", pytrace=False)
    return {**crds, **operator_schemas.validators()}


def test_every_kind_has_a_schema_and_passes_it(m: Manifests, operator_validators) -> None:
    failures = []
    for doc in m.docs:
        key = (doc["apiVersion"], doc["kind"])
        if doc["apiVersion"] in CORE_GROUPS:
            continue
        assert key in operator_validators, f"no schema for {key}: add one, never skip a kind"
        failures += [
            f"{doc['kind']}/{doc['metadata']['name']}{e}"
            for e in errors(operator_validators[key], doc)
        ]
    assert not failures, "\n".join(failures)


def test_the_schemas_reject_typos(overlays: dict[str, Manifests], operator_validators) -> None:
    """Each check must be able to fail: a misspelt or misplaced field is an error everywhere."""
    m = overlays["production"]
    so = copy.deepcopy(m.get("ScaledObject", "alignment-research"))
    so["spec"]["maxReplicas"] = so["spec"].pop("maxReplicaCount")
    assert errors(operator_validators[("keda.sh/v1alpha1", "ScaledObject")], so)
    so = copy.deepcopy(m.get("ScaledObject", "alignment-research"))
    so["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 1  # KEDA wants strings
    assert errors(operator_validators[("keda.sh/v1alpha1", "ScaledObject")], so)
    pm = copy.deepcopy(m.get("PodMonitor", "genomebus"))
    pm["spec"]["podMetricsEndpoints"][0]["pathh"] = "/metrics"
    assert errors(operator_validators[("monitoring.coreos.com/v1", "PodMonitor")], pm)
    kafka = copy.deepcopy(m.get("Kafka", "genomebus"))
    kafka["spec"]["kafka"]["listener"] = kafka["spec"]["kafka"].pop("listeners")
    assert errors(operator_validators[("kafka.strimzi.io/v1beta2", "Kafka")], kafka)
    tenant = copy.deepcopy(m.get("Tenant", "genomebus-minio"))
    tenant["spec"]["pools"][0]["server"] = 4
    assert errors(operator_validators[("minio.min.io/v2", "Tenant")], tenant)
    cluster = copy.deepcopy(m.get("Cluster", "genomebus-pg"))
    cluster["spec"]["managed"]["roles"][0]["password"] = "x"
    assert errors(operator_validators[("postgresql.cnpg.io/v1", "Cluster")], cluster)
    deployment = copy.deepcopy(m.get("Deployment", "ingest"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_no_secret_values_anywhere(m: Manifests) -> None:
    assert not m.of("Secret"), "secrets are created out of band, never rendered from git"
    for cm in m.of("ConfigMap"):
        leaked = SECRET_SETTINGS & set(cm.get("data", {}))
        assert not leaked, f"{cm['metadata']['name']} holds secret settings {leaked}"
    for deployment in m.deployments():
        containers = [None, *deployment["spec"]["template"]["spec"].get("initContainers", [])]
        for container in containers:
            for name, source in m.container_env(deployment, container).items():
                if name in SECRET_SETTINGS:
                    assert "secretKeyRef" in source.get("valueFrom", {}), (
                        f"{deployment['metadata']['name']}: {name} must come from a Secret"
                    )
                    assert source["valueFrom"]["secretKeyRef"].get("optional") is not True


# ================================================================================================
# topics and scaling
# ================================================================================================


def test_topics_file_is_generated_from_the_code() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("k8s_generate", K8S_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.OUTPUT.read_text() == module.render(), (
        "deploy/k8s/base/kafka/topics.yaml is stale: run .venv/bin/python deploy/k8s/generate.py"
    )


def test_users_file_is_generated_from_the_code() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("k8s_generate", K8S_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.USERS_OUTPUT.read_text() == module.render_users(), (
        "deploy/k8s/base/kafka/users.yaml is stale: run .venv/bin/python deploy/k8s/generate.py"
    )


def test_every_topic_and_dead_letter_topic_exists_as_the_code_declares(m: Manifests) -> None:
    topics = {t["spec"]["topicName"]: t for t in m.of("KafkaTopic")}
    wanted = {t.name: t.partitions for t in ALL_TOPICS} | {t.dlq: 1 for t in ALL_TOPICS}
    assert set(topics) == set(wanted)
    for name, partitions in wanted.items():
        spec = topics[name]["spec"]
        assert spec["partitions"] == partitions, name
        assert (
            topics[name]["metadata"]["labels"]["strimzi.io/cluster"]
            == m.of("Kafka")[0]["metadata"]["name"]
        )


def test_topic_retention_and_replication(m: Manifests) -> None:
    brokers = sum(
        p["spec"]["replicas"] for p in m.of("KafkaNodePool") if "broker" in p["spec"]["roles"]
    )
    for topic in m.of("KafkaTopic"):
        spec, config = topic["spec"], topic["spec"]["config"]
        name = spec["topicName"]
        assert 1 <= config["min.insync.replicas"] <= spec["replicas"] <= brokers, name
        if m.name == "production":  # one broker may be down without stopping writes
            assert config["min.insync.replicas"] < spec["replicas"], name
        if name == CONSENT_CHANGED.name:
            # Consent views read it from the beginning: nothing may age out, latest per key stays.
            assert config["cleanup.policy"] == "compact"
            assert "retention.ms" not in config
        else:
            assert (
                config["cleanup.policy"] == "delete" and config["retention.ms"] >= 7 * 86400_000
            ), name


def subscriptions(deployment_settings: Any, service: str) -> list[tuple[tuple[str, ...], str]]:
    """(topics, group_id) of every subscription the service's real build_app makes."""
    import genomebus_common.runtime.service as runtime

    calls: list[tuple[tuple[str, ...], str]] = []

    class RecordingBroker:
        def subscriber(self, *topics: str, group_id: str, **_: Any):
            calls.append((topics, group_id))
            return lambda fn: fn

    patch = pytest.MonkeyPatch()
    patch.setattr(runtime, "create_broker", lambda *a, **k: RecordingBroker())
    try:
        if service == "alignment":
            from genomebus_alignment.main import build_app
        else:
            from genomebus_calling.main import build_app
        build_app(deployment_settings)
    finally:
        patch.undo()
    return calls


def test_keda_consumer_groups_and_topics_are_the_ones_the_code_subscribes(m: Manifests) -> None:
    scaled = {so["spec"]["scaleTargetRef"]["name"]: so for so in m.of("ScaledObject")}
    heavy = [d for d in m.deployments() if service_of(d) in CPU_HEAVY]
    assert {d["metadata"]["name"] for d in heavy} == set(scaled)
    bootstrap = m.configmap("genomebus-common")["data"]["GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS"]
    for deployment in heavy:
        settings = load_settings(m, deployment)
        subs = subscriptions(settings, service_of(deployment))
        # the work subscriptions (removals are light and handled by the always-on pods): the
        # samples it plans, and the units of scattered work it takes; each has its trigger
        work = {(t, g) for t, g in subs if not g.endswith(".removals")}
        name = deployment["metadata"]["name"]
        triggers = scaled[name]["spec"]["triggers"]
        assert all(t["type"] == "kafka" for t in triggers)
        wanted = {((t["metadata"]["topic"],), t["metadata"]["consumerGroup"]) for t in triggers}
        assert wanted == work, f"{name}: triggers {wanted} but the code subscribes {work}"
        sources = [t for (t,), g in work if not t.startswith("genomebus.work.")]
        assert len(sources) == 1, f"{name} plans samples from {sources}: one lane per Deployment"
        for trigger in triggers:
            assert trigger["metadata"]["bootstrapServers"] == bootstrap
            assert trigger["metadata"].get("allowIdleConsumers", "false") == "false"


def test_alignment_runs_one_deployment_per_lane(m: Manifests) -> None:
    for priority, name in LANE_DEPLOYMENT.items():
        deployment = m.get("Deployment", name)
        assert literal_settings(m, deployment)["GENOMEBUS_LANES"] == priority.value
        assert load_settings(m, deployment).lanes == [priority]


def test_scaling_never_exceeds_partitions_and_urgent_never_waits(m: Manifests) -> None:
    partitions = {t.name: t.partitions for t in ALL_TOPICS}
    for so in m.of("ScaledObject"):
        spec = so["spec"]
        widest = max(partitions[t["metadata"]["topic"]] for t in spec["triggers"])
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= widest, so["metadata"][
            "name"
        ]
        target = m.get("Deployment", spec["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"], (
            "KEDA owns the replica count of a scaled Deployment"
        )
    urgent = m.get("ScaledObject", LANE_DEPLOYMENT[Priority.URGENT_CLINICAL])
    assert urgent["spec"]["minReplicaCount"] >= 1
    # Urgent samples get the width: as many pods as their work topic has partitions (in the
    # production overlay; the dev overlay caps every lane at two pods).
    if urgent["spec"]["maxReplicaCount"] > 2:
        assert (
            urgent["spec"]["maxReplicaCount"]
            == WORK_LANES[(Stage.ALIGNMENT, Priority.URGENT_CLINICAL)].partitions
        )
    # One pod each always consumes sample.removed for its stage.
    assert m.get("ScaledObject", "calling")["spec"]["minReplicaCount"] >= 1


# ================================================================================================
# placement, priorities
# ================================================================================================


def test_cpu_heavy_pods_prefer_heat_reuse_nodes(m: Manifests) -> None:
    for deployment in m.deployments():
        affinity = deployment["spec"]["template"]["spec"].get("affinity", {})
        preferred = affinity.get("nodeAffinity", {}).get(
            "preferredDuringSchedulingIgnoredDuringExecution", []
        )
        heat_terms = [
            t
            for t in preferred
            if t["weight"] > 0
            and {"key": "genomebus.dk/heat-reuse", "operator": "In", "values": ["true"]}
            in t["preference"].get("matchExpressions", [])
        ]
        if service_of(deployment) in CPU_HEAVY:
            assert heat_terms, f"{deployment['metadata']['name']} does not prefer heat-reuse nodes"
            required = affinity.get("nodeAffinity", {}).get(
                "requiredDuringSchedulingIgnoredDuringExecution"
            )
            assert required is None, (
                "a preference, not a requirement: work must run without heat reuse"
            )


def test_priority_classes(m: Manifests) -> None:
    classes = {pc["metadata"]["name"]: pc for pc in m.of("PriorityClass")}
    used = {d["spec"]["template"]["spec"].get("priorityClassName") for d in m.deployments()}
    assert None not in used and used <= set(classes)
    urgent = classes["genomebus-urgent-clinical"]
    research = classes["genomebus-research"]
    assert urgent["preemptionPolicy"] == "PreemptLowerPriority"
    assert urgent["value"] == max(pc["value"] for pc in classes.values())
    assert research["value"] == min(pc["value"] for pc in classes.values())
    assert research.get("preemptionPolicy") == "Never"
    assert not any(pc.get("globalDefault") for pc in classes.values())

    def prio(name: str) -> str:
        return m.get("Deployment", name)["spec"]["template"]["spec"]["priorityClassName"]

    assert prio(LANE_DEPLOYMENT[Priority.URGENT_CLINICAL]) == "genomebus-urgent-clinical"
    assert prio(LANE_DEPLOYMENT[Priority.RESEARCH]) == "genomebus-research"
    assert classes[prio(LANE_DEPLOYMENT[Priority.ROUTINE])]["value"] > research["value"]


# ================================================================================================
# pods: probes, resources, security
# ================================================================================================


def test_probes_hit_the_real_endpoints_on_the_served_port(m: Manifests) -> None:
    from genomebus_common.runtime.settings import ServiceSettings

    for deployment in m.deployments():
        name = deployment["metadata"]["name"]
        container = only_container(deployment)
        settings = literal_settings(m, deployment)
        port = int(
            settings.get("GENOMEBUS_HTTP_PORT", ServiceSettings.model_fields["http_port"].default)
        )
        assert settings.get("GENOMEBUS_HTTP_HOST") == "0.0.0.0", (
            f"{name}: kubelet cannot reach 127.0.0.1"
        )
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == port
        for probe, path in (
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
            ("startupProbe", "/healthz"),
        ):
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{name} {probe}"
            assert ports.get(get["port"], get["port"]) == port, f"{name} {probe}"
        # start-up (topics, consent view catch-up) may take minutes before /healthz answers
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == port
        assert annotations["prometheus.io/path"] == "/metrics"


def test_podmonitor_scrapes_every_pod_in_production(overlays: dict[str, Manifests]) -> None:
    m = overlays["production"]
    (pm,) = m.of("PodMonitor")
    for deployment in m.deployments():
        assert selects(pm["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])
    assert [(e["port"], e["path"]) for e in pm["spec"]["podMetricsEndpoints"]] == [
        ("http", "/metrics")
    ]


def test_resources_requests_limits_and_scratch(m: Manifests) -> None:
    for deployment in m.deployments():
        name = deployment["metadata"]["name"]
        container = only_container(deployment)
        requests, limits = container["resources"]["requests"], container["resources"]["limits"]
        for resource in ("cpu", "memory", "ephemeral-storage"):
            assert quantity(requests[resource]) <= quantity(limits[resource]), f"{name} {resource}"
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        mounts = {v["mountPath"]: v["name"] for v in container["volumeMounts"]}
        scratch = volumes[mounts["/tmp"]]["emptyDir"]
        assert quantity(scratch["sizeLimit"]) <= quantity(limits["ephemeral-storage"]), name
        if service_of(deployment) in CPU_HEAVY:
            assert quantity(requests["ephemeral-storage"]) >= 4 * 2**30, f"{name}: BAM/VCF scratch"
            assert "medium" not in scratch, f"{name}: scratch on disk, not in memory"
            threads = int(literal_settings(m, deployment)["GENOMEBUS_THREADS"])
            assert threads <= quantity(limits["cpu"]), f"{name}: more threads than CPUs"
            if service_of(deployment) == "alignment":
                sort_mb = int(literal_settings(m, deployment)["GENOMEBUS_SORT_MEMORY_MB"])
                assert threads * sort_mb * 2**20 < quantity(limits["memory"]), (
                    f"{name}: sort memory"
                )


def test_pods_run_non_root_read_only_without_privileges(m: Manifests) -> None:
    from .compose_spec import Dockerfile

    for deployment in m.deployments():
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        container = only_container(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert not pod.get("hostNetwork") and not pod.get("hostPID")
        assert all("hostPath" not in v for v in pod["volumes"])
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
        # The image's USER is the uid the pod runs as.
        user = Dockerfile.parse(REPO / "deploy" / "docker" / "Dockerfile").all("USER")[-1].args
        assert str(pod["securityContext"]["runAsUser"]) == user.split(":")[0], name
        wants_api = service_of(deployment) == "heat"
        assert pod["automountServiceAccountToken"] is wants_api, f"{name}: API token only for heat"


def test_every_deployment_has_a_service_and_a_disruption_budget(m: Manifests) -> None:
    for deployment in m.deployments():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(deployment["spec"]["selector"], labels)
        services = [
            s for s in m.of("Service") if selects({"matchLabels": s["spec"]["selector"]}, labels)
        ]
        assert len(services) == 1, deployment["metadata"]["name"]
        assert services[0]["spec"]["ports"][0]["targetPort"] == "http"
        pdbs = [p for p in m.of("PodDisruptionBudget") if selects(p["spec"]["selector"], labels)]
        assert len(pdbs) == 1, deployment["metadata"]["name"]
        assert "maxUnavailable" in pdbs[0]["spec"]  # never blocks a drain (minAvailable could)


# ================================================================================================
# network policies
# ================================================================================================


def _peer_kind(m: Manifests, rule: dict[str, Any]) -> set[str]:
    """Which engine (or other peer) an egress rule reaches, by the operators' pod labels."""
    kafka = m.of("Kafka")[0]["metadata"]["name"]
    tenant = m.of("Tenant")[0]["metadata"]["name"]
    cluster = m.of("Cluster")[0]["metadata"]["name"]
    ports = {p["port"] for p in rule.get("ports", [])}
    if "to" not in rule:
        assert ports and ports <= {443, 6443}, (
            f"egress anywhere only to the API server ports: {rule}"
        )
        return {"kube-api"}
    kinds = set()
    for peer in rule["to"]:
        labels = peer.get("podSelector", {}).get("matchLabels", {})
        ns = peer.get("namespaceSelector", {}).get("matchLabels", {})
        if labels == {"strimzi.io/cluster": kafka, "strimzi.io/kind": "Kafka"} and ports == {9093}:
            kinds.add("kafka")
        elif labels == {"v1.min.io/tenant": tenant} and ports == {9000}:
            kinds.add("minio")
        elif labels == {"cnpg.io/cluster": cluster} and ports == {5432}:
            kinds.add("postgres")
        elif (
            labels == {"k8s-app": "kube-dns"}
            and ns == {"kubernetes.io/metadata.name": "kube-system"}
            and ports == {53}
        ):
            kinds.add("dns")
        elif (
            labels == {"app.kubernetes.io/name": "opentelemetry-collector"}
            and ns == {"kubernetes.io/metadata.name": "monitoring"}
            and ports == {4318}
        ):
            kinds.add("otlp")
        else:
            raise AssertionError(f"unexpected egress peer {peer} ports {ports}")
    return kinds


def test_network_policies_allow_exactly_what_each_service_needs(m: Manifests) -> None:
    expected_egress = {s: {"dns", "kafka", "minio"} for s in SERVICES}
    for s in DB_SERVICES:
        expected_egress[s] |= {"postgres"}
    expected_egress["heat"] = {"dns", "kafka", "kube-api"}
    expected_egress["consent"] -= {"minio"}  # it keeps no objects: no address, no keys, no route
    if m.of("PodMonitor"):  # the monitoring component also exports traces, from every service
        expected_egress = {s: peers | {"otlp"} for s, peers in expected_egress.items()}
    for deployment in m.deployments():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        service = service_of(deployment)
        policies = [p for p in m.of("NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]
        assert any(
            set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
            for p in policies
        ), f"{service}: no default deny"
        egress = set()
        ingress_from = set()
        for policy in policies:
            for rule in policy["spec"].get("egress", []):
                egress |= _peer_kind(m, rule)
            for rule in policy["spec"].get("ingress", []):
                assert {p["port"] for p in rule["ports"]} == {8080}, (
                    f"{service}: ingress beyond http"
                )
                for peer in rule["from"]:
                    assert set(peer) == {"namespaceSelector"}, f"{service}: ingress from {peer}"
                    ingress_from.add(
                        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                    )
        assert egress == expected_egress[service], service
        wanted_from = {"monitoring", "ingress-nginx"} if service in API_SERVICES else {"monitoring"}
        assert ingress_from == wanted_from, service


def test_kafka_listener_admits_every_genomebus_pod(m: Manifests) -> None:
    (kafka,) = m.of("Kafka")
    for listener in kafka["spec"]["kafka"]["listeners"]:
        peers = listener.get("networkPolicyPeers")
        assert peers, f"listener {listener['name']} open to the whole cluster"
        for deployment in m.deployments():
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert any(
                selects(p.get("podSelector", {"matchLabels": {"x": "never"}}), labels)
                and "namespaceSelector" not in p
                for p in peers
            ), deployment["metadata"]["name"]
        # KEDA reads the lag from its own namespace; without it nothing would ever scale.
        assert {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}
        } in peers


# ================================================================================================
# Kafka identities: TLS, one SCRAM user per service, ACLs from genomebus_common.contracts.topics
# ================================================================================================


def _cluster_ca_secret(m: Manifests) -> str:
    return f"{m.of('Kafka')[0]['metadata']['name']}-cluster-ca-cert"  # Strimzi's naming


def test_kafka_takes_only_tls_clients_with_scram_users_and_enforces_acls(m: Manifests) -> None:
    (kafka,) = m.of("Kafka")
    listeners = kafka["spec"]["kafka"]["listeners"]
    assert listeners and all(
        listener["tls"] is True
        and listener.get("authentication", {}).get("type") == "scram-sha-512"
        for listener in listeners
    ), "every listener: TLS and SCRAM-SHA-512"
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert kafka["spec"]["entityOperator"].get("userOperator") is not None, "who makes the users?"
    port = listeners[0]["port"]
    common = m.configmap("genomebus-common")["data"]
    assert (
        common["GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS"]
        == f"{kafka['metadata']['name']}-kafka-bootstrap:{port}"
    )
    assert common["GENOMEBUS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert common["GENOMEBUS_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"


def test_kafka_users_are_the_tables_clients_with_its_acls(m: Manifests) -> None:
    """Read back from the rendered manifests (not the generator): the rules are the table's."""
    from genomebus_common.contracts.topics import BUS_CLIENTS
    from genomebus_common.runtime.kafka_acls import rules_for

    cluster = m.of("Kafka")[0]["metadata"]["name"]
    users = {u["metadata"]["name"]: u for u in m.of("KafkaUser")}
    assert set(users) == {c.user for c in BUS_CLIENTS.values()}
    pattern = {"literal": "literal", "prefix": "prefixed"}
    for client in BUS_CLIENTS.values():
        user = users[client.user]
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        rendered = {
            (
                acl["resource"]["type"],
                acl["resource"]["name"],
                pattern[acl["resource"]["patternType"]],
                op,
            )
            for acl in user["spec"]["authorization"]["acls"]
            for op in acl["operations"]
        }
        assert all(
            acl.get("type", "allow") == "allow" and acl["host"] == "*"
            for acl in user["spec"]["authorization"]["acls"]
        )
        assert rendered == {
            (r.resource, r.name, r.pattern, r.operation) for r in rules_for(client)
        }, client.name
    writers = {
        name
        for name, u in users.items()
        for acl in u["spec"]["authorization"]["acls"]
        if acl["resource"]["name"] == CONSENT_CHANGED.name and "Write" in acl["operations"]
    }
    assert writers == {"genomebus-consent"}


def test_every_deployment_is_its_own_kafka_user_over_verified_tls(m: Manifests) -> None:
    users = {u["metadata"]["name"] for u in m.of("KafkaUser")}
    for deployment in m.deployments():
        service, name = service_of(deployment), deployment["metadata"]["name"]
        env = m.container_env(deployment)
        user = env["GENOMEBUS_KAFKA_SASL_USERNAME"]["value"]
        assert user == f"genomebus-{service}" and user in users, name
        # Strimzi's User Operator makes a Secret named after the KafkaUser, key `password`
        assert env["GENOMEBUS_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": user,
            "key": "password",
        }, name
        secret = (
            {"pseudonym_key": "x" * 64}
            if "pseudonym_key" in settings_class(service).model_fields
            else {}
        )
        settings = load_settings(m, deployment, **secret, **database_secrets(service))
        assert (
            settings.kafka_security_protocol == "SASL_SSL" and settings.kafka_sasl_username == user
        )
        cafile = Path(settings.kafka_ssl_cafile)
        spec = deployment["spec"]["template"]["spec"]
        mounts = {v["mountPath"]: v["name"] for v in only_container(deployment)["volumeMounts"]}
        volume = next(v for v in spec["volumes"] if v["name"] == mounts[str(cafile.parent)])
        assert volume["secret"]["secretName"] == _cluster_ca_secret(m), name
        assert {"key": "ca.crt", "path": cafile.name} in volume["secret"]["items"], name


def test_keda_reads_the_lag_as_the_scaled_service(m: Manifests) -> None:
    auths = {a["metadata"]["name"]: a["spec"] for a in m.of("TriggerAuthentication")}
    bootstrap = m.configmap("genomebus-common")["data"]["GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS"]
    for scaled in m.of("ScaledObject"):
        deployment = m.get("Deployment", scaled["spec"]["scaleTargetRef"]["name"])
        container = only_container(deployment)
        env = m.container_env(deployment)
        for trigger in scaled["spec"]["triggers"]:
            meta = trigger["metadata"]
            assert meta["bootstrapServers"] == bootstrap
            assert (meta["sasl"], meta["tls"]) == ("scram_sha512", "enable")
            auth = auths[trigger["authenticationRef"]["name"]]
            (username,) = [e for e in auth["env"] if e["parameter"] == "username"]
            assert username["containerName"] == container["name"]
            assert username["name"] == "GENOMEBUS_KAFKA_SASL_USERNAME"
            refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["secretTargetRef"]}
            password = env["GENOMEBUS_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
            assert refs["password"] == (password["name"], password["key"])
            assert refs["ca"] == (_cluster_ca_secret(m), "ca.crt")


# ================================================================================================
# settings, secrets, engines
# ================================================================================================


def test_every_variable_is_a_setting_the_service_reads(m: Manifests) -> None:
    """pydantic ignores unknown variables, so a misspelt name would silently do nothing."""
    for deployment in m.deployments():
        service = service_of(deployment)
        fields = {f"GENOMEBUS_{n.upper()}" for n in settings_class(service).model_fields}
        unknown = {n for n in m.container_env(deployment) if n.startswith("GENOMEBUS_")} - fields
        assert not unknown, (
            f"{deployment['metadata']['name']} sets variables {service} never reads: {unknown}"
        )
        assert literal_settings(m, deployment)["GENOMEBUS_SERVICE_NAME"] == service
        secret = {
            n: "x" * 64
            for n in ("pseudonym_key",)
            if "pseudonym_key" in settings_class(service).model_fields
        }
        load_settings(
            m, deployment, **secret, **database_secrets(service)
        )  # every literal value parses


def database_secrets(service: str) -> dict[str, str]:
    """What the DSN Secrets hold, as deploy/k8s/README.md says to create them."""
    if service not in DB_SERVICES:
        return {}
    tls = f"sslmode=verify-full&sslrootcert={POSTGRES_CA}"
    return {
        "postgres_dsn": f"postgresql://genomebus_{service}_runtime:pw@genomebus-pg-rw:5432/"
        f"genomebus_{service}?{tls}"
    }


def secret_of(env: dict[str, dict[str, Any]], name: str) -> str:
    return env[name]["valueFrom"]["secretKeyRef"]["name"]


def migrate_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (init,) = deployment["spec"]["template"]["spec"].get("initContainers", [])
    assert init["name"] == "migrate"
    return init


def test_database_secrets_roles_and_databases_line_up(m: Manifests) -> None:
    """Two roles per database: the owner only in the migrate step, the runtime role in the
    service; each DSN comes from its role's own Secret."""
    (cluster,) = m.of("Cluster")
    managed = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    roles = {name: r["passwordSecret"]["name"] for name, r in managed.items()}
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    roles[initdb["owner"]] = initdb["secret"]["name"]
    databases = {d["spec"]["name"]: d["spec"]["owner"] for d in m.of("Database")}
    databases[initdb["database"]] = initdb["owner"]
    for d in m.of("Database"):
        assert d["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    for service in DB_SERVICES:
        db, owner, runtime = (
            f"genomebus_{service}",
            f"genomebus_{service}",
            f"genomebus_{service}_runtime",
        )
        assert databases.get(db) == owner, f"{service}: its own database, owned by its own role"
        role = managed[runtime]
        assert role["login"] is True and role.get("ensure", "present") == "present"
        assert not any(
            role.get(a) for a in ("superuser", "createdb", "createrole", "replication", "inRoles")
        ), f"{runtime}: plain LOGIN only"
        assert roles[runtime] != roles[owner]
        (deployment,) = m.deployments(service)
        env = m.container_env(deployment)
        assert secret_of(env, "GENOMEBUS_POSTGRES_DSN") == roles[runtime], (
            f"{service} runs as {runtime}"
        )
        assert "GENOMEBUS_POSTGRES_MIGRATE_DSN" not in env, (
            f"{service}: the owner only in the migrate step"
        )
        assert roles[owner] not in {
            source["valueFrom"]["secretKeyRef"]["name"]
            for source in env.values()
            if "secretKeyRef" in source.get("valueFrom", {})
        }
        init = migrate_container(deployment)
        init_env = m.container_env(deployment, init)
        assert init["command"] == ["genomebus-migrate"]
        assert init["image"] == only_container(deployment)["image"]
        assert literal_settings_of(init_env)["GENOMEBUS_SERVICE_NAME"] == service
        assert secret_of(init_env, "GENOMEBUS_POSTGRES_MIGRATE_DSN") == roles[owner]
        assert secret_of(init_env, "GENOMEBUS_POSTGRES_DSN") == roles[runtime]
    for service in SERVICES - DB_SERVICES:
        for deployment in m.deployments(service):
            assert "GENOMEBUS_POSTGRES_DSN" not in m.container_env(deployment)
            assert not deployment["spec"]["template"]["spec"].get("initContainers")


def literal_settings_of(env: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {k: v["value"] for k, v in env.items() if "value" in v}


def test_database_connections_verify_the_server_and_use_tls(m: Manifests) -> None:
    """sslmode=verify-full needs the cluster's CA in every pod that connects; the server
    refuses plain TCP; the settings (production profile) refuse a DSN without both."""
    from genomebus_common.runtime.migrate import MigrateSettings

    (cluster,) = m.of("Cluster")
    assert "hostnossl all all all reject" in cluster["spec"]["postgresql"]["pg_hba"]
    ca_secret = f"{cluster['metadata']['name']}-ca"  # CloudNativePG's server CA
    for service in DB_SERVICES:
        (deployment,) = m.deployments(service)
        pod = deployment["spec"]["template"]["spec"]
        volume = next(
            v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == ca_secret
        )
        assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}], "never ca.key"
        for container in (only_container(deployment), migrate_container(deployment)):
            mount = next(v for v in container["volumeMounts"] if v["name"] == volume["name"])
            assert Path(mount["mountPath"]) / "ca.crt" == Path(POSTGRES_CA) and mount["readOnly"]
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
        env = literal_settings_of(m.container_env(deployment, migrate_container(deployment)))
        assert env.get("GENOMEBUS_PROFILE", "production") == "production"
        prefix = "GENOMEBUS_"
        values = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
        owner_dsn = database_secrets(service)["postgres_dsn"].replace("_runtime:pw", ":ownerpw")
        MigrateSettings(
            _env_file=None,
            **values,
            **database_secrets(service),  # type: ignore[call-arg]
            postgres_migrate_dsn=owner_dsn,
        )
        with pytest.raises(ValueError, match="verify-full"):
            MigrateSettings(
                _env_file=None,
                **values,  # type: ignore[call-arg]
                postgres_dsn=f"postgresql://r:pw@genomebus-pg-rw:5432/genomebus_{service}",
                postgres_migrate_dsn=owner_dsn,
            )
    readme = (K8S_DIR / "README.md").read_text()
    assert f"sslrootcert={POSTGRES_CA}" in readme and "sslmode=verify-full" in readme


def test_pseudonym_key_is_one_secret_for_ingest_and_consent_only(m: Manifests) -> None:
    refs = {}
    for deployment in m.deployments():
        env = m.container_env(deployment)
        if "GENOMEBUS_PSEUDONYM_KEY" in env:
            ref = env["GENOMEBUS_PSEUDONYM_KEY"]["valueFrom"]["secretKeyRef"]
            refs[service_of(deployment)] = (ref["name"], ref["key"])
    assert set(refs) == {"ingest", "consent"}
    assert len(set(refs.values())) == 1
    versions = {
        literal_settings(m, d).get("GENOMEBUS_PSEUDONYM_KEY_VERSION")
        for d in m.deployments()
        if service_of(d) in refs
    }
    assert len(versions) == 1, f"ingest and consent use different key versions: {versions}"


def test_s3_user_is_the_tenants_and_every_bucket_exists(m: Manifests) -> None:
    from genomebus_common.runtime.settings import ObjectStoreSettings
    from genomebus_common.stagekit.reference import REFERENCE_BUCKET

    (tenant,) = m.of("Tenant")
    users = {u["name"] for u in tenant["spec"]["users"]}
    for deployment in m.deployments():
        env = m.container_env(deployment)
        if not issubclass(settings_class(service_of(deployment)), ObjectStoreSettings):
            # least privilege: a service that keeps no objects gets neither keys nor address
            assert not {n for n in env if n.startswith("GENOMEBUS_S3_")}
            assert not any(
                ref.get("configMapRef", {}).get("name") == "genomebus-object-store"
                for container in deployment["spec"]["template"]["spec"]["containers"]
                for ref in container.get("envFrom", [])
            )
            continue
        access = env["GENOMEBUS_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]
        secret = env["GENOMEBUS_S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"]
        # the MinIO operator creates the user from these keys of the user's Secret
        assert (access["key"], secret["key"]) == ("CONSOLE_ACCESS_KEY", "CONSOLE_SECRET_KEY")
        assert access["name"] == secret["name"] and access["name"] in users
    wanted = {REFERENCE_BUCKET}
    for service in ("ingest", "alignment", "calling"):
        for field_name, field in settings_class(service).model_fields.items():
            if field_name.endswith("_bucket"):
                wanted.add(field.default)
    assert wanted <= {b["name"] for b in tenant["spec"]["buckets"]}
    assert "GENOMEBUS_S3_ENDPOINT" not in m.configmap("genomebus-common")["data"]
    endpoint = m.configmap("genomebus-object-store")["data"]["GENOMEBUS_S3_ENDPOINT"]
    assert endpoint == ("minio:443" if tenant["spec"].get("requestAutoCert", True) else "minio:80")


# ================================================================================================
# the heat controller
# ================================================================================================


def test_heat_controller_settings_steer_the_research_lane(m: Manifests) -> None:
    from genomebus_heat.core.demand import parse_forecast
    from genomebus_heat.core.recovery import RECOVERY_KEY

    (deployment,) = m.deployments("heat")
    container = only_container(deployment)
    assert container["image"].split(":")[0] == "genomebus/heat"
    assert container["command"] == ["genomebus-heat"]
    settings = load_settings(m, deployment)
    research = m.get("ScaledObject", settings.heat_scaledobject)
    assert research["spec"]["scaleTargetRef"]["name"] == LANE_DEPLOYMENT[Priority.RESEARCH]
    lane = SAMPLE_RECEIVED_LANES[Priority.RESEARCH]
    trigger = research["spec"]["triggers"][0]["metadata"]
    assert (settings.heat_research_topic, settings.heat_research_group) == (
        trigger["topic"],
        trigger["consumerGroup"],
    )
    assert (
        settings.heat_min_replicas
        <= research["spec"]["maxReplicaCount"]
        <= settings.heat_max_replicas
    )
    assert settings.heat_max_replicas <= lane.partitions
    retention_ms = next(t for t in m.of("KafkaTopic") if t["spec"]["topicName"] == lane.name)[
        "spec"
    ]["config"]["retention.ms"]
    assert settings.heat_max_research_wait_s * 1000 < retention_ms, (
        "research samples would age out first"
    )
    demand = m.get("ConfigMap", settings.heat_demand_configmap)
    parse_forecast(demand["data"])  # the sample forecast is one the controller accepts
    # the recovery table it writes reaches the CPU-heavy pods as a live (no subPath) volume
    for worker in (d for d in m.deployments() if service_of(d) in CPU_HEAVY):
        pod = worker["spec"]["template"]["spec"]
        env = m.container_env(worker)
        assert env["GENOMEBUS_NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
        path = Path(env["GENOMEBUS_HEAT_RECOVERY_FILE"]["value"])
        assert path.name == RECOVERY_KEY
        volume = next(
            v
            for v in pod["volumes"]
            if v.get("configMap", {}).get("name") == settings.heat_recovery_configmap
        )
        assert volume["configMap"].get("optional") is True, (
            "pods start before the controller writes it"
        )
        mount = next(
            v for v in only_container(worker)["volumeMounts"] if v["name"] == volume["name"]
        )
        assert Path(mount["mountPath"]) == path.parent and "subPath" not in mount
        assert float(env["GENOMEBUS_ENERGY_WATTS_PER_CORE"]["value"]) > 0


def _allowed(
    rules: list[dict[str, Any]], group: str, resource: str, verb: str, name: str | None
) -> bool:
    return any(
        group in r.get("apiGroups", [])
        and resource in r["resources"]
        and verb in r["verbs"]
        and (not r.get("resourceNames") or name in r["resourceNames"])
        for r in rules
    )


def test_heat_controller_rbac_is_what_it_calls_and_no_more(m: Manifests) -> None:
    (deployment,) = m.deployments("heat")
    settings = load_settings(m, deployment)
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    namespace = m.get("Namespace", "genomebus")["metadata"]["name"]

    def bound(kind: str, binding_kind: str) -> list[dict[str, Any]]:
        rules = []
        for b in m.of(binding_kind):
            if any(
                s["kind"] == "ServiceAccount"
                and s["name"] == account
                and s.get("namespace", namespace) == namespace
                for s in b["subjects"]
            ):
                assert b["roleRef"]["kind"] == kind
                rules += m.get(kind, b["roleRef"]["name"])["rules"]
        return rules

    role, cluster = bound("Role", "RoleBinding"), bound("ClusterRole", "ClusterRoleBinding")
    so, demand, recovery = (
        settings.heat_scaledobject,
        settings.heat_demand_configmap,
        settings.heat_recovery_configmap,
    )
    for verb in ("get", "patch"):
        assert _allowed(role, "keda.sh", "scaledobjects", verb, so)
        assert not _allowed(
            role, "keda.sh", "scaledobjects", verb, LANE_DEPLOYMENT[Priority.URGENT_CLINICAL]
        )
    assert _allowed(role, "", "configmaps", "get", demand)
    assert not _allowed(role, "", "configmaps", "patch", demand), "the forecast is the importer's"
    for verb in ("get", "patch", "create"):
        assert _allowed(role, "", "configmaps", verb, recovery)
    assert _allowed(cluster, "", "nodes", "list", None)
    assert not any(set(r["verbs"]) - {"get", "list", "watch"} for r in cluster), (
        "nodes are read-only"
    )
    assert not any(
        "secrets" in r["resources"] or "*" in r["resources"] + r["verbs"] for r in role + cluster
    )
