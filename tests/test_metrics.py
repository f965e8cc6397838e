from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from etcdhcp import __version__, metrics


def exposition() -> str:
    return generate_latest(metrics.REGISTRY).decode()


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_registry_is_private():
    assert isinstance(metrics.REGISTRY, CollectorRegistry)
    from prometheus_client import REGISTRY as default_registry

    assert metrics.REGISTRY is not default_registry
    assert "etcdhcp_" not in generate_latest(default_registry).decode()


def test_counters_show_names_and_labels_after_increment():
    samples = [
        (metrics.PACKETS_RECEIVED, "etcdhcp_packets_received_total", {"type": "discover"}),
        (metrics.REPLIES_SENT, "etcdhcp_replies_sent_total", {"type": "offer"}),
        (metrics.PACKETS_DROPPED, "etcdhcp_packets_dropped_total", {"reason": "queue_full"}),
        (metrics.REQUESTS_IGNORED, "etcdhcp_requests_ignored_total", {"reason": "no_record"}),
        (
            metrics.ETCD_REQUESTS,
            "etcdhcp_etcd_requests_total",
            {"op": "txn", "outcome": "failed_compare"},
        ),
        (metrics.LEASES, "etcdhcp_leases_total", {"event": "expired_reclaimed"}),
    ]
    before = [value(name, **labels) for _, name, labels in samples]
    for metric, _, labels in samples:
        metric.labels(**labels).inc(2)

    text = exposition()
    for (_, name, labels), old in zip(samples, before, strict=True):
        assert value(name, **labels) == old + 2
        rendered = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        assert f"{name}{{{rendered}}} {old + 2}" in text


def test_closed_label_sets_start_at_zero():
    text = exposition()
    for kind in ("discover", "request", "release", "decline", "inform", "other"):
        assert f'etcdhcp_packets_received_total{{type="{kind}"}}' in text
    for kind in ("offer", "ack", "nak"):
        assert f'etcdhcp_replies_sent_total{{type="{kind}"}}' in text
    for event in ("granted", "renewed", "released", "declined", "expired_reclaimed"):
        assert f'etcdhcp_leases_total{{event="{event}"}}' in text


def test_histograms_cover_half_a_millisecond_to_two_seconds():
    below_1s = value("etcdhcp_etcd_request_duration_seconds_bucket", op="range", le="1.0")
    below_2s = value("etcdhcp_etcd_request_duration_seconds_bucket", op="range", le="2.0")
    metrics.REQUEST_DURATION.labels(type="request").observe(0.0004)
    metrics.ETCD_REQUEST_DURATION.labels(op="range").observe(1.5)
    text = exposition()
    assert 'etcdhcp_request_duration_seconds_bucket{le="0.0005",type="request"}' in text
    assert 'etcdhcp_request_duration_seconds_bucket{le="2.0",type="request"}' in text
    assert value("etcdhcp_request_duration_seconds_count", type="request") >= 1
    assert value("etcdhcp_etcd_request_duration_seconds_bucket", op="range", le="1.0") == below_1s
    assert (
        value("etcdhcp_etcd_request_duration_seconds_bucket", op="range", le="2.0") == below_2s + 1
    )


def test_gauges():
    metrics.ETCD_UP.set(1)
    metrics.POOL_ADDRESSES.labels(state="free").set(42)
    metrics.POOL_ADDRESSES.labels(state="quarantined").set(3)
    metrics.QUEUE_DEPTH.set(7)
    assert value("etcdhcp_etcd_up") == 1
    assert value("etcdhcp_pool_addresses", state="free") == 42
    assert value("etcdhcp_pool_addresses", state="quarantined") == 3
    assert value("etcdhcp_queue_depth") == 7
    metrics.ETCD_UP.set(0)
    assert "etcdhcp_etcd_up 0.0" in exposition()


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
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)


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
    created = "etcdhcp_packets_received_created"
    assert sample(merged, created, type="request") == min(
        sample(main, created, type="request"), sample(child, created, type="request")
    )
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
