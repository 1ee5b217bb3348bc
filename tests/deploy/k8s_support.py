"""Helpers for the Kubernetes manifest tests: rendering, schemas, small lookups.

Rendering uses the pinned kustomize that ``genomebus stack install`` builds (never a kubectl that
may or may not be on the machine); when it is missing the tests fail, they never skip.

Schemas:
- core kinds: kubernetes-validate's bundled OpenAPI schemas, strict (unknown fields are errors);
- KEDA ScaledObject and TriggerAuthentication, the Prometheus Operator's PodMonitor: the CRDs
  those projects publish in their Go modules, obtained with ``go mod download`` (pinned version
  and file SHA-256, cached in the tools dir, like the Compose schema in compose_spec.py) and
  made strict the way kubeconform does it (``additionalProperties: false`` on every object that
  lists its properties), because a real API server silently prunes unknown fields of a CRD;
- Strimzi, MinIO Tenant and CloudNativePG: their CRDs are in no package registry this project
  can use (Strimzi's Maven `api` jar has model classes, not CRDs; the MinIO operator's and
  CloudNativePG's Go modules are not served), so operator_schemas.py describes the fields these
  manifests use, strictly.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .compose_spec import SchemaUnavailable, _go_env, tools_dir

REPO = Path(__file__).resolve().parents[2]
K8S_DIR = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "production")

# The Kubernetes version the manifests are validated against (kubernetes-validate ships it).
KUBERNETES_VERSION = "1.33.0"


@dataclass(frozen=True)
class CrdSource:
    module: str
    version: str
    path: str
    sha256: str
    kind: str


CRD_SOURCES = (
    CrdSource(
        "github.com/kedacore/keda/v2",
        "v2.18.1",
        "config/crd/bases/keda.sh_scaledobjects.yaml",
        "44e8d3444bb884ed5c8dc4f1b118944a54fe9c81534048793c20b9394ae1de2c",
        "ScaledObject",
    ),
    CrdSource(
        "github.com/kedacore/keda/v2",
        "v2.18.1",
        "config/crd/bases/keda.sh_triggerauthentications.yaml",
        "e0849ab935c926e88413060ae7f262268d23f5bfcf6df85bbc6708e882ac11c6",
        "TriggerAuthentication",
    ),
    CrdSource(
        "github.com/prometheus-operator/prometheus-operator",
        "v0.85.0",
        "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
        "8ce88c52c51209993511cae093089c9525f5552def88119e3f559123ee9d454b",
        "PodMonitor",
    ),
    CrdSource(
        "github.com/prometheus-operator/prometheus-operator",
        "v0.85.0",
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
        "98fd16c9ab79fba8dcd6ef62c957c98cd6546ab74ce0a4ecf09ddf2fda03020e",
        "PrometheusRule",
    ),
)


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------


def kustomize_binary() -> Path:
    from genomebus_devstack import kustomize
    from genomebus_devstack.procs import StackError

    try:
        return kustomize.binary()
    except StackError as exc:
        raise AssertionError(str(exc)) from None


def render(target: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [str(kustomize_binary()), "build", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"kustomize build {target} failed:\n{proc.stderr}"
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert docs, f"kustomize build {target} rendered nothing"
    return docs


class Manifests:
    """One rendered overlay, with lookups by kind and name."""

    def __init__(self, name: str, docs: list[dict[str, Any]]) -> None:
        self.name = name
        self.docs = docs

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.of(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: expected one {kind} {name}, found {len(found)}"
        return found[0]

    def configmap(self, base_name: str) -> dict[str, Any]:
        """A generated ConfigMap by its name without kustomize's hash suffix."""
        found = [d for d in self.of("ConfigMap") if _unhash(d["metadata"]["name"]) == base_name]
        assert len(found) == 1, (
            f"{self.name}: expected one ConfigMap {base_name}*, found {len(found)}"
        )
        return found[0]

    def deployments(self, service: str | None = None) -> list[dict[str, Any]]:
        return [d for d in self.of("Deployment") if service is None or service_of(d) == service]

    def container_env(
        self, deployment: dict[str, Any], container: dict[str, Any] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Every variable the (only) container sees, or ``container`` (an init container):
        {name: {"value"|"configMap"|"valueFrom"}}."""
        container = container if container is not None else only_container(deployment)
        env: dict[str, dict[str, Any]] = {}
        for source in container.get("envFrom", []):
            ref = source["configMapRef"]["name"]
            cm = next(d for d in self.of("ConfigMap") if d["metadata"]["name"] == ref)
            for key, value in cm.get("data", {}).items():
                env[key] = {"configMap": cm["metadata"]["name"], "value": value}
        for item in container.get("env", []):
            env[item["name"]] = {k: v for k, v in item.items() if k != "name"}
        return env


def _unhash(name: str) -> str:
    return re.sub(r"-[a-z0-9]{10}$", "", name)


def service_of(deployment: dict[str, Any]) -> str:
    return deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]


def only_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{deployment['metadata']['name']}: {len(containers)} containers"
    return containers[0]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Does a LabelSelector (matchLabels and matchExpressions) select these labels?"""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        present, value = expr["key"] in labels, labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and present and value in expr["values"]:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
SUFFIX = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: str | int | float) -> float:
    match = QUANTITY.match(str(value))
    assert match and match[2] in SUFFIX, f"not a quantity: {value!r}"
    return float(match[1]) * SUFFIX[match[2]]


