"""Active-active under faults: 3 etcdhcp servers, a 3-member etcd cluster, 240 clients.

One lab, one run, in turn: a server is killed with SIGKILL mid-load; the etcd member a
server talks to is killed; the member another server talks to hangs (SIGSTOP); two of
three members stop (quorum lost) and come back; all servers restart. The clients sit
behind a relay agent that sends every DISCOVER and REQUEST to all three servers
(relayclient.py) and records every answer; two real udhcpc clients broadcast theirs.
After each phase, from those answers and from etcd: no address was ever leased to two
MACs; every ACKed lease is in etcd with a consistent ips::leased / nics::leased pair;
the servers serve again. The time from each fault to the first ACK after it is
printed (pytest -s shows it).

Server 0 and 1 get the members as --etcd.discovery.endpoints (in different orders);
server 2 finds them through --etcd.discovery.srv, answered by dnsmasq in the lab.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from waiting import wait_until

from .cluster import (
    SERVER_IPS,
    SRV_NAME,
    ClusterServer,
    DnsServer,
    EtcdCluster,
    RelayLoad,
)
from .lab import Lab

PREFIX = "etcdhcp::"
CLIENTS = 240
RATE = 40  # exchanges per second, all clients together
LOAD_BOUND = 400  # seconds: the load stops by itself even if the test hangs


@dataclass
class HaLab:
    lab: Lab
    cluster: EtcdCluster
    servers: list[ClusterServer]
    load: RelayLoad
    dns: DnsServer
    real: dict[str, str] = field(default_factory=dict)  # real clients' leases: mac -> ip

    def acks(self, since: float = 0.0) -> list[dict[str, Any]]:
        return [e for e in self.load.events() if e["result"] == "ack" and e["t"] > since]

    def first_ack_after(self, t0: float, server: str | None = None, timeout: float = 60) -> float:
        """Seconds from t0 to the first ACK after it (from `server`, if given)."""

        def found() -> float | None:
            for event in self.acks(t0):
                if server is None or event["server"] == server:
                    return event["t"] - t0
            return None

        return wait_until(found, timeout, f"an ACK after the fault from {server or 'anyone'}")

    def registered(self) -> list[str]:
        return sorted(k.split("::")[-1] for k in self.cluster.read(f"{PREFIX}servers::"))

    def check(self, phase: str) -> None:
        """The invariants, from the clients' ACKs and from etcd."""
        events = self.load.events()
        acks = [e for e in events if e["result"] == "ack"]
        holders: dict[str, set[str]] = defaultdict(set)
        addresses: dict[str, set[str]] = defaultdict(set)
        for ack in acks:
            holders[ack["ip"]].add(ack["mac"])
            addresses[ack["mac"]].add(ack["ip"])
        # Leases last an hour and nothing is released: an address has one holder for good.
        shared = {ip: macs for ip, macs in holders.items() if len(macs) > 1}
        assert not shared, f"{phase}: addresses ACKed to two MACs: {shared}"
        moved = {mac: ips for mac, ips in addresses.items() if len(ips) > 1}
        assert not moved, f"{phase}: MACs ACKed two addresses: {moved}"
        naks = [e for e in events if e["result"] == "nak"]
        assert not naks, f"{phase}: NAKs: {naks[:5]}"
        split = [e for e in events if len(set(e.get("offers", {}).values())) > 1]
        assert not split, f"{phase}: servers offered different addresses: {split[:5]}"

        keys = self.cluster.read(PREFIX)
        leased = {k.split("::")[-1]: v for k, v in keys.items() if k.startswith("ips::leased::")}
        nics = {k.split("::")[-1]: v for k, v in keys.items() if k.startswith("nics::leased::")}
        assert {mac: ip for ip, mac in leased.items()} == nics, f"{phase}: pairs inconsistent"
        for ip, mac in leased.items():
            assert json.loads(keys[f"leases::{ip}"])["mac"] == mac, f"{phase}: record of {ip}"
            assert f"ips::free::{ip}" not in keys, f"{phase}: {ip} leased and free"
        acked = {mac: ip for mac, (ip,) in addresses.items()} | self.real
        lost = {mac: ip for mac, ip in acked.items() if nics.get(mac) != ip}
        assert not lost, f"{phase}: ACKed leases missing from etcd: {lost}"
        print(f"[{phase}] {len(acks)} ACKs to {len(addresses)} MACs so far, all in etcd")


