"""What the benchmark measures: the rate sweep, scale figures, memory, several servers,
many scopes, options and classes, a profile. Each scenario appends Rows and returns
short summary lines."""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tests.integration.lab import LabError

from bench import hostdocs, optiondocs, procstat, profile, scopedocs
from bench.measure import Target, measure
from bench.netlab import MAX_SERVERS, BenchLab
from bench.postgres import PostgresCluster
from bench.report import Row
from bench.servers import (
    DEBIAN_PYTHON,
    LARGE_POOL,
    SMALL_POOL,
    VENV_PYTHON,
    EtcdhcpServer,
    KeaServer,
    Pool,
    Server,
)
from etcdhcp.config import AUTO_PROCESSES, serving_cpus

T = TypeVar("T")  # what a point of _rounds measures

# A server leaves a sweep after STOP_AFTER rates in a row with more drops than this: a
# single bad point on a shared machine is often noise.
STOP_DROPS_PCT = 10.0
STOP_AFTER = 2
SUSTAINED_DROPS_PCT = 1.0  # "sustains a rate": fewer drops than this
# "-pin": one process pinned to a CPU (--dhcp.cpu-affinity; two processes on two CPUs
# are pinned by default). "-deb": etcdhcp on what the .deb runs on (Debian's python3
# and its packages: grpcio 1.51, python3-etcd3) instead of the venv's PyPI packages.
SWEEP_SERVERS = (
    "etcdhcp",
    "etcdhcp-pin",
    "etcdhcp-2p",
    "etcdhcp-deb",
    "etcdhcp-deb-2p",
    "kea-pg-1t",
    "kea-pg-8t",
    "kea-memfile",
)
KEA_THREADS = 8
PROCESSES = 2  # etcdhcp-2p: --dhcp.processes
# The options scenario: the flags' scope, then optiondocs.CONFIGS served from etcd.
OPTION_CONFIGS = ("plain", *optiondocs.CONFIGS)


@dataclass
class Settings:
    rates: list[int]
    seconds: int
    clients: int
    sweep_servers: list[str]
    scale_rate: int
    rss_rate: int
    long: bool
    servers_rates: list[int]
    profile_rate: int
    profile_seconds: int
    scopes_counts: list[int]
    scopes_relays: int
    scopes_rate: int
    options_rates: list[int]
    options_rounds: int
    hosts_count: int
    hosts_rates: list[int]
    hosts_rounds: int
    etcdhcp_flags: tuple[str, ...]
    out: Path
    stamp: str


