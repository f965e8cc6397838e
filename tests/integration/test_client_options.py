"""Real clients read what they got (issue 15): dhclient and udhcpc against one scope's options.

One lab for the module: etcdhcp serves only etcd's documents on 198.18.47.0/24 (a second
address on br0, its -dhcp.server-ip). The global document declares a site-specific option
(252, a proxy auto-configuration URL, as Kea's `option-def`); the scope, added with
`etcdhcpctl scope add`, carries domain-name, a two-domain search list, two NTP servers,
the MTU, two classless static routes beside its router, and that option. ISC dhclient
(its dhclient.conf declares 252) runs Debian's real dhclient-script, which must apply the
MTU and the routes; busybox udhcpc asks for each option with -O and its script records
what it was given. Every value is compared exactly as each client spells it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Served, _require_lab_host
from .daemon import EtcdhcpProcess
from .lab import Lab
from .test_ctl_e2e import etcdhcpctl

ROUTER = "198.18.47.1"
GATEWAY_2 = "198.18.47.254"
WPAD = "http://wpad.lab47.example/wpad.dat"
GLOBAL = {"option-def": [{"name": "wpad", "code": 252, "type": "string"}]}
SCOPE = {
    "id": 47,
    "subnet": "198.18.47.0/24",
    "pools": [{"pool": "198.18.47.100 - 198.18.47.149"}],
    "valid-lifetime": 60,  # udhcpc takes anything under 30 s as 30 s
    "option-data": [
        {"name": "routers", "data": ROUTER},
        {"name": "domain-name-servers", "data": ROUTER},
        {"name": "domain-name", "data": "lab47.example"},
        {"name": "domain-search", "data": "lab47.example, corp.lab47.example"},
        {"name": "ntp-servers", "data": "198.18.47.3, 198.18.47.4"},
        {"name": "interface-mtu", "data": "1400"},
        {
            "name": "classless-static-route",
            "data": f"198.18.147.0/24 - {ROUTER}, 198.18.148.0/22 - {GATEWAY_2}",
        },
        {"name": "wpad", "code": 252, "data": WPAD},
    ],
}
# dhclient must be told what 252 is, and asked for it (Debian's conf asks for the rest).
DHCLIENT_WPAD = "option wpad code 252 = text;\nalso request wpad;\n"
UDHCPC_ASKS = ("search", "ntpsrv", "mtu", "staticroutes", "252")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, _stale_labs_reaped: None) -> Iterator[Served]:
    """etcd with the global document and the scope, then etcdhcp serving them."""
    _require_lab_host()
    with Lab(workdir=tmp_path_factory.mktemp("client-options")) as lab:
        lab.run(lab.server_ns, ["ip", "addr", "add", f"{ROUTER}/24", "dev", lab.bridge], check=True)
        etcd = lab.etcd()
        daemon = EtcdhcpProcess(
            lab, etcd.client_url, issue_from=None, extra=["-dhcp.server-ip", ROUTER]
        )
        it = Served(lab, etcd, daemon)
        it.put("config::global::dhcp4", json.dumps(GLOBAL))
        added = etcdhcpctl(it, "scope", "add", json.dumps(SCOPE))
        assert added.returncode == 0, added.stderr
        daemon.start()
        yield it
        status = daemon.stop()
        assert status == 0, f"etcdhcp did not exit cleanly ({status}):\n{daemon.log()}"
        assert "Traceback" not in daemon.log(), daemon.log()


def in_scope(ip: str | None) -> bool:
    return (
        ip is not None and ip.startswith("198.18.47.") and 100 <= int(ip.rsplit(".", 1)[1]) <= 149
    )


def lease_options(path: Path) -> dict[str, str]:
    """The `option NAME VALUE;` lines of a dhclient lease file's last lease."""
    last = path.read_text().rsplit("lease {", 1)[-1]
    return dict(re.findall(r"^\s*option (\S+) (.*);$", last, re.M))


