"""The Grafana dashboard queries only metrics the services export: a renamed metric fails here
before it leaves a panel empty."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import services.edge.app  # registers the edge's metrics
import services.shared.metrics  # noqa: F401

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "casework.json"


def _exported() -> set[str]:
    """Every series name the registry can expose, children or not yet."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    names: set[str] = set()
    for collector in list(REGISTRY._collector_to_names):
        for family in collector.collect():
            names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return {n for n in names if n.startswith("casework_")}


def test_metrics_dashboard_queries_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    queried = {name for expr in exprs for name in re.findall(r"\bcasework_[a-z_]+", expr)}
    exported = _exported()
    unknown = sorted(n for n in queried if n not in exported)
    assert not unknown, f"the dashboard queries metrics nobody exports: {unknown}"
    # The figures operators scale and alert on each have a panel.
    for name in (
        "casework_consumer_lag",
        "casework_outbox_backlog",
        "casework_command_latency_seconds_bucket",
        "casework_http_requests_total",
        "casework_http_request_duration_seconds_bucket",
    ):
        assert name in queried, name


def test_metrics_dashboard_panels_have_unique_ids_and_a_datasource() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels)