@dataclass
class Context:
    bench: BenchLab
    settings: Settings
    say: Callable[[str], None]
    rows: list[Row] = field(default_factory=list)
    _postgres: PostgresCluster | None = None

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        self.say(
            f"  {row.scenario:8} {row.server:14} offered {row.offered_rate:5}/s -> "
            f"{row.achieved_rate:6.0f}/s, {row.drops_pct:5.1f}% drops, RA avg "
            f"{row.ra_avg_ms:.1f} ms, CPU {row.cpu_s_per_1k:.2f} s/1k {row.note}"
        )
        return row

    def postgres(self) -> PostgresCluster:
        """The private PostgreSQL cluster, started on first use; close() stops it."""
        if self._postgres is None:
            self._postgres = PostgresCluster(self.bench.lab, self.bench.lab.server_ns)
            self._postgres.start()
        return self._postgres

    def etcdhcp(
        self,
        pool: Pool | None,
        index: int = 0,
        name: str = "etcdhcp",
        processes: int = 1,
        python: Path = VENV_PYTHON,
        pin: bool = False,
    ) -> EtcdhcpServer:
        """etcdhcp with `processes` serving processes (not the machine-dependent
        default, auto) and --etcdhcp-flag's flags, which may override it. `pin`: each
        process on a CPU of its own; else --dhcp.cpu-affinity's default, auto, which
        pins them only when they fill the CPUs."""
        cpus = sorted(os.sched_getaffinity(0))
        affinity = ",".join(map(str, cpus[:processes])) if pin else "auto"
        flags = (
            f"-dhcp.processes={processes}",
            f"-dhcp.cpu-affinity={affinity}",
            *self.settings.etcdhcp_flags,
        )
        auto_pins = bool(serving_cpus("auto", processes, cpus))
        label = "etcdhcp + etcd" + (f", {processes} processes" if processes > 1 else "")
        if pin or auto_pins:
            label += ", pinned"
        if python != VENV_PYTHON:
            label += ", Debian's Python packages"
        if processes == min(len(cpus), AUTO_PROCESSES) and (auto_pins or not pin):
            label += " (the default here)"  # what -dhcp.processes auto runs on this machine
        return EtcdhcpServer(
            self.bench,
            self.bench.host(index),
            pool,
            name=name,
            label=label,
            extra_flags=flags,
            python=python,
        )

    def target(self, server: Server, relay: int = 0) -> Target:
        return Target(server, server.host.ip, self.bench.relay(relay))

    def measure_one(
        self,
        scenario: str,
        server: Server,
        rate: int,
        *,
        pool_size: int = SMALL_POOL.size,
        seconds: int | None = None,
        count: int | None = None,
        note: str = "",
        options: tuple[str, ...] = (),
    ) -> Row:
        """`measure` of one server through the first relay, with the run's clients: what
        most scenarios measure."""
        return measure(
            scenario,
            [self.target(server)],
            rate,
            self.settings.clients,
            pool_size=pool_size,
            seconds=seconds,
            count=count,
            note=note,
            options=options,
        )

    def close(self) -> None:
        if self._postgres is not None:
            self._postgres.stop()


def _sweep_server(ctx: Context, kind: str) -> Server:
    if kind.startswith("etcdhcp"):  # etcdhcp[-deb][-2p|-pin]
        processes = PROCESSES if kind.endswith("-2p") else 1
        python = DEBIAN_PYTHON if "-deb" in kind else VENV_PYTHON
        pin = kind.endswith("-pin")
        return ctx.etcdhcp(SMALL_POOL, name=kind, processes=processes, python=python, pin=pin)
    if kind == "kea-memfile":
        return KeaServer(ctx.bench, kind, "Kea memfile", SMALL_POOL)
    threads = KEA_THREADS if kind == "kea-pg-8t" else 0
    label = f"Kea + PostgreSQL ({threads or 1} thread{'s' if threads else ''})"
    return KeaServer(ctx.bench, kind, label, SMALL_POOL, postgres=ctx.postgres(), threads=threads)


def overloaded(rows: list[Row], scenario: str, server: str) -> bool:
    """True once the last STOP_AFTER points of ``server`` all dropped > STOP_DROPS_PCT."""
    mine = [r for r in rows if r.scenario == scenario and r.server == server][-STOP_AFTER:]
    return len(mine) == STOP_AFTER and all(r.drops_pct > STOP_DROPS_PCT for r in mine)


def sustained(rows: list[Row], server: str, scenario: str = "sweep") -> Row | None:
    """The row with the highest achieved rate under SUSTAINED_DROPS_PCT drops."""
    ok = [
        r
        for r in rows
        if r.scenario == scenario and r.server == server and r.drops_pct < SUSTAINED_DROPS_PCT
    ]
    return max(ok, key=lambda r: r.achieved_rate, default=None)


def sweep(ctx: Context) -> list[str]:
    """Every server at every rate (rates outer, so machine noise hits all alike) until
    it is overloaded. Each point starts from an empty lease database and a freshly
    started server."""
    s = ctx.settings
    active = [_sweep_server(ctx, kind) for kind in s.sweep_servers]
    ctx.say(f"sweep: {', '.join(x.name for x in active)} at {s.rates} DORA/s, {s.seconds}s each")
    for rate in s.rates:
        for server in list(active):
            server.reset()
            server.start()
            try:
                row = ctx.measure_one("sweep", server, rate, seconds=s.seconds)
            finally:
                server.stop()
            ctx.add(row)
            if overloaded(ctx.rows, "sweep", server.name):
                active.remove(server)
    return headline(ctx.rows, s.rates)


