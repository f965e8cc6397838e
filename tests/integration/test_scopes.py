"""Scopes end to end (issue 14): client LANs behind Debian's real relay agent, two servers.

One lab for the whole module (relay.py): etcd and two etcdhcp servers on the server LAN
(198.18.0.0/24), serving only what etcd holds (no range flags); a router running
dhcrelay (with option 82) in front of LANs A, B and C. The scopes come from a Kea file
written with `etcdhcpctl scope import`; later tests add, change and remove scopes while
both servers run, and write bad documents with etcdhcpctl and with raw etcdctl. Real
clients (dhclient, udhcpc) get their addresses through the relay; relayprobe.py sends
what a relay agent sends (giaddr, option 82 sub-option 5, option 118) from the router.
The apply latencies are printed (pytest -s shows them).
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from waiting import wait_until

from .conftest import _require_lab_host
from .lab import Client, Lab
from .relay import ROUTER_IP, ScopeLab, start_probe

LANS = {"a": "198.18.32.1/24", "b": "198.18.33.1/24", "c": "198.18.34.1/24"}
SERVER_LAN = "198.18.0.0/24"
LAN_A_ROUTER_NEW = "198.18.32.254"

KEA_FILE = """\
// etcdhcp's relay lab, in ISC Kea's own shape: comments of every kind Kea takes.
{
  "Dhcp4": {
    "valid-lifetime": 600,  # the global level: every subnet below inherits it
    "subnet4": [
      /* The server's own LAN: clients answered without a relay. */
      {
        "id": 1,
        "subnet": "198.18.0.0/24",
        "pools": [{"pool": "198.18.0.100 - 198.18.0.139"}],
        "option-data": [
          {"name": "routers", "data": "198.18.0.1"},
          {"name": "domain-name-servers", "data": "198.18.0.1"}
        ]
      },
      // LAN A behind the relay: short leases, a renewal every 5 s, rebinding after 20 s.
      {
        "id": 2,
        "subnet": "198.18.32.0/24",
        "pools": [{"pool": "198.18.32.100 - 198.18.32.139"}],
        "valid-lifetime": 30,
        "renew-timer": 5,
        "rebind-timer": 20,
        "option-data": [{"name": "routers", "data": "198.18.32.1"}]
      },
      {
        "id": 3,  // LAN B
        "subnet": "198.18.33.0/24",
        "pools": [{"pool": "198.18.33.100 - 198.18.33.139"}],
        "option-data": [{"name": "routers", "data": "198.18.33.1"}]
      }
    ]
  }
}
"""

LAN_C = {
    "id": 4,
    "subnet": "198.18.34.0/24",
    "pools": [{"pool": "198.18.34.100 - 198.18.34.139"}],
    "valid-lifetime": 40,
    "renew-timer": 10,
    "rebind-timer": 30,
    "option-data": [{"name": "routers", "data": "198.18.34.1"}],
}


# ---- the lab --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sl(tmp_path_factory: pytest.TempPathFactory, _stale_labs_reaped: None) -> Iterator[ScopeLab]:
    """One relay lab for the module, its scopes imported from KEA_FILE before the start."""
    _require_lab_host()
    with Lab(workdir=tmp_path_factory.mktemp("scopes")) as lab:
        scope_lab = ScopeLab(lab, LANS)
        try:
            kea = lab.workdir / "kea-subnets.json"
            kea.write_text(KEA_FILE)
            imported = scope_lab.ctl("scope", "import", str(kea))
            assert imported.returncode == 0, imported.stderr
            listed = "imported 3 documents: subnet4/1, subnet4/2, subnet4/3\n"
            assert imported.stdout == listed, imported.stdout
            scope_lab.start()
            yield scope_lab
        finally:
            statuses = [server.stop() for server in scope_lab.servers]
            scope_lab.close()
        for server, status in zip(scope_lab.servers, statuses, strict=True):
            assert status == 0, f"{server.log_path.name} exited {status}:\n{server.log()}"
            assert "Traceback" not in server.log(), server.log()


@pytest.fixture(scope="module")
def client_a(sl: ScopeLab) -> Client:
    """A dhclient on LAN A, bound through the relay (and renewing every 5 s from then)."""
    client = sl.router.add_client("a", "lan-a-host")
    assert in_pool(client.dhclient(record=True), "198.18.32"), client.last_output
    return client


# ---- helpers --------------------------------------------------------------------------------


def in_pool(ip: str | None, net: str) -> bool:
    """`ip` is in the .100-.139 pool of the /24 starting with `net` ("198.18.32")."""
    return ip is not None and ip.startswith(net + ".") and 100 <= int(ip.rsplit(".", 1)[1]) <= 139


def sum_metric(sl: ScopeLab, name: str, **labels: str) -> float:
    return sum(s.metric(name, **labels) for s in sl.servers)


def converged(sl: ScopeLab, scopes: int, revision: int, timeout: float = 10.0) -> list[float]:
    """Wait until every server serves `scopes` scopes from a config revision >= `revision`;
    returns the seconds each took (polled: the first server every 20 ms, the other, whose
    admin port is reached from inside its namespace, every ~0.1 s)."""
    started = time.time()
    took: list[float] = [0.0] * len(sl.servers)

    def follow(i: int) -> None:
        server = sl.servers[i]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = server.metrics()
            values = dict(
                (line.split(" ")[0], float(line.split(" ")[1]))
                for line in text.splitlines()
                if line.startswith(("etcdhcp_scopes ", "etcdhcp_config_revision "))
            )
            if (
                values.get("etcdhcp_scopes") == scopes
                and values.get("etcdhcp_config_revision", 0) >= revision
            ):
                took[i] = time.time() - started
                return
            time.sleep(0.02)
        took[i] = float("inf")

    threads = [threading.Thread(target=follow, args=(i,)) for i in range(len(sl.servers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 10)
    assert all(t < float("inf") for t in took), (
        f"servers did not all reach {scopes} scopes at revision >= {revision}: {took}"
    )
    return took


def revisions(sl: ScopeLab) -> list[tuple[float, float]]:
    """(etcdhcp_scopes, etcdhcp_config_revision) of every server."""
    return [(s.metric("etcdhcp_scopes"), s.metric("etcdhcp_config_revision")) for s in sl.servers]


def next_revision(sl: ScopeLab) -> int:
    """The lowest config revision a change made now can have (a removal leaves no key
    whose revision could be read afterwards)."""
    return int(max(revision for _, revision in revisions(sl))) + 1


def write(sl: ScopeLab, *args: str) -> tuple[float, Any]:
    """Run an etcdhcpctl command that must succeed; (time.time() when it returned, its run)."""
    done = sl.ctl(*args)
    returned = time.time()
    assert done.returncode == 0 and done.stderr == "", done
    return returned, done


def last_lease(client: Client) -> str:
    """The newest `lease { ... }` block of a dhclient's lease file."""
    text = (client.dir / "dhclient.leases").read_text()
    blocks = re.findall(r"lease \{.*?\n\}", text, re.S)
    return blocks[-1] if blocks else ""


