"""Kafka wiring every service shares: the broker, publishing, and at-least-once consumption.

Delivery guarantees, and why:
- The offset of a message is committed only after its handler returned (FastStream's default
  Kafka policy, ACK_FIRST, commits on receipt and so loses a message whenever a consumer dies
  mid-handling). Handlers must therefore be idempotent: see ``inbox.py``.
- A transient failure is retried in place with exponential backoff, a bounded number of times.
- A permanent failure (or exhausted retries) sends the untouched message to ``<topic>.dlq`` with
  the reason, the original topic, partition and offset in headers, publishes a ``StageFailed``
  event, and only then lets the offset commit: the partition keeps flowing and nothing is lost.
- If even the dead-letter publish fails, the handler raises, the offset is not committed and
  the consumer seeks back to the message (NACK), so it is handled again.

Observability: the broker's OpenTelemetry middleware carries W3C ``traceparent`` in Kafka
headers (a consumer's span continues the producer's trace); ``ReliableConsumer`` names the
event on that span, marks it failed when the message is dead-lettered, and keeps the handling
metrics of ``metrics.py`` (duration by outcome, failures by cause, dead letters, consumer lag).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]  # aiokafka ships no py.typed
from aiokafka.admin.config_resource import (  # type: ignore[import-untyped]  # aiokafka ships no py.typed
    ConfigResource,
    ConfigResourceType,
)
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry import trace
from opentelemetry.trace import TracerProvider
from pydantic import ValidationError

from genomebus_common import shutdown
from genomebus_common.contracts.errors import (
    BrokerUnavailable,
    GenomebusError,
    InvalidEvent,
    PermanentError,
    TopicsMissing,
    TransientError,
)
from genomebus_common.contracts.events import Event, Stage, StageFailed, WorkUnit
from genomebus_common.contracts.headers import (
    H_CORRELATION_ID,
    H_DLQ_ATTEMPTS,
    H_DLQ_ERROR_CODE,
    H_DLQ_ERROR_KIND,
    H_DLQ_FAILED_AT,
    H_DLQ_GROUP,
    H_DLQ_OFFSET,
    H_DLQ_PARTITION,
    H_DLQ_REASON,
    H_DLQ_TOPIC,
    H_EVENT_TYPE,
    H_SCHEMA_VERSION,
)
from genomebus_common.contracts.topics import (
    ALL_TOPICS,
    STAGE_FAILED,
    Topic,
    dead_letter_topic,
    message_key,
    retention_config,
    topic_for,
    work_partition,
)
from genomebus_common.runtime import metrics
from genomebus_common.runtime.failures import from_kafka_error, from_unexpected
from genomebus_common.runtime.kafka_client import broker_security, client_options
from genomebus_common.runtime.settings import KafkaSettings

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)


def create_broker(
    settings: KafkaSettings,
    *,
    tracer_provider: TracerProvider | None = None,
    **kwargs: Any,
) -> KafkaBroker:
    """A broker whose producer waits for all in-sync replicas and never duplicates on retry,
    connected as this service's Kafka user (``kafka_client.broker_security``)."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=broker_security(settings),
        client_id=settings.kafka_client_id or settings.service_name,
        acks="all",
        enable_idempotence=True,
        middlewares=[KafkaTelemetryMiddleware(tracer_provider=tracer_provider)],
        **kwargs,
    )