def headline(rows: list[Row], rates: list[int]) -> list[str]:
    """etcdhcp's sustained rate against each Kea's, from this run's sweep."""
    lines = []
    names = dict.fromkeys(r.server for r in rows if r.scenario == "sweep")
    best = {name: sustained(rows, name) for name in names}
    for name, row in best.items():
        if row is None:
            lines.append(f"{name}: sustained none of the offered rates with <1% drops")
        else:
            capped = (
                " (the top of the sweep: a lower bound)" if row.offered_rate == max(rates) else ""
            )
            lines.append(
                f"{name}: {row.achieved_rate:.0f} DORA/s sustained at {row.offered_rate}/s "
                f"offered{capped}"
            )
    top = max(rates)
    for ours in best.values():
        if ours is None or not ours.server.startswith("etcdhcp"):
            continue
        for row in best.values():
            if row is None or row.server.startswith("etcdhcp"):
                continue
            ratio = f"{ours.achieved_rate / row.achieved_rate:.2f}"
            if ours.offered_rate == top and row.offered_rate == top:
                ratio = f"{ratio} (both sustained the top rate: no ratio measured)"
            elif row.offered_rate == top:
                ratio = f"<= {ratio}"
            elif ours.offered_rate == top:
                ratio = f">= {ratio}"
            lines.append(f"HEADLINE {ours.label} / {row.label}: {ratio}")
    return lines


def scale(ctx: Context) -> list[str]:
    """Start-up time to seed a /16 into an empty etcd, and throughput with that pool
    against the /20 one at one fixed rate."""
    s = ctx.settings
    measured: dict[int, Row] = {}
    lines = []
    for pool in (LARGE_POOL, SMALL_POOL):
        ctx.bench.reset_etcd()
        server = ctx.etcdhcp(pool, name=f"etcdhcp-pool{pool.size}")
        ready, pool_pass = _start_seeding(server)
        try:
            lines.append(
                f"start-up, {pool.size} addresses into an empty etcd: /readyz 200 after "
                f"{ready:.1f}s; the reseeder's pool pass: {pool_pass}"
            )
            measured[pool.size] = ctx.add(
                ctx.measure_one(
                    "pool",
                    server,
                    s.scale_rate,
                    pool_size=pool.size,
                    seconds=s.seconds,
                    note=f"ready after {ready:.1f}s (pool pass {pool_pass})",
                )
            )
        finally:
            server.stop()
    large, small = measured[LARGE_POOL.size], measured[SMALL_POOL.size]
    lines.append(
        f"pool of {LARGE_POOL.size} against {SMALL_POOL.size} addresses at {s.scale_rate}/s "
        f"offered: {_against(large, small)}{_overloaded([large, small])}"
    )
    return lines


def _start_seeding(server: EtcdhcpServer) -> tuple[float, str]:
    """Start a server on an empty etcd: (seconds until /readyz, the reseeder's first pool
    pass as shown), what start-up costs with that configuration."""
    ready = server.start()
    seconds = server.pool_pass_seconds
    return ready, "not logged" if seconds is None else f"{seconds:.2f}s"


def _against(row: Row, base: Row) -> str:
    """`row`'s rate, latency and CPU against `base`'s, as "a / b"."""
    return (
        f"DORA/s {row.achieved_rate:.0f} / {base.achieved_rate:.0f} = "
        f"{_ratio(row.achieved_rate, base.achieved_rate)}; RA avg ms {row.ra_avg_ms:.1f} / "
        f"{base.ra_avg_ms:.1f}; CPU s/1k {row.cpu_s_per_1k:.2f} / {base.cpu_s_per_1k:.2f}"
    )


