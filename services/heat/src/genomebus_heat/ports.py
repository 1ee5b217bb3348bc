"""What the controller needs of the world, as protocols: the Kubernetes API (``KubeApi``) and
the research lane's backlog (``BacklogMeter``). The adapters serve them over HTTPS and Kafka;
``adapters/memory.py`` serves them from memory for tests."""

from __future__ import annotations

from typing import Any, Protocol

from .core.backlog import Backlog


class KubeApi(Protocol):
    """The few calls the controller makes; objects are the API's JSON, as dicts."""

    async def get_scaled_object(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def patch_scaled_object(
        self,
        namespace: str,
        name: str,
        *,
        max_replicas: int,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]: ...

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def create_configmap(
        self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str] | None = None
    ) -> dict[str, Any]: ...

    async def patch_configmap_data(
        self, namespace: str, name: str, data: dict[str, str]
    ) -> dict[str, Any]: ...

    async def list_nodes(self) -> list[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


class BacklogMeter(Protocol):
    """Measures the research lane's backlog (raises when it cannot)."""

    async def measure(self) -> Backlog: ...
