"""Aggregate DORA rate of 1, 2 and 3 etcdhcp servers sharing one 3-member etcd cluster.

    PYTHONPATH=.:src .venv/bin/python -m bench.ha [--seconds 15] [--rates 300,600]

(as root, from the repository's top directory).

The lab of tests/integration/test_ha.py (tests/integration/cluster.py): three etcd
members, each in its own namespace with its own data directory, and N etcdhcp servers
on one bridge with one pool. N perfdhcp relays run at once, relay k unicasting to
server k (a relay with one helper address), with its own --clients MACs for --seconds;
each rate of --rates is offered in all, split evenly among the N servers. Every run
starts from empty keys and a compacted, defragmented etcd, with freshly started
servers. Printed: each server's ACK rate, the sum, the sum as a ratio to 1 server at
the same offered rate, and what the servers dropped.

Everything shares the machine's cores: with 2 cores the three etcd members, N Python
servers and N perfdhcp compete for the same CPU, so the ratio shows whether adding a
server costs throughput or keeps it, not what N servers on N machines would do.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

from tests.integration.cluster import PREFIXLEN, ClusterServer, EtcdCluster
from tests.integration.lab import Client, Lab

from bench.perfdhcp import Run

PREFIX = "etcdhcp::"
POOL = ("198.18.4.0", "198.18.15.250")  # 3,067 addresses: more than 3 x --clients
RELAY_IPS = ("198.18.0.31", "198.18.0.32", "198.18.0.33")


def reset(cluster: EtcdCluster) -> None:
    """Delete every key, then compact and defragment every member."""
    cluster.etcdctl("del", "--prefix", PREFIX)
    status = json.loads(cluster.etcdctl("endpoint", "status", "-w", "json"))
    revision = max(s["Status"]["header"]["revision"] for s in status)
    cluster.etcdctl("compact", str(revision))
    cluster.etcdctl("defrag")


DROPS = ("deadline", "queue_full", "etcd_unavailable", "rate_limited")


@dataclass(frozen=True)
class Point:
    """One run: N servers loaded at once with `offered` DORA/s in all."""

    offered: int
    servers: int
    rates: list[float]  # ACKs per second, per server
    refused: dict[str, float]  # requests each kind of drop cost, all servers together

    @property
    def total(self) -> float:
        return sum(self.rates)


def measure(
    cluster: EtcdCluster,
    servers: list[ClusterServer],
    relays: list[Client],
    offered: int,
    args: argparse.Namespace,
) -> Point:
    """Load every server at once, `offered` DORA/s split evenly; stop them after."""
    reset(cluster)
    for server in servers:
        server.launch()
    try:
        for server in servers:
            server.wait_ready()
        runs = [
            Run(
                relay,
                server.ip,
                offered // len(servers),
                args.clients,
                seconds=args.seconds,
                mac_base=f"00:0c:01:{k:02x}:00:00",
            )
            for k, (relay, server) in enumerate(zip(relays, servers, strict=False))
        ]
        rates = [run.result().achieved_rate for run in runs]
        refused = {
            reason: sum(s.metric("etcdhcp_packets_dropped_total", reason=reason) for s in servers)
            for reason in DROPS
        }
        refused["nak"] = sum(s.metric("etcdhcp_replies_sent_total", type="nak") for s in servers)
        return Point(offered, len(servers), rates, refused)
    finally:
        for server in servers:
            server.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument(
        "--rates", default="300,600", help="DORA/s offered in all, split among the servers"
    )
    parser.add_argument("--clients", type=int, default=800, help="MACs per relay")
    args = parser.parse_args(argv)
    points: list[Point] = []
    with Lab() as lab:
        cluster = EtcdCluster(lab)
        try:
            cluster.start()
            flags = ["-etcd.discovery.endpoints", ",".join(cluster.endpoints)]
            servers = [
                ClusterServer(lab, i, flags, prefix=PREFIX, pool=POOL, extra=["-v=0"])
                for i in range(3)
            ]
            relays = [
                lab.add_client(f"perf{k}", address=f"{ip}/{PREFIXLEN}")
                for k, ip in enumerate(RELAY_IPS)
            ]
            for offered in (int(r) for r in args.rates.split(",")):
                for n in (1, 2, 3):
                    points.append(measure(cluster, servers[:n], relays, offered, args))
        finally:
            cluster.close()
    print(f"\n3-member etcd cluster, {args.seconds}s per run, {args.clients} MACs per server")
    print("offered  servers  ACK/s per server         total  ratio  drops (all servers)")
    base = {p.offered: p.total for p in points if p.servers == 1}
    for p in points:
        each = " ".join(f"{r:6.1f}" for r in p.rates)
        ratio = p.total / base[p.offered] if base[p.offered] else 0.0
        drops = ", ".join(f"{k} {v:.0f}" for k, v in p.refused.items() if v) or "none"
        print(f"{p.offered:7d}  {p.servers:7d}  {each:22s}  {p.total:6.1f}  {ratio:5.2f}  {drops}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
