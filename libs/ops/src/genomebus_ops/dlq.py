"""Replaying a dead-letter topic safely: what may go back, and how, without losing or looping.

A message lands in ``<topic>.dlq`` untouched, with headers saying why (``x-dlq-*``, written by
``broker.ReliableConsumer.dead_letter``). Once the cause is fixed (a tool installed, a bucket
restored, a bug deployed away), an operator sends it back to the topic it came from. Doing that
by hand with kcat is how messages get lost or sent twice; this module makes the safe way the
easy one:

- **Nothing is lost.** Replay reads the DLQ with its own consumer group and commits a DLQ offset
  only after the message has been acknowledged by every in-sync replica of the original topic.
  An interrupted replay resumes where it stopped; the DLQ record itself is never deleted.
- **Duplicates are harmless.** A crash between publish and commit sends one message twice; the
  stages are idempotent (inbox, compute-once records), so the second is a no-op. The replayed
  message keeps its event id.
- **No loops.** Replay stops at the end offsets it saw when it started, so a message that fails
  again (and is dead-lettered again) is not picked up by the same run; and each message carries
  ``x-replay-count``, refused beyond a limit so a poison message cannot cycle for ever.
- **Only what can succeed goes back.** A body that is not a valid event of the original topic's
  contract failed for good: it is reported and left where it is (``--force`` overrides, for a
  consumer bug fixed since). Messages can be chosen by error code or DLQ offset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import ValidationError

from genomebus_common.contracts.headers import (
    H_DLQ_ATTEMPTS,
    H_DLQ_ERROR_CODE,
    H_DLQ_ERROR_KIND,
    H_DLQ_FAILED_AT,
    H_DLQ_OFFSET,
    H_DLQ_PARTITION,
    H_DLQ_REASON,
    H_DLQ_TOPIC,
)
from genomebus_common.contracts.topics import ALL_TOPICS, DLQ_SUFFIX, Topic

H_REPLAY_COUNT = "x-replay-count"
H_REPLAYED_FROM = "x-replayed-from"
DLQ_HEADER_PREFIX = "x-dlq-"
DEFAULT_MAX_REPLAYS = 3


class Verdict(StrEnum):
    REPLAY = "replay"
    SKIP_FILTERED = "skip: not selected"
    SKIP_INVALID = "skip: body is not a valid event of the original topic"
    SKIP_LOOPING = "skip: replayed too often already"
    SKIP_UNKNOWN_TOPIC = "skip: original topic unknown or not this DLQ's"


@dataclass(frozen=True)
class ParkedMessage:
    """One DLQ record, as the operator sees it."""

    dlq_topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Mapping[str, str]

    @property
    def original_topic(self) -> str | None:
        return self.headers.get(H_DLQ_TOPIC)

    @property
    def replay_count(self) -> int:
        try:
            return int(self.headers.get(H_REPLAY_COUNT, "0"))
        except ValueError:
            return 0

    def summary(self) -> dict[str, object]:
        """What ``list`` prints: the why and where, never the body."""
        return {
            "dlq_offset": f"{self.partition}:{self.offset}",
            "original": f"{self.original_topic}[{self.headers.get(H_DLQ_PARTITION)}]"
            f"@{self.headers.get(H_DLQ_OFFSET)}",
            "error_code": self.headers.get(H_DLQ_ERROR_CODE),
            "kind": self.headers.get(H_DLQ_ERROR_KIND),
            "reason": self.headers.get(H_DLQ_REASON),
            "attempts": self.headers.get(H_DLQ_ATTEMPTS),
            "failed_at": self.headers.get(H_DLQ_FAILED_AT),
            "replays": self.replay_count,
        }


@dataclass(frozen=True)
class Selection:
    """Which parked messages an operator asked for (empty filters select everything)."""

    error_codes: frozenset[str] = frozenset()
    offsets: frozenset[tuple[int, int]] = frozenset()

    def wants(self, message: ParkedMessage) -> bool:
        if self.error_codes and message.headers.get(H_DLQ_ERROR_CODE) not in self.error_codes:
            return False
        return not self.offsets or (message.partition, message.offset) in self.offsets


def topic_of_dlq(dlq_topic: str, topics: Iterable[Topic] = ALL_TOPICS) -> Topic:
    """The genomebus topic a DLQ belongs to; refuses anything else (a typo must not replay)."""
    topics = tuple(topics)
    if not dlq_topic.endswith(DLQ_SUFFIX):
        raise ValueError(f"{dlq_topic!r} is not a dead-letter topic (no {DLQ_SUFFIX!r} suffix)")
    name = dlq_topic.removesuffix(DLQ_SUFFIX)
    for topic in topics:
        if topic.name == name:
            return topic
    raise ValueError(f"{name!r} is not a genomebus topic; known: {[t.name for t in topics]}")


def judge(
    message: ParkedMessage,
    selection: Selection,
    *,
    max_replays: int = DEFAULT_MAX_REPLAYS,
    force: bool = False,
    topics: Iterable[Topic] = ALL_TOPICS,
) -> Verdict:
    """Whether one parked message goes back, and if not, why not."""
    if not selection.wants(message):
        return Verdict.SKIP_FILTERED
    try:
        topic = topic_of_dlq(message.dlq_topic, topics)
    except ValueError:
        return Verdict.SKIP_UNKNOWN_TOPIC
    if message.original_topic != topic.name:
        return Verdict.SKIP_UNKNOWN_TOPIC
    if message.replay_count >= max_replays:
        return Verdict.SKIP_LOOPING
    if not force:
        try:
            topic.event.from_bytes(message.value)
        except (ValidationError, ValueError):
            return Verdict.SKIP_INVALID
    return Verdict.REPLAY


def replay_headers(message: ParkedMessage) -> list[tuple[str, bytes]]:
    """The original headers (trace context, event type...) without the DLQ's, plus provenance."""
    kept = {k: v for k, v in message.headers.items() if not k.startswith(DLQ_HEADER_PREFIX)}
    kept[H_REPLAY_COUNT] = str(message.replay_count + 1)
    kept[H_REPLAYED_FROM] = f"{message.dlq_topic}:{message.partition}:{message.offset}"
    return [(k, v.encode()) for k, v in kept.items()]


@dataclass
class ReplayReport:
    """What a run did, per verdict, for the operator's terminal and the audit trail."""

    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    replayed: list[str] = field(default_factory=list)
    skipped: list[dict[str, object]] = field(default_factory=list)

    def record(self, message: ParkedMessage, verdict: Verdict) -> None:
        self.counts[verdict.value] = self.counts.get(verdict.value, 0) + 1
        where = f"{message.partition}:{message.offset}"
        if verdict is Verdict.REPLAY:
            self.replayed.append(where)
        elif verdict is not Verdict.SKIP_FILTERED:
            self.skipped.append({"dlq_offset": where, "why": verdict.value})

    def to_json(self) -> str:
        return json.dumps(
            {
                "dry_run": self.dry_run,
                "counts": self.counts,
                "replayed": self.replayed,
                "skipped": self.skipped,
            },
            indent=2,
        )
