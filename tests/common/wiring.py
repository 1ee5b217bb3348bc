"""A service's Kafka subscriptions on FastStream's in-memory test broker (no Kafka): build the
runtime, subscribe the service's handlers over a recording stand-in for its core, and publish.
What this checks is the wiring: topic, consumer group, parsing, dead-lettering of a malformed
record. The handlers' own behaviour is tested on the in-memory adapters and on the real stack."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faststream.kafka import KafkaBroker

from genomebus_common.contracts.events import Stage
from genomebus_common.runtime.broker import ReliableConsumer
from genomebus_common.runtime.service import ServiceRuntime
from genomebus_common.runtime.settings import KafkaSettings
from genomebus_common.stagekit.stage import ScatteredStage


def runtime(service: str) -> ServiceRuntime:
    """The service's runtime, as its main builds it, pointing at no broker at all."""
    settings = KafkaSettings(
        service_name=service,
        kafka_bootstrap_servers="unused:9092",
        handler_retry_initial_s=0.01,
        handler_retry_max_s=0.02,
        _env_file=None,  # type: ignore[call-arg]
    )
    return ServiceRuntime(settings, Stage(service))


def groups(broker: KafkaBroker) -> dict[str, str]:
    """Each subscribed topic's consumer group (the ACLs grant groups by these names)."""
    return {name: sub.group_id for sub in broker.subscribers for name in sub.topic_names}


class Recorder:
    """Records every call made on it, whatever the method: a stand-in for a core."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        async def record(*args: Any, **_: Any) -> None:
            self.calls.append((name, args))

        return record


class RecordingStage(Recorder):
    """A scattered stage whose handlers record (``on_source``, ``handle_unit``,
    ``handle_removal``); ``subscribe`` is the real ``ScatteredStage.subscribe``, so the work
    topics and their groups are the ones production subscribes."""

    def __init__(self, stage: Stage) -> None:
        super().__init__()
        self.work = SimpleNamespace(stage=stage)

    def subscribe(self, consumer: ReliableConsumer, lanes: Any, max_poll_interval_s: int) -> None:
        ScatteredStage.subscribe(self, consumer, lanes, max_poll_interval_s)  # type: ignore[arg-type]
