"""The scopes scenario's configurations: Kea `subnet4` entries for N scopes, and their
import into the bench etcd with `etcdhcpctl scope import`.

Every address stays in 198.18.0.0/16 (the lab's range; 198.19 holds its uplinks):

* the scopes with clients: 198.18.K.0/24 for K = 1..relays, pool .10-.209 (200
  addresses), router 198.18.K.1, which is also the relay address (giaddr) of LAN K;
* the idle scopes: packed after them, up to 198.18.255.255, each the largest aligned
  block that fits, its pool every host of it (with 10 relays, 1,000 scopes: /27s with
  30 addresses; 10,000: /30s with 2);
* one scope, the baseline: 198.18.0.0/16, which holds every relay address, with a pool
  of 4,094 addresses after the relay LANs (the size of the other scenarios' pool).
"""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any

from bench.netlab import ETCD_URL, BenchLab
from bench.servers import LEASE_SECONDS, REPO, VENV_PYTHON

SERVER_IP = "198.18.0.1"  # the DNS server of every scope
ACTIVE_POOL = (10, 209)  # host numbers of a client LAN's pool: 200 addresses
MAX_CLIENTS_PER_LAN = 150  # perfdhcp's -R per relay: below the LAN's pool, no NAKs for want
ONE_SCOPE_POOL = 4094
SPACE_END = int(ipaddress.IPv4Address("198.18.255.255"))


def _entry(
    scope_id: int, subnet: ipaddress.IPv4Network, first: int, last: int, router: str
) -> dict[str, Any]:
    return {
        "id": scope_id,
        "subnet": str(subnet),
        "pools": [{"pool": f"{ipaddress.IPv4Address(first)} - {ipaddress.IPv4Address(last)}"}],
        "valid-lifetime": LEASE_SECONDS,
        "option-data": [
            {"name": "routers", "data": router},
            {"name": "domain-name-servers", "data": SERVER_IP},
        ],
    }


def idle_block(count: int, relays: int) -> int:
    """Addresses in each idle scope's subnet: the largest aligned block (at most a /24)
    that fits `count - relays` of them after the relay LANs. ValueError when none does."""
    if count < relays:
        raise ValueError(f"{count} scopes cannot give each of {relays} relays its own")
    idle = count - relays
    room = (SPACE_END + 1 - int(ipaddress.IPv4Address(f"198.18.{relays + 1}.0"))) // max(idle, 1)
    block = min(256, 1 << (room.bit_length() - 1)) if room else 0
    if block < 4:
        raise ValueError(f"{idle} idle scopes do not fit after the relay LANs in 198.18.0.0/16")
    return block


def documents(count: int, relays: int) -> list[dict[str, Any]]:
    """`count` subnet4 entries: one (the baseline) or the relays' LANs and idle scopes."""
    if count == 1:
        first = int(ipaddress.IPv4Address(f"198.18.{relays + 1}.1"))
        one = ipaddress.IPv4Network("198.18.0.0/16")
        return [_entry(1, one, first, first + ONE_SCOPE_POOL - 1, SERVER_IP)]
    entries = []
    for k in range(1, relays + 1):
        lan = ipaddress.IPv4Network(f"198.18.{k}.0/24")
        base = int(lan.network_address)
        first, last = base + ACTIVE_POOL[0], base + ACTIVE_POOL[1]
        entries.append(_entry(k, lan, first, last, f"198.18.{k}.1"))
    idle = count - relays
    start = int(ipaddress.IPv4Address(f"198.18.{relays + 1}.0"))  # /24-aligned
    block = idle_block(count, relays)
    prefix = 32 - block.bit_length() + 1
    for i in range(idle):
        net = ipaddress.IPv4Network((start + i * block, prefix))
        base = int(net.network_address)
        entries.append(_entry(relays + 1 + i, net, base + 1, base + block - 2, str(net[1])))
    return entries


def pool_size(entries: list[dict[str, Any]]) -> int:
    """Addresses in every pool of `entries` (what the server seeds into etcd)."""
    total = 0
    for entry in entries:
        for pool in entry["pools"]:
            first, _, last = pool["pool"].partition(" - ")
            total += int(ipaddress.IPv4Address(last)) - int(ipaddress.IPv4Address(first)) + 1
    return total


def etcdhcpctl(bench: BenchLab, *args: str, timeout: float = 900) -> float:
    """Run `etcdhcpctl ARGS` against the bench etcd in the server namespace (LabError
    when it fails); returns the seconds it took."""
    argv = [
        str(VENV_PYTHON), "-m", "etcdhcp.ctl", "--config=",
        "--etcd.discovery.endpoints", ETCD_URL, *args,
    ]  # fmt: skip
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO / "src")}
    started = time.monotonic()
    bench.lab.run(bench.lab.server_ns, argv, timeout=timeout, check=True, env=env)
    return time.monotonic() - started


def import_scopes(bench: BenchLab, entries: list[dict[str, Any]], name: str) -> float:
    """Write `entries` with `etcdhcpctl scope import` (checked, then written in batches);
    returns the seconds it took."""
    path = bench.workdir / f"{name}.json"
    path.write_text(json.dumps({"Dhcp4": {"subnet4": entries}}))
    return etcdhcpctl(bench, "scope", "import", str(path), timeout=600)
