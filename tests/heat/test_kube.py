"""The Kubernetes client's exact wire traffic: paths, verbs, content types, bodies, tokens."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from genomebus_heat.adapters.kube import KubeClient, KubeError

from .fake_kube import FakeKube

NS = "genomebus"


def client(fake: FakeKube, token: str | None = "t0k3n") -> KubeClient:
    return KubeClient("https://kube.test", lambda: token, transport=fake.transport())


async def test_scaled_object_patch_is_a_merge_patch_of_only_the_ceiling_and_annotations() -> None:
    fake = FakeKube()
    path = fake.add_scaled_object(NS, "alignment-research", 6, min_replicas=1)
    kube = client(fake)
    await kube.patch_scaled_object(
        NS,
        "alignment-research",
        max_replicas=3,
        annotations={"genomebus.dk/heat-reason": "heat demand 0.40"},
    )
    (call,) = fake.calls
    assert call.method == "PATCH"
    assert (
        call.path == "/apis/keda.sh/v1alpha1/namespaces/genomebus/scaledobjects/alignment-research"
    )
    assert call.content_type == "application/merge-patch+json"
    assert call.body == {
        "spec": {"maxReplicaCount": 3},
        "metadata": {"annotations": {"genomebus.dk/heat-reason": "heat demand 0.40"}},
    }
    assert call.token == "t0k3n"
    # What the manifests own is untouched.
    stored = fake.objects[path]
    assert stored["spec"] == {
        "scaleTargetRef": {"name": "alignment-research"},
        "triggers": [{"type": "kafka"}],
        "maxReplicaCount": 3,
        "minReplicaCount": 1,
    }
    await kube.aclose()


async def test_configmap_calls() -> None:
    fake = FakeKube()
    kube = client(fake)
    assert await kube.get_configmap(NS, "genomebus-heat-recovery") is None  # 404 is "none"
    await kube.create_configmap(
        NS,
        "genomebus-heat-recovery",
        {"recovery.json": "{}\n"},
        {"app.kubernetes.io/managed-by": "genomebus-heat"},
    )
    await kube.patch_configmap_data(NS, "genomebus-heat-recovery", {"recovery.json": '{"a": 1}'})
    get, post, patch = fake.calls
    assert (get.method, get.path) == (
        "GET",
        "/api/v1/namespaces/genomebus/configmaps/genomebus-heat-recovery",
    )
    assert (post.method, post.path) == ("POST", "/api/v1/namespaces/genomebus/configmaps")
    assert post.content_type == "application/json"
    assert post.body == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "genomebus-heat-recovery",
            "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": "genomebus-heat"},
        },
        "data": {"recovery.json": "{}\n"},
    }
    assert (patch.method, patch.path) == (
        "PATCH",
        "/api/v1/namespaces/genomebus/configmaps/genomebus-heat-recovery",
    )
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body == {"data": {"recovery.json": '{"a": 1}'}}
    await kube.aclose()


async def test_errors_carry_the_api_servers_message() -> None:
    fake = FakeKube()
    path = fake.add_scaled_object(NS, "alignment-research", 6)
    fake.failures[path] = [403]
    kube = client(fake)
    with pytest.raises(KubeError, match="HTTP 403: injected failure") as caught:
        await kube.get_scaled_object(NS, "alignment-research")
    assert caught.value.status == 403
    with pytest.raises(KubeError, match="HTTP 404"):
        await kube.patch_scaled_object(NS, "missing", max_replicas=2)
    await kube.aclose()


async def test_list_nodes_follows_continue_pages() -> None:
    fake = FakeKube(nodes=[{"metadata": {"name": f"n{i}"}} for i in range(5)], node_page_size=2)
    kube = client(fake)
    nodes = await kube.list_nodes(page_size=2)
    assert [n["metadata"]["name"] for n in nodes] == ["n0", "n1", "n2", "n3", "n4"]
    assert [c.params for c in fake.calls] == [
        {"limit": "2"},
        {"limit": "2", "continue": "2"},
        {"limit": "2", "continue": "4"},
    ]
    await kube.aclose()


async def test_token_is_read_for_every_request() -> None:
    """Projected service-account tokens rotate: a token cached at start-up expires."""
    fake = FakeKube()
    fake.add_scaled_object(NS, "so", 2)
    tokens = iter(["first", "second"])
    kube = KubeClient("https://kube.test", lambda: next(tokens), transport=fake.transport())
    await kube.get_scaled_object(NS, "so")
    await kube.get_scaled_object(NS, "so")
    assert [c.token for c in fake.calls] == ["first", "second"]
    await kube.aclose()


def test_in_cluster_needs_the_service_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(RuntimeError, match="KUBERNETES_SERVICE_HOST"):
        KubeClient.in_cluster()


# --- in-cluster wiring over real TLS: a tiny HTTPS API server with its own CA ----------------


@pytest.fixture
def tls_api(tmp_path: Path) -> Iterator[tuple[int, Path, list[dict[str, Any]]]]:
    """(port, service-account dir, recorded requests) of a local HTTPS server."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(account / "ca.crt"),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    (account / "token").write_text("sa-token-1\n")
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:
            length = int(self.headers.get("content-length", 0))
            seen.append(
                {
                    "path": self.path,
                    "auth": self.headers.get("authorization"),
                    "type": self.headers.get("content-type"),
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            payload = b'{"kind": "ScaledObject"}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(account / "ca.crt", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], account, seen
    finally:
        server.shutdown()
        server.server_close()


async def test_in_cluster_client_verifies_the_ca_and_sends_the_token(
    tls_api: tuple[int, Path, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, account, seen = tls_api
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(port))
    kube = KubeClient.in_cluster(account)
    await kube.patch_scaled_object(NS, "alignment-research", max_replicas=4)
    (account / "token").write_text("sa-token-2\n")  # the kubelet rotated it
    await kube.patch_scaled_object(NS, "alignment-research", max_replicas=5)
    await kube.aclose()
    assert seen == [
        {
            "path": "/apis/keda.sh/v1alpha1/namespaces/genomebus/scaledobjects/alignment-research",
            "auth": "Bearer sa-token-1",
            "type": "application/merge-patch+json",
            "body": {"spec": {"maxReplicaCount": 4}},
        },
        {
            "path": "/apis/keda.sh/v1alpha1/namespaces/genomebus/scaledobjects/alignment-research",
            "auth": "Bearer sa-token-2",
            "type": "application/merge-patch+json",
            "body": {"spec": {"maxReplicaCount": 5}},
        },
    ]


async def test_in_cluster_client_refuses_a_server_its_ca_did_not_sign(
    tls_api: tuple[int, Path, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    port, account, seen = tls_api
    other = tmp_path / "other"
    other.mkdir()
    await asyncio.to_thread(
        subprocess.run,
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(other / "key.pem"),
            "-out",
            str(other / "ca.crt"),
            "-subj",
            "/CN=other",
        ],
        check=True,
        capture_output=True,
    )
    (other / "token").write_text("secret")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(port))
    kube = KubeClient.in_cluster(other)
    with pytest.raises(httpx.ConnectError):
        await kube.patch_scaled_object(NS, "alignment-research", max_replicas=4)
    await kube.aclose()
    assert seen == [], "the token must never reach an unverified server"
