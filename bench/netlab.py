"""The benchmark's network: the integration tests' Lab plus etcd on the bridge, relay
namespaces for perfdhcp and extra namespaces for more etcdhcp servers.

    server namespace ehs-<id>: br0 198.18.0.1/24, etcd on 198.18.0.1:2379, the server
    under test (etcdhcp or Kea) on br0; its admin port on the uplink (198.19.N.2)
      |-- relay-0 198.18.0.2 (perfdhcp)   |-- srv-1 198.18.0.5 (2nd etcdhcp)
      |-- relay-1 198.18.0.3              |-- srv-2 198.18.0.6 (3rd etcdhcp)
      |-- relay-2 198.18.0.4
      |-- relays 198.18.0.7 with 198.18.K.1/24 (K = 1..n): one relay address per
          scope (scopes scenario), each reached from the server through 198.18.0.7

etcd listens on the bridge, not on the host, so that etcdhcp servers in other
namespaces of the same L2 segment reach it too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.integration.lab import CLIENT_IF, Client, Lab, LabError

from etcdhcp.embedded_etcd import EtcdProcess, EtcdStartError

ETCD_URL = "http://198.18.0.1:2379"
RELAY_LANS_IP = "198.18.0.7"
MAX_RELAYS = 3
MAX_SERVERS = 3
MAX_RELAY_LANS = 250  # relay LANs 198.18.1.0/24 .. 198.18.250.0/24

# Run inside a namespace: the host cannot reach addresses that only exist there.
_FETCH = (
    "import sys, urllib.request, urllib.error\n"
    "opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
    "try:\n"
    "    r = opener.open(sys.argv[1], timeout=2); print(r.status); print(r.read().decode())\n"
    "except urllib.error.HTTPError as e:\n"
    "    print(e.code)\n"
    "except Exception:\n"
    "    print(0)\n"
)


@dataclass(frozen=True)
class Host:
    """Where a DHCP server runs: namespace, interface, its address (option 54)."""

    ns: str
    interface: str
    ip: str
    admin_host: str
    reachable_from_host: bool


class BenchLab:
    """A Lab with one etcd on br0, up to three relays and up to three server hosts."""

    def __init__(self) -> None:
        self.lab = Lab()
        self._relays: dict[int, Client] = {}
        self._hosts: dict[int, Host] = {}
        self._relay_lans: tuple[Client, int] | None = None
        try:
            self.etcd = EtcdProcess(
                data_dir=str(self.lab.workdir / "etcd"),
                client_urls=[ETCD_URL],
                peer_url="http://127.0.0.1:2380",
                netns=self.lab.server_ns,
                name="bench",
            ).start(timeout=30)
        except EtcdStartError as exc:
            self.lab.close()
            raise LabError(f"the bench etcd did not start: {exc}") from exc
        except BaseException:
            self.lab.close()
            raise

    @property
    def workdir(self) -> Path:
        return self.lab.workdir

    def relay(self, index: int) -> Client:
        """Relay namespace ``index``: a static address on the bridge, where perfdhcp runs."""
        if not 0 <= index < MAX_RELAYS:
            raise ValueError(f"relay index {index} out of 0..{MAX_RELAYS - 1}")
        if index not in self._relays:
            self._relays[index] = self.lab.add_client(
                f"relay-{index}", address=f"198.18.0.{2 + index}/24"
            )
        return self._relays[index]

    def relay_lans(self, count: int) -> tuple[Client, list[str]]:
        """One namespace (198.18.0.7 on the bridge) holding the relay address 198.18.K.1/24
        of each of ``count`` relay LANs, with a route to each LAN in the server namespace,
        as a router would have: perfdhcp with ``-l 198.18.K.1`` relays from LAN K."""
        if not 0 < count <= MAX_RELAY_LANS:
            raise ValueError(f"relay LAN count {count} out of 1..{MAX_RELAY_LANS}")
        if self._relay_lans is None:
            self._relay_lans = (self.lab.add_client("relays", address=f"{RELAY_LANS_IP}/24"), 0)
        client, made = self._relay_lans
        for k in range(made + 1, count + 1):
            client.run(["ip", "addr", "add", f"198.18.{k}.1/24", "dev", CLIENT_IF], check=True)
            self.lab.run(
                self.lab.server_ns,
                ["ip", "route", "add", f"198.18.{k}.0/24", "via", RELAY_LANS_IP],
                check=True,
            )
        self._relay_lans = (client, max(made, count))
        return client, [f"198.18.{k}.1" for k in range(1, count + 1)]

    def host(self, index: int) -> Host:
        """Server host ``index``: 0 is the server namespace, others sit on the same bridge."""
        if not 0 <= index < MAX_SERVERS:
            raise ValueError(f"server index {index} out of 0..{MAX_SERVERS - 1}")
        if index not in self._hosts:
            if index == 0:
                lab = self.lab
                host = Host(lab.server_ns, lab.bridge, lab.server_ip, lab.uplink_server_ip, True)
            else:
                ip = f"198.18.0.{4 + index}"
                client = self.lab.add_client(f"srv-{index}", address=f"{ip}/24")
                host = Host(client.ns, CLIENT_IF, ip, ip, False)
            self._hosts[index] = host
        return self._hosts[index]

    # -- etcd -------------------------------------------------------------------

    def etcdctl(self, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        out = self.lab.run(
            self.lab.server_ns,
            ["etcdctl", "--endpoints", ETCD_URL, "--command-timeout=100s", *args],
            env={**os.environ, "ETCDCTL_API": "3"},
            timeout=timeout,
            check=check,
        )
        return out.stdout

    def reset_etcd(self) -> None:
        """Empty etcd, revoke its leases, compact and defragment: every run starts alike."""
        self.etcdctl("del", "--prefix", "")
        for lease in json.loads(self.etcdctl("lease", "list", "-w", "json")).get("leases") or []:
            # A short lease (an offer's) may expire between the listing and the revoke.
            self.etcdctl("lease", "revoke", format(int(lease["id"]), "x"), check=False)
        if json.loads(self.etcdctl("lease", "list", "-w", "json")).get("leases"):
            raise LabError("etcd leases are left after revoking them all")
        status = json.loads(self.etcdctl("endpoint", "status", "-w", "json"))
        revision = status[0]["Status"]["header"]["revision"]
        self.etcdctl("compact", str(revision), "--physical")
        self.etcdctl("defrag")

    # -- HTTP -------------------------------------------------------------------

    def fetch(self, host: Host, url: str) -> tuple[int, str]:
        """(status, body) of a GET; 0 when nothing answered. Runs in ``host``'s namespace
        unless the host namespace can reach it (the uplink)."""
        if host.reachable_from_host:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            try:
                with opener.open(url, timeout=2) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, ""
            except OSError:
                return 0, ""
        try:
            out = self.lab.run(host.ns, [sys.executable, "-I", "-S", "-c", _FETCH, url], timeout=10)
        except LabError:
            return 0, ""
        status, _, body = out.stdout.partition("\n")
        return int(status or 0), body

    def udp_port_bound(self, ns: str, port: int) -> bool:
        out = self.lab.run(ns, ["ss", "-H", "-uln", f"sport = :{port}"], timeout=10)
        return bool(out.stdout.strip())

    def close(self) -> None:
        try:
            self.etcd.stop()
        finally:
            self.lab.close()

    def __enter__(self) -> BenchLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def popen_logged(lab: Lab, ns: str, argv: list[str], log: Path, **kw: object) -> subprocess.Popen:
    """Start ``argv`` in ``ns`` with stdout and stderr appended to ``log``."""
    with open(log, "ab") as out:
        return lab.popen(ns, argv, stdout=out, stderr=subprocess.STDOUT, **kw)
