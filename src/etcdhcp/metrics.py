"""Every Prometheus metric of the daemon, in one place.

The metrics live on a private ``REGISTRY`` rather than prometheus_client's
global default, so tests (and several daemons in one process) read exactly
what etcdhcp exports and nothing else. Label values are lower-case words.
Counters whose label values are a closed set start at zero for every value,
so ``rate()`` and alerts work before the first event.

No ``*_created`` series. prometheus_client exports one beside every counter and
histogram series (the time it began), which doubles the series count in the text
format. Prometheus needs none of them: it finds restarts from counter resets, and
the series above exist from the start. They are turned off for the whole process:
``disable_created_metrics()`` from prometheus_client 0.17 on (the venv's); 0.16,
which the .deb runs on (Debian 12), has only the switch that function sets.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from etcdhcp import __version__


def _disable_created_series() -> None:
    if hasattr(prometheus_client, "disable_created_metrics"):  # 0.17 and later
        prometheus_client.disable_created_metrics()
    else:  # 0.16 reads this switch (set from PROMETHEUS_DISABLE_CREATED_SERIES) at collection
        prometheus_client.metrics._use_created = False


_disable_created_series()

REGISTRY = CollectorRegistry()
"""The registry that the admin server's ``/metrics`` exposes."""

ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

# One DHCP exchange is well under a millisecond when etcd is local, up to the
# request budget (hundreds of ms, seconds when misconfigured) when it is not.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)

PACKETS_RECEIVED = Counter(
    "etcdhcp_packets_received_total",
    "DHCP requests accepted for handling, by DHCP message type.",
    ["type"],
    registry=REGISTRY,
)
"""+1 per decoded BOOTREQUEST addressed to us; ``type``: discover, request,
release, decline, inform, other."""

REPLIES_SENT = Counter(
    "etcdhcp_replies_sent_total",
    "DHCP replies handed to the network, by DHCP message type.",
    ["type"],
    registry=REGISTRY,
)
"""+1 per reply actually sent; ``type``: offer, ack, nak."""

PACKETS_DROPPED = Counter(
    "etcdhcp_packets_dropped_total",
    "Packets dropped without an answer because they could not be handled.",
    ["reason"],
    registry=REGISTRY,
)
"""+1 per packet thrown away; ``reason`` is chosen by the caller, e.g. malformed,
not_bootrequest, queue_full, deadline, foreign_relay, not_for_us,
etcd_unavailable, send_failed."""

REQUESTS_IGNORED = Counter(
    "etcdhcp_requests_ignored_total",
    "Valid requests that deliberately got no answer and changed nothing.",
    ["reason"],
    registry=REGISTRY,
)
"""+1 when the protocol says to stay silent, e.g. release_unknown, no_record."""

