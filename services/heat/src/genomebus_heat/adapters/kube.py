"""The few Kubernetes API calls the controller makes, over plain HTTPS with httpx.

Four verbs on three kinds: get and merge-patch a KEDA ScaledObject, get, create and merge-patch
a ConfigMap, list Nodes. A JSON merge patch (RFC 7386) names only the fields it changes, so the
controller never overwrites what the manifests or KEDA own in the same object.

In a pod the service account's token, CA and the ``KUBERNETES_SERVICE_HOST``/``_PORT``
variables locate and authenticate the API server. The token is re-read for every request:
projected service-account tokens expire (about an hour) and the kubelet rotates the file.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MERGE_PATCH = "application/merge-patch+json"
KEDA_SCALEDOBJECTS = "/apis/keda.sh/v1alpha1/namespaces/{namespace}/scaledobjects/{name}"
CONFIGMAPS = "/api/v1/namespaces/{namespace}/configmaps"
NODES = "/api/v1/nodes"


class KubeError(RuntimeError):
    """The API server answered with an error status (the message carries its explanation)."""

    def __init__(self, status: int, method: str, path: str, detail: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {detail}")
        self.status = status


def _path(template: str, **parts: str) -> str:
    return template.format(**{k: quote(v, safe="") for k, v in parts.items()})


class KubeClient:
    """An async client for the controller's calls; one per process, closed with ``aclose``."""

    def __init__(
        self,
        base_url: str,
        token: Callable[[], str | None] = lambda: None,
        *,
        verify: ssl.SSLContext | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._token = token
        self._http = httpx.AsyncClient(
            base_url=base_url, verify=verify, transport=transport, timeout=timeout_s
        )

    @classmethod
    def in_cluster(cls, account_dir: Path = SERVICE_ACCOUNT_DIR) -> KubeClient:
        """The API server this pod's service account talks to."""
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise RuntimeError(
                "KUBERNETES_SERVICE_HOST is not set: the heat controller runs inside a cluster"
            )
        if ":" in host:  # an IPv6 service address needs brackets in a URL
            host = f"[{host}]"
        token_file = account_dir / "token"

        def token() -> str | None:
            return token_file.read_text().strip()

        context = ssl.create_default_context(cafile=str(account_dir / "ca.crt"))
        return cls(f"https://{host}:{port}", token, verify=context)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content_type: str | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = {"Accept": "application/json"}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        kwargs: dict[str, Any] = {"headers": headers, "params": params}
        if json_body is not None:
            kwargs["content"] = json.dumps(json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        return await self._http.request(method, path, **kwargs)

    @staticmethod
    def _check(response: httpx.Response) -> dict[str, Any]:
        if response.is_success:
            body: dict[str, Any] = response.json()
            return body
        try:
            detail = response.json().get("message") or response.text
        except ValueError:
            detail = response.text
        raise KubeError(
            response.status_code, response.request.method, response.request.url.path, detail[:500]
        )

    async def get_scaled_object(self, namespace: str, name: str) -> dict[str, Any]:
        path = _path(KEDA_SCALEDOBJECTS, namespace=namespace, name=name)
        return self._check(await self._request("GET", path))

    async def patch_scaled_object(
        self,
        namespace: str,
        name: str,
        *,
        max_replicas: int,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Set spec.maxReplicaCount (and annotations) and nothing else."""
        body: dict[str, Any] = {"spec": {"maxReplicaCount": max_replicas}}
        if annotations:
            body["metadata"] = {"annotations": annotations}
        path = _path(KEDA_SCALEDOBJECTS, namespace=namespace, name=name)
        return self._check(
            await self._request("PATCH", path, json_body=body, content_type=MERGE_PATCH)
        )

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The ConfigMap, or None when there is none (a missing forecast is not an error)."""
        path = _path(CONFIGMAPS, namespace=namespace) + "/" + quote(name, safe="")
        response = await self._request("GET", path)
        if response.status_code == 404:
            return None
        return self._check(response)

    async def create_configmap(
        self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "data": data,
        }
        path = _path(CONFIGMAPS, namespace=namespace)
        return self._check(await self._request("POST", path, json_body=body))

    async def patch_configmap_data(
        self, namespace: str, name: str, data: dict[str, str]
    ) -> dict[str, Any]:
        """Merge ``data`` into the ConfigMap's data (other keys are left as they are)."""
        path = _path(CONFIGMAPS, namespace=namespace) + "/" + quote(name, safe="")
        return self._check(
            await self._request("PATCH", path, json_body={"data": data}, content_type=MERGE_PATCH)
        )

    async def list_nodes(self, page_size: int = 500) -> list[dict[str, Any]]:
        """Every Node, following the API's ``continue`` pages."""
        nodes: list[dict[str, Any]] = []
        params = {"limit": str(page_size)}
        while True:
            page = self._check(await self._request("GET", NODES, params=params))
            nodes.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return nodes
            params = {"limit": str(page_size), "continue": token}