@pytest.fixture
def ha(lab: Lab) -> Iterator[HaLab]:
    cluster = EtcdCluster(lab)
    dns = DnsServer(lab, order=(2, 0, 1))
    cluster.start()
    flags = [
        ["-etcd.discovery.endpoints", ",".join(cluster.endpoints)],
        ["-etcd.discovery.endpoints", ",".join(cluster.endpoints[1:] + cluster.endpoints[:1])],
        ["-etcd.discovery.srv", SRV_NAME],
    ]
    servers = [ClusterServer(lab, i, f, prefix=PREFIX) for i, f in enumerate(flags)]
    dns.use_from(servers[2].host)
    load = RelayLoad(lab)
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
        yield HaLab(lab, cluster, servers, load, dns)
        if load.proc is not None and load.proc.poll() is None:
            load.stop()
        for server in servers:
            assert server.stop() == 0, f"{server.ip} did not exit cleanly:\n{server.log()[-3000:]}"
            assert "Traceback" not in server.log(), server.log()
    finally:
        cluster.close()


def test_three_servers_share_one_pool_through_faults(ha: HaLab) -> None:
    a, b, c = ha.servers
    srv = ", ".join(f"http://m{i}.etcd.lab.test:2379" for i in (2, 0, 1))  # by priority
    assert f"SRV {SRV_NAME} names etcd at {srv}" in c.log()
    assert c.current_endpoint().endswith(".etcd.lab.test:2379")  # gRPC resolved the name
    assert ha.registered() == sorted(SERVER_IPS)
    for server in ha.servers:  # the gauge follows at the registry's next keepalive
        wait_until(lambda s=server: s.metric("etcdhcp_servers_live") == 3, 10, "3 servers live")

    ha.load.start(SERVER_IPS, macs=CLIENTS, rate=RATE, duration=LOAD_BOUND)
    wait_until(lambda: len({e["mac"] for e in ha.acks()}) >= 150, 60, "150 clients bound")
    # Real clients on the bridge: their broadcast DISCOVER reaches all three servers,
    # which offer the one shared address; the server they pick commits it.
    for k in range(2):
        client = ha.lab.add_client(f"real{k}")
        ip = client.udhcpc()
        assert ip is not None, client.last_output
        assert client.udhcpc_env["serverid"] in SERVER_IPS
        ha.real[client.mac] = ip
    ha.check("warm-up")
    times: dict[str, float] = {}

    # 1. A server dies mid-load: the others keep serving; its registration vanishes.
    t0 = time.time()
    b.kill()
    times["server SIGKILL -> first ACK"] = ha.first_ack_after(t0)
    wait_until(lambda: b.ip not in ha.registered(), 25, "the dead server's registry key to expire")
    times["server SIGKILL -> registry key gone"] = time.time() - t0
    ha.check("server killed")
    t0 = time.time()
    b.start()
    times["server restarted -> first ACK from it"] = ha.first_ack_after(t0, b.ip)
    assert ha.registered() == sorted(SERVER_IPS)

    # 2. The member server 0 talks to dies: it moves to another member and serves on.
    endpoint = a.current_endpoint()
    member = ha.cluster.endpoints.index(endpoint)
    t0 = time.time()
    ha.cluster.kill(member)
    times["member SIGKILL -> first ACK"] = ha.first_ack_after(t0)
    times["member SIGKILL -> first ACK from the server on it"] = ha.first_ack_after(t0, a.ip)
    wait_until(lambda: a.current_endpoint() != endpoint, 15, "server 0 to leave the dead member")
    ha.check("member killed")
    ha.cluster.start(member)  # it rejoins with its data directory
    ha.check("member back")

    # 2b. The member server 1 talks to hangs (SIGSTOP): connections stay open and nothing
    # answers. Its requests time out there and it moves on within seconds.
    endpoint = b.current_endpoint()
    hung = ha.cluster.endpoints.index(endpoint)
    t0 = time.time()
    ha.cluster.pause(hung)
    try:
        times["member hangs -> first ACK from the server on it"] = ha.first_ack_after(t0, b.ip)
        wait_until(lambda: b.current_endpoint() != endpoint, 15, "server 1 to move away")
    finally:
        ha.cluster.resume(hung)
    ha.check("hung member back")

    # 3. Quorum lost: nobody hands out or extends anything; readyz says why; it resumes.
    others = [i for i in range(3) if i != member]
    logged = [len(s.log()) for s in ha.servers]
    unavailable = "etcdhcp_packets_dropped_total", {"reason": "etcd_unavailable"}
    dropped = [s.metric(unavailable[0], **unavailable[1]) for s in ha.servers]
    lookups = ha.dns.queries()
    ha.cluster.stop(*others)
    t0 = time.time()
    for server in ha.servers:
        _status, why = wait_until(lambda s=server: _not_ready(s), 20, f"{server.ip} not ready")
        assert "etcd unavailable" in why, why
    time.sleep(3)
    t_back = time.time()
    late = ha.acks(t0 + 1.0)  # an ACK needs a committed write; none can commit now
    assert not late, f"ACKs without quorum: {late[:5]}"
    for i, server in enumerate(ha.servers):
        assert server.metric("etcdhcp_etcd_up") == 0
        dropped[i] = server.metric(unavailable[0], **unavailable[1]) - dropped[i]
    ha.cluster.start(*others)
    times["quorum back -> first ACK"] = ha.first_ack_after(t_back)
    times["quorum lost -> first ACK (outage)"] = ha.first_ack_after(t0)
    for server, offset, drops in zip(ha.servers, logged, dropped, strict=True):
        wait_until(server.ready, 30, f"{server.ip} ready again")
        # One line when etcd becomes unavailable (again, if it flaps while the members
        # come back), never one per dropped packet.
        lines = [ln for ln in server.log()[offset:].splitlines() if "etcd unavailable (" in ln]
        print(f"{server.ip}: {drops:.0f} requests dropped, {len(lines)} 'etcd unavailable' lines")
        assert 1 <= len(lines) <= 10, lines
        assert drops >= 3 * len(lines), (drops, lines)
    assert ha.dns.queries() > lookups  # server 2 looked the SRV name up again
    ha.check("quorum back")

    # 4. Every server restarts: clean stops unregister; leases and service come back.
    for server in ha.servers:
        assert server.stop() == 0
    t0 = time.time()
    assert ha.registered() == []
    for server in ha.servers:
        server.launch()
    for server in ha.servers:
        server.wait_ready()
    times["all servers down, restarted -> first ACK"] = ha.first_ack_after(t0)
    for server in ha.servers:  # each one serves: renewals go back to their granting server
        wait_until(
            lambda s=server: s.metric("etcdhcp_replies_sent_total", type="ack") > 0,
            30,
            f"an ACK from {server.ip}",
        )
    assert ha.registered() == sorted(SERVER_IPS)

    assert ha.load.stop() == 0, ha.load.log_path.read_text()
    ha.check("end")
    bound = {e["mac"] for e in ha.acks()}
    assert len(bound) >= 200, f"only {len(bound)} distinct clients were served"
    print("\nrecovery times (s):")
    for what, seconds in times.items():
        print(f"  {what:55s} {seconds:6.2f}")


def _not_ready(server: ClusterServer) -> tuple[int, str] | None:
    status, body = server.readyz()
    return (status, body) if status == 503 else None
