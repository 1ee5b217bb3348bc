"""The ports served from memory, for tests of the controller without an API server or Kafka.

``MemoryKube`` holds ScaledObjects and ConfigMaps by (namespace, name) and applies patches the
way the API server's JSON merge patch does for the fields the controller writes; ``calls``
records the writes. ``FixedBacklog`` answers with a set backlog, or raises a set error.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..core.backlog import Backlog
from .kube import KubeError


@dataclass
class MemoryKube:
    scaled_objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    configmaps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    #: Every write, in order: (verb, namespace, name).
    writes: list[tuple[str, str, str]] = field(default_factory=list)
    closed: bool = False

    async def get_scaled_object(self, namespace: str, name: str) -> dict[str, Any]:
        found = self.scaled_objects.get((namespace, name))
        if found is None:
            raise KubeError(404, "GET", f"scaledobjects/{name}", "not found")
        return copy.deepcopy(found)

    async def patch_scaled_object(
        self,
        namespace: str,
        name: str,
        *,
        max_replicas: int,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        target = self.scaled_objects[(namespace, name)]
        target.setdefault("spec", {})["maxReplicaCount"] = max_replicas
        if annotations:
            metadata = target.setdefault("metadata", {})
            metadata.setdefault("annotations", {}).update(annotations)
        self.writes.append(("patch-scaledobject", namespace, name))
        return copy.deepcopy(target)

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.configmaps.get((namespace, name))
        return None if found is None else copy.deepcopy(found)

    async def create_configmap(
        self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str] | None = None
    ) -> dict[str, Any]:
        if (namespace, name) in self.configmaps:
            raise KubeError(409, "POST", f"configmaps/{name}", "already exists")
        created = {"metadata": {"name": name, "labels": dict(labels or {})}, "data": dict(data)}
        self.configmaps[(namespace, name)] = created
        self.writes.append(("create-configmap", namespace, name))
        return copy.deepcopy(created)

    async def patch_configmap_data(
        self, namespace: str, name: str, data: dict[str, str]
    ) -> dict[str, Any]:
        target = self.configmaps[(namespace, name)]
        target.setdefault("data", {}).update(data)
        self.writes.append(("patch-configmap", namespace, name))
        return copy.deepcopy(target)

    async def list_nodes(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.nodes)

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class FixedBacklog:
    backlog: Backlog | None = None
    error: Exception | None = None

    async def measure(self) -> Backlog:
        if self.error is not None:
            raise self.error
        if self.backlog is None:
            raise RuntimeError("FixedBacklog has neither a backlog nor an error to give")
        return self.backlog