def config_keys(sl: ScopeLab) -> dict[str, str]:
    return sl.read("config::")


def free_in(sl: ScopeLab, net: str) -> list[str]:
    return [k for k in sl.read("ips::free::") if k.startswith(f"ips::free::{net}.")]


# ---- the tests ------------------------------------------------------------------------------


def test_imported_scopes_give_each_lan_its_own_subnet_and_router(
    sl: ScopeLab, client_a: Client
) -> None:
    listed = json.loads(sl.ctl("scope", "list", "--json").stdout)
    assert [(r["id"], r["subnet"], r["status"]) for r in listed] == [
        (1, SERVER_LAN, "served"),
        (2, "198.18.32.0/24", "served"),
        (3, "198.18.33.0/24", "served"),
    ]
    assert json.loads(sl.ctl("scope", "show", "3").stdout)["valid-lifetime"] == 600  # global
    assert [s for s, _ in revisions(sl)] == [3, 3]

    # LAN A: dhclient, through dhcrelay (giaddr 198.18.32.1).
    ip_a = client_a.address()
    assert in_pool(ip_a, "198.18.32"), client_a.addresses()
    assert "option routers 198.18.32.1;" in last_lease(client_a), last_lease(client_a)
    assert client_a.addresses() == [f"{ip_a}/24"]

    # LAN B: udhcpc, through the same relay.
    host_b = sl.router.add_client("b", "lan-b-host")
    ip_b = host_b.udhcpc()
    assert in_pool(ip_b, "198.18.33"), host_b.last_output
    assert host_b.udhcpc_env["router"] == "198.18.33.1"
    assert host_b.udhcpc_env["serverid"] in ("198.18.0.1", "198.18.0.12")

    # The server's own LAN: no relay, the scope of the servers' own subnet.
    local = sl.lab.add_client("local-host")
    ip_local = local.udhcpc()
    assert in_pool(ip_local, "198.18.0"), local.last_output
    assert local.udhcpc_env["router"] == "198.18.0.1"

    leased = {k.split("::")[-1]: v for k, v in sl.read("nics::leased::").items()}
    assert leased == {client_a.mac: ip_a, host_b.mac: ip_b, local.mac: ip_local}
    for ip in (ip_a, ip_b, ip_local):
        assert f"ips::free::{ip}" not in sl.read("ips::free::")