async def ensure_topics(
    settings: KafkaSettings,
    topics: Iterable[Topic] = ALL_TOPICS,
    *,
    replication: int = 1,
    needed: Collection[str] | None = None,
) -> list[str]:
    """Create each topic and its dead-letter topic when missing; returns the names created.

    With ``GENOMEBUS_KAFKA_CREATE_TOPICS=false`` (as on Kubernetes, where Strimzi owns the
    topics with their replication and retention, and on the dev stack, whose ``up`` makes them)
    nothing is created: a missing topic raises ``TopicsMissing`` naming it, so the service fails
    to start and is restarted until the operator has made them, instead of racing it with
    single-replica topics. Only ``needed`` is checked then (default: all of them): a service's
    Kafka user is shown no topic its ACLs do not name, so it passes the ones it uses
    (``topics.BusClient.topics``).
    """
    wanted: dict[str, tuple[int, dict[str, str]]] = {}
    for topic in topics:
        wanted[topic.name] = (topic.partitions, retention_config(topic))
        wanted[topic.dlq] = (1, retention_config(topic, dlq=True))
    if needed is not None and not settings.kafka_create_topics:
        wanted = {name: spec for name, spec in wanted.items() if name in needed}
    admin = AIOKafkaAdminClient(**client_options(settings))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=n, replication_factor=replication, topic_configs=config)
            for name, (n, config) in sorted(wanted.items())
            if name not in existing
        ]
        if missing and not settings.kafka_create_topics:
            raise TopicsMissing(
                "topics not created yet (GENOMEBUS_KAFKA_CREATE_TOPICS is off, so the cluster's "
                "topic operator must create them): " + ", ".join(t.name for t in missing)
            )
        if missing:
            await admin.create_topics(missing)
        if settings.kafka_create_topics:
            await _align_retention(admin, {n: c for n, (_, c) in wanted.items() if n in existing})
        return [t.name for t in missing]
    except TopicsMissing:
        raise
    except Exception as exc:
        raise from_kafka_error(exc) from exc
    finally:
        await admin.close()


_DYNAMIC_TOPIC_CONFIG = 1


async def _align_retention(admin: AIOKafkaAdminClient, wanted: dict[str, dict[str, str]]) -> None:
    """Give topics made before their retention was set here (by an older version, or by a
    broker's auto-create) the retention they should have: above all, a consent topic left on
    the broker's default of deleting after 7 days would let consent views forget withdrawals.

    AlterConfigs replaces a topic's whole set of overrides, so the ones it has (those set on
    the topic itself) are sent again with ours on top; a refusal is raised, not logged away.
    """
    if not wanted:
        return
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in sorted(wanted)]
    )
    differing = []
    for response in responses:
        for error, message, _type, name, entries, *_ in response.resources:
            if error:
                raise BrokerUnavailable(f"Kafka: cannot read the config of {name}: {message}")
            # entry: (name, value, read_only, config_source, is_sensitive, ...); source 1 is
            # DYNAMIC_TOPIC_CONFIG: an override on this topic
            own = {
                e[0]: e[1] for e in entries if e[3] == _DYNAMIC_TOPIC_CONFIG and e[1] is not None
            }
            held = {e[0]: e[1] for e in entries}
            if any(held.get(key) != value for key, value in wanted[name].items()):
                differing.append(
                    ConfigResource(ConfigResourceType.TOPIC, name, configs={**own, **wanted[name]})
                )
    if not differing:
        return
    for response in await admin.alter_configs(differing):
        for error, message, _type, name, *_ in response.resources:
            if error:
                raise BrokerUnavailable(f"Kafka: cannot set the retention of {name}: {message}")
    log.warning("topic retention corrected", extra={"topics": [r.name for r in differing]})


def event_headers(event: Event) -> dict[str, str]:
    return {
        H_EVENT_TYPE: event.event_type,
        H_SCHEMA_VERSION: str(event.schema_version),
        H_CORRELATION_ID: event.correlation_id,
    }


async def publish_event(broker: KafkaBroker, event: Event) -> None:
    """Publish an event on its topic, keyed so related events keep their order (units of
    scattered work go to the partition that spreads them over the stage's workers)."""
    try:
        await broker.publish(
            event.to_bytes(),
            topic=topic_for(event),
            key=message_key(event),
            partition=work_partition(event) if isinstance(event, WorkUnit) else None,
            headers=event_headers(event),
            correlation_id=event.correlation_id,
        )
    except GenomebusError:
        raise
    except Exception as exc:
        raise from_kafka_error(exc) from exc


