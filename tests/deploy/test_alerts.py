"""Alerts read only metrics the services define and each links to its runbook section."""

from __future__ import annotations

import re
from typing import Any

import pytest

from genomebus_common.runtime.metrics import metric_names

from ..observability.test_dashboard import metrics_in
from .k8s_support import K8S_DIR, REPO, render

RUNBOOK = REPO / "docs" / "operations.md"


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.fixture(scope="module")
def alerts() -> list[dict[str, Any]]:
    rules = [
        d for d in render(K8S_DIR / "overlays" / "production") if d["kind"] == "PrometheusRule"
    ]
    assert rules, "the production overlay ships the alert rules"
    found = [r for doc in rules for g in doc["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert found
    return found


def test_every_alert_reads_only_metrics_the_code_defines(alerts: list[dict[str, Any]]) -> None:
    defined = metric_names()
    for alert in alerts:
        unknown = metrics_in(alert["expr"]) - defined
        assert not unknown, f"{alert['alert']} reads undefined metrics {unknown}"


def test_every_alert_links_to_a_runbook_section_that_exists(alerts: list[dict[str, Any]]) -> None:
    anchors = {_slug(m) for m in re.findall(r"^#{2,4} (.+)$", RUNBOOK.read_text(), re.M)}
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == "docs/operations.md" and anchor in anchors, f"{alert['alert']}: {url}"


def test_every_alert_has_a_severity_and_says_what_is_at_stake(alerts: list[dict[str, Any]]) -> None:
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
    urgent = next(a for a in alerts if a["alert"] == "GenomebusUrgentSampleWaiting")
    assert urgent["labels"]["severity"] == "critical", "urgent clinical work never waits quietly"


def test_the_slug_matches_githubs_rule() -> None:
    assert _slug("Replaying a dead-letter topic") == "replaying-a-dead-letter-topic"
    assert _slug("Backing up and restoring the registry") == "backing-up-and-restoring-the-registry"
