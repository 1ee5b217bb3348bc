"""Calling's composition root: which adapters serve which ports, built from the settings.

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
from genomebus_common.runtime.objectstore import HtslibS3, ObjectStore
from genomebus_common.runtime.service import ServiceRuntime
from genomebus_common.stagekit.consent_view import ConsentView
from genomebus_common.stagekit.service import reference_cache, stage_app
from genomebus_common.stagekit.stage import ScatteredStage

from .adapters import kafka
from .adapters.tools import BcftoolsCaller
from .config import CallingSettings
from .ports import CallerTools, References
from .work import PRODUCER, RECORD, CallingWork


def bcftools_caller(settings: CallingSettings) -> CallerTools:
    return BcftoolsCaller(htslib=HtslibS3(settings), threads=settings.threads)


@dataclass(frozen=True)
class Wiring:
    """How each part is built; replace a field to build it otherwise (tests)."""

    store: Callable[[CallingSettings], ObjectStore] = ObjectStore.from_settings
    references: Callable[[CallingSettings, ObjectStore], References] = reference_cache
    tools: Callable[[CallingSettings], CallerTools] = bcftools_caller
    consent: Callable[[CallingSettings], ConsentView] = ConsentView


def build_stage(
    settings: CallingSettings, runtime: ServiceRuntime, wiring: Wiring
) -> ScatteredStage:
    store = wiring.store(settings)
    work = CallingWork(
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
        bucket=settings.variants_bucket,
        producer=PRODUCER,
        record_name=RECORD,
        consent=wiring.consent(settings),
    )


def build_app(settings: CallingSettings, wiring: Wiring = Wiring()) -> FastAPI:
    runtime = ServiceRuntime(settings, Stage.CALLING)
    stage = build_stage(settings, runtime, wiring)
    kafka.subscribe(runtime.consumer, stage, settings.lanes, settings.kafka_max_poll_interval_s)
    return stage_app(runtime, stage, title="genomebus calling")


__all__ = ["Wiring", "build_app", "build_stage"]