def _overloaded(rows: list[Row]) -> str:
    """A warning when any of the rows compared dropped 1% or more: their figures mislead."""
    return "" if max(r.drops_pct for r in rows) < 1 else " (overloaded: see drops)"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def rss(ctx: Context) -> list[str]:
    """etcdhcp's memory after 10k (and with --long 200k) exchanges at a sustainable rate."""
    s = ctx.settings
    ctx.bench.reset_etcd()
    server = ctx.etcdhcp(SMALL_POOL, name="etcdhcp-rss")
    server.start()
    lines = []
    try:
        at_start = procstat.rss_mb(server.server_pids)
        lines.append(f"RSS at start (pool seeded, no traffic): {at_start:.0f} MB")
        stages = [(10_000, "10k")] + ([(190_000, "200k")] if s.long else [])
        for count, total in stages:
            row = ctx.add(
                ctx.measure_one(
                    "rss", server, s.rss_rate, count=count, note=f"RSS after {total} exchanges"
                )
            )
            lines.append(f"RSS after {total} exchanges at {s.rss_rate}/s: {row.rss_mb:.0f} MB")
    finally:
        server.stop()
    return lines


def servers(ctx: Context) -> list[str]:
    """1, 2, 3 etcdhcp servers on one etcd and one pool, each driven by its own relay,
    swept over total rates (split evenly, as are the MACs) until overloaded."""
    s = ctx.settings
    lines = []
    for count in range(1, MAX_SERVERS + 1):
        running = [ctx.etcdhcp(SMALL_POOL, i, name=f"etcdhcp-{i}") for i in range(count)]
        name = f"{count}x etcdhcp"
        for total in s.servers_rates:
            ctx.bench.reset_etcd()
            try:
                for server in running:
                    server.start()
                row = measure(
                    "servers",
                    [ctx.target(server, relay=i) for i, server in enumerate(running)],
                    total // count,
                    s.clients // count,
                    pool_size=SMALL_POOL.size,
                    seconds=s.seconds,
                    note=f"{total // count}/s offered to each server",
                )
            finally:
                for server in running:
                    server.stop()
            ctx.add(dataclasses.replace(row, server=name))
            if overloaded(ctx.rows, "servers", name):
                break
        best = sustained(ctx.rows, name, "servers")
        lines.append(
            f"{count} etcdhcp server(s) on one etcd: "
            + (
                f"{best.achieved_rate:.0f} DORA/s in all sustained (<1% drops), "
                f"RA avg {best.ra_avg_ms:.1f} ms, CPU {best.cpu_s_per_1k:.2f} s/1k"
                if best
                else "sustained none of the offered rates"
            )
        )
    lines.append(
        "two shared cores: the etcdhcp servers, etcd and the perfdhcps all compete for the "
        "same two CPUs, so this shows that servers share one pool and what that costs; it "
        "cannot show how throughput grows with machines (each server on its own host)"
    )
    return lines