@dataclass(frozen=True)
class Delivery:
    """Where a consumed message came from: what a handler may need besides the event."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: dict[str, str] = field(default_factory=dict)
    attempt: int = 1


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: KafkaSettings) -> RetryPolicy:
        return cls(
            settings.handler_max_attempts,
            settings.handler_retry_initial_s,
            settings.handler_retry_max_s,
        )

    def backoff(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.initial_backoff_s * 2.0 ** min(attempt - 1, 30))


Handler = Callable[[E, Delivery], Awaitable[None]]


async def _tolerant_headers(
    record: Any, original: Callable[[Any], Awaitable[KafkaMessage]]
) -> KafkaMessage:
    """FastStream's parser ``.decode()``s every header value; a null value (legal in Kafka) or
    one that is not UTF-8 makes it raise before any handler runs, and with NACK_ON_ERROR the
    record is then redelivered for ever, blocking its partition. Such values are made safe text
    first (null -> empty), so the record reaches the handler, or the DLQ, like any other."""
    headers = record.headers or ()
    if any(v is None or not _is_utf8(v) for _, v in headers):
        safe = tuple((k, (v or b"").decode("utf-8", errors="replace").encode()) for k, v in headers)
        patched = replace(record, headers=safe)
        if hasattr(record, "consumer"):
            patched.consumer = record.consumer  # set by FastStream, not a dataclass field
        record = patched
    return await original(record)


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_headers(raw: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Kafka headers as text; a null value (legal in Kafka) becomes an empty string."""
    return {k: (v or b"").decode(errors="replace") for k, v in (raw or ())}