def test_relayed_discover_is_answered_from_the_scope_option_82_or_118_names(
    sl: ScopeLab,
) -> None:
    ask = ["--giaddr", ROUTER_IP, "--server", sl.lab.server_ip, "--timeout", "5"]
    # The relay's own address is on the server LAN: giaddr alone selects that scope.
    plain = sl.router.probe(*ask, "--mac", "02:00:5e:14:00:01")
    assert plain and plain["type"] == 2 and in_pool(plain["yiaddr"], "198.18.0"), plain
    # Sub-option 5 of option 82 (RFC 3527) names LAN B: it wins over giaddr.
    linked = sl.router.probe(*ask, "--mac", "02:00:5e:14:00:02", "--link-selection", "198.18.33.0")
    assert linked and linked["type"] == 2, linked
    assert in_pool(linked["yiaddr"], "198.18.33"), linked
    assert linked["giaddr"] == ROUTER_IP
    assert linked["options"]["3"] == ipaddress.IPv4Address("198.18.33.1").packed.hex()
    assert linked["options"]["1"] == "ffffff00"
    # The relay agent information comes back as sent (RFC 3046 §2.2).
    assert "0504c6122100" in linked["options"]["82"], linked["options"]
    # Option 118 (RFC 3011) names LAN A.
    subnet = sl.router.probe(
        *ask, "--mac", "02:00:5e:14:00:03", "--subnet-selection", "198.18.32.0"
    )
    assert subnet and subnet["type"] == 2 and in_pool(subnet["yiaddr"], "198.18.32"), subnet
    # A link no scope covers: silence, counted as a drop.
    dropped = sum_metric(sl, "etcdhcp_packets_dropped_total", reason="no_scope")
    none = sl.router.probe(
        *ask, "--mac", "02:00:5e:14:00:04", "--link-selection", "198.18.99.0", "--timeout", "2"
    )
    assert none is None
    wait_until(
        lambda: sum_metric(sl, "etcdhcp_packets_dropped_total", reason="no_scope") > dropped,
        5,
        "the DISCOVER for an unserved link counted as dropped",
    )


def test_changed_router_reaches_a_client_at_its_next_renewal(
    sl: ScopeLab, client_a: Client
) -> None:
    ip = client_a.address()
    changed = json.loads(sl.ctl("scope", "show", "2").stdout)
    changed["option-data"] = [{"name": "routers", "data": LAN_A_ROUTER_NEW}]
    seen = len(client_a.dhclient_events())
    written, _ = write(sl, "scope", "set", json.dumps(changed))
    converged(sl, 3, sl.mod_revision("config::subnet4::2"))

    def renewed() -> dict[str, str] | None:
        """The first event after the change that brought the new router."""
        events = client_a.dhclient_events()[seen:]
        return next((e for e in events if e.get("new_routers") == LAN_A_ROUTER_NEW), None)

    event = wait_until(renewed, 15, "dhclient's next renewal to bring the new router")
    took = time.time() - written
    print(f"\n[router change] reached dhclient on LAN A {took:.1f}s after `scope set` (T1 5 s)")
    # RENEW: T1's unicast renewal through the router was answered (not REBIND at T2).
    assert event["reason"] == "RENEW" and event["new_ip_address"] == ip, event
    assert took < 8
    assert client_a.address() == ip
    # dhclient writes its lease file at most every 15 s (MIN_LEASE_WRITE): it follows.
    wait_until(
        lambda: f"option routers {LAN_A_ROUTER_NEW};" in last_lease(client_a),
        20,
        "dhclient's lease file to record the new router",
    )
    assert f"fixed-address {ip};" in last_lease(client_a)


