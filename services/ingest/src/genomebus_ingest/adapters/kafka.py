"""What ingest consumes from Kafka: consent changes (the gate) and stage progress (for the
hospital's status). What it publishes goes through the outbox and its relay."""

from __future__ import annotations

from collections.abc import Callable

from genomebus_common.contracts.events import ConsentChanged, StageProgress
from genomebus_common.contracts.topics import CONSENT_CHANGED, STAGE_PROGRESS
from genomebus_common.runtime.broker import Delivery
from genomebus_common.runtime.service import ServiceRuntime

from ..config import IngestSettings
from ..core.ingest import Ingest


def subscribe(
    runtime: ServiceRuntime, settings: IngestSettings, ingest: Callable[[], Ingest]
) -> None:
    """Subscribe ingest's handlers; ``ingest()`` is the running service's core, once started."""

    async def on_consent(event: ConsentChanged, delivery: Delivery) -> None:
        await ingest().apply_consent(event, delivery)

    # A consent change is never parked for a database outage: it waits, in order.
    runtime.consumer.subscribe(
        ConsentChanged,
        on_consent,
        CONSENT_CHANGED.name,
        retry_transient_forever=True,
        # while it waits, the member stays in its group (no rebalance every 5 minutes)
        max_poll_interval_ms=settings.kafka_max_poll_interval_s * 1000,
    )

    async def on_progress(event: StageProgress, delivery: Delivery) -> None:
        await ingest().apply_progress(event, delivery)

    runtime.consumer.subscribe(
        StageProgress, on_progress, STAGE_PROGRESS.name, group_suffix="progress"
    )
