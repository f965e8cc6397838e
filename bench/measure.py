"""One measurement: perfdhcp against running servers, with their CPU, memory and NAKs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tests.integration.lab import Client

from bench import perfdhcp, procstat
from bench.report import Row
from bench.servers import Server


@dataclass(frozen=True)
class Target:
    """A server under load and the relay namespace whose perfdhcp drives it; ``local`` is
    perfdhcp's -l: the relay's interface, or one of its addresses (the giaddr sent)."""

    server: Server
    server_ip: str
    relay: Client
    local: str = "eth0"


def measure(
    scenario: str,
    targets: Sequence[Target],
    rate: int,
    clients: int,
    *,
    pool_size: int,
    seconds: int | None = None,
    count: int | None = None,
    note: str = "",
    options: tuple[str, ...] = (),
) -> Row:
    """Drive every target at ``rate`` at once (each perfdhcp with its own ``clients``
    MACs, and ``options``: perfdhcp's -o) and sum up. CPU is the /proc utime+stime
    delta over the run, per 1,000 ACKs."""
    servers = list(dict.fromkeys(t.server for t in targets))  # several relays may share one
    server_pids = [p for s in servers for p in s.server_pids]
    backend_pids = sorted({p for s in servers for p in s.backend_pids})
    cpu_before = procstat.cpu_seconds(server_pids)
    backend_before = procstat.cpu_seconds(backend_pids)
    naks_before = sum(s.naks() for s in servers)
    runs = [
        perfdhcp.Run(
            t.relay,
            t.server_ip,
            rate,
            clients,
            seconds=seconds,
            count=count,
            mac_base=f"02:00:00:{i:02x}:00:00",
            local=t.local,
            options=options,
        )
        for i, t in enumerate(targets)
    ]
    results = [run.result() for run in runs]
    cpu = procstat.cpu_seconds(server_pids) - cpu_before
    backend_cpu = procstat.cpu_seconds(backend_pids) - backend_before
    naks = sum(s.naks() for s in servers) - naks_before
    leases = sum(r.leases for r in results)
    started = sum(r.do.sent for r in results)
    per_1k = 1000 / leases if leases else 0.0
    return Row(
        scenario=scenario,
        server=servers[0].name if len(servers) == 1 else f"{len(servers)}x {servers[0].label}",
        label=servers[0].label,
        servers=len(servers),
        pool_size=pool_size,
        offered_rate=rate * len(targets),
        seconds=max(r.seconds for r in results),
        leases=leases,
        achieved_rate=sum(r.achieved_rate for r in results),
        drops_pct=100.0 * (started - leases) / started if started else 0.0,
        naks=naks,
        do_avg_ms=_weighted_avg([r.do for r in results]),
        do_max_ms=max(r.do.max_ms for r in results),
        ra_avg_ms=_weighted_avg([r.ra for r in results]),
        ra_max_ms=max(r.ra.max_ms for r in results),
        cpu_s_per_1k=cpu * per_1k,
        backend_cpu_s_per_1k=backend_cpu * per_1k,
        rss_mb=procstat.rss_mb(server_pids),
        backend_mb=procstat.pss_mb(backend_pids),
        note=note,
    )


def _weighted_avg(exchanges: Sequence[perfdhcp.Exchange]) -> float:
    received = sum(e.received for e in exchanges)
    return sum(e.avg_ms * e.received for e in exchanges) / received if received else 0.0
