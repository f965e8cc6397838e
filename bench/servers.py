"""The servers under test, behind one interface: start, stop, process IDs, NAK count.

* ``EtcdhcpServer``: the venv's ``python -m etcdhcp -v=0`` on one bench host, its
  lease state in the bench etcd (the backend).
* ``KeaServer``: Debian's ``kea-dhcp4`` on br0 with a memfile or PostgreSQL lease
  database (the backend), single- or multi-threaded.

Both serve the same relayed subnet: 198.18.0.0/16, one pool (``Pool``), 1 h leases.
"""

from __future__ import annotations

import ipaddress
import json
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tests.integration.lab import LabError

from bench.netlab import ETCD_URL, BenchLab, Host, popen_logged
from bench.postgres import DATABASE, KEA_PASSWORD, KEA_USER, PostgresCluster

REPO = Path(__file__).resolve().parents[1]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
# What the .deb runs on: Debian's python3 with python3-grpcio, -etcd3, -protobuf.
DEBIAN_PYTHON = Path("/usr/bin/python3")
SUBNET = ipaddress.IPv4Network("198.18.0.0/16")
LEASE_SECONDS = 3600
ADMIN_PORT = 9842
_POOL_PASS = re.compile(r"pool pass: .*\((\d+\.\d+)s\)")


@dataclass(frozen=True)
class Pool:
    """The addresses handed out: ``size`` consecutive addresses from ``first``."""

    first: str
    size: int

    @property
    def last(self) -> str:
        return str(ipaddress.IPv4Address(self.first) + self.size - 1)


# 198.18.16.1-198.18.31.254: the hosts of a /20. 198.18.0.10-198.18.255.254: a /16 less
# the server (.1), the relays (.2-.4) and the extra servers (.5, .6).
SMALL_POOL = Pool("198.18.16.1", 4094)
LARGE_POOL = Pool("198.18.0.10", 65525)


class Server(Protocol):
    name: str
    label: str
    host: Host

    def start(self) -> float:
        """Start and wait until it serves; returns the seconds that took."""
        ...

    def stop(self) -> None: ...

    def reset(self) -> None:
        """Empty its lease database (while stopped)."""
        ...

    @property
    def server_pids(self) -> list[int]: ...

    @property
    def backend_pids(self) -> list[int]: ...

    def naks(self) -> int:
        """DHCPNAKs sent since it started, by the server's own count."""
        ...


def terminate(proc: subprocess.Popen | None, name: str, log: Path, grace: float = 30.0) -> None:
    """SIGTERM a server and wait for its exit (SIGKILL after ``grace``). A server that
    already exited by itself crashed during the run: LabError with its log."""
    if proc is None:
        return
    if proc.poll() is not None:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise LabError(f"{name} exited by itself (status {proc.returncode}):\n{tail}")
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class EtcdhcpServer:
    """etcdhcp on ``host``, sharing the bench etcd (and its pool) with any other instance.
    ``pool`` None: no range flags, so it serves the scopes it finds in etcd."""

    def __init__(
        self,
        bench: BenchLab,
        host: Host,
        pool: Pool | None,
        *,
        name: str = "etcdhcp",
        label: str = "etcdhcp + etcd",
        extra_flags: tuple[str, ...] = (),
        python: Path = VENV_PYTHON,
    ) -> None:
        self.label = label
        self.bench = bench
        self.host = host
        self.pool = pool
        self.name = name
        self.admin = f"http://{host.admin_host}:{ADMIN_PORT}"
        self.log = bench.workdir / f"{name}.log"
        self.argv = [
            str(python), "-m", "etcdhcp", "--config=",
            "-dhcp.server-if", host.interface,
            "-dhcp.server-ip", host.ip,
            "-dhcp.subnet-mask", str(SUBNET.netmask),
            "-dhcp.router", host.ip,
            "-dhcp.dns", host.ip,
            *(("-dhcp.issue-from", pool.first, "-dhcp.issue-to", pool.last) if pool else ()),
            "-dhcp.lease", f"{LEASE_SECONDS}s",
            "-etcd.discovery.endpoints", ETCD_URL,
            "-admin-addr", f"{host.admin_host}:{ADMIN_PORT}",
            "-v=0",
            *extra_flags,
        ]  # fmt: skip
        self.proc: subprocess.Popen | None = None
        self.pool_pass_seconds: float | None = None

    @property
    def server_pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid]

    @property
    def backend_pids(self) -> list[int]:
        pid = self.bench.etcd.pid
        return [pid] if pid else []

    def start(self, timeout: float = 600.0) -> float:
        """Start it and wait for /readyz 200; returns the seconds that took."""
        self.log.write_text("")
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO / "src")}
        started = time.monotonic()
        self.proc = popen_logged(self.bench.lab, self.host.ns, self.argv, self.log, env=env)
        while self.bench.fetch(self.host, f"{self.admin}/readyz")[0] != 200:
            if self.proc.poll() is not None or time.monotonic() - started > timeout:
                raise LabError(f"{self.name} did not become ready:\n{self.tail()}")
            time.sleep(0.05)
        ready = time.monotonic() - started
        match = _POOL_PASS.search(self.log.read_text(errors="replace"))
        self.pool_pass_seconds = float(match.group(1)) if match else None
        return ready

    def naks(self) -> int:
        _, body = self.bench.fetch(self.host, f"{self.admin}/metrics")
        match = re.search(r'^etcdhcp_replies_sent_total\{type="nak"\} (\S+)$', body, re.M)
        return int(float(match.group(1))) if match else 0

    def stage_totals(self) -> dict[str, list[float]]:
        """`stage_totals` of the server's /metrics now."""
        _, body = self.bench.fetch(self.host, f"{self.admin}/metrics")
        return stage_totals(body)

    def reset(self) -> None:
        self.bench.reset_etcd()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        terminate(proc, self.name, self.log)


