"""A small in-memory Kubernetes API server for the controller's calls, as an httpx transport.

It keeps objects by path, applies JSON merge patches (RFC 7386) the way the API server does,
records every request (method, path, content type, parsed body, bearer token), and can be told
to fail the next requests to a path, so tests check exact wire traffic and error handling.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

SO_PATH = "/apis/keda.sh/v1alpha1/namespaces/{ns}/scaledobjects/{name}"
CM_PATH = "/api/v1/namespaces/{ns}/configmaps/{name}"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class Call:
    method: str
    path: str
    content_type: str | None
    body: Any
    token: str | None
    params: dict[str, str]


@dataclass
class FakeKube:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)  # path -> statuses to return
    node_page_size: int | None = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def add_scaled_object(
        self,
        ns: str,
        name: str,
        max_replicas: int | None,
        *,
        min_replicas: int | None = None,
        annotations: dict[str, str] | None = None,
    ) -> str:
        spec: dict[str, Any] = {"scaleTargetRef": {"name": name}, "triggers": [{"type": "kafka"}]}
        if max_replicas is not None:
            spec["maxReplicaCount"] = max_replicas
        if min_replicas is not None:
            spec["minReplicaCount"] = min_replicas
        path = SO_PATH.format(ns=ns, name=name)
        self.objects[path] = {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
            "spec": spec,
        }
        return path

    def add_configmap(self, ns: str, name: str, data: dict[str, str]) -> str:
        path = CM_PATH.format(ns=ns, name=name)
        self.objects[path] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns},
            "data": data,
        }
        return path

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method != "GET"]

    @staticmethod
    def _status(code: int, message: str) -> httpx.Response:
        return httpx.Response(
            code, json={"kind": "Status", "status": "Failure", "message": message, "code": code}
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        auth = request.headers.get("authorization", "")
        body = json.loads(request.content) if request.content else None
        self.calls.append(
            Call(
                request.method,
                path,
                request.headers.get("content-type"),
                body,
                auth.removeprefix("Bearer ") or None,
                dict(request.url.params),
            )
        )
        queued = self.failures.get(path)
        if queued:
            return self._status(queued.pop(0), f"injected failure on {path}")
        if request.method == "GET" and path == "/api/v1/nodes":
            return self._nodes(request)
        if request.method == "GET":
            if path in self.objects:
                return httpx.Response(200, json=self.objects[path])
            return self._status(404, f"{path} not found")
        if request.method == "PATCH":
            return self._patch(request, path, body)
        if request.method == "POST" and path.endswith("/configmaps"):
            return self._create(path, body)
        return self._status(405, "not supported by the fake")

    def _patch(self, request: httpx.Request, path: str, body: Any) -> httpx.Response:
        if request.headers.get("content-type") != "application/merge-patch+json":
            return self._status(415, "unsupported patch type")
        if path not in self.objects:
            return self._status(404, f"{path} not found")
        self.objects[path] = merge_patch(self.objects[path], body)
        return httpx.Response(200, json=self.objects[path])

    def _create(self, path: str, body: Any) -> httpx.Response:
        created = f"{path}/{body['metadata']['name']}"
        if created in self.objects:
            return self._status(409, "already exists")
        self.objects[created] = body
        return httpx.Response(201, json=body)

    def _nodes(self, request: httpx.Request) -> httpx.Response:
        size = self.node_page_size or len(self.nodes) or 1
        start = int(request.url.params.get("continue") or 0)
        page = self.nodes[start : start + size]
        more = start + size < len(self.nodes)
        return httpx.Response(
            200,
            json={
                "kind": "NodeList",
                "items": page,
                "metadata": {"continue": str(start + size)} if more else {},
            },
        )