class ReliableConsumer:
    """Runs one handler per event with retries, dead-lettering and commit-after-success."""

    def __init__(
        self,
        broker: KafkaBroker,
        *,
        stage: Stage,
        group_id: str,
        retry: RetryPolicy,
    ) -> None:
        self.broker = broker
        self.stage = stage
        self.group_id = group_id
        self.retry = retry
        #: Lag of every subscription's partitions; the runtime refreshes it on each scrape.
        self.lag = metrics.LagReader()

    def subscribe(
        self,
        event_type: type[E],
        handler: Handler[E],
        *topics: str,
        group_suffix: str | None = None,
        retry_transient_forever: bool = False,
        **subscriber_options: Any,
    ) -> None:
        """Register ``handler`` for ``event_type`` on ``topics`` in this consumer group.

        ``group_suffix`` gives the subscription a consumer group of its own: a priority lane
        then never waits for another lane's rebalance. ``retry_transient_forever``: a transient
        failure is retried until it passes, holding the partition, never dead-lettered. For
        consent changes: one parked during a database failover would be lost to this service
        (and the versions after it applied without it); waiting is what consent needs. Events
        whose type is ``never_parked`` (consent changes, removals) always get it.
        """
        group_id = f"{self.group_id}.{group_suffix}" if group_suffix else self.group_id
        # Consent changes and removals are never parked, whoever subscribes and whether or not
        # it remembered to ask: the event type decides.
        retry_transient_forever = retry_transient_forever or event_type.never_parked

        async def consume(message: KafkaMessage) -> None:
            record = message.raw_message
            if isinstance(record, tuple):  # a batch: never, every subscription here takes one
                raise TypeError("ReliableConsumer handles one record at a time")
            delivery = Delivery(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                headers=decode_headers(record.headers),
            )
            await self._handle(
                event_type, handler, message.body, delivery, group_id, retry_transient_forever
            )

        consume.__name__ = f"{self.stage.value}_{getattr(handler, '__name__', 'handler')}"
        subscriber = self.broker.subscriber(
            *topics,
            group_id=group_id,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            parser=_tolerant_headers,
            **subscriber_options,
        )
        subscriber(consume)
        self.lag.watch(group_id, lambda: getattr(subscriber, "consumer", None))

    async def _handle(
        self,
        event_type: type[E],
        handler: Handler[E],
        body: bytes,
        delivery: Delivery,
        group_id: str,
        forever: bool = False,
    ) -> None:
        clock = metrics.Stopwatch()
        span = trace.get_current_span()
        span.set_attribute("messaging.consumer.group.name", group_id)
        span.set_attribute("genomebus.stage", self.stage.value)
        outcome = "error"  # unfinished (the dead-letter publish failed, or shutdown): redelivered
        try:
            outcome = await self._attempts(
                event_type, handler, body, delivery, group_id, span, forever
            )
        finally:
            metrics.HANDLE_SECONDS.labels(self.stage.value, delivery.topic, outcome).observe(
                clock.elapsed
            )

    def _failed(self, delivery: Delivery, error: GenomebusError) -> None:
        kind = "transient" if isinstance(error, TransientError) else "permanent"
        metrics.HANDLER_FAILURES.labels(self.stage.value, delivery.topic, error.code, kind).inc()

    async def _attempts(
        self,
        event_type: type[E],
        handler: Handler[E],
        body: bytes,
        delivery: Delivery,
        group_id: str,
        span: trace.Span,
        forever: bool = False,
    ) -> str:
        """Handle with retries; returns the outcome (``ok`` or ``dead_lettered``)."""
        try:
            event = event_type.model_validate_json(body)
        except ValidationError as exc:
            reason = f"not a valid {event_type.__name__}: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '<body>'}: {e['msg']}" for e in exc.errors()
            )
            error = InvalidEvent(reason)
            self._failed(delivery, error)
            await self.dead_letter(body, delivery, error, attempts=1, group_id=group_id)
            return "dead_lettered"

        span.set_attribute("genomebus.event_type", event.event_type)
        span.set_attribute("genomebus.correlation_id", event.correlation_id)
        if (sample_id := getattr(event, "sample_id", None)) is not None:
            span.set_attribute("genomebus.sample_id", sample_id)
        attempt = 1
        while True:
            try:
                await handler(event, replace(delivery, attempt=attempt))
                return "ok"
            except TransientError as exc:
                self._failed(delivery, exc)
                if shutdown.stopping():
                    # The service is shutting down (its tools were killed): not the message's
                    # fault, so no retry and no dead letter. Raising would nack it and have it
                    # redelivered to this very consumer in a tight loop until the broker closes;
                    # waiting to be cancelled by that close leaves it uncommitted, for the next
                    # worker, just the same.
                    log.warning(
                        "stopping: message left for redelivery",
                        extra={"topic": delivery.topic, "offset": delivery.offset},
                    )
                    await asyncio.Event().wait()
                if attempt >= self.retry.max_attempts and not forever:
                    await self.dead_letter(
                        body, delivery, exc, attempts=attempt, event=event, group_id=group_id
                    )
                    return "dead_lettered"
                pause = self.retry.backoff(attempt)
                log.warning(
                    "transient failure, retrying",
                    extra={
                        "error": str(exc),
                        "attempt": attempt,
                        "retry_in_s": pause,
                        "topic": delivery.topic,
                        "offset": delivery.offset,
                    },
                )
                await asyncio.sleep(pause)
                attempt += 1
            except PermanentError as exc:
                self._failed(delivery, exc)
                await self.dead_letter(
                    body, delivery, exc, attempts=attempt, event=event, group_id=group_id
                )
                return "dead_lettered"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # not mapped by an adapter: classify it, keep the message
                mapped = from_unexpected(exc)
                self._failed(delivery, mapped)
                if isinstance(mapped, TransientError) and (
                    forever or attempt < self.retry.max_attempts
                ):
                    log.warning("transient failure, retrying", extra={"error": mapped.reason})
                    await asyncio.sleep(self.retry.backoff(attempt))
                    attempt += 1
                    continue
                log.exception("handler failed", extra={"code": mapped.code})
                await self.dead_letter(
                    body, delivery, mapped, attempts=attempt, event=event, group_id=group_id
                )
                return "dead_lettered"

    async def dead_letter(
        self,
        body: bytes,
        delivery: Delivery,
        error: GenomebusError,
        *,
        attempts: int,
        event: Event | None = None,
        group_id: str | None = None,
    ) -> None:
        """Park the untouched message in the DLQ (raise if that fails: the message must stay
        uncommitted) and announce the failure on ``stage.failed`` (best effort, see
        ``_announce``)."""
        retriable = isinstance(error, TransientError)
        headers = {
            **delivery.headers,
            H_DLQ_REASON: _safe_reason(error.reason),
            H_DLQ_ERROR_CODE: error.code,
            H_DLQ_ERROR_KIND: "transient" if retriable else "permanent",
            H_DLQ_TOPIC: delivery.topic,
            H_DLQ_PARTITION: str(delivery.partition),
            H_DLQ_OFFSET: str(delivery.offset),
            H_DLQ_GROUP: group_id or self.group_id,
            H_DLQ_ATTEMPTS: str(attempts),
            H_DLQ_FAILED_AT: datetime.now(UTC).isoformat(),
        }
        log.error(
            "dead-lettered",
            extra={
                "reason": error.reason,
                "code": error.code,
                "topic": delivery.topic,
                "partition": delivery.partition,
                "offset": delivery.offset,
            },
        )
        await self.broker.publish(
            body, topic=dead_letter_topic(delivery.topic), key=delivery.key, headers=headers
        )
        await self._announce(self._stage_failed(delivery, error, event))
        metrics.DEAD_LETTERS.labels(self.stage.value, delivery.topic, error.code).inc()
        span = trace.get_current_span()
        span.set_attribute("genomebus.dead_lettered", True)
        span.set_attribute("error.type", error.code)
        span.set_status(trace.Status(trace.StatusCode.ERROR, _safe_reason(error.reason)[:200]))

    async def _announce(self, failed: StageFailed, attempts: int = 3) -> None:
        """Publish ``stage.failed``, retrying; give up with an error log, never by raising.

        The message is already safe in the DLQ. Raising now would leave it uncommitted, so it
        would be handled, fail and be dead-lettered again: a duplicate in the DLQ for every
        failed announcement. A missing announcement loses nothing the DLQ does not hold.
        """
        for attempt in range(1, attempts + 1):
            try:
                await self.broker.publish(
                    failed.to_bytes(),
                    topic=STAGE_FAILED.name,
                    key=message_key(failed),
                    headers=event_headers(failed),
                )
                return
            except Exception as exc:  # noqa: BLE001 - any failure: retry, then log
                if attempt == attempts:
                    log.error(
                        "stage.failed not announced (the message is in the DLQ)",
                        extra={
                            "error": str(exc),
                            "source_topic": failed.source_topic,
                            "source_offset": failed.source_offset,
                        },
                    )
                    return
                await asyncio.sleep(0.5 * attempt)

    def _stage_failed(
        self, delivery: Delivery, error: GenomebusError, event: Event | None
    ) -> StageFailed:
        fields: dict[str, Any] = dict(
            stage=self.stage,
            error_code=error.code,
            reason=_safe_reason(error.reason),
            retriable=isinstance(error, TransientError),
            source_topic=delivery.topic,
            source_partition=delivery.partition,
            source_offset=delivery.offset,
        )
        if event is not None:
            fields |= dict(
                correlation_id=event.correlation_id,
                sample_id=getattr(event, "sample_id", None),
                source_event_id=event.event_id,
            )
            return StageFailed(**fields)
        # The message was unreadable: take its correlation header if it is a valid one.
        fallback = f"{delivery.topic}-{delivery.partition}-{delivery.offset}"
        try:
            return StageFailed(
                **fields, correlation_id=delivery.headers.get(H_CORRELATION_ID) or fallback
            )
        except ValidationError:
            return StageFailed(**fields, correlation_id=fallback)


def _safe_reason(reason: str) -> str:
    """A reason may quote input; keep it short and free of anything shaped like a CPR number."""
    from genomebus_common.contracts.identifiers import redact_national_ids

    return redact_national_ids(reason[:4000])[:2000]