REQUEST_DURATION = Histogram(
    "etcdhcp_request_duration_seconds",
    "Time a worker spends on a DHCP request, from decoding it to sending the reply "
    "or deciding on silence.",
    ["type"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
"""Observed once per handled request; ``type`` as in ``PACKETS_RECEIVED``. What a
client waits is this plus ``QUEUE_WAIT``."""

QUEUE_WAIT = Histogram(
    "etcdhcp_queue_wait_seconds",
    "Time a received frame waited for a worker.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
"""Observed for every frame a worker takes, those then dropped as past the request
deadline too: where overload shows first, before etcd's latency moves."""

ETCD_REQUESTS = Counter(
    "etcdhcp_etcd_requests_total",
    "Requests sent to etcd, by operation and outcome.",
    ["op", "outcome"],
    registry=REGISTRY,
)
"""+1 per etcd round trip; ``op``: range, txn, grant, ...; ``outcome``: ok,
failed_compare (a txn whose guard did not hold), error."""

ETCD_REQUEST_DURATION = Histogram(
    "etcdhcp_etcd_request_duration_seconds",
    "Latency of requests to etcd, by operation.",
    ["op"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
"""Observed once per etcd round trip, whatever its outcome."""

ETCD_BATCH_SIZE = Histogram(
    "etcdhcp_etcd_batch_size",
    "Guarded transactions sent to etcd together in one request (group commit).",
    buckets=(1, 2, 4, 8, 16),
    registry=REGISTRY,
)
"""Moves once per etcd transaction request the store's batcher sends."""

ETCD_UP = Gauge(
    "etcdhcp_etcd_up",
    "1 if the last request to etcd succeeded, else 0.",
    registry=REGISTRY,
)
"""Set after every etcd round trip (a failed compare counts as success). While it is
0 the server fails closed: requests are dropped (``etcdhcp_packets_dropped_total``
with reason etcd_unavailable) and ``/readyz`` says why."""

ETCD_ENDPOINT = Gauge(
    "etcdhcp_etcd_endpoint",
    "1 for the etcd endpoint requests go to first, 0 for the other known ones.",
    ["endpoint"],
    registry=REGISTRY,
)
"""Set when the connection moves to another endpoint (failover, SRV re-discovery)."""

ETCD_FAILOVERS = Counter(
    "etcdhcp_etcd_failovers_total",
    "Times the current etcd endpoint failed and requests moved to the next one.",
    registry=REGISTRY,
)
"""+1 per move away from a failed endpoint."""

SERVERS_LIVE = Gauge(
    "etcdhcp_servers_live",
    "etcdhcp servers registered in etcd (their registry keys), this one included.",
    registry=REGISTRY,
)
"""Set by the registry thread at every keepalive (every few seconds)."""

POOL_ADDRESSES = Gauge(
    "etcdhcp_pool_addresses",
    "Addresses in etcd by scope and state, as last counted.",
    ["scope", "state"],
    registry=REGISTRY,
)
"""Set when the pool is counted (start-up, then every few seconds); ``state``: free,
offered, leased, reserved, quarantined. A reserved address is also offered or leased
while its client holds it."""

LEASES = Counter(
    "etcdhcp_leases_total",
    "Lease lifecycle events.",
    ["event"],
    registry=REGISTRY,
)
"""+1 per event; ``event``: granted, renewed, released, declined,
expired_reclaimed."""

QUEUE_DEPTH = Gauge(
    "etcdhcp_queue_depth",
    "Packets received and waiting for a worker.",
    registry=REGISTRY,
)
"""Raised by the receive thread when a frame is queued, lowered by the worker that
takes it: 0 on an idle server."""

SERVING_PROCESSES = Gauge(
    "etcdhcp_serving_processes",
    "Processes serving DHCP (--dhcp.processes), the main one included.",
    registry=REGISTRY,
)
"""Set by the main process when a serving process starts or dies."""

SERVING_PROCESS_RESTARTS = Counter(
    "etcdhcp_serving_process_restarts_total",
    "Times an extra serving process died and was started again.",
    registry=REGISTRY,
)
"""+1 per restart attempt of a serving process other than the main one."""

SCOPES = Gauge(
    "etcdhcp_scopes",
    "Scopes (subnets) this server serves: its flags' scope and the valid documents in etcd.",
    registry=REGISTRY,
)
"""Set whenever the scope view is rebuilt (start-up, every change in etcd)."""

CONFIG_REVISION = Gauge(
    "etcdhcp_config_revision",
    "The etcd revision of the scope documents this server serves from.",
    registry=REGISTRY,
)
"""Servers serving the same revision see the same scopes: compare it across servers."""

CONFIG_REJECTED = Gauge(
    "etcdhcp_config_documents_rejected",
    "Configuration documents in etcd this server refuses (it serves their previous version).",
    registry=REGISTRY,
)
"""Set with every rebuild; non-zero means `etcdhcpctl check` has something to say."""

HOSTS = Gauge(
    "etcdhcp_hosts",
    "Host records this server serves from (the watched index of hosts in etcd).",
    registry=REGISTRY,
)
"""Set whenever the host index changes (livehosts.py)."""

HOST_RECORDS_REJECTED = Gauge(
    "etcdhcp_host_records_rejected",
    "Host records in etcd this server refuses (it keeps serving their previous version).",
    registry=REGISTRY,
)
"""Set whenever the host index changes; non-zero: a record written by hand does not parse."""

REPLY_OPTIONS_DROPPED = Counter(
    "etcdhcp_reply_options_dropped_total",
    "Options left out of replies: they did not fit the client's maximum message size.",
    ["option"],
    registry=REGISTRY,
)
"""+1 per option left out of a reply even with option overload; ``option`` is its code."""

BUILD_INFO = Gauge(
    "etcdhcp_build_info",
    "Always 1; the label says which etcdhcp version is running.",
    ["version"],
    registry=REGISTRY,
)
"""Set once, at import."""
BUILD_INFO.labels(version=__version__).set(1)


@functools.lru_cache(maxsize=1024)
def labelled(metric: Any, *values: str) -> Any:
    """`metric.labels(*values)`, remembered: the packet path counts several things per
    packet, and each `labels` call takes a lock and builds a key. Label values on that
    path come from small closed sets, so the cache stays small."""
    return metric.labels(*values)


def _start_at_zero(counter: Counter, *values: str) -> None:
    for value in values:
        counter.labels(value)


_start_at_zero(PACKETS_RECEIVED, "discover", "request", "release", "decline", "inform", "other")
_start_at_zero(REPLIES_SENT, "offer", "ack", "nak")
_start_at_zero(LEASES, "granted", "renewed", "released", "declined", "expired_reclaimed")


# ---- one /metrics for several serving processes

COUNTING_TYPES = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
SUMMED_GAUGES = frozenset(
    {
        "etcdhcp_queue_depth",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
    }
)
LOWEST_GAUGES = frozenset({"etcdhcp_etcd_up"})  # 0 if any process has lost etcd


def _combine(family: Metric, first: float, other: float) -> float:
    if family.type in COUNTING_TYPES or family.name in SUMMED_GAUGES:
        return first + other
    if family.name in LOWEST_GAUGES:
        return min(first, other)
    return first  # the first source's (the main process's) view


def merge_families(sources: Sequence[Iterable[Metric]]) -> list[Metric]:
    """The metric families of several processes as one daemon's: counters, histograms
    and CPU/memory added up, etcd_up the lowest, other gauges as the first source has
    them. Series keep the order in which they first appear."""
    merged: dict[str, Metric] = {}
    values: dict[str, dict[tuple, Any]] = {}  # family -> (sample name, labels) -> Sample
    for families in sources:
        for family in families:
            if family.name not in merged:
                merged[family.name] = copy.copy(family)
                values[family.name] = {}
            series = values[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                seen = series.get(key)
                if seen is None:
                    series[key] = sample
                else:
                    value = _combine(family, seen.value, sample.value)
                    series[key] = seen._replace(value=value)
    for name, family in merged.items():
        family.samples = _grouped(list(values[name].values()))
    return list(merged.values())


def _series(sample: Any) -> tuple:
    """The label set a sample belongs to: a histogram's buckets, sum and count share one."""
    return tuple(sorted((k, v) for k, v in sample.labels.items() if k not in ("le", "quantile")))


def _grouped(samples: list[Any]) -> list[Any]:
    """Samples with each series together, as the exposition formats expect, the series
    in order of first appearance (sorting is stable: buckets keep their order)."""
    order: dict[tuple, int] = {}
    for sample in samples:
        order.setdefault(_series(sample), len(order))
    return sorted(samples, key=lambda sample: order[_series(sample)])


def counters_only(families: Iterable[Metric]) -> list[Metric]:
    """What of a process's metrics outlives it: everything that only ever counts up."""
    return [family for family in families if family.type in COUNTING_TYPES]


class MergedRegistry:
    """What /metrics exports when several processes serve: this process's REGISTRY
    merged with the families `others` returns (the serving children's)."""

    def __init__(
        self,
        others: Callable[[], list[list[Metric]]],
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._others = others
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        return iter(merge_families([list(self._registry.collect()), *self._others()]))