def test_scope_added_while_serving_is_served_within_seconds(sl: ScopeLab) -> None:
    probe_host = sl.router.add_client("c", "lan-c-probe")
    out = sl.lab.workdir / "probe-lan-c.json"
    dropped = sum_metric(sl, "etcdhcp_packets_dropped_total", reason="no_scope")
    probe = start_probe(probe_host, ["--every", "0.1", "--timeout", "30"], out)
    try:
        # LAN C has no scope yet: its DISCOVERs reach both servers and are dropped.
        wait_until(
            lambda: (
                sum_metric(sl, "etcdhcp_packets_dropped_total", reason="no_scope") >= dropped + 4
            ),
            15,
            "LAN C's DISCOVERs dropped for want of a scope",
        )
        written, done = write(sl, "scope", "add", json.dumps(LAN_C))
        assert done.stdout == "added 1 document: subnet4/4\n"
        revision = sl.mod_revision("config::subnet4::4")
        took = converged(sl, 4, revision)
        assert probe.wait(30) == 0
    finally:
        if probe.poll() is None:
            probe.kill()
    answer = json.loads(out.read_text())
    assert answer and answer["type"] == 2, answer
    assert in_pool(answer["yiaddr"], "198.18.34") and answer["giaddr"] == "198.18.34.1", answer
    offer_after = answer["t"] - written
    print(
        f"\n[apply latency] `scope add` returned -> first OFFER on LAN C: {offer_after:.3f}s; "
        f"-> etcdhcp_config_revision >= {revision}: server 198.18.0.1 {took[0]:.3f}s, "
        f"server 198.18.0.12 {took[1]:.3f}s (polled)"
    )
    assert offer_after < 3.0
    assert max(took) < 2.0


def _ensure_lan_c(sl: ScopeLab) -> None:
    """LAN C's scope as the test of adding it leaves it (when that test did not run)."""
    if "config::subnet4::4" not in config_keys(sl):
        write(sl, "scope", "add", json.dumps(LAN_C))
        converged(sl, 4, sl.mod_revision("config::subnet4::4"))


def test_removed_scope_naks_renewals_honours_releases_and_keeps_leases(sl: ScopeLab) -> None:
    _ensure_lan_c(sl)
    keeper = sl.router.add_client("c", "lan-c-keeper")
    leaver = sl.router.add_client("c", "lan-c-leaver")
    kept, left = keeper.dhclient(), leaver.dhclient()
    assert in_pool(kept, "198.18.34") and in_pool(left, "198.18.34"), (kept, left)
    assert free_in(sl, "198.18.34")
    naks = sum_metric(sl, "etcdhcp_replies_sent_total", type="nak")

    removal = next_revision(sl)
    written, done = write(sl, "scope", "remove", "4")
    assert done.stdout == "removed 1 document: subnet4/4\n"
    converged(sl, 3, removal)
    # A RELEASE is honoured (before the leaver's renewal, T1 = 10 s, would be NAKed).
    assert leaver.dhclient_release() == 0, leaver.last_output
    wait_until(lambda: f"ips::leased::{left}" not in sl.read("ips::leased::"), 10, "the release")
    assert f"nics::leased::{leaver.mac}" not in sl.read("nics::leased::")
    # The free addresses are phased out (the released one does not go back); the
    # other lease stays until it ends.
    wait_until(lambda: not free_in(sl, "198.18.34"), 10, "LAN C's free keys to be deleted")
    print(f"\n[scope removed] free keys gone {time.time() - written:.1f}s after `scope remove`")
    keys = sl.read()
    assert keys.get(f"ips::leased::{kept}") == keeper.mac
    assert keys.get(f"nics::leased::{keeper.mac}") == kept

    # The keeper's next renewal (unicast through the router) is NAKed, and the NAK
    # reaches it: dhclient drops the address.
    wait_until(lambda: keeper.address() is None, 20, "dhclient to drop its address on a NAK")
    assert sum_metric(sl, "etcdhcp_replies_sent_total", type="nak") > naks
    assert f"NAK {keeper.mac} for {kept}" in "".join(s.log() for s in sl.servers)
    keys = sl.read()  # the NAK does not end the lease: it runs out
    assert keys.get(f"ips::leased::{kept}") == keeper.mac
    assert f"ips::free::{kept}" not in keys
    keeper.dhclient_stop()


