"""A pipeline stage's output, computed once per sample and published on every delivery.

Kafka may deliver the same input twice (a crash before the offset commit, a rebalance). A stage
whose work takes hours must not redo it, and must not stay silent either: the downstream event
might never have left. So the stage writes its output event as a small record beside its
objects, after them, and a later delivery that finds the record publishes the very same event
again (same event id: downstream consumers recognise the duplicate).

A stage also honours a withdrawal that arrives while the sample is in flight: it looks at the
patient's consent before the work and again before publishing, and when the consent has been
withdrawn it publishes nothing and leaves a quarantine record beside what it produced.

The work itself is a span (``<event type>.compute``) inside the consumed event's trace, so a
sample's trace shows where its hours went; a redelivery that found the record has none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TypeVar

from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from .broker import publish_event
from .consent_view import ConsentView
from .errors import TransientError
from .events import Event, SampleEvent
from .objectstore import ObjectStore
from .telemetry import tracer

E = TypeVar("E", bound=Event)
QUARANTINE_RECORD = "quarantine.json"
REMOVED_RECORD = "removed.json"


class Removal(BaseModel):
    """A tombstone: the hospital withdrew this sample; its outputs here were deleted."""

    sample_id: str
    reason: str
    removed_at: datetime


def remove_outputs(store: ObjectStore, bucket: str, folder: str, sample_id: str, reason: str) -> int:
    """Delete everything a stage keeps for a sample, then leave a tombstone so that a late or
    redelivered input never recreates it. Returns how many objects went."""
    names = [
        name for name in store.list_keys(bucket, f"{folder}/") if not name.endswith(REMOVED_RECORD)
    ]
    for name in names:
        store.remove(bucket, name)
    record = Removal(sample_id=sample_id, reason=reason, removed_at=datetime.now(timezone.utc))
    store.write_model(bucket, f"{folder}/{REMOVED_RECORD}", record)
    return len(names)


class Quarantine(BaseModel):
    """Why a stage stopped a sample: the consent version that stopped it (a withdrawal, or no
    written analysis consent any more)."""

    sample_id: str
    patient_pseudonym: str
    consent_version: int
    quarantined_at: datetime


def _quarantine(
    store: ObjectStore, bucket: str, record_key: str, event: SampleEvent, withdrawal: Event
) -> None:
    record = Quarantine(
        sample_id=event.sample_id,
        patient_pseudonym=event.patient_pseudonym,
        consent_version=withdrawal.version,  # type: ignore[attr-defined]
        quarantined_at=datetime.now(timezone.utc),
    )
    folder = record_key.rpartition("/")[0]
    store.write_model(bucket, f"{folder}/{QUARANTINE_RECORD}", record)


async def compute_once_then_publish(
    broker: KafkaBroker,
    store: ObjectStore,
    bucket: str,
    record_key: str,
    event_type: type[E],
    compute: Callable[[], E],
    *,
    source: SampleEvent | None = None,
    consent: ConsentView | None = None,
) -> tuple[E | None, bool]:
    """(the event, or None if quarantined or removed; whether it was computed now).

    ``compute`` runs in a worker thread. With ``consent`` and ``source``, a withdrawn patient's
    sample is quarantined instead: before the work if the withdrawal is known, else before the
    result is published.
    """
    def withdrawn() -> Event | None:
        return consent.withdrawn(source.patient_pseudonym) if consent and source else None

    folder = record_key.rpartition("/")[0]

    def removed() -> bool:
        return store.read_model(bucket, f"{folder}/{REMOVED_RECORD}", Removal) is not None

    if consent is not None:
        try:
            await consent.wait_ready()
        except TimeoutError as exc:
            raise TransientError("the consent view has not caught up yet") from exc
        await consent.caught_up()
    if (withdrawal := withdrawn()) is not None:
        await asyncio.to_thread(_quarantine, store, bucket, record_key, source, withdrawal)  # type: ignore[arg-type]
        return None, False
    if await asyncio.to_thread(removed):
        return None, False  # the hospital withdrew the sample: nothing to do, nothing to say
    event = await asyncio.to_thread(store.read_model, bucket, record_key, event_type)
    computed = event is None
    if event is None:
        with tracer().start_as_current_span(
            f"{event_type.event_type}.compute",
            attributes={"genomebus.sample_id": getattr(source, "sample_id", None) or ""},
        ):
            event = await asyncio.to_thread(compute)
            await asyncio.to_thread(store.write_model, bucket, record_key, event)
    if await asyncio.to_thread(removed):  # removed while we worked: what we wrote goes too
        tombstone = await asyncio.to_thread(
            store.read_model, bucket, f"{folder}/{REMOVED_RECORD}", Removal
        )
        await asyncio.to_thread(
            remove_outputs, store, bucket, folder, tombstone.sample_id, tombstone.reason  # type: ignore[union-attr]
        )
        return None, computed
    if consent is not None:
        await consent.caught_up()  # every consent change that reached Kafka while we worked
    if (withdrawal := withdrawn()) is not None:  # it came while we worked
        await asyncio.to_thread(_quarantine, store, bucket, record_key, source, withdrawal)  # type: ignore[arg-type]
        return None, computed
    await publish_event(broker, event)
    return event, computed