_STAGE = re.compile(
    r"^(etcdhcp_(?:queue_wait_seconds|request_duration_seconds|etcd_request_duration_seconds"
    r"|etcd_batch_size))_(sum|count)(\{[^}]*\})? (\S+)$",
    re.M,
)


def stage_totals(metrics: str) -> dict[str, list[float]]:
    """[sum, count] of each series of the histograms that split a request's time:
    queue wait, handling by type, etcd round trip by operation, group-commit batch."""
    totals: dict[str, list[float]] = {}
    for name, part, labels, value in _STAGE.findall(metrics):
        totals.setdefault(name + labels, [0.0, 0.0])[1 if part == "count" else 0] = float(value)
    return totals


class KeaServer:
    """kea-dhcp4 in the server namespace; ``postgres`` None means a memfile database."""

    def __init__(
        self,
        bench: BenchLab,
        name: str,
        label: str,
        pool: Pool,
        *,
        postgres: PostgresCluster | None = None,
        threads: int = 0,
    ) -> None:
        self.bench = bench
        self.name = name
        self.label = label
        self.pool = pool
        self.postgres = postgres
        self.threads = threads
        self.host = bench.host(0)
        self.dir = bench.workdir / name
        self.dir.mkdir(exist_ok=True)
        self.control = self.dir / "kea.sock"
        self.leases = self.dir / "leases4.csv"
        self.log = self.dir / "kea.out"
        self.proc: subprocess.Popen | None = None

    def config(self) -> dict:
        if self.postgres is None:
            database = {"type": "memfile", "persist": True, "name": str(self.leases)}
            database["lfc-interval"] = 0  # no lease file cleanup during the run
        else:
            database = {
                "type": "postgresql",
                "host": self.postgres.socket_dir,
                "name": DATABASE,
                "user": KEA_USER,
                "password": KEA_PASSWORD,
            }
        threading = {"enable-multi-threading": self.threads > 0}
        if self.threads:
            threading |= {"thread-pool-size": self.threads, "packet-queue-size": 64}
        return {
            "Dhcp4": {
                "interfaces-config": {
                    "interfaces": [self.host.interface],
                    "dhcp-socket-type": "udp",  # relayed traffic only
                },
                "control-socket": {"socket-type": "unix", "socket-name": str(self.control)},
                "lease-database": database,
                "multi-threading": threading,
                "valid-lifetime": LEASE_SECONDS,
                "subnet4": [
                    {
                        "id": 1,
                        "subnet": str(SUBNET),
                        "pools": [{"pool": f"{self.pool.first} - {self.pool.last}"}],
                        "option-data": [
                            {"name": "routers", "data": self.host.ip},
                            {"name": "domain-name-servers", "data": self.host.ip},
                        ],
                    }
                ],
                "loggers": [
                    {
                        "name": "kea-dhcp4",
                        "output_options": [{"output": str(self.dir / "kea.log")}],
                        "severity": "WARN",
                    }
                ],
            }
        }

    @property
    def server_pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid]

    @property
    def backend_pids(self) -> list[int]:
        return [self.postgres.pid] if self.postgres else []

    def start(self, timeout: float = 60.0) -> float:
        """Start kea-dhcp4 and wait until its DHCP socket is bound; returns the seconds."""
        conf = self.dir / "kea-dhcp4.json"
        conf.write_text(json.dumps(self.config(), indent=2))
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "KEA_PIDFILE_DIR": str(self.dir),
            "KEA_LOCKFILE_DIR": str(self.dir),
        }
        log = self.log
        started = time.monotonic()
        self.proc = popen_logged(
            self.bench.lab, self.host.ns, ["kea-dhcp4", "-c", str(conf)], log, env=env
        )
        while not self.bench.udp_port_bound(self.host.ns, 67):
            if self.proc.poll() is not None or time.monotonic() - started > timeout:
                raise LabError(f"{self.name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        return time.monotonic() - started

    def naks(self) -> int:
        """Kea's own counter of DHCPNAKs sent (statistic pkt4-nak-sent)."""
        command = {"command": "statistic-get", "arguments": {"name": "pkt4-nak-sent"}}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.control))
            s.sendall(json.dumps(command).encode())
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        samples = json.loads(answer)["arguments"].get("pkt4-nak-sent") or [[0]]
        return int(samples[0][0])

    def reset(self) -> None:
        """Forget every lease (between runs, with Kea stopped)."""
        if self.postgres is not None:
            self.postgres.reset()
        self.leases.unlink(missing_ok=True)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        terminate(proc, self.name, self.log)
