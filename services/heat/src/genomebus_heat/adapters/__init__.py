"""The heat controller's adapters: the Kubernetes API over HTTPS (``kube``), the research
backlog from Kafka (``backlog``), the health endpoints (``http``), and in-memory stand-ins for
tests (``memory``)."""

from __future__ import annotations

import httpx
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]  # aiokafka ships no py.typed

from ..core.backlog import BacklogError
from .kube import KubeError

#: Failures these adapters raise in operation: logged in one line, without a traceback.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    httpx.HTTPError,
    KubeError,
    BacklogError,
    KafkaError,
)
