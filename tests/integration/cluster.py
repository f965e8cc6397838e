"""A 3-member etcd cluster, several etcdhcp servers and a DNS server on one lab bridge.

Every etcd member, every etcdhcp server, dnsmasq and the relay agent that drives the
load get a namespace of their own, attached to the lab's br0 like a client host
(`Lab.add_client` with a static address): killing one process is killing one host,
and nothing needs a route. All of them sit in 198.18.0.0/20; the pool is
198.18.1.0-198.18.2.255 (512 addresses for a few hundred clients) unless given.

The test process cannot reach these addresses itself, so etcdctl and the servers'
admin endpoints are used from inside the namespaces.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from etcdhcp.embedded_etcd import EtcdProcess

from .daemon import ADMIN_PORT, SRC, EtcdhcpProcess
from .lab import Client, Lab

PREFIXLEN = 20
NETMASK = "255.255.240.0"
MEMBER_IPS = ("198.18.0.21", "198.18.0.22", "198.18.0.23")
SERVER_IPS = ("198.18.0.11", "198.18.0.12", "198.18.0.13")
DNS_IP = "198.18.0.53"
RELAY_IP = "198.18.0.2"
POOL = ("198.18.1.0", "198.18.2.255")
SRV_NAME = "_etcd-client._tcp.etcd.lab.test"
RELAYCLIENT = str(Path(__file__).with_name("relayclient.py"))

# Prints "<status> <body>" for a GET, inside a namespace (HTTP errors carry a body too).
_HTTP_GET = (
    "import sys, urllib.error, urllib.request\n"
    "opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
    "try:\n"
    "    r = opener.open(sys.argv[1], timeout=3)\n"
    "    print(r.status, r.read().decode())\n"
    "except urllib.error.HTTPError as e:\n"
    "    print(e.code, e.read().decode())\n"
    "except OSError as e:\n"
    "    print(0, e)\n"
)


def _etcdctl_env() -> dict[str, str]:
    return {**os.environ, "ETCDCTL_API": "3"}


class EtcdCluster:
    """Three etcd members, each in its own namespace with its own data directory."""

    def __init__(self, lab: Lab, size: int = 3) -> None:
        self.lab = lab
        self.hosts: list[Client] = []
        self.members: list[EtcdProcess] = []
        ips = MEMBER_IPS[:size]
        initial = ",".join(f"m{i}=http://{ip}:2380" for i, ip in enumerate(ips))
        for i, ip in enumerate(ips):
            host = lab.add_client(f"etcd{i}", address=f"{ip}/{PREFIXLEN}")
            self.hosts.append(host)
            self.members.append(
                EtcdProcess(
                    data_dir=str(lab.workdir / f"member-{i}"),
                    client_urls=[f"http://{ip}:2379"],
                    peer_url=f"http://{ip}:2380",
                    name=f"m{i}",
                    netns=host.ns,
                    initial_cluster=initial,
                    cluster_token=f"etcdhcp-ha-{lab.id}",
                )
            )

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    def start(self, *indexes: int, timeout: float = 60.0) -> None:
        """Start members together (none is healthy before a quorum runs), wait for health."""
        chosen = [self.members[i] for i in indexes or range(len(self.members))]
        for member in chosen:
            member.start(wait=False)
        for member in chosen:
            member.wait_healthy(timeout)

    def kill(self, index: int) -> None:
        """SIGKILL one member, as a crash would."""
        member = self.members[index]
        if member.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member.pid, signal.SIGKILL)
        member.stop()

    def pause(self, index: int) -> None:
        """SIGSTOP one member: its connections stay open and nothing answers (a blackhole)."""
        assert self.members[index].pid is not None
        os.kill(self.members[index].pid, signal.SIGSTOP)

    def resume(self, index: int) -> None:
        assert self.members[index].pid is not None
        os.kill(self.members[index].pid, signal.SIGCONT)

    def stop(self, *indexes: int) -> None:
        """Stop members cleanly (SIGTERM)."""
        for i in indexes:
            self.members[i].stop()

    def close(self) -> None:
        for member in self.members:
            member.stop()

    def etcdctl(self, *args: str) -> str:
        """etcdctl against every member, run from a member namespace."""
        out = self.lab.run(
            self.hosts[0].ns,
            ["etcdctl", "--endpoints", ",".join(self.endpoints), "--command-timeout=5s", *args],
            env=_etcdctl_env(),
            check=True,
            timeout=20,
        )
        return out.stdout

    def read(self, prefix: str) -> dict[str, str]:
        """Every key under `prefix`, without the prefix."""
        lines = self.etcdctl("get", "--prefix", prefix).splitlines()
        return {k[len(prefix) :]: v for k, v in zip(lines[0::2], lines[1::2], strict=True)}


class DnsServer:
    """dnsmasq answering the SRV records that name the cluster's members."""

    def __init__(self, lab: Lab, order: Sequence[int]) -> None:
        """`order`: member indexes, best (lowest SRV priority) first."""
        self.host = lab.add_client("dns", address=f"{DNS_IP}/{PREFIXLEN}")
        records = []
        for priority, i in enumerate(order):
            target = f"m{i}.etcd.lab.test"
            records += [
                f"--srv-host={SRV_NAME},{target},2379,{priority},10",
                f"--host-record={target},{MEMBER_IPS[i]}",
            ]
        self.log_path = lab.workdir / "dnsmasq.log"
        argv = [
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", "--bind-interfaces", f"--listen-address={DNS_IP}",
            "--user=root", "--pid-file", "--log-queries", "--log-facility=-", *records,
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.proc = self.host.popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def queries(self) -> int:
        """SRV look-ups of SRV_NAME answered so far (dnsmasq --log-queries)."""
        log = self.log_path.read_text(errors="replace")
        return log.count(f"query[SRV] {SRV_NAME}")

    def use_from(self, host: Client) -> None:
        """Make `host` resolve names through this server (ip netns exec bind-mounts it)."""
        Path(f"/etc/netns/{host.ns}/resolv.conf").write_text(f"nameserver {DNS_IP}\n")


class ClusterServer(EtcdhcpProcess):
    """One etcdhcp in its own namespace on the cluster's bridge; admin reached from inside."""

    def __init__(
        self,
        lab: Lab,
        index: int,
        etcd_flags: Sequence[str],
        *,
        prefix: str,
        lease: str = "1h",
        pool: tuple[str, str] | None = POOL,
        extra: Sequence[str] = (),
    ) -> None:
        """`pool` None gives no range flags: the server serves etcd's scopes."""
        self.lab = lab
        self.ip = SERVER_IPS[index]
        self.host = lab.add_client(f"dhcp{index}", address=f"{self.ip}/{PREFIXLEN}")
        self.prefix = prefix
        self.python = sys.executable
        self.env: dict[str, str] = {}
        self.admin = f"http://{self.ip}:{ADMIN_PORT}"
        self.log_path = lab.workdir / f"etcdhcp-{index}.log"
        self.argv = [
            self.python, "-m", "etcdhcp", "--config=",
            "-dhcp.server-if", "eth0",
            "-dhcp.server-ip", self.ip,
            "-dhcp.subnet-mask", NETMASK,
            "-dhcp.router", self.ip,
            "-dhcp.dns", self.ip,
            *(["-dhcp.issue-from", pool[0], "-dhcp.issue-to", pool[1]] if pool else []),
            "-dhcp.lease", lease,
            *etcd_flags,
            "-etcd.prefix", prefix,
            "-admin-addr", f"{self.ip}:{ADMIN_PORT}",
            *extra,
        ]  # fmt: skip
        self.proc: subprocess.Popen[Any] | None = None

    def launch(self) -> None:
        """Start the process without waiting (start several, then `wait_ready` each)."""
        with open(self.log_path, "ab") as log:
            env = {"PYTHONPATH": SRC, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **self.env}
            self.proc = self.host.popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"etcdhcp {self.ip} exited:\n{self.log()[-3000:]}")
            if self.ready():
                return
            time.sleep(0.3)
        raise RuntimeError(f"etcdhcp {self.ip} not ready after {timeout}s:\n{self.log()[-3000:]}")

    def start(self, timeout: float = 60.0) -> ClusterServer:
        self.launch()
        self.wait_ready(timeout)
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def get(self, path: str) -> tuple[int, str]:
        """(HTTP status, body) of a GET on the admin server; status 0 if unreachable."""
        out = self.host.run([self.python, "-c", _HTTP_GET, self.admin + path], timeout=15)
        status, _, body = out.stdout.partition(" ")
        return int(status or 0), body.strip()

    def readyz(self) -> tuple[int, str]:
        return self.get("/readyz")

    def ready(self) -> bool:
        return self.readyz()[0] == 200

    def metrics(self) -> str:
        status, body = self.get("/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics of {self.ip}: {status} {body}")
        return body

    def current_endpoint(self) -> str:
        """The etcd endpoint this server sends requests to first (etcdhcp_etcd_endpoint)."""
        for line in self.metrics().splitlines():
            if line.startswith("etcdhcp_etcd_endpoint{") and line.endswith(" 1.0"):
                return line.split('"')[1]
        raise AssertionError(f"{self.ip} reports no current etcd endpoint")


class RelayLoad:
    """relayclient.py in its own namespace: many clients through one relay agent."""

    def __init__(self, lab: Lab) -> None:
        self.host = lab.add_client("relay", address=f"{RELAY_IP}/{PREFIXLEN}")
        self.out = lab.workdir / "relay-events.jsonl"
        self.stop_file = lab.workdir / "relay.stop"
        self.log_path = lab.workdir / "relay.log"
        self.proc: subprocess.Popen[Any] | None = None

    def start(self, servers: Sequence[str], macs: int, rate: float, duration: float) -> None:
        argv = [
            sys.executable, RELAYCLIENT, "--giaddr", RELAY_IP, "--servers", ",".join(servers),
            "--macs", str(macs), "--rate", str(rate), "--duration", str(duration),
            "--out", str(self.out), "--stop-file", str(self.stop_file),
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.proc = self.host.popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def stop(self, timeout: float = 15.0) -> int | None:
        self.stop_file.touch()
        assert self.proc is not None
        return self.proc.wait(timeout)

    def events(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        lines = self.out.read_text().splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]
