"""Host records served to real clients (docs/hosts.md): addresses, names, options, classes.

One lab for the module. etcdhcp serves only etcd's scopes: its own LAN (scope 70,
198.18.0.0/24, a pool for KNOWN clients, those with a host, and one for UNKNOWN ones)
and, behind a router running Debian's dhcrelay with option 82 (`-a`: circuit-id = the
LAN's interface name), LAN H (scope 71). The hosts are imported from a Kea
configuration with `etcdhcpctl host import` before the server starts (scope hosts and
one global host); one is changed with `etcdhcpctl host set` while it runs. ISC
dhclient reports what it was given through its script (dhclient(record=True)); every
client's own host name differs from its host's, so option 12 and the lease record's
hostname show which one the server used.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from waiting import wait_until

from .conftest import Served, _require_lab_host
from .daemon import EtcdhcpProcess
from .lab import Client, Lab
from .relay import Router
from .test_ctl_e2e import etcdhcpctl

LOCAL, RELAYED = 70, 71
LANS = {"h": "198.18.71.1/24"}
KNOWN_POOL = ("198.18.0.60", "198.18.0.69")
UNKNOWN_POOL = ("198.18.0.100", "198.18.0.139")
SCOPE_DOMAIN = "scope.lab70.example"
LOCAL_SCOPE = {
    "id": LOCAL,
    "subnet": "198.18.0.0/24",
    "pools": [
        {"pool": " - ".join(KNOWN_POOL), "client-class": "KNOWN"},
        {"pool": " - ".join(UNKNOWN_POOL), "client-class": "UNKNOWN"},
    ],
    # Renewals every 5 s: the live-change test waits for one.
    "valid-lifetime": 120,
    "renew-timer": 5,
    "rebind-timer": 90,
    "option-data": [
        {"name": "routers", "data": "198.18.0.1"},
        {"name": "domain-name", "data": SCOPE_DOMAIN},
    ],
}
RELAYED_SCOPE = {
    "id": RELAYED,
    "subnet": "198.18.71.0/24",
    "pools": [{"pool": "198.18.71.100 - 198.18.71.139"}],
    "option-data": [{"name": "routers", "data": "198.18.71.1"}],
}


def _domain(name: str) -> list[dict[str, str]]:
    return [{"name": "domain-name", "data": name}]


HW_HOST = {
    "hw-address": "02:00:5e:46:00:01",
    "ip-address": "198.18.0.65",  # in the KNOWN pool
    "hostname": "build-7",
    "option-data": _domain("host.lab70.example"),
}
OUTSIDE_HOST = {  # global (scope 0): found after the scope's hosts
    "hw-address": "02:00:5e:46:00:02",
    "ip-address": "198.18.0.200",  # in scope 70's subnet, in none of its pools
    "hostname": "outside-2",
}
LIVE_HOST = {
    "hw-address": "02:00:5e:46:00:03",
    "ip-address": "198.18.0.210",
    "hostname": "before-3",
    "option-data": _domain("before.lab70.example"),
}
LIVE_HOST_CHANGED = {**LIVE_HOST, "hostname": "after-3", "option-data": _domain("after.example")}
CLIENT_ID = "00:68:6f:73:74:2d:34"  # option 61 as dhclient sends it: type 0, "host-4"
CLIENT_ID_HOST = {"client-id": CLIENT_ID, "ip-address": "198.18.0.67", "hostname": "cid-4"}
CIRCUIT_HOST = {
    "circuit-id": f"'{Router.bridge('h')}'",  # what dhcrelay -a says for LAN H
    "ip-address": "198.18.71.50",
    "hostname": "relayed-5",
}
KNOWN_HOST = {"hw-address": "02:00:5e:46:00:06", "hostname": "known-6"}  # no address
FQDN_HOST = {"hw-address": "02:00:5e:46:00:07", "ip-address": "198.18.0.220", "hostname": "fqdn-7"}
# RFC 4702 §2.1 flags of option 81
FQDN_S, FQDN_O, FQDN_N = 0x01, 0x02, 0x08
KEA_HOSTS = {
    "Dhcp4": {
        "reservations": [OUTSIDE_HOST],
        "subnet4": [
            {
                "id": LOCAL,
                "reservations": [HW_HOST, LIVE_HOST, CLIENT_ID_HOST, KNOWN_HOST, FQDN_HOST],
            },
            {"id": RELAYED, "reservations": [CIRCUIT_HOST]},
        ],
    }
}


@dataclass
class HostsLab:
    """The served lab and the router in front of LAN H."""

    served: Served
    router: Router

    def client(self, name: str, mac: str | None = None) -> Client:
        return self.served.lab.add_client(name, mac=mac)

    def ctl(self, *args: str) -> Any:
        """`etcdhcpctl ARGS --json`, checked: its JSON answer."""
        done = etcdhcpctl(self.served, *args, "--json")
        assert done.returncode == 0 and done.stderr == "", done
        return json.loads(done.stdout)


@pytest.fixture(scope="module")
def hl(tmp_path_factory: pytest.TempPathFactory, _stale_labs_reaped: None) -> Iterator[HostsLab]:
    """The scopes and hosts in etcd, then etcdhcp serving them and the relay in front."""
    _require_lab_host()
    with Lab(workdir=tmp_path_factory.mktemp("hosts")) as lab:
        router = Router(lab, LANS)
        router.route_from(lab.server_ns)
        etcd = lab.etcd()
        daemon = EtcdhcpProcess(lab, etcd.client_url, issue_from=None)
        served = Served(lab, etcd, daemon)
        for scope in (LOCAL_SCOPE, RELAYED_SCOPE):
            added = etcdhcpctl(served, "scope", "add", json.dumps(scope))
            assert added.returncode == 0, added.stderr
        kea = lab.workdir / "kea-hosts.json"
        kea.write_text(json.dumps(KEA_HOSTS))
        imported = etcdhcpctl(served, "host", "import", str(kea))
        assert imported.returncode == 0, imported.stderr
        daemon.start()
        router.start_relay([lab.server_ip])
        yield HostsLab(served, router)
        status = daemon.stop()
        assert status == 0, f"etcdhcp did not exit cleanly ({status}):\n{daemon.log()}"
        assert "Traceback" not in daemon.log(), daemon.log()


def bound(client: Client, conf_extra: str = "") -> dict[str, str]:
    """dhclient once; what its script was told when it bound (reason, new_*)."""
    ip = client.dhclient(record=True, conf_extra=conf_extra)
    assert ip is not None, client.last_output
    event = client.dhclient_events()[-1]
    assert event["reason"] == "BOUND" and event["new_ip_address"] == ip, event
    return event


def seen(event: dict[str, str]) -> tuple[str | None, ...]:
    """The address, option 12 and domain-name a client was given."""
    return tuple(event.get(k) for k in ("new_ip_address", "new_host_name", "new_domain_name"))


def in_range(ip: str, bounds: tuple[str, str]) -> bool:
    first, last = (ipaddress.IPv4Address(b) for b in bounds)
    return first <= ipaddress.IPv4Address(ip) <= last


def test_hw_address_host_gets_its_address_name_and_options(hl: HostsLab) -> None:
    host = hl.client("hw-client", mac=HW_HOST["hw-address"])
    got = bound(host)
    assert seen(got) == ("198.18.0.65", "build-7", "host.lab70.example"), got
    assert got["new_routers"] == "198.18.0.1"  # the scope's options still apply

    other = hl.client("no-host-client")
    plain = bound(other)
    assert in_range(plain["new_ip_address"], UNKNOWN_POOL), plain
    assert plain.get("new_domain_name") == SCOPE_DOMAIN, plain
    assert "new_host_name" not in plain, plain

    leases = hl.served.leases()
    assert leases[host.mac] == "198.18.0.65"
    assert leases[other.mac] == plain["new_ip_address"]
    # The lease record names the host's hostname, not what dhclient sent (its own).
    shown = hl.ctl("lease", "show", host.mac)
    assert (shown["ip"], shown["hostname"], shown["reserved"]) == ("198.18.0.65", "build-7", True)


def test_host_address_outside_the_pools_is_leased(hl: HostsLab) -> None:
    client = hl.client("outside-client", mac=OUTSIDE_HOST["hw-address"])
    got = bound(client)
    assert seen(got) == ("198.18.0.200", "outside-2", SCOPE_DOMAIN), got
    assert hl.served.leases()[client.mac] == "198.18.0.200"


def test_a_changed_host_is_served_at_the_next_renewal(hl: HostsLab) -> None:
    client = hl.client("live-client", mac=LIVE_HOST["hw-address"])
    first = bound(client)
    assert seen(first) == ("198.18.0.210", "before-3", "before.lab70.example"), first
    daemon = hl.served.daemon
    before = len(client.dhclient_events())

    replaced = hl.ctl("host", "set", json.dumps(LIVE_HOST_CHANGED), "--scope", str(LOCAL))
    assert replaced, replaced

    def renewed_with_change() -> dict[str, str] | None:
        later = client.dhclient_events()[before:]
        return next((e for e in later if e.get("new_host_name") == "after-3"), None)

    event = wait_until(renewed_with_change, 20, "a renewal that carries the changed host")
    assert event["reason"] == "RENEW", event  # dhclient's running daemon, not a new start
    assert seen(event) == ("198.18.0.210", "after-3", "after.example"), event
    assert daemon.proc is not None and daemon.proc.poll() is None  # the same server, still up
    shown = hl.ctl("lease", "show", client.mac)
    assert (shown["ip"], shown["hostname"]) == ("198.18.0.210", "after-3"), shown


def test_client_id_host_gets_its_address(hl: HostsLab) -> None:
    client = hl.client("cid-client")
    got = bound(client, conf_extra=f"send dhcp-client-identifier {CLIENT_ID};\n")
    assert seen(got) == ("198.18.0.67", "cid-4", SCOPE_DOMAIN), got
    assert hl.served.leases()[client.mac] == "198.18.0.67"


def test_a_client_sending_option_81_gets_the_host_name_there(hl: HostsLab) -> None:
    """As Kea: the name goes back in option 81 (N set: the server updates no DNS; O set:
    it overrode the client's S), not also in option 12 (options.py)."""
    client = hl.client("fqdn-client", mac=FQDN_HOST["hw-address"])
    asks = 'send fqdn.fqdn "fqdn-client.example.";\nsend fqdn.server-update on;\n'
    got = bound(client, conf_extra=asks)
    assert (got["new_ip_address"], got.get("new_fqdn_fqdn")) == ("198.18.0.220", "fqdn-7"), got
    flags = int(got["new_fqdn"].split(":", 1)[0], 16)  # dhclient: the raw option, in hex
    assert flags & (FQDN_N | FQDN_O | FQDN_S) == FQDN_N | FQDN_O, got["new_fqdn"]
    assert "new_host_name" not in got, got
    assert hl.ctl("lease", "show", client.mac)["hostname"] == "fqdn-7"


def test_circuit_id_host_behind_dhcrelay_gets_its_address(hl: HostsLab) -> None:
    client = hl.router.add_client("h", "relayed-client")
    got = bound(client)
    assert seen(got) == ("198.18.71.50", "relayed-5", None), got
    assert got["new_routers"] == "198.18.71.1"
    assert hl.served.leases()[client.mac] == "198.18.71.50"


def test_known_pool_serves_hosts_only(hl: HostsLab) -> None:
    known = hl.client("known-client", mac=KNOWN_HOST["hw-address"])
    got = bound(known)
    ip = got["new_ip_address"]
    assert in_range(ip, KNOWN_POOL) and ip not in ("198.18.0.65", "198.18.0.67"), got
    assert got.get("new_host_name") == "known-6", got

    unknown = hl.client("unknown-client")
    other = unknown.udhcpc()
    assert other is not None and in_range(other, UNKNOWN_POOL), unknown.last_output
    assert hl.served.leases()[unknown.mac] == other
