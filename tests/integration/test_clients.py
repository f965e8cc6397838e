"""End to end: real DHCP clients (dhclient, udhcpc, dhcpcd) against the real daemon.

Each test gets a fresh lab (namespaces, bridge, its own etcd) with etcdhcp serving
198.18.0.10-198.18.0.50 on br0; the etcd keys are checked against CONTRACT §2.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from waiting import wait_until

from .conftest import Served
from .lab import Client

RAWCLIENT = str(Path(__file__).with_name("rawclient.py"))
SHORT_LEASE = "10s"  # T1 = 5 s: the clients renew within the test
# busybox's udhcpc takes any lease shorter than 30 s as 30 s and renews at 15 s: past a
# 10 s lease's end (and its reclaim, 3 s later), so it is given 20 s to renew within.
UDHCPC_LEASE = "20s"


def in_pool(ip: str | None) -> bool:
    return ip is not None and (
        ipaddress.IPv4Address("198.18.0.10")
        <= ipaddress.IPv4Address(ip)
        <= ipaddress.IPv4Address("198.18.0.50")
    )


def assert_leased(served: Served, mac: str, ip: str) -> dict[str, Any]:
    """The CONTRACT §2 keys of one lease, and its lease record (returned)."""
    keys = served.read()
    assert keys.get(f"ips::leased::{ip}") == mac
    assert keys.get(f"nics::leased::{mac}") == ip
    assert f"ips::free::{ip}" not in keys
    info = json.loads(keys[f"leases::{ip}"])
    assert info["mac"] == mac and info["ip"] == ip and info["server"] == "198.18.0.1"
    return info


def assert_released(served: Served, mac: str, ip: str) -> None:
    def released() -> bool:
        keys = served.read()
        return (
            f"ips::leased::{ip}" not in keys
            and f"nics::leased::{mac}" not in keys
            and keys.get(f"ips::free::{ip}") == ip
        )

    wait_until(released, 10, f"{ip} back in the free pool")


def wait_for_renewal(served: Served, ip: str, granted: dict[str, Any]) -> None:
    def renewed() -> bool:
        raw = served.read().get(f"leases::{ip}")
        return raw is not None and json.loads(raw)["expires"] > granted["expires"]

    wait_until(renewed, 20, f"a renewal of {ip}")
    assert served.daemon.metric("etcdhcp_leases_total", event="renewed") >= 1


def background(client: Client, argv: list[str], **kw: Any) -> subprocess.Popen[Any]:
    log = open(client.dir / f"{argv[0]}-bg.log", "ab")  # noqa: SIM115 - the child owns it
    proc = client.popen(argv, stdout=log, stderr=subprocess.STDOUT, **kw)
    log.close()
    return proc


def exit_status(client: Client, proc: subprocess.Popen[Any], name: str) -> int:
    """The exit status of a background client told to stop; a client that does not
    exit fails the test with its log. 30 s, not less: dhcpcd once took over 10 s in CI
    (its privilege-separated helpers stop one by one, each with a timeout)."""
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        log = (client.dir / f"{name}-bg.log").read_text(errors="replace")[-3000:]
        pytest.fail(f"{name} did not exit within 30 s of its stop signal:\n{log}")


def rawclient(client: Client, *args: str) -> dict[str, Any]:
    out = client.run([sys.executable, RAWCLIENT, *args], timeout=30, check=True)
    return json.loads(out.stdout)


# ---- the three real clients: lease, renew, release ---------------------------------


@pytest.mark.etcdhcp(lease=SHORT_LEASE)
def test_dhclient_lease_renew_release(served: Served) -> None:
    client = served.lab.add_client("dhclient-host")
    ip = client.dhclient()
    assert in_pool(ip), client.last_output
    granted = assert_leased(served, client.mac, ip)
    assert granted["hostname"] == "dhclient-host"
    wait_for_renewal(served, ip, granted)  # dhclient's daemon renews at T1, unicast
    assert_leased(served, client.mac, ip)
    assert client.dhclient_release() == 0
    assert_released(served, client.mac, ip)


@pytest.mark.etcdhcp(lease=UDHCPC_LEASE)
def test_udhcpc_lease_renew_release(served: Served) -> None:
    client = served.lab.add_client("udhcpc-host")
    script = str(served.lab.udhcpc_script)
    proc = background(
        client, ["udhcpc", "-i", "eth0", "-f", "-R", "-t", "5", "-T", "2", "-s", script]
    )
    ip = wait_until(client.address, 20, "udhcpc to configure an address")
    assert in_pool(ip)
    granted = assert_leased(served, client.mac, ip)
    assert granted["client_id"] == "01" + client.mac.replace(":", "")
    wait_for_renewal(served, ip, granted)
    proc.send_signal(signal.SIGTERM)  # -R: release on exit
    assert exit_status(client, proc, "udhcpc") == 0
    assert_released(served, client.mac, ip)


@pytest.mark.etcdhcp(lease=SHORT_LEASE)
def test_dhcpcd_lease_renew_release(served: Served) -> None:
    client = served.lab.add_client("dhcpcd-host")
    state = client.dir / "dhcpcd-lib"
    state.mkdir(exist_ok=True)
    proc = background(
        client,
        ["dhcpcd", "-d", "-4", "-B", "-L", "-A", "eth0"],
        mounts={"/var/lib/dhcpcd": str(state)},
    )
    ip = wait_until(client.address, 30, "dhcpcd to configure an address")
    assert in_pool(ip)
    granted = assert_leased(served, client.mac, ip)
    assert granted["client_id"].startswith("ff")  # RFC 4361: IAID + DUID
    wait_for_renewal(served, ip, granted)
    proc.send_signal(signal.SIGALRM)  # dhcpcd: release and exit
    assert_released(served, client.mac, ip)
    assert exit_status(client, proc, "dhcpcd") == 0


# ---- the operator recipes of CONTRACT §3 --------------------------------------------


def test_pinned_device_gets_its_address(served: Served) -> None:
    mac = "02:00:5e:00:00:42"
    served.put(f"nics::leased::{mac}", "198.18.0.33")
    served.put("ips::leased::198.18.0.33", mac)
    served.delete("ips::free::198.18.0.33")
    client = served.lab.add_client("pinned", mac=mac)
    assert client.udhcpc() == "198.18.0.33", client.last_output
    assert_leased(served, mac, "198.18.0.33")


@pytest.mark.etcdhcp(issue_from="198.18.0.10", issue_to="198.18.0.10")
def test_hand_added_address_is_handed_out_and_phased_out(served: Served) -> None:
    first = served.lab.add_client("first")
    assert first.udhcpc() == "198.18.0.10"  # the whole range
    served.put("ips::free::198.18.0.200", "198.18.0.200")
    second = served.lab.add_client("second")
    proc = background(
        second,
        [
            "udhcpc",
            "-i",
            "eth0",
            "-f",
            "-R",
            "-t",
            "5",
            "-T",
            "2",
            "-s",
            str(served.lab.udhcpc_script),
        ],
    )
    assert wait_until(second.address, 20, "a lease for the second client") == "198.18.0.200"
    assert_leased(served, second.mac, "198.18.0.200")
    proc.send_signal(signal.SIGTERM)
    assert exit_status(second, proc, "udhcpc") == 0
    wait_until(lambda: "ips::leased::198.18.0.200" not in served.read(), 10, "the release")
    time.sleep(2)  # the reseeder would have put it back by now if it were in range
    assert "ips::free::198.18.0.200" not in served.read()


def test_watching_a_nic_key_sees_connect_and_disconnect(served: Served) -> None:
    client = served.lab.add_client("watched")
    key = f"{served.daemon.prefix}nics::leased::{client.mac}"
    log = open(client.dir / "watch.log", "wb")  # noqa: SIM115 - the child owns it
    argv = ["etcdctl", "--endpoints", served.etcd.client_url, "watch", key]
    watch = served.lab.popen(None, argv, stdout=log, env={"ETCDCTL_API": "3"})
    time.sleep(0.5)
    ip = client.dhclient()
    assert in_pool(ip)
    assert client.dhclient_release() == 0
    events = wait_until(
        lambda: (client.dir / "watch.log").read_text().count(key) >= 2, 10, "two watch events"
    )
    assert events
    text = (client.dir / "watch.log").read_text()
    watch.terminate()
    assert text.index("PUT") < text.index("DELETE"), text


# ---- many clients, DECLINE, INFORM, unknown RELEASE ----------------------------------


def test_twenty_clients_at_once_get_distinct_addresses(served: Served) -> None:
    clients = [served.lab.add_client(f"many{i}") for i in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        ips = list(pool.map(lambda c: c.udhcpc(tries=5), clients))
    assert all(in_pool(ip) for ip in ips), ips
    assert len(set(ips)) == 20
    for client, ip in zip(clients, ips, strict=True):
        assert_leased(served, client.mac, ip)
    assert served.daemon.metric("etcdhcp_replies_sent_total", type="nak") == 0


@pytest.mark.etcdhcp(issue_from="198.18.0.10", issue_to="198.18.0.11")
def test_declined_address_is_quarantined_not_offered_again(served: Served) -> None:
    probe = served.lab.add_client("decliner")
    mac = "02:00:5e:00:00:de"
    result = rawclient(probe, "dora", "--mac", mac)
    assert result["ack"]["type"] == "ack", result
    declined = result["ack"]["yiaddr"]
    rawclient(probe, "decline", "--mac", mac, "--ip", declined)
    keys = wait_until(
        lambda: (k := served.read()).get(f"ips::declined::{declined}") == mac and k,
        10,
        "the quarantine key",
    )
    assert f"ips::leased::{declined}" not in keys and f"ips::free::{declined}" not in keys
    other = "198.18.0.11" if declined == "198.18.0.10" else "198.18.0.10"
    a, b = served.lab.add_client("next1"), served.lab.add_client("next2")
    assert a.udhcpc() == other
    assert b.udhcpc(tries=2) is None  # the only other address is quarantined
    assert f"ips::free::{declined}" not in served.read()


def test_inform_is_answered_with_configuration_only(served: Served) -> None:
    client = served.lab.add_client("informer", address="198.18.0.5/24")
    result = rawclient(client, "inform", "--mac", client.mac, "--ip", "198.18.0.5")
    reply = result["reply"]
    assert reply["type"] == "ack"
    assert reply["yiaddr"] == "0.0.0.0" and reply["ciaddr"] == "198.18.0.5"
    assert reply["ip_dst"] == "198.18.0.5"
    assert reply["options"]["subnet_mask"] == ["255.255.255.0"]
    assert reply["options"]["router"] == ["198.18.0.1"]
    assert "lease_time" not in reply["options"]
    assert not any(k.startswith("ips::leased::") for k in served.read())


def test_release_from_unknown_mac_changes_nothing(served: Served) -> None:
    first = served.lab.add_client("owner")
    ip = first.udhcpc()
    assert in_pool(ip)
    before = served.read()
    stranger = served.lab.add_client("stranger")
    rawclient(stranger, "release", "--mac", "02:00:5e:00:00:99", "--ip", ip)
    rawclient(stranger, "release", "--mac", "02:00:5e:00:00:98", "--ip", "198.18.0.49")
    wait_until(
        lambda: (
            served.daemon.metric("etcdhcp_requests_ignored_total", reason="release_unknown") >= 2
        ),
        10,
        "the ignored RELEASEs to be counted",
    )
    after = served.read()
    assert {k: v for k, v in after.items() if not k.startswith("leases::")} == {
        k: v for k, v in before.items() if not k.startswith("leases::")
    }
    assert in_pool(served.lab.add_client("later").udhcpc())  # still serving