def test_both_servers_follow_every_change(sl: ScopeLab) -> None:
    """Add, grow, shrink and remove a scope: after each, both servers serve the same
    number of scopes from the same config revision, and the free pool follows."""
    base = len(json.loads(sl.ctl("scope", "list", "--json").stdout))
    scope = {
        "id": 9,
        "subnet": "198.18.40.0/24",
        "pools": [{"pool": "198.18.40.10 - 198.18.40.19"}],
    }
    steps = [
        ("add", [{"pool": "198.18.40.10 - 198.18.40.19"}], 10),
        ("set", [{"pool": "198.18.40.10 - 198.18.40.19"}, {"pool": "198.18.40.28/30"}], 14),
        ("set", [{"pool": "198.18.40.12 - 198.18.40.13"}], 2),
    ]
    for verb, pools, free in steps:
        write(sl, "scope", verb, json.dumps({**scope, "pools": pools}))
        revision = sl.mod_revision("config::subnet4::9")
        converged(sl, base + 1, revision)
        seen = revisions(sl)
        assert len(set(seen)) == 1, f"after {verb}: servers differ: {seen}"
        wait_until(lambda n=free: len(free_in(sl, "198.18.40")) == n, 10, f"{free} free keys")
    removal = next_revision(sl)
    write(sl, "scope", "remove", "9")
    converged(sl, base, removal)
    seen = revisions(sl)
    assert len(set(seen)) == 1, f"after remove: servers differ: {seen}"
    wait_until(lambda: not free_in(sl, "198.18.40"), 10, "the removed scope's free keys gone")


BAD = [
    (
        "overlapping subnets",
        {
            "id": 20,
            "subnet": "198.18.33.128/25",
            "pools": [{"pool": "198.18.33.200 - 198.18.33.210"}],
        },
        r"subnet 198\.18\.33\.128/25 overlaps 198\.18\.33\.0/24 of scope 3",
    ),
    (
        "pool outside its subnet",
        {"id": 21, "subnet": "198.18.41.0/24", "pools": [{"pool": "198.18.42.1 - 198.18.42.9"}]},
        r"subnet4/21\.pools\[0\]\.pool: .* is outside 198\.18\.41\.0/24",
    ),
    (
        "router outside its subnet",
        {
            "id": 22,
            "subnet": "198.18.41.0/24",
            "option-data": [{"name": "routers", "data": "198.18.0.1"}],
        },
        r"subnet4/22\.option-data\.routers: router 198\.18\.0\.1 is outside 198\.18\.41\.0/24",
    ),
    (
        "unknown key",
        {"id": 23, "subnet": "198.18.41.0/24", "match-client-id": True},
        r"subnet4/23\.match-client-id: is not supported",
    ),
    (
        "duplicate id",
        {"name": "dup", "subnet4": [{"id": 2, "subnet": "198.18.43.0/24"}]},
        r"scope id 2 is used by",
    ),
]


def test_bad_documents_through_etcdhcpctl_are_refused_and_write_nothing(sl: ScopeLab) -> None:
    before = config_keys(sl)
    for problem, document, expected in BAD:
        done = sl.ctl("scope", "add", json.dumps(document))
        assert done.returncode == 1, (problem, done)
        assert done.stdout == "", (problem, done.stdout)
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("etcdhcpctl: "), (
            problem,
            done.stderr,
        )
        assert re.search(expected, done.stderr), (problem, done.stderr)
        assert "Traceback" not in done.stderr
    # The same through a whole file, and a duplicate inside one file.
    _, outside, expected = BAD[1]
    kea = sl.lab.workdir / "bad.json"
    kea.write_text(json.dumps({"subnet4": [outside]}))
    done = sl.ctl("scope", "import", str(kea))
    assert done.returncode == 1 and re.search(expected, done.stderr), done
    twice = [{"id": 24, "subnet": "198.18.44.0/24"}, {"id": 24, "subnet": "198.18.45.0/24"}]
    kea.write_text(json.dumps({"subnet4": twice}))
    done = sl.ctl("scope", "import", str(kea))
    assert done.returncode == 1 and "subnet4/24 is in the file twice" in done.stderr, done
    assert config_keys(sl) == before


