"""Client LANs behind a router that runs Debian's real relay agent (isc-dhcp-relay).

    server LAN: the lab's br0, 198.18.0.0/24 (etcd, the servers, local clients)
      └─ router namespace: eth0 198.18.0.254 ─┬─ lan-a 198.18.32.1/24 ─ clients
                                              ├─ lan-b 198.18.33.1/24 ─ clients
                                              └─ ...
    dhcrelay in the router relays each LAN's broadcasts to every server (giaddr: the
    router's address on that LAN), and the servers route the client LANs back through
    the router (FIELD-NOTES.md, "A real relay agent").

`Router` is the router and its LANs; `ScopeLab` adds what a test of scopes needs: etcd
in the server namespace (reachable from the server LAN and, over the uplink, from the
test process), two etcdhcp servers on the server LAN that serve etcd's scopes only (no
range flags), and `etcdhcpctl` / `etcdctl` run as an operator would.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from etcdhcp.embedded_etcd import EtcdProcess

from .cluster import ClusterServer
from .daemon import SRC, EtcdhcpProcess
from .lab import Client, Lab, LabError

ROUTER_IP = "198.18.0.254"
ROUTER_UPLINK = "eth0"
ETCD_PORT = 2379
RELAYPROBE = str(Path(__file__).with_name("relayprobe.py"))


class Router:
    """A namespace on the server LAN that routes to client LANs (one bridge each)."""

    def __init__(self, lab: Lab, lans: Mapping[str, str]) -> None:
        """`lans`: name -> the router's address on it ("a": "198.18.32.1/24")."""
        self.lab = lab
        self.host = lab.add_client("router", address=f"{ROUTER_IP}/24")
        self.lans = {name: ipaddress.IPv4Interface(cidr) for name, cidr in lans.items()}
        self.relay: subprocess.Popen[Any] | None = None
        self.log_path = lab.workdir / "dhcrelay.log"
        self.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        for name, iface in self.lans.items():
            bridge = self.bridge(name)
            self.run("ip", "link", "add", bridge, "type", "bridge", "forward_delay", "0",
                     "stp_state", "0")  # fmt: skip
            self.run("ip", "addr", "add", str(iface), "dev", bridge)
            self.run("ip", "link", "set", bridge, "up")

    @property
    def ns(self) -> str:
        return self.host.ns

    def run(self, *argv: str) -> str:
        return self.host.run(list(argv), check=True, timeout=20).stdout

    @staticmethod
    def bridge(lan: str) -> str:
        return f"lan-{lan}"

    def gateway(self, lan: str) -> str:
        """The router's address on `lan`: the relay's giaddr for its clients."""
        return str(self.lans[lan].ip)

    def network(self, lan: str) -> ipaddress.IPv4Network:
        return self.lans[lan].network

    def add_client(self, lan: str, name: str, mac: str | None = None) -> Client:
        """A client host on `lan`: its DHCP broadcasts reach the servers only via dhcrelay."""
        return self.lab.add_client(name, mac=mac, attach=(self.ns, self.bridge(lan)))

    def route_from(self, ns: str) -> None:
        """Route every client LAN through the router from namespace `ns` (a server's)."""
        for lan in self.lans:
            self.lab.run(
                ns, ["ip", "route", "add", str(self.network(lan)), "via", ROUTER_IP], check=True
            )

    def start_relay(
        self, servers: Sequence[str], agent_info: bool = True, timeout: float = 10.0
    ) -> None:
        """dhcrelay for every LAN to `servers`; `agent_info` adds option 82 (-a)."""
        downstream = [arg for lan in self.lans for arg in ("-id", self.bridge(lan))]
        argv = [
            "dhcrelay", "-4", "-d", "--no-pid", *(["-a"] if agent_info else []),
            *downstream, "-iu", ROUTER_UPLINK, *servers,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.relay = self.host.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            if text.count("Sending on") >= len(self.lans) + 1:
                return
            if self.relay.poll() is not None:
                break
            time.sleep(0.1)
        raise LabError(f"dhcrelay did not start:\n{self.log_path.read_text(errors='replace')}")

    def probe(self, *args: str, timeout: float = 30.0) -> dict[str, Any] | None:
        """relayprobe.py from the router (on its server-side leg); its JSON answer."""
        return run_probe(self.host, ["--iface", ROUTER_UPLINK, *args], timeout)


def run_probe(host: Client, args: Sequence[str], timeout: float = 30.0) -> dict[str, Any] | None:
    """relayprobe.py in `host`'s namespace; the reply it saw (None: no answer)."""
    out = host.run([sys.executable, RELAYPROBE, *args], timeout=timeout + 15, check=True)
    return json.loads(out.stdout)


def start_probe(host: Client, args: Sequence[str], out: Path) -> subprocess.Popen[Any]:
    """relayprobe.py in the background (its JSON goes to `out`); wait() for it."""
    with open(out, "wb") as sink:
        return host.popen([sys.executable, RELAYPROBE, *args], stdout=sink)


class ScopeLab:
    """etcd, two etcdhcp servers serving etcd's scopes, a router with client LANs.

    Server 0 runs in the lab's server namespace on br0 (198.18.0.1, admin over the
    uplink); server 1 has a namespace of its own on the same LAN (ClusterServer,
    198.18.0.12). Both reach etcd at 198.18.0.1; the test process reaches it over the
    uplink. Call `start()` once the scopes the servers should start with are in etcd.
    """

    def __init__(self, lab: Lab, lans: Mapping[str, str], prefix: str = "etcdhcp::") -> None:
        self.lab = lab
        self.prefix = prefix
        self.etcd = EtcdProcess(
            data_dir=str(lab.workdir / "etcd"),
            client_urls=[
                f"http://{lab.server_ip}:{ETCD_PORT}",
                f"http://{lab.uplink_server_ip}:{ETCD_PORT}",
            ],
            peer_url="http://127.0.0.1:2380",
            name="scopes",
            netns=lab.server_ns,
        ).start(timeout=30)
        self.lan_endpoint = f"http://{lab.server_ip}:{ETCD_PORT}"
        self.endpoint = f"http://{lab.uplink_server_ip}:{ETCD_PORT}"  # the test's way in
        self.router = Router(lab, lans)
        self.router.route_from(lab.server_ns)
        self.servers: list[EtcdhcpProcess] = []

    def start(self, extra: Sequence[str] = ("-dhcp.monitor-interval", "30s")) -> None:
        """Start both servers (no range flags) and the relay agent towards both."""
        local = EtcdhcpProcess(
            self.lab, self.lan_endpoint, prefix=self.prefix, issue_from=None, extra=extra
        )
        peer = ClusterServer(
            self.lab,
            1,
            ["-etcd.discovery.endpoints", self.lan_endpoint],
            prefix=self.prefix,
            pool=None,
            extra=["-v=2", *extra],
        )
        self.router.route_from(peer.host.ns)
        peer.launch()
        local.start(timeout=60)
        peer.wait_ready(60)
        self.servers = [local, peer]
        self.router.start_relay([self.lab.server_ip, peer.ip])

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        self.etcd.stop()

    # ---- the operator's tools

    def ctl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """`etcdhcpctl ARGS` as its own process (exit status and output not checked)."""
        argv = [
            sys.executable, "-m", "etcdhcp.ctl", "--config=",
            "-etcd.discovery.endpoints", self.endpoint, "-etcd.prefix", self.prefix, *args,
        ]  # fmt: skip
        env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}
        kw: dict[str, Any] = {"input": stdin, "stdin": None} if stdin is not None else {}
        return self.lab.run(None, argv, timeout=60, env=env, **kw)

    def etcdctl(self, *args: str) -> str:
        out = self.lab.run(
            None,
            ["etcdctl", "--endpoints", self.endpoint, *args],
            env={**os.environ, "ETCDCTL_API": "3"},
            check=True,
            timeout=20,
        )
        return out.stdout

    def read(self, prefix: str = "") -> dict[str, str]:
        """Every key under the lab's prefix + `prefix`, without the lab's prefix."""
        lines = self.etcdctl("get", "--prefix", self.prefix + prefix).splitlines()
        return {k[len(self.prefix) :]: v for k, v in zip(lines[0::2], lines[1::2], strict=True)}

    def mod_revision(self, key: str) -> int:
        """The etcd revision that last wrote `key` (under the lab's prefix)."""
        found = json.loads(self.etcdctl("get", self.prefix + key, "-w", "json"))
        return int(found["kvs"][0]["mod_revision"])