# --------------------------------------------------------------------------------------------
# CRD schemas from Go modules
# --------------------------------------------------------------------------------------------


def crd_file(source: CrdSource) -> Path:
    gomodcache = tools_dir() / "go" / "mod"
    # Module cache paths escape upper case as '!' + lower case.
    escaped = re.sub(r"[A-Z]", lambda m: "!" + m[0].lower(), source.module)
    cached = gomodcache / f"{escaped}@{source.version}" / source.path
    if not cached.is_file():
        go = shutil.which("go")
        if go is None:
            raise SchemaUnavailable(f"{cached} is not cached and `go` is not installed")
        gomodcache.mkdir(parents=True, exist_ok=True)
        ref = f"{source.module}@{source.version}"
        proc = subprocess.run(
            [go, "mod", "download", "-json", ref],
            env=_go_env(gomodcache),
            cwd=gomodcache,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        info = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
        if proc.returncode != 0 or "Dir" not in info or info.get("Error"):
            raise SchemaUnavailable(
                f"go mod download {ref} failed: {info.get('Error') or proc.stderr.strip()}"
            )
        cached = Path(info["Dir"]) / source.path
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    if digest != source.sha256:
        raise SchemaUnavailable(f"{cached} has sha256 {digest}, expected {source.sha256}")
    return cached


def _strict(schema: Any) -> Any:
    """Unknown fields become errors (kubeconform's --strict for CRDs)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            out.get("type") == "object"
            and "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def crd_validators() -> dict[tuple[str, str], Any]:
    """{(apiVersion, kind): jsonschema validator} for every CRD in CRD_SOURCES."""
    from jsonschema import Draft202012Validator

    validators = {}
    for source in CRD_SOURCES:
        crd = yaml.safe_load(crd_file(source).read_text())
        group = crd["spec"]["group"]
        assert crd["spec"]["names"]["kind"] == source.kind
        for version in crd["spec"]["versions"]:
            schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            schema = _strict(schema)
            # apiVersion/kind/metadata are checked by the API server itself, not the CRD.
            schema["properties"]["metadata"] = {"type": "object"}
            validators[(f"{group}/{version['name']}", source.kind)] = Draft202012Validator(schema)
    return validators


def errors(validator: Any, document: Any) -> list[str]:
    found = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in found]


def names(items: Iterable[dict[str, Any]]) -> set[str]:
    return {i["metadata"]["name"] for i in items}
