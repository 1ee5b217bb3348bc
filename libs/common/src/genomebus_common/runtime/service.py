"""How a genomebus service process runs: the same skeleton for all five services.

One process holds: JSON logging, a tracer provider, the Kafka broker with its reliable
consumer, and an HTTP server (FastAPI on uvicorn) that serves the service's own API, if it has
one, plus ``/healthz`` (the process is alive), ``/readyz`` (its dependencies answer) and
``/metrics`` (Prometheus text format, see ``metrics.py``; every service has the same handling,
lag, object-store and outbox metrics without wiring its own). Every other request gets a server
span (FastAPI's instrumentation on the runtime's tracer provider) and a duration
(``telemetry.HttpMetrics``); traces go to ``otlp_endpoint`` when it is set. Topics
are created at start-up if missing, before anything else; subscribers start only after the
service's own resources (database pool, consent view) are ready; everything stops in reverse
order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI, Response
from opentelemetry import trace

from genomebus_common import shutdown
from genomebus_common.contracts.events import Stage
from genomebus_common.contracts.topics import bus_client
from genomebus_common.runtime import metrics
from genomebus_common.runtime.broker import (
    ReliableConsumer,
    RetryPolicy,
    create_broker,
    ensure_topics,
)
from genomebus_common.runtime.http import BoundedBodies
from genomebus_common.runtime.settings import HttpSettings, KafkaSettings
from genomebus_common.runtime.telemetry import (
    HttpMetrics,
    configure_logging,
    fastapi_telemetry,
    make_tracer_provider,
    tracer,
)

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]

#: How long stopping the Kafka client may take: FastStream's own grace for running handlers
#: (15 s) and a flush. With the outbox relay's grace (5 s) and the pool's close (10 s) a stop
#: takes at most 35 s; the pods' terminationGracePeriodSeconds (45 s or more) cover that.
BROKER_STOP_TIMEOUT_S = 20.0


class BrokerWorker(Protocol):
    """Background work that publishes (an outbox relay): it runs only while Kafka is connected."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class ServiceRuntime:
    """The shared parts of one service process; handlers get what they need from here."""

    settings: KafkaSettings
    stage: Stage
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    workers: list[BrokerWorker] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tracer_provider = make_tracer_provider(
            self.settings.service_name, otlp_endpoint=self.settings.otlp_endpoint
        )
        #: For a service's own spans: the same provider (and exporter) as the broker's.
        self.tracer: trace.Tracer = tracer(self.tracer_provider)
        self.broker = create_broker(self.settings, tracer_provider=self.tracer_provider)
        self.consumer = ReliableConsumer(
            self.broker,
            stage=self.stage,
            group_id=self.settings.consumer_group,
            retry=RetryPolicy.from_settings(self.settings),
        )
        self.readiness.setdefault("kafka", lambda: self.broker.ping(timeout=2.0))

    def keep_running(self, worker: BrokerWorker) -> None:
        """Run ``worker`` from the moment the broker is connected until just before it stops.

        Started earlier, or stopped later, an outbox relay would publish through an unconnected
        producer; the rows would wait (the refusal is transient) but the relay would spin.
        """
        self.workers.append(worker)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ServiceRuntime]:
        """Connect and start consuming; stop cleanly on exit."""
        shutdown.resume()  # a process that stopped a service before may start one again (tests)
        await self.broker.start()
        for worker in self.workers:
            worker.start()
        metrics.on_scrape(self.consumer, self.consumer.lag.refresh)
        log.info("service started", extra={"service": self.settings.service_name})
        try:
            yield self
        finally:
            metrics.forget(self.consumer)
            # Tools first: a handler blocked on a long bwa would otherwise hold the shutdown
            # (or, killed later, leave the tool running without a parent). The handler then
            # fails as "stopping" and its message stays uncommitted, for the next worker.
            stopped = shutdown.begin()
            if stopped:
                log.warning("stopping: killed running tools", extra={"pipelines": stopped})
            for worker in reversed(self.workers):
                await worker.stop()
            self.workers.clear()  # registered again by the next lifespan's resources
            try:
                # Bounded: an idempotent producer never expires a batch, so with Kafka gone its
                # flush would hold the pod until SIGKILL. What it held is in the outbox still.
                await asyncio.wait_for(self.broker.stop(), timeout=BROKER_STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning("the Kafka client did not stop in time; leaving it")
            self.tracer_provider.shutdown()
            log.info("service stopped", extra={"service": self.settings.service_name})

    async def ready(self) -> dict[str, bool]:
        results: dict[str, bool] = {}
        for name, check in self.readiness.items():
            try:
                results[name] = bool(await check())
            except Exception:  # noqa: BLE001 - a failing check means "not ready", not a crash
                results[name] = False
        return results


def create_app(
    runtime: ServiceRuntime,
    *,
    resources: Callable[[ServiceRuntime], contextlib.AbstractAsyncContextManager[Any]]
    | None = None,
    title: str | None = None,
    streamed_bodies: Sequence[str] = (),
) -> FastAPI:
    """The service's HTTP app; ``resources`` opens what handlers need before consuming starts.

    Request bodies are bounded (``http.BoundedBodies``) except on paths matching
    ``streamed_bodies``: uploads the handler streams to storage without holding them."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            # Topics first: resources may read them (a consent view), consumers need them.
            client = bus_client(runtime.settings.service_name)
            await ensure_topics(runtime.settings, needed=client.topics if client else None)
            if resources is not None:
                app.state.resources = await stack.enter_async_context(resources(runtime))
            await stack.enter_async_context(runtime.running())
            yield

    app = FastAPI(
        title=title or f"genomebus {runtime.settings.service_name}",
        lifespan=lifespan,
        telemetry=fastapi_telemetry(runtime.tracer_provider),  # type: ignore[arg-type]  # FastAPI's stub is narrower than what it accepts
    )
    app.state.runtime = runtime
    app.add_middleware(HttpMetrics)
    app.add_middleware(BoundedBodies, streamed=streamed_bodies)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(response: Response) -> dict[str, Any]:
        checks = await runtime.ready()
        ready = all(checks.values())
        response.status_code = 200 if ready else 503
        return {"ready": ready, "checks": checks}

    add_metrics_endpoint(app)

    return app


def add_metrics_endpoint(app: FastAPI) -> None:
    """``GET /metrics`` for Prometheus, on any genomebus app (the heat controller's too)."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics_() -> Response:
        """Prometheus scrape: scrape-time readings are refreshed first, each within a bound."""
        return Response(await metrics.render(), media_type=metrics.CONTENT_TYPE)


def serve(app: FastAPI, settings: HttpSettings) -> None:
    """Run the app until SIGTERM/SIGINT, logging as JSON.

    The runtime's tracer provider becomes the process's global one (one service per process),
    so code that asks ``opentelemetry.trace`` for a tracer (a stage's compute span) exports too.
    """
    configure_logging(settings)
    runtime = getattr(app.state, "runtime", None)  # an app not built by create_app has none
    if runtime is not None:
        trace.set_tracer_provider(runtime.tracer_provider)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
