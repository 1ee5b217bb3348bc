"""Entry point: ``genomebus-alignment`` consumes received samples from its priority lanes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from genomebus_common.contracts.events import SampleReceived, Stage
from genomebus_common.contracts.topics import sample_received_topic
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.service import ServiceRuntime, create_app, serve
from genomebus_common.stagekit.consent_view import ConsentView
from genomebus_common.stagekit.reference import ReferenceRegistry
from genomebus_common.stagekit.scratch import remove_abandoned

from .config import AlignmentSettings
from .handlers import AlignSample


def build_app(settings: AlignmentSettings) -> FastAPI:
    runtime = ServiceRuntime(settings, Stage.ALIGNMENT)
    store = ObjectStore.from_settings(settings)
    handler = AlignSample(
        settings=settings,
        store=store,
        references=ReferenceRegistry(store, Path(settings.work_dir) / "references"),
        broker=runtime.broker,
        consent=ConsentView(settings),
    )
    consent = handler.consent
    runtime.readiness["consent_view"] = consent.is_ready
    # One consumer group per lane: an urgent sample never queues behind research, and a
    # worker joining one lane does not pause the others for a rebalance.
    for lane in settings.lanes:
        runtime.consumer.subscribe(
            SampleReceived,
            handler,
            sample_received_topic(lane),
            group_suffix=lane.value,
            max_poll_interval_ms=settings.kafka_max_poll_interval_s * 1000,
        )

    # Units of every sample's work (any worker takes any unit), and removals.
    handler.stage.subscribe(runtime.consumer, settings.lanes, settings.kafka_max_poll_interval_s)

    @contextlib.asynccontextmanager
    async def resources(rt: ServiceRuntime) -> AsyncIterator[AlignSample]:
        store.ensure_bucket(settings.alignments_bucket)
        remove_abandoned(Path(settings.work_dir) / "alignment")  # scratch of runs killed outright
        # Consumers start only once the view has read the consent topic up to now.
        async with consent.following():
            yield handler

    return create_app(runtime, resources=resources, title="genomebus alignment")


def main() -> None:
    settings = AlignmentSettings.load()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
