"""The heat controller's composition root: the Kubernetes client and the backlog probe built
from the settings, the controller over them, and the app that runs it.

Each adapter is made by a factory in ``Parts``; a test replaces one (``dataclasses.replace``),
or passes ``make_controller`` to ``create_app`` to build the whole controller itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fastapi import FastAPI

from .adapters import EXPECTED_ERRORS
from .adapters.backlog import BacklogProbe
from .adapters.http import health_app
from .adapters.kube import KubeClient
from .config import HeatSettings
from .controller import HeatController
from .ports import BacklogMeter, KubeApi


def in_cluster_kube(settings: HeatSettings) -> KubeApi:
    """The API server this pod's service account talks to."""
    return KubeClient.in_cluster()


def kafka_backlog(settings: HeatSettings) -> BacklogMeter:
    """The research lane's backlog, read from Kafka by alignment's research group."""
    return BacklogProbe(settings, settings.heat_research_topic, settings.heat_research_group)


@dataclass(frozen=True)
class Parts:
    """How each adapter is built; replace any to override it."""

    kube: Callable[[HeatSettings], KubeApi] = in_cluster_kube
    backlog: Callable[[HeatSettings], BacklogMeter] = kafka_backlog

    def controller(self, settings: HeatSettings) -> HeatController:
        return HeatController(
            settings,
            self.kube(settings),
            self.backlog(settings),
            expected_errors=EXPECTED_ERRORS,
        )


@contextlib.asynccontextmanager
async def running_controller(
    settings: HeatSettings, make: Callable[[HeatSettings], HeatController]
) -> AsyncIterator[HeatController]:
    """The controller, its Kubernetes client closed on the way out."""
    controller = make(settings)
    try:
        yield controller
    finally:
        await controller.kube.aclose()


def create_app(
    settings: HeatSettings,
    make_controller: Callable[[HeatSettings], HeatController] | None = None,
    parts: Parts | None = None,
) -> FastAPI:
    """The HTTP app whose lifespan runs the control loop (``make_controller`` for tests)."""
    make = make_controller or (parts or Parts()).controller
    return health_app(
        lambda: running_controller(settings, make), interval_s=settings.heat_interval_s
    )
