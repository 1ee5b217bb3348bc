"""The table every Kafka ACL comes from (``topics.BUS_CLIENTS``) against what the services' code
really does: no broker here, the services' own ``build_app`` and source are the evidence.

A service that subscribes to, or constructs an event for, a topic the table does not grant it
would be refused by the broker at run time; these tests say so at once, with the name.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genomebus_common.contracts import events
from genomebus_common.contracts.topics import (
    ALL_TOPICS,
    BUS_CLIENTS,
    CONSENT_CHANGED,
    STAGE_PROGRESS,
    WORK_LANES,
    BusClient,
)
from genomebus_common.runtime.kafka_acls import all_rules, rules_for

from ..infra import REPO_ROOT

SERVICES = ("ingest", "consent", "alignment", "calling", "registry")
PSEUDONYM_KEY = "ab" * 32


def _settings(service: str) -> Any:
    """The service's own settings class, enough to build its app (nothing is connected)."""
    config = importlib.import_module(f"genomebus_{service}.config")
    cls = next(
        v
        for k, v in vars(config).items()
        if k.endswith("Settings") and k.lower().startswith(service)
    )
    extra: dict[str, Any] = {"profile": "dev"}  # default DSNs: a development stack's
    if service in ("ingest", "consent"):
        extra["pseudonym_key"] = PSEUDONYM_KEY
    if service == "registry":
        extra["consume_events"] = True
    return cls(_env_file=None, **extra)


Subscriptions = list[tuple[tuple[str, ...], str]]


def subscriptions(service: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Subscriptions, list[str]]:
    """(topics, group_id) of every subscription the real ``build_app`` makes, and the topics
    of the consent views it builds."""
    import genomebus_common.runtime.service as runtime

    calls: Subscriptions = []
    views: list[str] = []

    class RecordingBroker:
        def subscriber(self, *topics: str, group_id: str, **_: Any):
            calls.append((topics, group_id))
            return lambda fn: fn

    main = importlib.import_module(f"genomebus_{service}.main")
    if hasattr(main, "ConsentView"):
        real = main.ConsentView

        def recording_view(settings: Any, *args: Any, **kwargs: Any) -> Any:
            view = real(settings, *args, **kwargs)
            views.append(view.topic)
            return view

        monkeypatch.setattr(main, "ConsentView", recording_view)
    monkeypatch.setattr(runtime, "create_broker", lambda *a, **k: RecordingBroker())
    main.build_app(_settings(service))
    return calls, views


def _group_allowed(client: BusClient, group: str) -> bool:
    return any(group.startswith(g) if g.endswith(".") else group == g for g in client.groups)


@pytest.mark.parametrize("service", SERVICES)
def test_every_subscription_is_granted_with_its_group(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = BUS_CLIENTS[service]
    calls, views = subscriptions(service, monkeypatch)
    for topics, group in calls:
        assert set(topics) <= set(client.consumes), f"{service} subscribes {topics} in {group}"
        assert _group_allowed(client, group), f"{service} joins {group}, not one of {client.groups}"
        # a failed message goes to the topic's DLQ and is announced: both writes
        assert {f"{t}.dlq" for t in topics} | {"genomebus.stage.failed"} <= client.writes
    for topic in views:
        assert topic in client.reads, f"{service}'s consent view reads {topic}"
    consumed = {t for topics, _ in calls for t in topics}
    assert consumed == set(client.consumes), f"{service}: the table grants more than it reads"


def _constructed_events(package: Path) -> Iterator[type[events.Event]]:
    """Event classes the package's code constructs (``SampleReceived(...)``): what it may
    publish. Events it receives are parsed, never constructed."""
    known = {
        name: cls
        for name, cls in vars(events).items()
        if isinstance(cls, type) and issubclass(cls, events.Event) and cls is not events.Event
    }
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Name) and node.func.id in known:
                yield known[node.func.id]
            # ``source.follow_on(SampleAligned, ...)``: the next event about a sample
            elif (
                isinstance(node.func, ast.Attribute)
                and node.func.attr == "follow_on"
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id in known
            ):
                yield known[node.args[0].id]


