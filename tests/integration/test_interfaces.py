"""One etcdhcp serving two interfaces (issue 14 item 5), end to end with real clients.

The lab's server namespace gets two more bridges, each a LAN of its own with client
namespaces on it; one daemon (one serving process, then two) serves both, from two scopes in
etcd written with etcdhcpctl and no range flags:

    lan120  198.18.120.1/24 and .2/24  (-dhcp.server-ip 198.18.120.2 picks .2)
    lan121  198.18.121.1/24            (its only address)

On each LAN one dhclient and one udhcpc, with MACs that the fanout group gives to
different serving processes, must each get an address of their own LAN's scope, its
router, and their own interface's server identifier (option 54).
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from .conftest import Served
from .daemon import SRC, EtcdhcpProcess
from .lab import Client, Lab


@dataclass(frozen=True)
class Lan:
    bridge: str
    addresses: tuple[str, ...]  # the server's, with prefix length; the first is the router
    server_id: str  # what its clients must see as option 54
    scope_id: int

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Interface(self.addresses[0]).network

    @property
    def router(self) -> str:
        return self.addresses[0].split("/")[0]

    def pool(self) -> tuple[str, str]:
        base = str(self.network.network_address).rsplit(".", 1)[0]
        return f"{base}.100", f"{base}.149"

    def in_pool(self, ip: str | None) -> bool:
        first, last = map(ipaddress.IPv4Address, self.pool())
        return ip is not None and first <= ipaddress.IPv4Address(ip) <= last

    def scope(self) -> str:
        first, last = self.pool()
        return json.dumps(
            {
                "id": self.scope_id,
                "subnet": str(self.network),
                "pools": [{"pool": f"{first} - {last}"}],
                "option-data": [
                    {"name": "routers", "data": self.router},
                    {"name": "domain-name-servers", "data": self.router},
                ],
            }
        )


LANS = (
    Lan("lan120", ("198.18.120.1/24", "198.18.120.2/24"), "198.18.120.2", 120),
    Lan("lan121", ("198.18.121.1/24",), "198.18.121.1", 121),
)
# glog: "I1128 16:40:00.123456   4242 pipeline.py:182] lease granted: MAC IP (server SID)"
_GRANTED = re.compile(
    r"^I\S+ \S+ +(\d+) pipeline\.py:\d+\] lease granted: \S+ (\S+) \(server (\S+)\)$", re.M
)


def build_lan(lab: Lab, lan: Lan) -> None:
    """A bridge in the server namespace with the server's addresses on it."""
    ns = lab.server_ns
    lab.run(ns, ["ip", "link", "add", lan.bridge, "type", "bridge", "forward_delay", "0",
                 "stp_state", "0"], check=True)  # fmt: skip
    for address in lan.addresses:
        lab.run(ns, ["ip", "addr", "add", address, "dev", lan.bridge], check=True)
    lab.run(ns, ["ip", "link", "set", lan.bridge, "up"], check=True)


def etcdhcpctl(lab: Lab, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "etcdhcp.ctl", "--config=",
            "-etcd.discovery.endpoints", endpoint, *args]  # fmt: skip
    return lab.run(None, argv, timeout=60, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})


def dhclient_lease(client: Client) -> tuple[str | None, str | None, str | None]:
    """(address, server identifier, router) of dhclient's last bound lease."""
    client.dhclient(record=True)
    bound = [e for e in client.dhclient_events() if e.get("reason") == "BOUND"]
    last = bound[-1] if bound else {}
    return (
        last.get("new_ip_address"),
        last.get("new_dhcp_server_identifier"),
        last.get("new_routers"),
    )


def udhcpc_lease(client: Client) -> tuple[str | None, str | None, str | None]:
    """(address, server identifier, router) of udhcpc's lease."""
    client.udhcpc()
    env = client.udhcpc_env
    return env.get("ip"), env.get("serverid"), env.get("router")


TOOLS = {"dhclient": dhclient_lease, "udhcpc": udhcpc_lease}


