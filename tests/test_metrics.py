import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from etcdhcp import __version__, metrics

SRC = Path(__file__).resolve().parents[1] / "src"
DEBIAN_PYTHON = "/usr/bin/python3"  # with python3-prometheus-client 0.16: what the .deb runs


def exposition() -> str:
    return generate_latest(metrics.REGISTRY).decode()


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_registry_is_private():
    assert isinstance(metrics.REGISTRY, CollectorRegistry)
    from prometheus_client import REGISTRY as default_registry

    assert metrics.REGISTRY is not default_registry
    assert "etcdhcp_" not in generate_latest(default_registry).decode()


CREATED_SCRIPT = """
import importlib.metadata, sys
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics
from etcdhcp import metrics
metrics.LEASES.labels("granted").inc()
metrics.REQUEST_DURATION.labels("request").observe(0.01)
print(importlib.metadata.version("prometheus_client"))
sys.stdout.write(generate_latest(metrics.REGISTRY).decode())
sys.stdout.write(openmetrics(metrics.REGISTRY).decode())
"""


@pytest.mark.parametrize(
    ("python", "debian"), [(sys.executable, False), (DEBIAN_PYTHON, True)], ids=["venv", "debian"]
)
def test_no_created_series_with_the_newest_client_or_debians(python: str, debian: bool) -> None:
    """A counter or histogram exports its series and no `*_created` twin, whichever
    prometheus_client runs it: the venv's (newest) or Debian 12's 0.16 (the .deb's)."""
    result = subprocess.run(
        [python, "-P", "-c", CREATED_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=True,
    )
    version, text = result.stdout.split("\n", 1)
    assert version.startswith("0.16.") == debian, version  # both paths of metrics.py
    assert 'etcdhcp_leases_total{event="granted"} 1.0' in text
    assert 'etcdhcp_request_duration_seconds_count{type="request"} 1.0' in text
    assert "_created" not in text


def test_closed_label_sets_start_at_zero():
    text = exposition()
    for kind in ("discover", "request", "release", "decline", "inform", "other"):
        assert f'etcdhcp_packets_received_total{{type="{kind}"}}' in text
    for kind in ("offer", "ack", "nak"):
        assert f'etcdhcp_replies_sent_total{{type="{kind}"}}' in text
    for event in ("granted", "renewed", "released", "declined", "expired_reclaimed"):
        assert f'etcdhcp_leases_total{{event="{event}"}}' in text


def test_latency_histograms_cover_half_a_millisecond_to_two_seconds():
    metrics.REQUEST_DURATION.labels("request")  # a labelled histogram shows its series
    metrics.ETCD_REQUEST_DURATION.labels("txn")
    families = {f.name: f for f in metrics.REGISTRY.collect()}
    for name in (
        "etcdhcp_request_duration_seconds",
        "etcdhcp_queue_wait_seconds",
        "etcdhcp_etcd_request_duration_seconds",
    ):
        bounds = {
            float(s.labels["le"]) for s in families[name].samples if s.name.endswith("_bucket")
        }
        assert bounds == {*metrics._LATENCY_BUCKETS, float("inf")}, name


def test_build_info_carries_version():
    assert value("etcdhcp_build_info", version=__version__) == 1


def test_process_and_platform_collectors_registered():
    text = exposition()
    assert "process_cpu_seconds_total" in text
    assert "python_info{" in text


def test_names_follow_conventions_and_parse():
    families = list(text_string_to_metric_families(exposition()))
    ours = {f.name: f for f in families if f.name.startswith("etcdhcp_")}
    assert set(ours) >= {
        "etcdhcp_packets_received",
        "etcdhcp_replies_sent",
        "etcdhcp_packets_dropped",
        "etcdhcp_requests_ignored",
        "etcdhcp_request_duration_seconds",
        "etcdhcp_etcd_requests",
        "etcdhcp_etcd_request_duration_seconds",
        "etcdhcp_etcd_up",
        "etcdhcp_pool_addresses",
        "etcdhcp_leases",
        "etcdhcp_queue_depth",
        "etcdhcp_build_info",
    }
    for family in ours.values():
        assert family.documentation, family.name
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples)


