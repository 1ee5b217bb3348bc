"""What may go back from a dead-letter topic, decided without a broker."""

from __future__ import annotations

import json

import pytest

from genomebus_common.contracts.events import SampleReceived
from genomebus_common.contracts.headers import (
    H_DLQ_ERROR_CODE,
    H_DLQ_OFFSET,
    H_DLQ_REASON,
    H_DLQ_TOPIC,
)
from genomebus_common.contracts.topics import SAMPLE_RECEIVED_LANES, Topic
from genomebus_ops.dlq import (
    H_REPLAY_COUNT,
    H_REPLAYED_FROM,
    ParkedMessage,
    ReplayReport,
    Selection,
    Verdict,
    judge,
    replay_headers,
    topic_of_dlq,
)

from ..common.factories import sample_received

ROUTINE = next(t for p, t in SAMPLE_RECEIVED_LANES.items() if p.value == "routine")


def parked(value: bytes | None = None, *, offset: int = 7, **headers: str) -> ParkedMessage:
    base = {
        H_DLQ_TOPIC: ROUTINE.name,
        H_DLQ_ERROR_CODE: "tool_missing",
        H_DLQ_REASON: "bwa not installed",
        H_DLQ_OFFSET: "41",
        "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
    }
    return ParkedMessage(
        dlq_topic=ROUTINE.dlq,
        partition=2,
        offset=offset,
        key=b"S-1",
        value=sample_received("S-1").to_bytes() if value is None else value,
        headers=base | headers,
    )


def test_a_valid_event_whose_cause_was_transient_goes_back() -> None:
    assert judge(parked(), Selection()) is Verdict.REPLAY


def test_a_body_that_breaks_the_contract_stays_unless_forced() -> None:
    broken = json.loads(sample_received("S-1").to_bytes())
    broken["read_pairs"] = -1
    message = parked(json.dumps(broken).encode())
    assert judge(message, Selection()) is Verdict.SKIP_INVALID
    assert judge(parked(b"{not json"), Selection()) is Verdict.SKIP_INVALID
    assert judge(message, Selection(), force=True) is Verdict.REPLAY


def test_a_message_replayed_too_often_is_refused_so_poison_cannot_cycle() -> None:
    assert judge(parked(**{H_REPLAY_COUNT: "2"}), Selection(), max_replays=3) is Verdict.REPLAY
    assert (
        judge(parked(**{H_REPLAY_COUNT: "3"}), Selection(), max_replays=3) is Verdict.SKIP_LOOPING
    )


def test_a_record_claiming_another_topic_is_never_sent_there() -> None:
    assert (
        judge(parked(**{H_DLQ_TOPIC: "genomebus.consent.changed"}), Selection())
        is Verdict.SKIP_UNKNOWN_TOPIC
    )


def test_filters_select_by_error_code_and_dlq_offset() -> None:
    assert judge(parked(), Selection(error_codes=frozenset({"other"}))) is Verdict.SKIP_FILTERED
    assert judge(parked(), Selection(error_codes=frozenset({"tool_missing"}))) is Verdict.REPLAY
    assert judge(parked(offset=7), Selection(offsets=frozenset({(2, 8)}))) is Verdict.SKIP_FILTERED
    assert judge(parked(offset=7), Selection(offsets=frozenset({(2, 7)}))) is Verdict.REPLAY


def test_replayed_headers_keep_trace_and_contract_headers_and_drop_the_dlq_ones() -> None:
    headers = dict(replay_headers(parked(**{H_REPLAY_COUNT: "1"})))
    assert not any(k.startswith("x-dlq-") for k in headers)
    assert headers["traceparent"].startswith(b"00-aaaa")
    assert headers[H_REPLAY_COUNT] == b"2"
    assert headers[H_REPLAYED_FROM] == f"{ROUTINE.dlq}:2:7".encode()


def test_only_dead_letter_topics_of_known_topics_are_accepted() -> None:
    with pytest.raises(ValueError, match="not a dead-letter topic"):
        topic_of_dlq(ROUTINE.name)
    with pytest.raises(ValueError, match="not a genomebus topic"):
        topic_of_dlq("genomebus.typo.dlq")
    custom = Topic("test.x", SampleReceived, 1, "test")
    assert topic_of_dlq("test.x.dlq", [custom]) is custom


def test_the_report_lists_what_was_skipped_and_why() -> None:
    report = ReplayReport(dry_run=False)
    report.record(parked(offset=1), Verdict.REPLAY)
    report.record(parked(offset=2), Verdict.SKIP_INVALID)
    report.record(parked(offset=3), Verdict.SKIP_FILTERED)
    document = json.loads(report.to_json())
    assert document["replayed"] == ["2:1"]
    assert document["skipped"] == [{"dlq_offset": "2:2", "why": Verdict.SKIP_INVALID.value}]
    assert document["counts"][Verdict.SKIP_FILTERED.value] == 1
