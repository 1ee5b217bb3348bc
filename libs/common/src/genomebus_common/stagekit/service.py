"""The service around a scattered stage, the same for alignment and calling: its reference
cache, its readiness, and what it opens before consuming (the stage's ``running()``).

A service's composition root (``inject.py``) builds its own work and subscriptions and hands
the stage to ``stage_app``; nothing else differs between the two services' apps.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.service import ServiceRuntime, create_app
from genomebus_common.runtime.settings import WorkDirSettings
from genomebus_common.stagekit.reference import ReferenceRegistry
from genomebus_common.stagekit.stage import ScatteredStage


def reference_cache(settings: WorkDirSettings, store: ObjectStore) -> ReferenceRegistry:
    """Reference genomes downloaded once per node into ``<work_dir>/references``."""
    return ReferenceRegistry(store, Path(settings.work_dir) / "references")


def stage_app(runtime: ServiceRuntime, stage: ScatteredStage, *, title: str) -> FastAPI:
    """The service's app: ready once the consent view has caught up (if the stage has one),
    consuming only once the stage is ``running()``."""
    if stage.consent is not None:
        runtime.readiness["consent_view"] = stage.consent.is_ready

    @contextlib.asynccontextmanager
    async def resources(rt: ServiceRuntime) -> AsyncIterator[ScatteredStage]:
        async with stage.running():
            yield stage

    return create_app(runtime, resources=resources, title=title)


__all__ = ["reference_cache", "stage_app"]