def test_bad_document_put_by_hand_keeps_the_previous_version_serving(sl: ScopeLab) -> None:
    key = "config::subnet4::3"
    good = config_keys(sl)[key]
    served = int(revisions(sl)[0][0])
    bad = json.loads(good)
    bad["pools"] = [{"pool": "198.18.99.1 - 198.18.99.9"}]
    rejected = "config document subnet4/3 refused, its previous version kept"
    sl.etcdctl("put", sl.prefix + key, json.dumps(bad))
    try:
        wait_until(
            lambda: all(s.metric("etcdhcp_config_documents_rejected") == 1 for s in sl.servers),
            10,
            "both servers to count the refused document",
        )
        # Another change rebuilds the view: the refusal is not logged again.
        write(sl, "scope", "add", json.dumps({"id": 30, "subnet": "198.18.46.0/24"}))
        converged(sl, served + 1, sl.mod_revision("config::subnet4::30"))
        for server in sl.servers:
            lines = [line for line in server.log().splitlines() if rejected in line]
            assert len(lines) == 1, lines
            assert "198.18.99.1 - 198.18.99.9" in lines[0] and "outside 198.18.33.0/24" in lines[0]
        # LAN B is still served from the previous version of its scope.
        host = sl.router.add_client("b", "lan-b-after")
        ip = host.udhcpc()
        assert in_pool(ip, "198.18.33"), host.last_output
        assert host.udhcpc_env["router"] == "198.18.33.1"
        # etcdhcpctl check and scope list report it.
        check = sl.ctl("check")
        assert check.returncode == 1, check
        assert "refused_scope_document" in check.stdout and "subnet4/3" in check.stdout, check
        listed = sl.ctl("scope", "list")
        assert listed.returncode == 1 and "refused: " in listed.stdout, listed
    finally:
        sl.etcdctl("put", sl.prefix + key, good)
        sl.ctl("scope", "remove", "30")
    wait_until(
        lambda: all(s.metric("etcdhcp_config_documents_rejected") == 0 for s in sl.servers),
        10,
        "both servers to accept the repaired document",
    )
    assert sl.ctl("scope", "list").returncode == 0


def test_a_host_reaches_both_servers_and_a_bad_record_by_hand_changes_nothing(
    sl: ScopeLab,
) -> None:
    """Host records (docs/hosts.md) follow the rules of scope documents: live on every
    server; a record put by hand that does not parse leaves the previous one served."""
    mac = "02:00:5e:21:00:60"
    host = {"hw-address": mac, "ip-address": "198.18.33.60", "hostname": "lan-b-60"}
    before = [s.metric("etcdhcp_hosts") for s in sl.servers]
    added = sl.ctl("host", "add", json.dumps(host), "--scope", "3")
    assert added.returncode == 0, added
    wait_until(
        lambda: [s.metric("etcdhcp_hosts") for s in sl.servers] == [n + 1 for n in before],
        5,
        "both servers to serve the new host",
    )
    key = f"hosts::3::hw-address::{mac}"
    good = sl.read(key)[key]
    sl.etcdctl("put", sl.prefix + key, json.dumps({**host, "lease-time": 60}))
    try:
        wait_until(
            lambda: all(s.metric("etcdhcp_host_records_rejected") == 1 for s in sl.servers),
            10,
            "both servers to count the refused record",
        )
        # The previous version stays served: the client gets its reserved address.
        client = sl.router.add_client("b", "lan-b-host-60", mac=mac)
        assert client.udhcpc() == "198.18.33.60", client.last_output
        check = sl.ctl("check")
        assert check.returncode == 1 and "refused_host_record" in check.stdout, check
        refused = [s.log().count(f"host record 3/hw-address={mac} refused") for s in sl.servers]
        assert refused == [1, 1], refused  # one line per server, not one per packet
    finally:
        sl.etcdctl("put", sl.prefix + key, good)
    wait_until(
        lambda: all(s.metric("etcdhcp_host_records_rejected") == 0 for s in sl.servers),
        10,
        "both servers to accept the repaired record",
    )
    assert sl.ctl("host", "remove", f"3/hw-address={mac}").returncode == 0
