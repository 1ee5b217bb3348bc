"""Alignment's subscriptions: received samples on their priority lanes, and (through the
stage) units of every sample's work and removals."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from genomebus_common.contracts.events import Priority, SampleReceived
from genomebus_common.contracts.topics import sample_received_topic
from genomebus_common.runtime.broker import Delivery, ReliableConsumer
from genomebus_common.stagekit.stage import ScatteredStage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleReceivedHandler:
    """A received sample: plan it into chunks and publish them (``ScatteredStage.on_source``)."""

    stage: ScatteredStage

    async def __call__(self, event: SampleReceived, delivery: Delivery) -> None:
        log.info("planning", extra={"sample_id": event.sample_id, "read_pairs": event.read_pairs})
        await self.stage.on_source(event)


def subscribe(
    consumer: ReliableConsumer,
    stage: ScatteredStage,
    lanes: Iterable[Priority],
    max_poll_interval_s: int,
) -> None:
    """One consumer group per lane: an urgent sample never queues behind research, and a
    worker joining one lane does not pause the others for a rebalance. Then the units of every
    sample's work (any worker takes any unit), and removals."""
    lanes = list(lanes)
    handler = SampleReceivedHandler(stage)
    for lane in lanes:
        consumer.subscribe(
            SampleReceived,
            handler,
            sample_received_topic(lane),
            group_suffix=lane.value,
            max_poll_interval_ms=max_poll_interval_s * 1000,
        )
    stage.subscribe(consumer, lanes, max_poll_interval_s)


__all__ = ["SampleReceivedHandler", "subscribe"]
