"""Entry point: ``genomebus-calling`` consumes aligned samples."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from genomebus_common.contracts.events import SampleAligned, Stage
from genomebus_common.contracts.topics import SAMPLE_ALIGNED
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.service import ServiceRuntime, create_app, serve
from genomebus_common.stagekit.consent_view import ConsentView
from genomebus_common.stagekit.reference import ReferenceRegistry
from genomebus_common.stagekit.scratch import remove_abandoned

from .config import CallingSettings
from .handlers import CallSample


def build_app(settings: CallingSettings) -> FastAPI:
    runtime = ServiceRuntime(settings, Stage.CALLING)
    store = ObjectStore.from_settings(settings)
    handler = CallSample(
        settings=settings,
        store=store,
        references=ReferenceRegistry(store, Path(settings.work_dir) / "references"),
        broker=runtime.broker,
        consent=ConsentView(settings),
    )
    consent = handler.consent
    runtime.readiness["consent_view"] = consent.is_ready
    runtime.consumer.subscribe(
        SampleAligned,
        handler,
        SAMPLE_ALIGNED.name,
        max_poll_interval_ms=settings.kafka_max_poll_interval_s * 1000,
    )

    # Regions of every sample (any worker takes any region), and removals.
    handler.stage.subscribe(runtime.consumer, settings.lanes, settings.kafka_max_poll_interval_s)

    @contextlib.asynccontextmanager
    async def resources(rt: ServiceRuntime) -> AsyncIterator[CallSample]:
        store.ensure_bucket(settings.variants_bucket)
        remove_abandoned(Path(settings.work_dir) / "calling")  # scratch of runs killed outright
        # Consumers start only once the view has read the consent topic up to now.
        async with consent.following():
            yield handler

    return create_app(runtime, resources=resources, title="genomebus calling")


def main() -> None:
    settings = CallingSettings.load()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