@pytest.mark.parametrize("processes", [1, 2])
def test_one_daemon_serves_two_interfaces_each_as_its_own_server(lab: Lab, processes: int) -> None:
    etcd = lab.etcd()
    for lan in LANS:
        build_lan(lab, lan)
        added = etcdhcpctl(lab, etcd.client_url, "scope", "add", lan.scope())
        assert added.returncode == 0, added.stderr
    daemon = EtcdhcpProcess(
        lab,
        etcd.client_url,
        issue_from=None,  # etcd's scopes only
        extra=[
            "-dhcp.server-if", ",".join(lan.bridge for lan in LANS),
            "-dhcp.server-ip", LANS[0].server_id,
            f"-dhcp.processes={processes}", "-dhcp.cpu-affinity=off",
        ],
    )  # fmt: skip
    served = Served(lab, etcd, daemon)
    daemon.start()
    try:
        # On each LAN, MACs ending even and odd: a fanout group of two processes gives
        # them different ones.
        runs: list[tuple[Lan, Client, Callable[[Client], tuple]]] = []
        for k, lan in enumerate(LANS):
            for parity, (name, tool) in enumerate(TOOLS.items()):
                mac = f"02:00:5e:{lan.scope_id:02x}:00:{2 * k + parity:02x}"
                client = lab.add_client(f"{lan.bridge}-{name}", mac=mac,
                                        attach=(lab.server_ns, lan.bridge))  # fmt: skip
                runs.append((lan, client, tool))
        got: dict[Client, tuple] = {}

        def run(client: Client, tool: Callable[[Client], tuple]) -> None:
            got[client] = tool(client)

        threads = [threading.Thread(target=run, args=(c, t)) for _lan, c, t in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for lan, client, _tool in runs:
            ip, server_id, router = got.get(client, (None, None, None))
            assert lan.in_pool(ip), (client, got.get(client), client.last_output)
            assert (server_id, router) == (lan.server_id, lan.router), client
            assert client.address() == ip

        # Every process granted leases on both interfaces, each as that interface.
        log = daemon.log()
        granted = {(int(pid), ip, sid) for pid, ip, sid in _GRANTED.findall(log)}
        assert daemon.proc is not None
        main = daemon.proc.pid
        for lan in LANS:
            mine = {(pid, sid) for pid, ip, sid in granted if lan.in_pool(ip)}
            assert {sid for _pid, sid in mine} == {lan.server_id}, granted
            pids = {pid for pid, _sid in mine}
            assert len(pids) == processes and main in pids, granted
        assert len(served.leases()) == len(runs)

        # The log, the registry and its gauge name every interface, in one server.
        serving = rf"serving DHCP on lan120 \(\S+\), lan121 \(\S+\) from {processes} process"
        assert re.search(serving, log)
        records = {k: json.loads(v) for k, v in served.read().items() if k.startswith("servers::")}
        assert {k: (r["interface"], r["pid"]) for k, r in records.items()} == {
            f"servers::{lan.server_id}": (lan.bridge, main) for lan in LANS
        }
        assert daemon.metric("etcdhcp_servers_live") == 1
    finally:
        status = daemon.stop()
    assert status == 0, daemon.log()
    assert "Traceback" not in daemon.log()


def test_an_interface_without_an_address_is_one_line_and_no_start(lab: Lab) -> None:
    """Read from the real interfaces: with several, each needs an address of its own."""
    build_lan(lab, LANS[1])
    build_lan(lab, Lan("lan-bare", (), "", 0))
    argv = [sys.executable, "-m", "etcdhcp", "--config=", "-dhcp.server-if", "lan121,lan-bare"]
    env = {"PYTHONPATH": SRC, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    done = lab.run(lab.server_ns, argv, timeout=60, env=env)
    assert (done.returncode, done.stderr) == (
        2,
        "etcdhcp: --dhcp.server-if: lan-bare has no IPv4 address: with several interfaces "
        "each needs its own, sent as its server identifier (option 54)\n",
    )