def scopes(ctx: Context) -> list[str]:
    """One server serving 1, then each of --scopes-counts scopes from etcd (no range
    flags; bench/scopedocs.py), the clients spread over --scopes-relays relay LANs: one
    perfdhcp per relay address, whose giaddr chooses the scope. The same rate, MACs
    and flags for every count; the import, start-up (seeding) and memory of each."""
    s = ctx.settings
    relay, addresses = ctx.bench.relay_lans(s.scopes_relays)
    per_relay = max(1, s.scopes_rate // len(addresses))
    offered = per_relay * len(addresses)
    clients = max(1, min(s.clients // len(addresses), scopedocs.MAX_CLIENTS_PER_LAN))
    measured: dict[int, Row] = {}
    lines = []
    for count in (1, *s.scopes_counts):
        ctx.bench.reset_etcd()
        entries = scopedocs.documents(count, len(addresses))
        pool_size = scopedocs.pool_size(entries)
        imported = scopedocs.import_scopes(ctx.bench, entries, f"scopes-{count}")
        server = ctx.etcdhcp(None, name=f"etcdhcp-{count}-scopes")
        ready, pool_pass = _start_seeding(server)
        try:
            at_start = procstat.rss_mb(server.server_pids)
            row = ctx.add(
                measure(
                    "scopes",
                    [Target(server, server.host.ip, relay, a) for a in addresses],
                    per_relay,
                    clients,
                    pool_size=pool_size,
                    seconds=s.seconds,
                    note=f"{count} scope(s); import {imported:.1f}s, ready after {ready:.1f}s "
                    f"(pool pass {pool_pass}); RSS at start {at_start:.0f} MB",
                )
            )
        finally:
            server.stop()
        measured[count] = row
        lines.append(
            f"{count} scope(s) ({pool_size} pool addresses): "
            f"etcdhcpctl scope import {imported:.1f}s; /readyz after {ready:.1f}s (pool pass "
            f"{pool_pass}); RSS {at_start:.0f} MB at start, {row.rss_mb:.0f} MB after "
            f"{row.leases} exchanges"
        )
    one = measured[1]
    for count in s.scopes_counts:
        row = measured[count]
        lines.append(
            f"{count} scopes against 1 at {offered}/s offered over {len(addresses)} relays: "
            f"{_against(row, one)}; RSS MB {row.rss_mb:.0f} / {one.rss_mb:.0f}"
            f"{_overloaded([row, one])}"
        )
    return lines


def options(ctx: Context) -> list[str]:
    """20 options over the global level, five client classes, the scope and the pool
    (bench/optiondocs.py) against the flags' plain scope, and the same scope written as a
    document without them (what serving from a document costs by itself). At each of
    --options-rates, --options-rounds rounds of the three, every other round in reverse
    order (whatever drifts during a round weighs on each alike), each point from an empty
    etcd and a fresh server; every perfdhcp sends option 60, which one class tests."""
    s = ctx.settings
    measured = _rounds(
        OPTION_CONFIGS,
        s.options_rates,
        s.options_rounds,
        lambda config, rate: _options_point(ctx, config, rate),
    )
    lines = []
    for rate in s.options_rates:
        plain = measured[rate, "plain"]
        for config in optiondocs.CONFIGS:
            rows = measured[rate, config]
            lines.append(
                f"{config} against plain at {rate}/s offered, {len(rows)} round(s): "
                + _mean_against(rows, plain)
            )
    return lines


def _rounds(
    configs: tuple[str, ...], rates: list[int], rounds: int, point: Callable[[str, int], T]
) -> dict[tuple[int, str], list[T]]:
    """`point(config, rate)` for every config, `rounds` times at each rate, every other
    round in reverse order (whatever drifts during a round weighs on each alike): the
    rows by (rate, config)."""
    measured: dict[tuple[int, str], list[T]] = {}
    for rate in rates:
        for round_ in range(rounds):
            for config in configs if round_ % 2 == 0 else configs[::-1]:
                measured.setdefault((rate, config), []).append(point(config, rate))
    return measured


def _mean_against(rows: list[Row], base: list[Row]) -> str:
    """The means of `rows` against those of `base` (rounds of two configurations):
    rate, with each round's ratio, latency and CPU."""
    each = ", ".join(
        _ratio(r.achieved_rate, b.achieved_rate) for r, b in zip(rows, base, strict=True)
    )
    achieved, base_rate = _mean(rows, "achieved_rate"), _mean(base, "achieved_rate")
    cpu, base_cpu = _mean(rows, "cpu_s_per_1k"), _mean(base, "cpu_s_per_1k")
    return (
        f"DORA/s {achieved:.0f} / {base_rate:.0f} = {_ratio(achieved, base_rate)} (each "
        f"round: {each}); RA avg ms {_mean(rows, 'ra_avg_ms'):.1f} / "
        f"{_mean(base, 'ra_avg_ms'):.1f}; CPU s/1k {cpu:.2f} / {base_cpu:.2f} = "
        f"{_ratio(cpu, base_cpu)}" + _overloaded(rows + base)
    )


def _options_point(ctx: Context, config: str, rate: int) -> Row:
    """One server with `config` (OPTION_CONFIGS) measured at `rate`."""
    s = ctx.settings
    ctx.bench.reset_etcd()
    if config != "plain":
        optiondocs.write(ctx.bench, config, s.out)
    server = ctx.etcdhcp(SMALL_POOL if config == "plain" else None, name=f"etcdhcp-{config}")
    server.start()
    try:
        if config != "plain":
            _check_documents_served(ctx, server)
        row = ctx.measure_one(
            "options", server, rate, seconds=s.seconds, options=optiondocs.PERFDHCP_OPTIONS
        )
        dropped = _metric(ctx, server, "etcdhcp_reply_options_dropped_total")
    finally:
        server.stop()
    note = config + (f"; {dropped:.0f} options left out" if dropped else "")
    return ctx.add(dataclasses.replace(row, note=note))


def _mean(rows: list[Row], attribute: str) -> float:
    return sum(getattr(r, attribute) for r in rows) / len(rows)


def _metric(ctx: Context, server: EtcdhcpServer, name: str) -> float:
    """The sum of every series of metric `name` in the server's /metrics now."""
    _, body = ctx.bench.fetch(server.host, f"{server.admin}/metrics")
    pattern = rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$"
    return sum(float(value) for value in re.findall(pattern, body, re.M))


def _check_documents_served(ctx: Context, server: EtcdhcpServer) -> None:
    """LabError unless the server read the documents and refused none: else it would
    serve its flags' default range and the figures would measure the wrong thing."""
    revision = _metric(ctx, server, "etcdhcp_config_revision")
    rejected = _metric(ctx, server, "etcdhcp_config_documents_rejected")
    if not revision or rejected:
        raise LabError(
            f"{server.name} serves config revision {revision:.0f} with {rejected:.0f} "
            f"document(s) rejected:\n{server.tail()}"
        )


# The hosts scenario: each server without hosts and with --hosts-count of them (every
# 10th perfdhcp client has one); etcdhcp also with as many hosts, none a client's.
HOST_CONFIGS = (
    "etcdhcp",
    "etcdhcp+hosts",
    "etcdhcp+idle-hosts",
    "kea-memfile",
    "kea-memfile+hosts",
)
KEA_HOSTS_START_TIMEOUT = 600.0  # Kea reads 100,000 reservations in ~1.5 s


@dataclass(frozen=True)
class HostsPoint:
    """One measurement of the hosts scenario, with what its row does not hold."""

    row: Row
    started: float  # seconds until etcdhcp's /readyz, or Kea's socket is bound
    imported: float  # seconds of etcdhcpctl host import (0: Kea, or no hosts)
    rss_start: float  # MB before any traffic
    leased: int  # addresses leased at the end
    on_hosts: int  # of them, hosts' addresses (each leased to its host's client)


class KeaHosts(KeaServer):
    """Kea memfile serving hostdocs' two scopes, with `hosts` as their reservations."""

    def __init__(self, bench: BenchLab, name: str, hosts: list[hostdocs.Host]) -> None:
        super().__init__(bench, name, "Kea memfile", SMALL_POOL)
        self.hosts = hosts

    def config(self) -> dict:
        config = super().config()
        config["Dhcp4"]["subnet4"] = hostdocs.kea_subnets(self.hosts)
        return config

    def leased(self) -> set[str]:
        """The addresses in its lease file: every lease granted since `reset`."""
        if not self.leases.exists():
            return set()
        with self.leases.open(newline="") as f:
            return {row["address"] for row in csv.DictReader(f)}


def hosts(ctx: Context) -> list[str]:
    """etcdhcp and Kea memfile, each with no hosts and with --hosts-count hosts
    (bench/hostdocs.py: two /16 scopes, every 10th of perfdhcp's clients has a host), and
    etcdhcp with as many hosts of which no client has one (idle-hosts); --hosts-rounds
    rounds at each of --hosts-rates, every other round in reverse order, each point from
    an empty lease database and a fresh server (etcdhcp: an emptied etcd, the hosts
    imported again, whose time is measured each time). DORA/s and CPU as ratios with
    against without hosts, and etcdhcp against Kea; memory at start."""
    s = ctx.settings
    records = {
        "": [],
        "hosts": hostdocs.records(s.hosts_count, s.clients),
        "idle-hosts": hostdocs.records(s.hosts_count, 0),
    }
    measured = _rounds(
        HOST_CONFIGS,
        s.hosts_rates,
        s.hosts_rounds,
        lambda config, rate: _hosts_point(ctx, config, rate, records[config.partition("+")[2]]),
    )
    n = s.hosts_count
    lines = []
    for rate in s.hosts_rates:
        rows = {config: [p.row for p in measured[rate, config]] for config in HOST_CONFIGS}
        for server in ("etcdhcp", "kea-memfile"):
            lines.append(
                f"{server}, {n} hosts against none at {rate}/s offered, "
                f"{s.hosts_rounds} round(s): "
                + _mean_against(rows[f"{server}+hosts"], rows[server])
            )
        lines.append(
            f"etcdhcp, {n} hosts of which no client has one against none at {rate}/s offered, "
            f"{s.hosts_rounds} round(s): "
            + _mean_against(rows["etcdhcp+idle-hosts"], rows["etcdhcp"])
        )
        kea = rows["kea-memfile+hosts"]
        lines.append(
            f"etcdhcp against Kea memfile, both with {n} hosts, at {rate}/s offered: "
            + _mean_against(rows["etcdhcp+hosts"], kea)
            + (
                ""
                if _overloaded(kea)
                else " (Kea sustains the offered rate: the DORA/s ratio is an upper bound)"
            )
        )
    points = {c: [p for r in s.hosts_rates for p in measured[r, c]] for c in HOST_CONFIGS}
    imports = ", ".join(f"{p.imported:.1f}s" for p in points["etcdhcp+hosts"])
    lines.append(f"etcdhcpctl host import of {n} hosts (a CSV per scope): {imports}")
    for config, mine in points.items():
        started = ", ".join(f"{p.started:.1f}" for p in mine)
        rss = ", ".join(f"{p.rss_start:.0f}" for p in mine)
        after = ", ".join(f"{p.row.rss_mb:.0f}" for p in mine)
        found = ", ".join(f"{p.on_hosts}/{p.leased}" for p in mine)
        lines.append(
            f"{config}: ready after {started} s; RSS at start {rss} MB, after the run {after} "
            f"MB; leases on a host's address / leases: {found}"
        )
    for server in ("etcdhcp", "kea-memfile"):
        with_hosts, without = _rss_start(points[f"{server}+hosts"]), _rss_start(points[server])
        grown = with_hosts - without
        lines.append(
            f"{server} RSS at start, {n} hosts against none: {with_hosts:.1f} / {without:.1f} "
            f"MB ({grown:+.1f} MB, {grown / n * 10_000:.1f} MB per 10,000 hosts)"
        )
    return lines


def _rss_start(points: list[HostsPoint]) -> float:
    """The mean resident memory at start of `points`, MB."""
    return sum(p.rss_start for p in points) / len(points)


def _hosts_point(ctx: Context, config: str, rate: int, mine: list[hostdocs.Host]) -> HostsPoint:
    """One server of HOST_CONFIGS, with the hosts `mine`, started afresh, measured."""
    server_kind, _, hosts_kind = config.partition("+")
    name = f"{server_kind}-{len(mine)}-{hosts_kind or 'no-hosts'}"
    server: Server
    if server_kind == "kea-memfile":
        server = KeaHosts(ctx.bench, name, mine)
        server.reset()
        started, imported = server.start(KEA_HOSTS_START_TIMEOUT), 0.0
    else:
        ctx.bench.reset_etcd()
        imported = hostdocs.write(ctx.bench, mine, name)
        server = ctx.etcdhcp(None, name=name)
        started = server.start()
    try:
        if isinstance(server, EtcdhcpServer):
            _check_hosts_served(ctx, server, len(mine))
        rss_start = procstat.rss_mb(server.server_pids)
        row = ctx.measure_one("hosts", server, rate, seconds=ctx.settings.seconds)
        leased = _leased(ctx, server)
    finally:
        server.stop()
    on_hosts = hostdocs.leased_hosts(leased, mine)
    what = f"import {imported:.1f}s, " if imported else ""
    note = (
        f"{len(mine)} hosts; {what}ready after {started:.1f}s; RSS at start {rss_start:.0f} "
        f"MB; {on_hosts} of {len(leased)} leases on hosts' addresses"
    )
    row = ctx.add(dataclasses.replace(row, note=note))
    return HostsPoint(row, started, imported, rss_start, len(leased), on_hosts)


def _leased(ctx: Context, server: Server) -> set[str]:
    """The addresses `server` has leased (etcd's ips::leased keys, Kea's lease file)."""
    if isinstance(server, KeaHosts):
        return server.leased()
    prefix = f"{optiondocs.PREFIX}ips::leased::"
    keys = ctx.bench.etcdctl("get", "--prefix", "--keys-only", prefix).split()
    return {key.removeprefix(prefix) for key in keys}


def _check_hosts_served(ctx: Context, server: EtcdhcpServer, count: int) -> None:
    """LabError unless the server serves the scope documents and exactly `count` hosts,
    none refused: else it would measure something else than it says."""
    _check_documents_served(ctx, server)
    served = _metric(ctx, server, "etcdhcp_hosts")
    refused = _metric(ctx, server, "etcdhcp_host_records_rejected")
    if served != count or refused:
        raise LabError(
            f"{server.name} serves {served:.0f} hosts of {count}, {refused:.0f} refused:\n"
            f"{server.tail()}"
        )


def profile_run(ctx: Context) -> list[str]:
    """py-spy on etcdhcp while perfdhcp offers ``profile_rate``."""
    s = ctx.settings
    ctx.bench.reset_etcd()
    profile.ensure_py_spy()
    server = ctx.etcdhcp(SMALL_POOL, name="etcdhcp-profile")
    server.start()
    raw = s.out / f"profile-{s.stamp}.txt"
    try:
        before = server.stage_totals()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            spy = pool.submit(_record_later, server.server_pids[0], s.profile_seconds, raw)
            ctx.add(
                ctx.measure_one(
                    "profile",
                    server,
                    s.profile_rate,
                    seconds=s.profile_seconds + 4,
                    note="under py-spy",
                )
            )
            spy.result()
        stages = stage_summary(before, server.stage_totals())
    finally:
        server.stop()
    return [
        f"where a request's time went at {s.profile_rate}/s offered (etcdhcp's own metrics):",
        stages,
        f"py-spy profile at {s.profile_rate}/s offered ({raw}):",
        profile.summary(raw),
    ]


def stage_summary(before: dict[str, list[float]], after: dict[str, list[float]]) -> str:
    """Averages over the run of each histogram series from `stage_totals` (seconds shown
    as ms): what the client's latency is made of, as the server saw it."""
    lines = []
    for series, (total, count) in sorted(after.items()):
        total_before, count_before = before.get(series, [0.0, 0.0])
        if count > count_before:
            average = (total - total_before) / (count - count_before)
            shown = f"{average * 1000:.2f} ms" if "_seconds" in series else f"{average:.2f}"
            lines.append(f"  {series}: {shown} average of {count - count_before:.0f}")
    return "\n".join(lines) or "  nothing observed"


def _record_later(pid: int, seconds: int, raw: Path) -> None:
    time.sleep(2)  # let perfdhcp reach its rate first
    profile.record(pid, seconds, raw)


SCENARIOS: dict[str, Callable[[Context], list[str]]] = {
    "sweep": sweep,
    "scale": scale,
    "rss": rss,
    "servers": servers,
    "scopes": scopes,
    "options": options,
    "hosts": hosts,
    "profile": profile_run,
}
