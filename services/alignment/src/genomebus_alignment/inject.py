"""Alignment's composition root: which adapters serve which ports, built from the settings.

Every part is made by a factory in ``Wiring``; a test replaces one (``dataclasses.replace``)
and keeps the rest real. Subscriptions are made when the app is built; what must be open
before consuming starts (the bucket, a clean scratch, the consent view caught up) is the
stage's ``running()`` context, entered by the app's lifespan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI

from genomebus_common.contracts.events import Stage
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.service import ServiceRuntime
from genomebus_common.stagekit.consent_view import ConsentView
from genomebus_common.stagekit.service import reference_cache, stage_app
from genomebus_common.stagekit.stage import ScatteredStage

from .adapters import kafka
from .adapters.tools import SamtoolsAligner
from .config import AlignmentSettings
from .ports import AlignerTools, References
from .work import PRODUCER, RECORD, AlignmentWork


def samtools_aligner(settings: AlignmentSettings) -> AlignerTools:
    return SamtoolsAligner(threads=settings.threads, sort_memory_mb=settings.sort_memory_mb)


@dataclass(frozen=True)
class Wiring:
    """How each part is built; replace a field to build it otherwise (tests)."""

    store: Callable[[AlignmentSettings], ObjectStore] = ObjectStore.from_settings
    references: Callable[[AlignmentSettings, ObjectStore], References] = reference_cache
    tools: Callable[[AlignmentSettings], AlignerTools] = samtools_aligner
    consent: Callable[[AlignmentSettings], ConsentView] = ConsentView


def build_stage(
    settings: AlignmentSettings, runtime: ServiceRuntime, wiring: Wiring
) -> ScatteredStage:
    store = wiring.store(settings)
    work = AlignmentWork(
        settings=settings,
        store=store,
        references=wiring.references(settings, store),
        tools=wiring.tools(settings),
    )
    return ScatteredStage.for_work(
        work,
        settings=settings,
        broker=runtime.broker,
        store=store,
        bucket=settings.alignments_bucket,
        producer=PRODUCER,
        record_name=RECORD,
        consent=wiring.consent(settings),
    )


def build_app(settings: AlignmentSettings, wiring: Wiring = Wiring()) -> FastAPI:
    runtime = ServiceRuntime(settings, Stage.ALIGNMENT)
    stage = build_stage(settings, runtime, wiring)
    kafka.subscribe(runtime.consumer, stage, settings.lanes, settings.kafka_max_poll_interval_s)
    return stage_app(runtime, stage, title="genomebus alignment")


__all__ = ["Wiring", "build_app", "build_stage"]
