"""contrib/grafana-etcdhcp.json: importable, and built only on metrics etcdhcp exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from etcdhcp import metrics

DASHBOARD = Path(__file__).resolve().parents[1] / "contrib" / "grafana-etcdhcp.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
# Sample names Prometheus derives from a metric family's name.
_SUFFIXES = ("", "_total", "_bucket", "_sum", "_count", "_created")


def exported_names() -> set[str]:
    return {family.name + suffix for family in metrics.REGISTRY.collect() for suffix in _SUFFIXES}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_it_is_an_importable_dashboard_with_a_prometheus_input() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"] == [
        {
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes etcdhcp's /metrics",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }
    ]
    assert dashboard["uid"] and dashboard["title"] == "etcdhcp"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"] and all(t["datasource"] == DATASOURCE for t in panel["targets"])
    (instance,) = dashboard["templating"]["list"]
    assert instance["datasource"] == DATASOURCE


def test_every_query_uses_exported_metrics_and_every_metric_is_shown() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in panels(dashboard) for t in p["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\betcdhcp_[a-z0-9_]+", expr)}
    assert used <= exported_names(), used - exported_names()
    wanted = {
        "etcdhcp_packets_received_total",
        "etcdhcp_replies_sent_total",
        "etcdhcp_packets_dropped_total",
        "etcdhcp_request_duration_seconds_bucket",
        "etcdhcp_etcd_requests_total",
        "etcdhcp_etcd_request_duration_seconds_bucket",
        "etcdhcp_etcd_up",
        "etcdhcp_pool_addresses",
        "etcdhcp_leases_total",
        "etcdhcp_queue_depth",
        "etcdhcp_queue_wait_seconds_bucket",
    }
    assert wanted <= used, wanted - used
    assert all('instance=~"$instance"' in expr for expr in exprs)
    latency = [e for e in exprs if "etcdhcp_request_duration_seconds_bucket" in e]
    assert any(e.startswith("histogram_quantile(0.99,") for e in latency)
