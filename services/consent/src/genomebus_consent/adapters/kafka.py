"""Consent's one inbound topic: ingest's ``sample.registered`` says which hospital treats which
patient (who may record and read that patient's consent). Consent publishes only through its
outbox (``adapters/postgres.py``), never directly.
"""

from __future__ import annotations

from collections.abc import Callable

from genomebus_common.contracts.events import SampleRegistered
from genomebus_common.contracts.topics import SAMPLE_REGISTERED
from genomebus_common.runtime.broker import Delivery, ReliableConsumer

from ..core.consents import ConsentService


def subscribe(consumer: ReliableConsumer, consents: Callable[[], ConsentService]) -> None:
    """Hand each registration to the use case; ``consents`` gives the service once it is open
    (subscribers start only after the service's resources)."""

    async def on_sample_registered(event: SampleRegistered, delivery: Delivery) -> None:
        await consents().sample_registered(event)

    consumer.subscribe(SampleRegistered, on_sample_registered, SAMPLE_REGISTERED.name)
