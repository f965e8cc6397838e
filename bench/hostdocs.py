"""The hosts scenario's host records: N `hw-address` hosts, each with an address and a
host name, as the CSV files `etcdhcpctl host import` takes and as Kea `reservations`.

A /16 holds 65,534 addresses, fewer than 100,000 hosts, and the lab's addresses stop at
198.18.0.0/15, so the records are spread over two /16 scopes (the same two for every
count, and for Kea):

* scope 1, 198.18.0.0/16: the scope perfdhcp's clients come to (the other scenarios'
  subnet and pool, 198.18.16.1-198.18.31.254), with up to SCOPE_1_HOSTS hosts at
  198.18.32.1 and on, outside the pool;
* scope 2, 198.19.0.0/16: idle (no pool, no traffic), the rest of the hosts from
  198.19.0.1 on. No packet ever carries these addresses: they are records in etcd and
  in Kea's configuration only.

Which clients have a host: perfdhcp's client r (0 <= r < -R) has the MAC base + r
(bench/measure.py gives the first perfdhcp the base 02:00:00:00:00:00), and every
MATCH_EVERY-th of them, r = 0, 10, 20, ..., has a host in scope 1, so about one exchange
in ten is a host's. The other hosts' MACs (02:01:...) are never perfdhcp's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench import optiondocs, scopedocs
from bench.netlab import BenchLab
from bench.servers import LEASE_SECONDS

MATCH_EVERY = 10  # every 10th perfdhcp client has a host: ~10 % of the exchanges
PERFDHCP_MAC_BASE = 0x02_00_00_00_00_00  # measure()'s base for the first perfdhcp
IDLE_MAC_BASE = 0x02_01_00_00_00_00  # hosts no perfdhcp client has
SCOPE_1_HOSTS = 50_000
SCOPE_1_FIRST = ipaddress.IPv4Address("198.18.32.1")  # after the pool, to 198.18.255.254
IDLE_SUBNET = ipaddress.IPv4Network("198.19.0.0/16")
MAX_HOSTS = SCOPE_1_HOSTS + IDLE_SUBNET.num_addresses - 2


@dataclass(frozen=True)
class Host:
    """One record: its scope (subnet id), MAC, address and host name."""

    scope: int
    mac: str
    ip: str
    hostname: str


def _mac(value: int) -> str:
    return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))


def perfdhcp_mac(client: int) -> str:
    """The MAC of perfdhcp's client `client` (-R's 0..R-1) with measure()'s first base:
    perfdhcp adds the client number to the base's last octets."""
    return _mac(PERFDHCP_MAC_BASE + client)


def records(count: int, clients: int) -> list[Host]:
    """`count` hosts: first one for every MATCH_EVERY-th of perfdhcp's `clients` (as many
    as `count` allows), then idle ones; scope 1 takes the first SCOPE_1_HOSTS, scope 2
    the rest. ValueError when they do not fit."""
    if not 0 <= count <= MAX_HOSTS:
        raise ValueError(f"{count} hosts: between 0 and {MAX_HOSTS} fit in the two scopes")
    matched = [perfdhcp_mac(r) for r in range(0, clients, MATCH_EVERY)][:count]
    macs = matched + [_mac(IDLE_MAC_BASE + i) for i in range(count - len(matched))]
    hosts = []
    for i, mac in enumerate(macs):
        if i < SCOPE_1_HOSTS:
            scope, ip = 1, SCOPE_1_FIRST + i
        else:
            scope, ip = 2, IDLE_SUBNET.network_address + 1 + i - SCOPE_1_HOSTS
        hosts.append(Host(scope, mac, str(ip), f"host-{i}"))
    return hosts


def subnets() -> list[dict[str, Any]]:
    """The two scopes as Kea `subnet4` entries, without reservations: scope 1 is the
    options scenario's plain scope document (the bench's subnet, pool and options)."""
    (served,) = optiondocs.kea_config("scope")["Dhcp4"]["subnet4"]
    idle = {"id": 2, "subnet": str(IDLE_SUBNET), "pools": [], "valid-lifetime": LEASE_SECONDS}
    return [served, idle]


def kea_subnets(hosts: list[Host]) -> list[dict[str, Any]]:
    """`subnets()` with each scope's hosts as its Kea `reservations`."""
    entries = subnets()
    for entry in entries:
        entry["reservations"] = [
            {"hw-address": h.mac, "ip-address": h.ip, "hostname": h.hostname}
            for h in hosts
            if h.scope == entry["id"]
        ]
    return entries


def csv_text(hosts: list[Host], scope: int) -> str:
    """Scope `scope`'s hosts as `etcdhcpctl host import`'s CSV (mac,ip,hostname)."""
    lines = ["mac,ip,hostname"] + [
        f"{h.mac},{h.ip},{h.hostname}" for h in hosts if h.scope == scope
    ]
    return "\n".join(lines) + "\n"


def write(bench: BenchLab, hosts: list[Host], name: str) -> float:
    """Write the two scopes (`etcdhcpctl scope import`) and then `hosts`, one CSV per
    scope (`etcdhcpctl host import --scope N`), into the emptied bench etcd; returns the
    seconds the host imports took."""
    scopedocs.import_scopes(bench, subnets(), f"{name}-scopes")
    seconds = 0.0
    for scope in sorted({h.scope for h in hosts}):
        path = bench.workdir / f"{name}-scope{scope}.csv"
        path.write_text(csv_text(hosts, scope))
        seconds += scopedocs.etcdhcpctl(bench, "host", "import", str(path), "--scope", str(scope))
    return seconds


def leased_hosts(leased: Iterable[str], hosts: list[Host]) -> int:
    """How many of the `leased` addresses are hosts' (each leased to its host's client,
    as no other client is given a reserved address): the clients that found their host."""
    return len(set(leased) & {h.ip for h in hosts})
