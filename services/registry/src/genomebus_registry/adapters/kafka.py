"""The registry's Kafka subscriptions: which events it consumes, in which consumer groups.

The subscribers look the handlers up at delivery time (``events()``): they exist only once the
lifespan has opened the pool, and consuming starts after that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from genomebus_common.contracts.events import (
    ConsentChanged,
    SampleAligned,
    SampleRemoved,
    VariantsCalled,
)
from genomebus_common.contracts.topics import (
    CONSENT_CHANGED,
    SAMPLE_ALIGNED,
    SAMPLE_REMOVED,
    VARIANTS_CALLED,
)
from genomebus_common.runtime.broker import Delivery, ReliableConsumer

from ..ports import RegistryEvents


@dataclass(frozen=True)
class Topics:
    """The topics consumed; tests that need private topics pass their own."""

    variants_called: str = VARIANTS_CALLED.name
    consent_changed: str = CONSENT_CHANGED.name
    sample_aligned: str = SAMPLE_ALIGNED.name
    sample_removed: str = SAMPLE_REMOVED.name


def subscribe(
    consumer: ReliableConsumer,
    events: Callable[[], RegistryEvents],
    *,
    topics: Topics,
    max_poll_interval_ms: int,
) -> None:
    """Subscribe the registry's four handlers (``events()`` gives the running ones)."""

    async def on_variants_called(event: VariantsCalled, delivery: Delivery) -> None:
        await events().variants_called(event, delivery)

    async def on_consent_changed(event: ConsentChanged, delivery: Delivery) -> None:
        await events().consent_changed(event, delivery)

    async def on_sample_removed(event: SampleRemoved, delivery: Delivery) -> None:
        await events().sample_removed(event, delivery)

    async def on_sample_aligned(event: SampleAligned, delivery: Delivery) -> None:
        await events().sample_aligned(event, delivery)

    consumer.subscribe(
        VariantsCalled,
        on_variants_called,
        topics.variants_called,
        max_poll_interval_ms=max_poll_interval_ms,
    )
    consumer.subscribe(
        SampleRemoved, on_sample_removed, topics.sample_removed, group_suffix="removals"
    )
    # Only alignment's energy estimate is taken from sample.aligned; its own group, so the
    # registry's record of it never waits behind (or holds up) a load.
    consumer.subscribe(
        SampleAligned, on_sample_aligned, topics.sample_aligned, group_suffix="energy"
    )
    # Consent has its own consumer group: a withdrawal never queues behind a large VCF load.
    # A consent change is never parked for a database outage: it waits, in order.
    consumer.subscribe(
        ConsentChanged,
        on_consent_changed,
        topics.consent_changed,
        group_suffix="consent",
        retry_transient_forever=True,
        # while it waits, the member stays in its group (no rebalance every 5 minutes)
        max_poll_interval_ms=max_poll_interval_ms,
    )
