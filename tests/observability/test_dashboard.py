"""The Grafana dashboard asks only for metrics the code defines, and shows every one of them."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

from genomebus_common.runtime import metrics
from genomebus_common.runtime.metrics import metric_names, shared_metric_names

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "genomebus.json"
SERVICES = ("ingest", "consent", "alignment", "calling", "registry")


def defined_metrics() -> set[str]:
    """Every metric any service defines: each service's modules imported first, so the answer
    does not depend on which tests ran before."""
    for service in SERVICES:
        importlib.import_module(f"genomebus_{service}.main")
    return metric_names()


# PromQL words that are not metric names (functions are recognised by the "(" after them).
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "le",
    "inf",
    "nan",
}
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metrics_in(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, grouping clauses, ranges,
    strings and function names removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings ("$job", "5..")
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in _IDENTIFIER.finditer(expr):
        word = match.group()
        rest = expr[match.end() :].lstrip()
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue  # a function call or a keyword
        names.add(word)
    return names


def exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert found, "the dashboard has no queries"
    return found


def test_every_expression_reads_only_metrics_the_code_defines() -> None:
    defined = defined_metrics()
    for expr in exprs():
        used = metrics_in(expr)
        assert used, f"no metric in {expr!r}"
        unknown = used - defined
        assert not unknown, f"{expr!r} reads {sorted(unknown)}, which no code defines"


def _family(name: str) -> str:
    for suffix in ("_total", "_bucket", "_count", "_sum"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_every_shared_metric_is_on_the_dashboard() -> None:
    shown = {_family(name) for expr in exprs() for name in metrics_in(expr)}
    defined = {_family(n) for n in shared_metric_names()}
    assert defined, "no genomebus metric is defined"
    missing = defined - shown
    assert not missing, f"defined but never shown: {sorted(missing)}"


def test_the_dashboard_is_importable_and_asks_for_its_data_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "genomebus" and dashboard["title"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "service"} <= variables
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            # Services are told apart by the pod label the PodMonitor copies onto each series.
            service_filter = 'app_kubernetes_io_name=~"$service"'
            assert all(service_filter in t["expr"] for t in panel["targets"]), panel["title"]


def test_the_expression_parser_sees_metric_names_only() -> None:
    assert metrics_in(
        "histogram_quantile(0.95, sum by (le, stage) "
        '(rate(genomebus_handle_seconds_bucket{job=~"$job"}[5m])))'
    ) == {"genomebus_handle_seconds_bucket"}
    assert metrics_in("sum(up) / sum(genomebus_outbox_backlog)") == {
        "up",
        "genomebus_outbox_backlog",
    }


def test_every_metric_is_documented_next_to_the_code() -> None:
    undocumented = {_family(n) for n in shared_metric_names()} - set(
        re.findall(r"``(genomebus_\w+?)(?:_total)?``", metrics.__doc__ or "")
    )
    assert not undocumented, f"not in metrics.py's table: {sorted(undocumented)}"