def test_openmetrics_encoding():
    """Prometheus negotiates OpenMetrics; the registry must encode in it too."""
    text = generate_openmetrics(metrics.REGISTRY).decode()
    assert text.endswith("# EOF\n")
    assert "# TYPE etcdhcp_leases counter" in text
    assert f'etcdhcp_build_info{{version="{__version__}"}} 1.0' in text


# ---- one /metrics for several serving processes


def process_families(requests: float, depth: float, up: float, seconds: list[float]) -> list:
    """The families a serving process would send, from a registry of its own."""
    registry = CollectorRegistry()
    received = Counter("etcdhcp_packets_received", "r", ["type"], registry=registry)
    received.labels("request").inc(requests)
    Gauge("etcdhcp_queue_depth", "q", registry=registry).set(depth)
    Gauge("etcdhcp_etcd_up", "u", registry=registry).set(up)
    Gauge("etcdhcp_servers_live", "s", registry=registry).set(up * 7)
    duration = Histogram(
        "etcdhcp_request_duration_seconds", "d", ["type"], buckets=(0.01, 1.0), registry=registry
    )
    for s in seconds:
        duration.labels("request").observe(s)
    return list(registry.collect())


def sample(families: list, name: str, **labels: str) -> float:
    for family in families:
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    raise AssertionError(f"no sample {name} {labels}")


def test_merged_families_add_counters_and_histograms_and_pick_gauges() -> None:
    main = process_families(requests=3, depth=2, up=1, seconds=[0.005])
    child = process_families(requests=5, depth=4, up=0, seconds=[0.5, 5.0])
    merged = metrics.merge_families([main, child])
    assert [f.name for f in merged] == [f.name for f in main]
    assert sample(merged, "etcdhcp_packets_received_total", type="request") == 8
    assert sample(merged, "etcdhcp_queue_depth") == 6  # work waiting anywhere
    assert sample(merged, "etcdhcp_etcd_up") == 0  # one process has lost etcd
    assert sample(merged, "etcdhcp_servers_live") == 7  # the main process's view
    bucket = "etcdhcp_request_duration_seconds_bucket"
    assert sample(merged, bucket, type="request", le="0.01") == 1
    assert sample(merged, bucket, type="request", le="1.0") == 2
    assert sample(merged, bucket, type="request", le="+Inf") == 3
    assert sample(merged, "etcdhcp_request_duration_seconds_count", type="request") == 3
    assert sample(merged, "etcdhcp_request_duration_seconds_sum", type="request") == 5.505
    # The inputs are left as they were.
    assert sample(main, "etcdhcp_packets_received_total", type="request") == 3


def test_merged_series_stay_together_and_parse() -> None:
    """A label set only a child has seen joins its family, its buckets in one run."""
    registry = CollectorRegistry()
    duration = Histogram("etcdhcp_d", "d", ["type"], buckets=(1.0,), registry=registry)
    duration.labels("discover").observe(0.5)
    main = list(registry.collect())
    duration.labels("release").observe(0.5)
    merged = metrics.merge_families([main, list(registry.collect())])
    kinds = [s.labels["type"] for s in merged[0].samples]
    assert kinds == sorted(kinds, key=kinds.index)  # no interleaving
    assert kinds.count("release") == kinds.count("discover")
    everything = metrics.MergedRegistry(lambda: [list(registry.collect())], registry)
    text = generate_latest(everything).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {s.labels.get("type") for s in families["etcdhcp_d"].samples} == {"discover", "release"}
    assert generate_openmetrics(everything).decode().endswith("# EOF\n")


def test_only_counting_families_outlive_a_process() -> None:
    families = process_families(requests=1, depth=1, up=1, seconds=[0.1])
    kept = {f.name for f in metrics.counters_only(families)}
    assert kept == {"etcdhcp_packets_received", "etcdhcp_request_duration_seconds"}
