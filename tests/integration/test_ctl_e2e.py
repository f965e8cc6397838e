"""End to end: etcdhcpctl and the admin API against a running daemon and real clients.

etcdhcpctl runs as its own process in the host namespace, reaching the lab's etcd the
way an operator's shell would; the daemon's admin API is read over HTTP on the uplink.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import Served
from .daemon import SRC
from .test_clients import in_pool, wait_for_renewal, wait_until


def etcdhcpctl(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    """`etcdhcpctl ARGS` with the daemon's etcd flags, Go style as in its unit file."""
    return served.lab.run(None, ctl_argv(served, *args), timeout=60, env=ctl_env())


def ctl_argv(served: Served, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "etcdhcp.ctl", "--config=",
        "-etcd.discovery.endpoints", served.etcd.client_url,
        "-etcd.prefix", served.daemon.prefix,
        *args,
    ]  # fmt: skip


def ctl_env() -> dict[str, str]:
    return {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}


def ctl_json(served: Served, *args: str) -> Any:
    done = etcdhcpctl(served, *args, "--json")
    assert done.returncode == 0 and done.stderr == "", done
    return json.loads(done.stdout)


def api(served: Served, path: str) -> Any:
    with urllib.request.urlopen(f"{served.daemon.admin}/api/v1/{path}", timeout=5) as response:
        assert response.headers["Content-Type"] == "application/json"
        return json.loads(response.read())


def test_a_real_lease_in_etcdhcpctl_and_the_admin_api(served: Served) -> None:
    client = served.lab.add_client("ctl-host")
    ip = client.dhclient()
    assert in_pool(ip), client.last_output
    leases = ctl_json(served, "leases")
    assert [(x["mac"], x["ip"]) for x in leases] == [(client.mac, ip)]
    mine = leases[0]
    assert mine["hostname"] == "ctl-host" and mine["server"] == "198.18.0.1"
    assert mine["expires"] > time.time() + 3000 and mine["reserved"] is False
    assert api(served, "leases") == leases
    assert ctl_json(served, "lease", "show", client.mac) == mine
    assert api(served, f"leases/{ip}") == mine
    table = etcdhcpctl(served, "leases").stdout.splitlines()
    assert table[1].split()[:2] == [client.mac, ip] and "ctl-host" in table[1]

    servers = ctl_json(served, "servers")
    assert [(s["server_ip"], s["interface"], s["range_from"], s["range_to"]) for s in servers] == [
        ("198.18.0.1", "br0", "198.18.0.10", "198.18.0.50")
    ]
    assert api(served, "servers") == servers
    pool = ctl_json(served, "pool")
    assert pool["ranges"][0]["servers"] == ["198.18.0.1"]
    assert (pool["ranges"][0]["free"], pool["ranges"][0]["leased"]) == (40, 1)
    assert api(served, "pool") == pool
    assert etcdhcpctl(served, "check").stdout == "consistent: no problems found\n"

    released = ctl_json(served, "release", client.mac)
    assert released == {"mac": client.mac, "ip": ip, "now": "free"}  # the daemon's range
    keys = served.read()
    assert keys.get(f"ips::free::{ip}") == ip and f"nics::leased::{client.mac}" not in keys
    assert api(served, "leases") == []


@pytest.mark.etcdhcp(issue_from="198.18.0.10", issue_to="198.18.0.12")
def test_a_reservation_is_honoured_by_the_daemon(served: Served) -> None:
    printer = served.lab.add_client("printer")
    reserved = ctl_json(served, "reserve", printer.mac, "198.18.0.11")
    assert reserved == {"mac": printer.mac, "ip": "198.18.0.11", "created": True}
    assert printer.udhcpc() == "198.18.0.11", printer.last_output
    others = [served.lab.add_client(f"other{i}") for i in range(3)]
    got = [c.udhcpc(tries=2) for c in others]
    assert sorted(got[:2]) == ["198.18.0.10", "198.18.0.12"], got  # type: ignore[type-var]
    assert got[2] is None  # the pool is exhausted: the reserved address is not for it

    assert ctl_json(served, "lease", "show", "198.18.0.11")["reserved"] is True
    released = ctl_json(served, "release", printer.mac)
    assert released["now"] == "reserved"
    time.sleep(2)  # the reseeder's watch would have freed it by now if it could
    assert "ips::free::198.18.0.11" not in served.read()
    assert others[2].udhcpc(tries=2) is None
    printer.flush()
    assert printer.udhcpc() == "198.18.0.11", printer.last_output
    row = ctl_json(served, "pool")["ranges"][0]
    assert (row["free"], row["leased"], row["reserved"]) == (0, 3, 1)
    assert etcdhcpctl(served, "check").returncode == 0


BOUNDS = ("--count", "2", "--timeout", "90")


@pytest.mark.etcdhcp(lease="10s")
def test_watch_sees_a_real_dhclient_connect_and_disconnect(served: Served, tmp_path: Path) -> None:
    revision = json.loads(served.etcdctl("get", "anything", "-w", "json"))["header"]["revision"]
    out = tmp_path / "watch.out"
    with open(out, "wb") as sink:
        watch = served.lab.popen(
            None,
            ctl_argv(served, "watch", "--json", "--from-revision", str(revision + 1), *BOUNDS),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=ctl_env(),
        )
    client = served.lab.add_client("watched")
    ip = client.dhclient()
    assert in_pool(ip), client.last_output
    granted = json.loads(served.read()[f"leases::{ip}"])
    wait_for_renewal(served, ip, granted)  # dhclient renews at T1: not an event
    assert client.dhclient_release() == 0
    assert watch.wait(60) == 0, out.read_text()
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["event"], e["mac"], e["ip"]) for e in events] == [
        ("connect", client.mac, ip),
        ("disconnect", client.mac, ip),
    ]
    assert revision < events[0]["revision"] < events[1]["revision"]
    # A script that saw the connect resumes after it and sees only the disconnect.
    resumed = etcdhcpctl(
        served, "watch", "--from-revision", str(events[0]["revision"] + 1), "--timeout", "2"
    )
    assert resumed.returncode == 0
    assert resumed.stdout.splitlines()[1].split() == [
        str(events[1]["revision"]),
        "disconnect",
        client.mac,
        ip,
    ]
    wait_until(lambda: served.read().get(f"ips::free::{ip}") == ip, 10, "the address freed")
