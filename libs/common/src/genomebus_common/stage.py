"""A pipeline stage's output, computed once per sample and published on every delivery.

Kafka may deliver the same input twice (a crash before the offset commit, a rebalance). A stage
whose work takes hours must not redo it, and must not stay silent either: the downstream event
might never have left. So the stage writes its output event as a small record beside its
objects, after them, and a later delivery that finds the record publishes the very same event
again (same event id: downstream consumers recognise the duplicate).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from faststream.kafka import KafkaBroker

from .broker import publish_event
from .events import Event
from .objectstore import ObjectStore

E = TypeVar("E", bound=Event)


async def compute_once_then_publish(
    broker: KafkaBroker,
    store: ObjectStore,
    bucket: str,
    record_key: str,
    event_type: type[E],
    compute: Callable[[], E],
) -> tuple[E, bool]:
    """(the event, whether it was computed now). ``compute`` runs in a worker thread."""
    event = await asyncio.to_thread(store.read_model, bucket, record_key, event_type)
    computed = event is None
    if event is None:
        event = await asyncio.to_thread(compute)
        await asyncio.to_thread(store.write_model, bucket, record_key, event)
    await publish_event(broker, event)
    return event, computed
