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
import json
import logging
import re
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]  # aiokafka ships no type information
from pydantic import ValidationError

from genomebus_common.contracts.errors import TransientError
from genomebus_common.contracts.events import PSEUDONYM_PATTERN, ConsentChanged
from genomebus_common.contracts.topics import CONSENT_CHANGED
from genomebus_common.runtime.failures import from_kafka_error
from genomebus_common.runtime.kafka_client import client_options
from genomebus_common.runtime.settings import KafkaSettings

log = logging.getLogger(__name__)


class ConsentView:
    def __init__(self, settings: KafkaSettings, topic: str = CONSENT_CHANGED.name) -> None:
        self.settings = settings
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
        """The version that stops analysis of this patient's samples, if the latest one does:
        a withdrawal, or a version without a written analysis consent (a consent rejected after
        it was given: without one no analysis may go on, sundhedsloven § 29)."""
        held = self.latest.get(pseudonym)
        if held is not None and (held.withdrawn or not held.analysis_consent_given):
            return held
        return None

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
    async def following(self, catch_up_timeout_s: float = 300.0) -> AsyncIterator[ConsentView]:
        """Read the topic up to now before yielding (consumers start after), follow it after."""
        await self.start()
        try:
            await self.wait_ready(catch_up_timeout_s)
            yield self
        finally:
            await self.stop()

    async def start(self, partitions_timeout_s: float = 30.0) -> None:
        # "earliest": should an offset ever be out of range, read the history again rather than
        # jump to the end past withdrawals (aiokafka's default is "latest").
        consumer = AIOKafkaConsumer(
            **client_options(self.settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            partitions = await self._partitions(consumer, partitions_timeout_s)
        except BaseException:
            await consumer.stop()
            raise
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions) if partitions else {}
        self._consumer = consumer
        self._task = asyncio.create_task(self._follow(consumer, ends), name="consent-view")

    async def _partitions(
        self, consumer: AIOKafkaConsumer, timeout_s: float
    ) -> list[TopicPartition]:
        """The topic's partitions, waiting for them: a topic created a moment ago may have no
        leaders yet, and a view that assigned no partitions would be "ready" while following
        nothing, deaf to every withdrawal."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = consumer.partitions_for_topic(self.topic)
            if found:
                return [TopicPartition(self.topic, p) for p in sorted(found)]
            if asyncio.get_running_loop().time() >= deadline:
                raise TransientError(f"consent view: topic {self.topic} has no partitions yet")
            await consumer._client.force_metadata_update()  # noqa: SLF001 (topic just created)
            await asyncio.sleep(0.2)

    async def caught_up(self, timeout_s: float = 30.0) -> None:
        """Wait until the view has read everything the topic held when this was called.

        Called right before a decision that must not be stale (a stage about to publish a
        result): a withdrawal that reached Kafka before the call is then in the view, even if
        the follower had fallen behind or stalled. Raises ``TransientError`` when it cannot get
        there in time (the message is retried, never published on a stale view).
        """
        consumer = self._consumer
        if consumer is None or not self.ready:
            raise TransientError("the consent view is not following the consent topic")
        try:
            partitions = list(consumer.assignment())
            ends = await consumer.end_offsets(partitions)
            deadline = asyncio.get_running_loop().time() + timeout_s
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                if asyncio.get_running_loop().time() >= deadline:
                    raise TransientError("the consent view is behind the consent topic")
                await asyncio.sleep(0.05)
        except TransientError:
            raise
        except Exception as exc:
            raise from_kafka_error(exc) from exc

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
            for records in batches.values():
                for record in records:
                    self._read(record.value, record.offset)
            if pending:
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
                if not pending:
                    self._ready.set()
                    log.info("consent view caught up", extra={"patients": len(self.latest)})

    def _read(self, value: bytes, offset: int) -> None:
        """Apply one record. One the contract refuses (an older event a stricter screen now
        rejects, say) is still applied for its decision when that much is sound: skipping it
        could skip a withdrawal."""
        try:
            self.apply(ConsentChanged.model_validate_json(value))
            return
        except ValidationError:
            pass
        decision = _decision_only(value)
        if decision is None:
            log.warning("unreadable consent event skipped", extra={"offset": offset})
            return
        log.warning("consent event applied for its decision only", extra={"offset": offset})
        self.apply(decision)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


def _decision_only(value: bytes) -> ConsentChanged | None:
    """Patient, version, withdrawal and analysis consent from a record the contract refuses,
    or None when even those are not sound."""
    try:
        raw = json.loads(value)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    pseudonym, version = raw.get("patient_pseudonym"), raw.get("version")
    withdrawn, given = raw.get("withdrawn", False), raw.get("analysis_consent_given")
    if not (isinstance(pseudonym, str) and re.fullmatch(PSEUDONYM_PATTERN, pseudonym)):
        return None
    if not (type(version) is int and version >= 1):
        return None
    if type(withdrawn) is not bool or type(given) is not bool:
        return None
    return ConsentChanged.model_construct(
        patient_pseudonym=pseudonym,
        version=version,
        withdrawn=withdrawn,
        analysis_consent_given=given,
    )