def test_dhclient_gets_every_option_and_debians_script_applies_them(served: Served) -> None:
    client = served.lab.add_client("dhclient-opts")
    host_resolv = Path("/etc/resolv.conf").read_bytes()
    ip = client.dhclient(
        record=True,
        conf_extra=DHCLIENT_WPAD,
        mounts={"/var/lib/dhcp": str(client.dir)},
    )
    assert in_scope(ip), client.last_output

    bound = client.dhclient_events()[-1]
    assert bound["reason"] == "BOUND", bound
    got = {k: v for k, v in bound.items() if k != "new_expiry"}
    assert got == {
        "reason": "BOUND",
        "new_ip_address": ip,
        "new_subnet_mask": "255.255.255.0",
        "new_network_number": "198.18.47.0",
        "new_broadcast_address": "198.18.47.255",
        "new_routers": ROUTER,
        "new_domain_name_servers": ROUTER,
        "new_dhcp_server_identifier": ROUTER,
        "new_dhcp_lease_time": "60",
        "new_dhcp_renewal_time": "30",
        "new_dhcp_rebinding_time": "52",  # Kea's default T2: 0.875 of the lease
        "new_next_server": ROUTER,
        "new_dhcp_message_type": "5",
        "new_domain_name": "lab47.example",
        "new_domain_search": "lab47.example. corp.lab47.example.",
        "new_ntp_servers": "198.18.47.3 198.18.47.4",
        "new_interface_mtu": "1400",
        "new_rfc3442_classless_static_routes": (
            "24 198 18 147 198 18 47 1 22 198 18 148 198 18 47 254"
        ),
        "new_wpad": WPAD,
    }
    options = lease_options(client.dir / "dhclient.leases")
    assert options == {
        "subnet-mask": "255.255.255.0",
        "routers": ROUTER,
        "domain-name-servers": ROUTER,
        "dhcp-server-identifier": ROUTER,
        "dhcp-lease-time": "60",
        "dhcp-renewal-time": "30",
        "dhcp-rebinding-time": "52",
        "dhcp-message-type": "5",
        "domain-name": '"lab47.example"',
        "domain-search": '"lab47.example.", "corp.lab47.example."',
        "ntp-servers": "198.18.47.3,198.18.47.4",
        "interface-mtu": "1400",
        "rfc3442-classless-static-routes": "24,198,18,147,198,18,47,1,22,198,18,148,198,18,47,254",
        "wpad": f'"{WPAD}"',
    }

    # What Debian's dhclient-script (and its rfc3442 exit hook) made of it.
    routes = json.loads(client.run(["ip", "-4", "-j", "route", "show"], check=True).stdout)
    assert {r["dst"]: r.get("gateway") for r in routes} == {
        "198.18.47.0/24": None,
        "198.18.147.0/24": ROUTER,
        "198.18.148.0/22": GATEWAY_2,
    }  # RFC 3442: with classless routes the router option is ignored (no default route)
    link = json.loads(client.run(["ip", "-j", "link", "show", "dev", "eth0"], check=True).stdout)
    assert link[0]["mtu"] == 1400
    resolv = Path(f"/etc/netns/{client.ns}/resolv.conf").read_text()
    assert resolv == (
        "domain lab47.example\nsearch lab47.example. corp.lab47.example.\nnameserver 198.18.47.1\n"
    )
    assert Path("/etc/resolv.conf").read_bytes() == host_resolv


def test_udhcpc_sees_every_option_in_its_script_environment(served: Served) -> None:
    client = served.lab.add_client("udhcpc-opts")
    asks = [arg for opt in UDHCPC_ASKS for arg in ("-O", opt)]
    ip = client.udhcpc(extra_args=asks)
    assert in_scope(ip), client.last_output
    env = client.udhcpc_env
    want = {
        "event": "bound",
        "ip": ip,
        "subnet": "255.255.255.0",
        "mask": "24",
        "router": ROUTER,
        "dns": ROUTER,
        "serverid": ROUTER,
        "siaddr": ROUTER,
        "lease": "60",
        "opt58": "0000001e",  # T1, T2: unknown to busybox, so in hex
        "opt59": "00000034",
        "opt53": "05",
        "opt61": "01" + client.mac.replace(":", ""),  # its client id, echoed (RFC 6842)
        "domain": "lab47.example",
        "search": "lab47.example corp.lab47.example",
        "ntpsrv": "198.18.47.3 198.18.47.4",
        "mtu": "1400",
        "staticroutes": f"198.18.147.0/24 {ROUTER} 198.18.148.0/22 {GATEWAY_2}",
        "wpad": WPAD,  # busybox knows 252 by this name (a string)
    }
    assert {k: env.get(k) for k in want} == want
