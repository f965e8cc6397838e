"""The namespace lab itself: wiring, reachability, client helpers, and a clean teardown.

If these fail, end-to-end DHCP failures say nothing about etcdhcp.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .lab import OWNER_DIR, Lab, LabError, free_port, iter_lab_leftovers

pytestmark = pytest.mark.netns


def _etcdctl(lab: Lab, ns: str, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.run(
        ns,
        ["etcdctl", "--endpoints", endpoint, "--dial-timeout", "2s", "--command-timeout=3s", *args],
        env={**os.environ, "ETCDCTL_API": "3"},
        timeout=20,
    )


def test_clients_reach_each_other_and_the_server_through_br0(lab: Lab) -> None:
    a = lab.add_client(name="alpha", address="198.18.0.2/24")
    b = lab.add_client(name="beta", mac="02:00:5e:10:00:0b", address="198.18.0.3/24")
    assert b.mac == "02:00:5e:10:00:0b"
    assert a.address() == "198.18.0.2" and b.addresses() == ["198.18.0.3/24"]
    assert a.ping("198.18.0.3")
    assert b.ping("198.18.0.2")
    assert lab.ping(lab.server_ns, "198.18.0.2")
    assert lab.ping(lab.server_ns, "198.18.0.3")
    assert a.ping(lab.server_ip)
    # Client commands run with the client's own hostname and resolv.conf.
    assert a.run(["hostname"]).stdout.strip() == "alpha"
    assert "alpha" in a.run(["cat", "/etc/resolv.conf"]).stdout
    assert Path(f"/etc/netns/{a.ns}/resolv.conf").exists()
    # Nothing in the lab touches the host's own resolv.conf or hostname.
    assert "etcdhcp lab" not in Path("/etc/resolv.conf").read_text()


def test_ipv6_is_off_in_every_lab_namespace(lab: Lab) -> None:
    c = lab.add_client()
    for ns in lab.namespaces:
        out = lab.run(ns, ["sysctl", "-n", "net.ipv6.conf.all.disable_ipv6"], check=True)
        assert out.stdout.strip() == "1", ns
        out = lab.run(ns, ["sysctl", "-n", "net.ipv6.conf.default.disable_ipv6"], check=True)
        assert out.stdout.strip() == "1", ns
    assert "inet6" not in c.run(["ip", "addr", "show", "dev", "eth0"], check=True).stdout


def test_host_reaches_the_server_namespace_over_the_uplink(lab: Lab) -> None:
    n = lab.uplink_n
    assert 0 <= n <= 255
    assert lab.uplink_host_ip == f"198.19.{n}.1" and lab.uplink_server_ip == f"198.19.{n}.2"
    assert len(lab.host_if) <= 15
    assert lab.ping(None, lab.uplink_server_ip)
    assert lab.ping(lab.server_ns, lab.uplink_host_ip)
    # TCP too, as the tests will reach the daemon's admin port: an HTTP server in the
    # server namespace, fetched from the host.
    port = 18067
    docroot = lab.workdir / "www"
    docroot.mkdir()
    (docroot / "probe").write_text("from the server namespace")
    bind = ["--bind", lab.uplink_server_ip, str(port)]
    server = lab.popen(
        lab.server_ns,
        [sys.executable, "-m", "http.server", "--directory", str(docroot), *bind],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://{lab.uplink_server_ip}:{port}/probe"
    body = ""
    deadline = time.monotonic() + 10
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                body = resp.read().decode()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert body == "from the server namespace"


def test_lab_etcd_is_reachable_from_the_server_namespace_only(lab: Lab) -> None:
    etcd = lab.etcd()
    url = ipaddress.ip_address(etcd.client_url.split("//")[1].rsplit(":", 1)[0])
    assert str(url) == lab.uplink_host_ip
    put = _etcdctl(lab, lab.server_ns, etcd.client_url, "put", "lab/key", "hello")
    assert put.returncode == 0, put.stderr
    got = _etcdctl(lab, lab.server_ns, etcd.client_url, "get", "lab/key", "--print-value-only")
    assert got.stdout.strip() == "hello"
    # The test process (host namespace) sees the same data.
    host = _etcdctl(lab, None, etcd.client_url, "get", "lab/key", "--print-value-only")
    assert host.stdout.strip() == "hello"
    # Clients have no route to the uplink: etcd is not exposed to the DHCP side.
    client = lab.add_client()
    started = time.monotonic()
    denied = _etcdctl(lab, client.ns, etcd.client_url, "get", "lab/key")
    assert denied.returncode != 0
    assert time.monotonic() - started < 15


def test_client_helpers_give_up_within_their_timeouts_without_a_server(lab: Lab) -> None:
    c = lab.add_client()
    for name, call, limit in [
        ("udhcpc", lambda: c.udhcpc(tries=2, interval=1), 2 * 1 + 4),
        ("dhclient", lambda: c.dhclient(timeout=3), 3 + 5),
        ("dhcpcd", lambda: c.dhcpcd(timeout=3), 3 + 5),
    ]:
        started = time.monotonic()
        assert call() is None, f"{name} got a lease from nobody:\n{c.last_output}"
        elapsed = time.monotonic() - started
        assert elapsed < limit, f"{name} took {elapsed:.1f}s:\n{c.last_output}"
        assert c.address() is None
    assert "timed out" in c.last_output  # dhcpcd's own -t, not our safety net
    left = {pid: _cmdline(pid) for pid in lab.pids()}
    assert not any(left.values()), left  # nothing lingers after a failed attempt


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_client_helpers_get_leases_from_a_reference_server(lab: Lab) -> None:
    lab.udhcpd(start="198.18.0.100", end="198.18.0.150", lease=600)
    pool = [ipaddress.ip_address(f"198.18.0.{i}") for i in range(100, 151)]
    c = lab.add_client(mac="02:00:5e:10:00:0c")

    addr = c.udhcpc()
    assert addr and ipaddress.ip_address(addr) in pool, c.last_output
    assert c.udhcpc_env["serverid"] == lab.server_ip
    assert c.udhcpc_env["lease"] == "600"
    assert c.udhcpc_env["event"] == "bound"

    c.flush()
    addr = c.dhclient(timeout=10)
    assert addr and ipaddress.ip_address(addr) in pool, c.last_output
    daemon = int((c.dir / "dhclient.pid").read_text())
    assert daemon in lab.pids()  # dhclient stays to renew...
    assert c.dhclient_release() == 0
    assert "DHCPRELEASE" in c.last_output
    assert c.address() is None  # ...until -r releases and stops it
    assert daemon not in lab.pids()

    c.flush()
    addr = c.dhcpcd(timeout=15, noarp=True)
    assert addr and ipaddress.ip_address(addr) in pool, c.last_output
    # dhcpcd's state stays in the client's own directory, not the host's /var/lib/dhcpcd
    # (which other runs' clients may share: compare MACs, not existence).
    mac = bytes.fromhex(c.mac.replace(":", ""))
    assert _lease_chaddr(c.dir / "dhcpcd-lib" / "eth0.lease") == mac
    assert _lease_chaddr(Path("/var/lib/dhcpcd/eth0.lease")) != mac


def _lease_chaddr(path: Path) -> bytes | None:
    """chaddr of the DHCP message dhcpcd stores as its lease file (None: no file)."""
    try:
        return path.read_bytes()[28:34]
    except OSError:
        return None


def test_client_addresses_must_stay_in_the_lab_range(lab: Lab) -> None:
    with pytest.raises(ValueError, match="outside the lab range"):
        lab.add_client(address="192.0.2.5/24")
    assert lab.clients == []


def test_close_removes_everything_even_after_a_failure(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("namespace tests need root", pytrace=False)
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="test body failed"), Lab(workdir=tmp_path) as lab:
        lab_id, host_if = lab.id, lab.host_if
        c = lab.add_client(address="198.18.0.9/24")
        etcd = lab.etcd()
        sleeper = c.popen(["sleep", "300"])
        server_sleeper = lab.popen(lab.server_ns, ["sleep", "300"])
        # A process the lab did not start itself, hidden in a namespace by a fork:
        # close() must still find it (ip netns pids).
        c.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 &"], check=True)
        pids = [sleeper.pid, server_sleeper.pid, etcd.pid or 0, *lab.pids()]
        assert len(set(pids)) >= 4
        assert Path(f"/sys/class/net/{host_if}").exists()
        assert (OWNER_DIR / lab_id).exists()
        raise RuntimeError("test body failed")
    assert list(iter_lab_leftovers(lab_id)) == []
    assert not Path(f"/sys/class/net/{host_if}").exists()
    assert not (OWNER_DIR / lab_id).exists()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"pid {pid} survived"
    lab.close()  # idempotent
    with pytest.raises(LabError, match="closed"):
        lab.add_client()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_reap_stale_removes_labs_whose_owner_died(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("namespace tests need root", pytrace=False)
    with Lab(workdir=tmp_path) as lab:
        lab.add_client()
        assert Lab.reap_stale() == []  # our own lab: owner alive, left alone
        dead = subprocess.Popen(["true"])
        dead.wait()
        (OWNER_DIR / lab.id).write_text(f"{dead.pid} 0\n")
        reaped = Lab.reap_stale()
        assert sorted(reaped) == sorted(lab.namespaces)
        assert list(iter_lab_leftovers(lab.id)) == []
    # close() after a reap has nothing left to do and does not complain


def test_free_port_on_the_uplink(lab: Lab) -> None:
    port = free_port(lab.uplink_host_ip)
    # Below the ephemeral range, so no outgoing connection takes it before a server binds.
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    assert 1024 <= port < int(ephemeral[0])
    with socket.socket() as listener:
        listener.bind((lab.uplink_host_ip, port))


def test_dhclient_fresh_forgets_a_remembered_lease(lab: Lab) -> None:
    server = lab.udhcpd()
    c = lab.add_client()
    assert c.dhclient(timeout=5) is not None, c.last_output
    assert c.dhclient_stop() == 0
    server.terminate()
    server.wait(timeout=10)
    c.flush()
    started = time.monotonic()
    assert c.dhclient(timeout=3, fresh=True) is None, c.last_output
    assert time.monotonic() - started < 3 + 5
    assert "Trying recorded lease" not in c.last_output
