"""Settings the manifests rely on, the consumer group the probe watches, and /healthz, /readyz."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from genomebus_common.contracts.events import Priority, SampleReceived, Stage
from genomebus_common.contracts.topics import sample_received_topic
from genomebus_common.runtime.broker import ReliableConsumer, RetryPolicy
from genomebus_heat import config
from genomebus_heat.adapters.kube import KubeClient
from genomebus_heat.config import HeatSettings
from genomebus_heat.controller import HeatController
from genomebus_heat.inject import create_app

from .fake_kube import FakeKube
from .test_controller import FakeProbe


def test_manifest_variable_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "GENOMEBUS_HEAT_SCALEDOBJECT": "research-so",
        "GENOMEBUS_HEAT_NAMESPACE": "dc-north",
        "GENOMEBUS_HEAT_DEMAND_CONFIGMAP": "demand-cm",
        "GENOMEBUS_HEAT_RECOVERY_CONFIGMAP": "recovery-cm",
        "GENOMEBUS_HEAT_MIN_REPLICAS": "2",
        "GENOMEBUS_HEAT_MAX_REPLICAS": "5",
        "GENOMEBUS_HEAT_MAX_RESEARCH_WAIT_S": "7200",
        "GENOMEBUS_HEAT_INTERVAL_S": "30",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = HeatSettings(_env_file=None)  # type: ignore[call-arg]
    assert (
        s.heat_scaledobject,
        s.heat_namespace,
        s.heat_demand_configmap,
        s.heat_recovery_configmap,
    ) == ("research-so", "dc-north", "demand-cm", "recovery-cm")
    assert (s.heat_min_replicas, s.heat_max_replicas) == (2, 5)
    assert (s.heat_max_research_wait_s, s.heat_interval_s) == (7200, 30)
    assert s.escalate_after_s == 7200 - s.heat_escalation_margin_s


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in (
        "GENOMEBUS_HEAT_NAMESPACE",
        "GENOMEBUS_HEAT_MAX_REPLICAS",
        "GENOMEBUS_SERVICE_NAME",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(config, "POD_NAMESPACE_FILE", tmp_path / "absent")
    s = HeatSettings(_env_file=None)  # type: ignore[call-arg]
    assert s.heat_scaledobject == "alignment-research"
    assert s.heat_namespace == "genomebus"
    assert s.heat_demand_configmap == "genomebus-heat-demand"
    assert s.heat_recovery_configmap == "genomebus-heat-recovery"
    assert s.heat_max_replicas == 6 == config.RESEARCH_LANE.partitions
    assert s.heat_research_topic == "genomebus.sample.received.research"
    assert s.http_port == 8080 and s.service_name == "heat"

    (tmp_path / "namespace").write_text("genomebus-prod\n")
    monkeypatch.setattr(config, "POD_NAMESPACE_FILE", tmp_path / "namespace")
    assert HeatSettings(_env_file=None).heat_namespace == "genomebus-prod"  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "values",
    [
        {"heat_max_replicas": 7},  # beyond the research topic's partitions
        {"heat_min_replicas": 0},
        {"heat_min_replicas": 4, "heat_max_replicas": 3},
        {"heat_max_research_wait_s": 600, "heat_escalation_margin_s": 600},
    ],
)
def test_inconsistent_settings_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        HeatSettings(_env_file=None, **values)  # type: ignore[call-arg]


def test_probed_group_is_the_one_alignment_consumes_the_research_lane_in() -> None:
    """Subscribe the way alignment's main.py does and read back the group id it asks for."""
    from genomebus_alignment.config import AlignmentSettings

    asked: list[str] = []

    class RecordingBroker:
        def subscriber(self, *topics: str, group_id: str, **_: Any):
            if sample_received_topic(Priority.RESEARCH) in topics:
                asked.append(group_id)
            return lambda fn: fn

    alignment = AlignmentSettings(_env_file=None, profile="dev")  # type: ignore[call-arg]
    consumer = ReliableConsumer(
        RecordingBroker(),
        stage=Stage.ALIGNMENT,  # type: ignore[arg-type]
        group_id=alignment.consumer_group,
        retry=RetryPolicy(),
    )
    for lane in alignment.lanes:
        consumer.subscribe(
            SampleReceived,
            lambda e, d: None,
            sample_received_topic(lane),  # type: ignore[arg-type,return-value]
            group_suffix=lane.value,
        )
    assert asked == [HeatSettings(_env_file=None).heat_research_group]  # type: ignore[call-arg]
    assert asked == ["genomebus.alignment.research"]


def _app(fake: FakeKube) -> TestClient:
    s = HeatSettings(_env_file=None, heat_namespace="ns", heat_interval_s=1)  # type: ignore[call-arg]

    def make(settings: HeatSettings) -> HeatController:
        kube = KubeClient("https://kube.test", lambda: "tok", transport=fake.transport())
        return HeatController(settings, kube, FakeProbe())  # type: ignore[arg-type]

    return TestClient(create_app(s, make))


def _wait_ready(client: TestClient, status: int) -> dict[str, Any]:
    for _ in range(60):
        response = client.get("/readyz")
        if response.status_code == status:
            return response.json()
        time.sleep(0.1)
    raise AssertionError(f"/readyz never answered {status}: {response.json()}")


def test_health_and_readiness() -> None:
    fake = FakeKube()
    fake.add_scaled_object("ns", "alignment-research", 6)
    with _app(fake) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        body = _wait_ready(client, 200)
        assert body["checks"] == {"steer": True, "recovery": True}
        assert body["ceiling"] == 6 and "no heat forecast" in body["reason"]


def test_not_ready_while_the_scaled_object_cannot_be_read() -> None:
    fake = FakeKube()  # no ScaledObject: every steer round gets a 404
    with _app(fake) as client:
        body = _wait_ready(client, 503)
        assert body["checks"] == {"steer": False, "recovery": True}
        assert "HTTP 404" in body["errors"]["steer"]
        assert client.get("/healthz").status_code == 200  # failing rounds are not a dead process