def _uses_scattered_stage(package: Path) -> bool:
    return any(
        "ScatteredStage(" in text or "ScatteredStage.for_work(" in text
        for text in (p.read_text() for p in package.rglob("*.py"))
    )


@pytest.mark.parametrize("service", SERVICES)
def test_every_event_a_service_constructs_has_its_topics_granted(service: str) -> None:
    client = BUS_CLIENTS[service]
    package = REPO_ROOT / "services" / service / "src" / f"genomebus_{service}"
    needed: set[str] = set()
    for cls in set(_constructed_events(package)):
        needed |= {t.name for t in ALL_TOPICS if t.event is cls}
    if _uses_scattered_stage(package):
        # the shared scatter publishes the units on the stage's lanes and the progress
        stage = events.Stage(service)
        needed |= {t.name for (s, _), t in WORK_LANES.items() if s is stage}
        needed.add(STAGE_PROGRESS.name)
    assert needed, f"{service} constructs no event at all? the scan is broken"
    assert needed <= client.writes, f"{service} publishes {sorted(needed - client.writes)}"
    unused = set(client.produces) - needed
    assert not unused, f"{service} may write {sorted(unused)}, which it never does"


def test_heat_reads_the_lane_and_group_it_is_configured_with() -> None:
    from genomebus_heat.config import HeatSettings

    settings = HeatSettings(_env_file=None, profile="dev")  # type: ignore[call-arg]
    heat = BUS_CLIENTS["heat"]
    assert settings.heat_research_topic in heat.reads
    assert settings.heat_research_group in heat.watches_groups
    assert not heat.writes and not heat.groups


def test_only_the_consent_service_writes_consent() -> None:
    writers = {
        r.user for r in all_rules() if r.name == CONSENT_CHANGED.name and r.operation == "Write"
    }
    assert writers == {BUS_CLIENTS["consent"].user}


def test_the_replay_tool_reads_every_dlq_and_writes_back_anywhere_but_consent() -> None:
    ops = BUS_CLIENTS["ops"]
    assert ops.reads == {t.dlq for t in ALL_TOPICS}
    assert ops.writes == {t.name for t in ALL_TOPICS} - {CONSENT_CHANGED.name}
    from genomebus_ops.replay import replay_group

    assert _group_allowed(ops, replay_group(ALL_TOPICS[0].dlq))


def test_rules_name_only_real_topics_and_narrow_operations() -> None:
    names = {t.name for t in ALL_TOPICS} | {t.dlq for t in ALL_TOPICS}
    for rule in all_rules():
        assert rule.operation in ("Read", "Write", "Describe"), rule
        if rule.resource == "topic":
            assert rule.pattern == "literal" and rule.name in names, rule
        else:
            assert rule.name.startswith("genomebus."), rule
            assert rule.pattern == ("prefixed" if rule.name.endswith(".") else "literal"), rule
    assert len(set(all_rules())) == len(all_rules())


def test_a_service_consumes_nothing_it_produces_except_its_own_work() -> None:
    """Reading back one's own output is the scatter's units only (any worker takes any)."""
    for client in BUS_CLIENTS.values():
        if client.name == "ops":
            continue
        looped = set(client.produces) & set(client.consumes)
        assert all(t.startswith("genomebus.work.") for t in looped), (client.name, looped)


def test_rules_for_a_client_are_its_table_entry() -> None:
    alignment = BUS_CLIENTS["alignment"]
    rules = rules_for(alignment)
    assert {r.name for r in rules if r.operation == "Write"} == alignment.writes
    read = {r.name for r in rules if r.operation == "Read" and r.resource == "topic"}
    assert read == alignment.reads
    assert {(r.name, r.pattern) for r in rules if r.resource == "group"} == {
        ("genomebus.alignment", "literal"),
        ("genomebus.alignment.", "prefixed"),
    }
