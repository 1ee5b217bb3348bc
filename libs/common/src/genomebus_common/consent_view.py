"""Each patient's latest consent, as every service may know it: read from ``consent.changed``.

Services talk only through Kafka, so a stage that must stop when a patient withdraws keeps its
own view of the consent topic: a table built from the topic, read from the beginning at start
and followed after that. Versions only grow, so an old or repeated event never overrides a
newer decision. Until the view has read up to where the topic ended when it started, it is not
ready, and nobody may decide from it (``wait_ready``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from .events import ConsentChanged
from .topics import CONSENT_CHANGED

log = logging.getLogger(__name__)


class ConsentView:
    def __init__(self, bootstrap_servers: str, topic: str = CONSENT_CHANGED.name) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.latest: dict[str, ConsentChanged] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    def apply(self, event: ConsentChanged) -> None:
        held = self.latest.get(event.patient_pseudonym)
        if held is None or held.version < event.version:
            self.latest[event.patient_pseudonym] = event

    def withdrawn(self, pseudonym: str) -> ConsentChanged | None:
        """The version that withdrew this patient's consent, if the latest one did."""
        held = self.latest.get(pseudonym)
        return held if held is not None and held.withdrawn else None

    @property
    def ready(self) -> bool:
        """Caught up once, and still following (a dead follower must not look ready)."""
        alive = self._task is not None and not self._task.done()
        return self._ready.is_set() and alive

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    async def is_ready(self) -> bool:
        """For a service's readiness checks."""
        return self.ready

    @contextlib.asynccontextmanager
    async def following(self, catch_up_timeout_s: float = 300.0) -> AsyncIterator["ConsentView"]:
        """Read the topic up to now before yielding (consumers start after), follow it after."""
        await self.start()
        try:
            await self.wait_ready(catch_up_timeout_s)
            yield self
        finally:
            await self.stop()

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False)
        await consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())]
        if not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001 (topic just created)
            partitions = [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions) if partitions else {}
        self._consumer = consumer
        self._task = asyncio.create_task(self._follow(consumer, ends), name="consent-view")

    async def _follow(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> None:
        pending = {tp for tp, end in ends.items() if end > 0}
        if not pending:
            self._ready.set()
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500)
            except Exception:  # the broker went away: keep following, never go stale silently
                log.exception("consent view: fetch failed; retrying")
                await asyncio.sleep(1.0)
                continue
            for tp, records in batches.items():
                for record in records:
                    try:
                        self.apply(ConsentChanged.from_bytes(record.value))  # type: ignore[arg-type]
                    except ValidationError:
                        log.warning("unreadable consent event skipped", extra={"offset": record.offset})
            if pending:
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
                if not pending:
                    self._ready.set()
                    log.info("consent view caught up", extra={"patients": len(self.latest)})

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
