"""Calling's subscriptions: aligned samples, and (through the stage) regions of every
sample's work and removals."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from genomebus_common.contracts.events import Priority, SampleAligned
from genomebus_common.contracts.topics import SAMPLE_ALIGNED
from genomebus_common.runtime.broker import Delivery, ReliableConsumer
from genomebus_common.stagekit.stage import ScatteredStage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleAlignedHandler:
    """An aligned sample: plan it into regions and publish them, on the sample's lane."""

    stage: ScatteredStage

    async def __call__(self, event: SampleAligned, delivery: Delivery) -> None:
        log.info("planning", extra={"sample_id": event.sample_id})
        await self.stage.on_source(event)


def subscribe(
    consumer: ReliableConsumer,
    stage: ScatteredStage,
    lanes: Iterable[Priority],
    max_poll_interval_s: int,
) -> None:
    """Aligned samples, then the regions of every sample (any worker takes any region) on
    ``lanes``, and removals."""
    consumer.subscribe(
        SampleAligned,
        SampleAlignedHandler(stage),
        SAMPLE_ALIGNED.name,
        max_poll_interval_ms=max_poll_interval_s * 1000,
    )
    stage.subscribe(consumer, lanes, max_poll_interval_s)


__all__ = ["SampleAlignedHandler", "subscribe"]
