"""The controller's /healthz and /readyz (and /metrics), from its own small app.

The shared ``runtime.create_app`` is built around a Kafka broker with subscribers and creates
every topic at start-up; the controller consumes nothing and must not create topics, so it
serves the same endpoints, with the same answers' shape, from this app. Its lifespan runs the
control loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Response

from genomebus_common.runtime.service import add_metrics_endpoint

from ..controller import HeatController


def health_app(
    open_controller: Callable[[], AbstractAsyncContextManager[HeatController]],
    *,
    interval_s: float,
) -> FastAPI:
    """The app whose lifespan runs the controller that ``open_controller`` gives."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_controller() as controller:
            app.state.controller = controller
            stop = asyncio.Event()
            app.state.loop_task = asyncio.create_task(controller.run(stop), name="heat-controller")
            app.state.started = time.monotonic()
            try:
                yield
            finally:
                stop.set()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(app.state.loop_task, timeout=10)

    app = FastAPI(title="genomebus heat", lifespan=lifespan)
    # A round may take up to its timeout on top of the interval; beyond that the loop is stuck.
    stuck_after_s = 3 * interval_s + max(30.0, 2 * interval_s)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(response: Response) -> dict[str, Any]:
        """Alive = the loop task runs and finished a round recently (else restart the pod)."""
        controller: HeatController = app.state.controller
        task: asyncio.Task[None] = app.state.loop_task
        last = controller.status.last_round_end or app.state.started
        alive = not task.done() and time.monotonic() - last < stuck_after_s
        response.status_code = 200 if alive else 503
        return {"status": "ok" if alive else "stuck"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(response: Response) -> dict[str, Any]:
        """Ready = the last round's parts both succeeded (Kafka and the API server answer)."""
        status = app.state.controller.status
        checks = {"steer": status.steer.ok, "recovery": status.recovery.ok}
        ready = all(checks.values())
        response.status_code = 200 if ready else 503
        body: dict[str, Any] = {"ready": ready, "checks": checks}
        errors = {
            k: v.error
            for k, v in (("steer", status.steer), ("recovery", status.recovery))
            if v.error
        }
        if errors:
            body["errors"] = errors
        if status.last_decision is not None:
            body["ceiling"] = status.last_decision.ceiling
            body["reason"] = status.last_decision.reason
        return body

    add_metrics_endpoint(app)  # the PodMonitor scrapes every genomebus pod
    return app
