"""Expired addresses come back within seconds: real clients vanish, new ones get them.

Two etcdhcp servers share a one-member etcd on the lab bridge (cluster.py) and serve a
pool of 4 addresses with 20 s leases. Four udhcpc clients fill the pool through the
first server; then the clients and that server are killed (SIGKILL: no RELEASE, nobody
left who granted the leases). Four new udhcpc clients keep asking, and the second
server must give them the addresses within 10 s of the old leases' absolute expiry,
and never before expiry + LeaseStore.expiry_skew. The delays are printed (pytest -s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from etcdhcp.store import LeaseStore
from waiting import wait_until

from .cluster import ClusterServer, EtcdCluster
from .lab import CLIENT_IF, Lab

PREFIX = "etcdhcp::"
POOL = ("198.18.1.0", "198.18.1.3")
ADDRESSES = 4
LEASE = 20.0  # seconds
TARGET = 10.0  # seconds after the absolute expiry
TRIES = 60  # DISCOVERs one second apart: the new clients wait out the old leases


def start_udhcpc(lab: Lab, name: str, once: bool) -> tuple[subprocess.Popen[Any], Path]:
    """udhcpc on a new client host, in the foreground; `once`: quit when bound (-q -n).

    Returns the process and the file its event script rewrites at each event: after
    "bound", its modification time is when the client got its address.
    """
    client = lab.add_client(name)
    env_file = client.dir / "udhcpc.env"
    argv = ["udhcpc", "-i", CLIENT_IF, "-f", "-T", "1", "-s", str(lab.udhcpc_script)]
    argv += ["-q", "-n", "-t", str(TRIES)] if once else ["-t", "5"]
    log = open(client.dir / "udhcpc.log", "ab")  # noqa: SIM115 - the child owns it
    proc = client.popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ETCDHCP_LAB_ENV": str(env_file)},
    )
    log.close()
    return proc, env_file


def event(env_file: Path) -> dict[str, str]:
    """The variables of the client's last script event (empty before the first)."""
    if not env_file.exists():
        return {}
    lines = env_file.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def reclaimed(server: ClusterServer) -> float:
    for line in server.metrics().splitlines():
        if line.startswith('etcdhcp_leases_total{event="expired_reclaimed"} '):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_expired_addresses_reach_new_clients_within_10s(lab: Lab) -> None:
    cluster = EtcdCluster(lab, size=1)
    cluster.start()
    flags = ["-etcd.discovery.endpoints", cluster.endpoints[0]]
    granting = ClusterServer(lab, 0, flags, prefix=PREFIX, lease=f"{LEASE:g}s", pool=POOL)
    granting.start()

    old = [start_udhcpc(lab, f"old{i}", once=False) for i in range(ADDRESSES)]
    wait_until(
        lambda: all(event(f).get("event") == "bound" for _, f in old), 30, "4 old clients bound"
    )
    other = ClusterServer(lab, 1, flags, prefix=PREFIX, lease=f"{LEASE:g}s", pool=POOL)
    other.start()
    for proc, _ in old:  # the clients vanish without a RELEASE, and so does their server
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    granting.kill()

    records = {ip: json.loads(raw) for ip, raw in cluster.read(f"{PREFIX}leases::").items()}
    assert len(records) == ADDRESSES
    assert {r["server"] for r in records.values()} == {granting.ip}
    expires = {ip: float(r["expires"]) for ip, r in records.items()}
    assert min(expires.values()) > time.time()  # the new clients ask before the old leases end

    new = [start_udhcpc(lab, f"new{i}", once=True) for i in range(ADDRESSES)]
    for proc, _ in new:
        assert proc.wait(TRIES + 15) == 0, "a new client got no address"
    bound = {event(f)["ip"]: f.stat().st_mtime for _, f in new}
    assert sorted(bound) == sorted(expires)
    delays = {ip: round(bound[ip] - expires[ip], 2) for ip in sorted(bound)}
    print(f"seconds from an old lease's expiry to a new client bound: {delays}")
    assert all(LeaseStore.expiry_skew <= d <= TARGET for d in delays.values()), delays
    assert reclaimed(other) == ADDRESSES
