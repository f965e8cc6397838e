"""etcdhcpctl against the real etcd: every command, as a table and as JSON.

The state it reads is written by `LeaseStore` as a daemon would (and by hand, as an
operator with etcdctl would, to break invariants for `check`). Commands run in-process
through `ctl.main`; the error paths also run as a real process, to see exactly what
an operator sees on stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Ctl, Keys
from etcdhcp import ctl
from etcdhcp.config import etcd_fields, parse_flags
from etcdhcp.etcd import Etcd
from etcdhcp.store import LeaseStore, ServerInfo
from stores import make_store
from test_etcd import dead_endpoint
from test_store import POOL

MAC1, MAC2, MAC3 = "02:00:5e:00:00:01", "02:00:5e:00:00:02", "02:00:5e:00:00:03"
OUTSIDE = "198.18.0.200"
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def store(etcd: Etcd, etcd_prefix: str) -> LeaseStore:
    s = make_store(etcd, etcd_prefix, POOL[0], POOL[-1])
    assert s.seed() == len(POOL)
    return s


def register(store: LeaseStore, server_ip: str, first: str, last: str) -> None:
    info = ServerInfo(
        server_ip, "br0", first, last, "test", 1_800_000_000.0, "host-a", 4242, "198.18.0.0/24"
    )
    store.register(info, store.etcd.grant(60))


def lease(store: LeaseStore, mac: str, ip: str, hostname: str | None = None) -> None:
    assert store.commit(mac, ip, allow_free=True, hostname=hostname).lease is not None


def lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


# ---- reading leases --------------------------------------------------------------------


def test_leases_as_json_and_as_a_table(store: LeaseStore, keys: Keys, run: Ctl) -> None:
    assert run.json("leases") == []
    assert lines(run("leases")) == [["MAC", "IP", "EXPIRES", "SERVER", "HOSTNAME", "RESERVED"]]
    lease(store, MAC1, POOL[3], hostname="laptop")
    lease(store, MAC2, POOL[1])
    keys.put(f"nics::leased::{MAC3}", OUTSIDE)  # a hand pin: no lease record
    keys.put(f"ips::leased::{OUTSIDE}", MAC3)
    found = run.json("leases")
    assert [(x["ip"], x["mac"]) for x in found] == [
        (POOL[1], MAC2),
        (POOL[3], MAC1),
        (OUTSIDE, MAC3),
    ]
    first = found[1]
    assert first["hostname"] == "laptop" and first["server"] == "198.18.0.1"
    assert first["expires"] == pytest.approx(time.time() + 60, abs=30)
    assert first["reserved"] is False
    assert found[2] == {
        "ip": OUTSIDE,
        "mac": MAC3,
        "expires": None,
        "granted": None,
        "server": None,
        "hostname": None,
        "client_id": None,
        "host": None,
        "classes": None,
        "reserved": False,
    }
    table = lines(run("leases"))
    assert table[2][:2] == [MAC1, POOL[3]] and table[2][-3:] == ["198.18.0.1", "laptop", "-"]
    assert table[3] == [MAC3, OUTSIDE, "-", "-", "-", "-"]


def test_lease_show_by_mac_or_address(store: LeaseStore, run: Ctl) -> None:
    lease(store, MAC1, POOL[0], hostname="pc")
    by_mac = run.json("lease", "show", MAC1.upper().replace(":", "-"))  # any common spelling
    assert by_mac == run.json("lease", "show", POOL[0])
    assert by_mac["mac"] == MAC1 and by_mac["ip"] == POOL[0] and by_mac["hostname"] == "pc"
    table = dict(line.split(None, 1) for line in run("lease", "show", MAC1).splitlines()[1:])
    assert table["ip"] == POOL[0] and table["hostname"] == "pc" and table["reserved"] == "no"
    # The host record and classes that served a lease.
    granted = store.commit(
        MAC2, POOL[1], allow_free=True, host="0/hw-address=" + MAC2, classes=["KNOWN", "lab"]
    )
    assert granted.lease is not None
    table = dict(line.split(None, 1) for line in run("lease", "show", MAC2).splitlines()[1:])
    assert table["host"] == f"0/hw-address={MAC2}" and table["classes"] == "KNOWN,lab"
    assert run.json("lease", "show", MAC2)["classes"] == ["KNOWN", "lab"]
    run("release", MAC2)
    assert run.fails("lease", "show", MAC2) == f"etcdhcpctl: no lease for {MAC2}"
    assert run.fails("lease", "show", POOL[4]) == f"etcdhcpctl: no lease for {POOL[4]}"
    bad = run.fails("lease", "show", "08:00:zz", code=2)
    assert bad == "etcdhcpctl: MAC|IP: '08:00:zz' is neither a MAC nor an IPv4 address"


# ---- reservations ----------------------------------------------------------------------


def test_reserve_list_and_unreserve(store: LeaseStore, keys: Keys, run: Ctl) -> None:
    register(store, "198.18.0.1", POOL[0], POOL[-1])
    assert run.json("reserve", MAC1, POOL[2]) == {"mac": MAC1, "ip": POOL[2], "created": True}
    assert run("reserve", MAC1, POOL[2]) == f"{POOL[2]} was already reserved for {MAC1}\n"
    assert keys.get(f"ips::free::{POOL[2]}") is None
    assert run.json("reservations") == [{"mac": MAC1, "ip": POOL[2]}]
    assert lines(run("reservations")) == [["MAC", "IP"], [MAC1, POOL[2]]]
    assert store.offer(MAC1) == POOL[2]
    lease(store, MAC1, POOL[2])
    assert run.json("lease", "show", MAC1)["reserved"] is True
    assert run.json("leases")[0]["reserved"] is True
    lease(store, MAC2, POOL[0])
    refused = run.fails("reserve", MAC3, POOL[0])
    assert refused == f"etcdhcpctl: {POOL[0]} is leased to {MAC2}"
    assert run.fails("reserve", MAC1, POOL[4]).startswith(
        f"etcdhcpctl: {MAC1} already has a reservation: {POOL[2]}"
    )
    assert run("unreserve", MAC1) == f"{MAC1} no longer has {POOL[2]} reserved\n"
    assert run.json("reservations") == []
    assert run.fails("unreserve", MAC1) == f"etcdhcpctl: {MAC1} has no reservation"
    assert run.fails("reserve", MAC1, "198.18.0", code=2).endswith("is not an IPv4 address")
    assert run.fails("reserve", "nope", POOL[1], code=2).endswith("'nope' is not a MAC address")


def test_reserve_refuses_an_address_outside_every_served_subnet(
    store: LeaseStore, keys: Keys, run: Ctl
) -> None:
    """Issue 17, item 8: a client given it would have a router it cannot reach."""
    assert "in no served scope's subnet" in run.fails("reserve", MAC1, "198.18.0.12")
    register(store, "198.18.0.1", POOL[0], POOL[-1])  # serves 198.18.0.0/24
    assert "in no served scope's subnet" in run.fails("reserve", MAC1, "198.18.9.9")
    assert keys.get(f"reservations::{MAC1}") is None
    # One already in etcd (written by hand or before scopes changed): check reports it.
    keys.put(f"reservations::{MAC1}", "198.18.9.9")
    keys.put("ips::reserved::198.18.9.9", MAC1)
    code, out, _ = run.run("check", "--json")
    found = {p["kind"]: p for p in json.loads(out)["problems"]}
    assert code == 1
    assert found["reservation_outside_scopes"]["ip"] == "198.18.9.9"


# ---- release --------------------------------------------------------------------------


def test_release_frees_addresses_in_a_live_range_and_only_deletes_others(
    store: LeaseStore, keys: Keys, run: Ctl
) -> None:
    register(store, "198.18.0.1", POOL[0], POOL[-1])
    lease(store, MAC1, POOL[0])
    assert run("release", MAC1) == f"released {POOL[0]} from {MAC1}: it is free again\n"
    assert keys.get(f"ips::free::{POOL[0]}") == POOL[0]
    assert keys.get(f"nics::leased::{MAC1}") is None

    keys.put(f"ips::free::{OUTSIDE}", OUTSIDE)
    lease(store, MAC2, OUTSIDE)
    assert run.json("release", OUTSIDE) == {"mac": MAC2, "ip": OUTSIDE, "now": "unassigned"}
    assert keys.get(f"ips::free::{OUTSIDE}") is None
    assert keys.get(f"ips::leased::{OUTSIDE}") is None

    keys.put(f"ips::free::{OUTSIDE}", OUTSIDE)
    lease(store, MAC2, OUTSIDE)
    assert run.json("release", MAC2, "--to-pool")["now"] == "free"
    assert keys.get(f"ips::free::{OUTSIDE}") == OUTSIDE

    assert store.reserve(MAC3, POOL[1])
    lease(store, MAC3, POOL[1])
    assert run.json("release", POOL[1], "--to-pool")["now"] == "reserved"
    assert keys.get(f"ips::free::{POOL[1]}") is None
    assert run.fails("release", MAC3) == f"etcdhcpctl: no lease for {MAC3}"


# ---- the pool -----------------------------------------------------------------------------


def test_pool_counts_states_per_live_range(store: LeaseStore, keys: Keys, run: Ctl) -> None:
    empty = {"free": 0, "offered": 0, "leased": 0, "reserved": 0, "quarantined": 0}
    assert run.json("pool") == {"ranges": [], "outside": {**empty, "free": len(POOL)}}
    register(store, "198.18.0.1", POOL[0], POOL[-1])
    register(store, "198.18.0.2", POOL[0], POOL[-1])  # active-active: one range, two servers
    lease(store, MAC1, POOL[0])
    assert store.offer(MAC2, POOL[1]) == POOL[1]
    assert store.decline(MAC2, POOL[1])
    assert store.reserve(MAC3, POOL[2])
    assert store.offer(MAC3) == POOL[2]  # a reserved address is offered without a hold
    keys.put(f"ips::free::{OUTSIDE}", OUTSIDE)
    assert store.offer("02:00:5e:00:00:09", OUTSIDE) == OUTSIDE
    summary = run.json("pool")
    assert summary == {
        "ranges": [
            {
                "scope": "flags",
                "subnet": "198.18.0.0/24",
                "from": POOL[0],
                "to": POOL[-1],
                "size": len(POOL),
                "servers": ["198.18.0.1", "198.18.0.2"],
                "free": 2,
                "offered": 0,
                "leased": 1,
                "reserved": 1,
                "quarantined": 1,
            }
        ],
        "outside": {**empty, "offered": 1},
    }
    assert lines(run("pool")) == [
        [
            "SCOPE",
            "POOL",
            "SIZE",
            "FREE",
            "OFFERED",
            "LEASED",
            "RESERVED",
            "QUARANTINED",
            "SERVERS",
        ],
        [
            "flags",
            f"{POOL[0]}-{POOL[-1]}",
            "5",
            "2",
            "0",
            "1",
            "1",
            "1",
            "198.18.0.1,",
            "198.18.0.2",
        ],
        ["-", "outside", "every", "pool", "-", "0", "1", "0", "0", "0", "-"],
    ]


def test_pool_add_and_remove(store: LeaseStore, keys: Keys, run: Ctl) -> None:
    added = run.json("pool", "add", "198.18.1.250", "198.18.2.5")
    assert added == {"from": "198.18.1.250", "to": "198.18.2.5", "added": 12, "skipped": 0}
    out = run("pool", "add", "198.18.1.254", "198.18.2.0")
    assert out.startswith("added 0 free addresses; 3 were already free or in use\n")
    assert "outside every served pool" in out
    assert keys.get("ips::free::198.18.2.5") == "198.18.2.5"

    register(store, "198.18.0.1", POOL[0], POOL[-1])
    lease(store, MAC1, POOL[1])
    assert store.reserve(MAC2, POOL[3])
    removed = run.json("pool", "remove", POOL[0], "198.18.1.255")
    assert removed == {
        "from": POOL[0],
        "to": "198.18.1.255",
        "removed": 3 + 6,  # POOL[0], POOL[2], POOL[4]; 198.18.1.250-255
        "kept": {
            "leased": [{"ip": POOL[1], "mac": MAC1}],
            "offered": [],
            "reserved": [{"ip": POOL[3], "mac": MAC2}],
            "quarantined": [],
        },
        "seeded_by": ["198.18.0.1"],
    }
    assert keys.get(f"ips::leased::{POOL[1]}") == MAC1
    assert keys.get("ips::free::198.18.2.0") == "198.18.2.0"  # after TO: kept
    text = run("pool", "remove", "198.18.2.0", "198.18.2.1")
    assert text == "removed 2 free addresses\n"
    text = run("pool", "remove", POOL[0], POOL[1])
    assert f"kept 1 leased: {POOL[1]} ({MAC1})" in text and "are served pools" in text
    assert (
        run.fails("pool", "add", POOL[1], POOL[0])
        == f"etcdhcpctl: {POOL[0]} comes before {POOL[1]}"
    )
    too_many = run.fails("pool", "remove", "10.0.0.0", "10.1.0.0")
    assert too_many == "etcdhcpctl: 65537 addresses: at most 65536 at once"


def test_servers(store: LeaseStore, run: Ctl) -> None:
    assert run.json("servers") == []
    assert lines(run("servers")) == [
        ["SERVER", "INTERFACE", "RANGE", "VERSION", "HOSTNAME", "PID", "STARTED"]
    ]
    register(store, "198.18.0.2", "198.18.0.100", "198.18.0.150")
    register(store, "198.18.0.1", POOL[0], POOL[-1])
    found = run.json("servers")
    assert [s["server_ip"] for s in found] == ["198.18.0.1", "198.18.0.2"]
    assert found[0] == {
        "server_ip": "198.18.0.1",
        "interface": "br0",
        "range_from": POOL[0],
        "range_to": POOL[-1],
        "version": "test",
        "started": 1_800_000_000.0,
        "hostname": "host-a",
        "pid": 4242,
        "subnet": "198.18.0.0/24",
    }
    assert lines(run("servers"))[1][:5] == [
        "198.18.0.1",
        "br0",
        f"{POOL[0]}-{POOL[-1]}",
        "test",
        "host-a",
    ]


# ---- watch ---------------------------------------------------------------------------------


def test_watch_reports_connects_and_disconnects_not_renewals(
    store: LeaseStore, etcd: Etcd, run: Ctl
) -> None:
    start = etcd.range("anything").header.revision + 1

    def device_life() -> None:
        time.sleep(0.5)
        lease(store, MAC1, POOL[0])
        lease(store, MAC1, POOL[0])  # a renewal: no event
        assert store.release(MAC1, POOL[0])
        lease(store, MAC2, POOL[1])

    actor = threading.Thread(target=device_life)
    actor.start()
    events = [
        json.loads(line)
        for line in run("watch", "--json", "--count", "3", "--timeout", "30").splitlines()
    ]
    actor.join(10)
    assert [(e["event"], e["mac"], e["ip"]) for e in events] == [
        ("connect", MAC1, POOL[0]),
        ("disconnect", MAC1, POOL[0]),
        ("connect", MAC2, POOL[1]),
    ]
    revisions = [e["revision"] for e in events]
    assert revisions == sorted(revisions) and revisions[0] >= start
    # Resuming from a revision replays what happened since; --timeout ends the watch.
    replayed = run("watch", "--from-revision", str(revisions[1]), "--timeout", "1")
    assert lines(replayed) == [
        ["REVISION", "EVENT", "MAC", "IP"],
        [str(revisions[1]), "disconnect", MAC1, POOL[0]],
        [str(revisions[2]), "connect", MAC2, POOL[1]],
    ]
    assert run.fails("watch", "--count", "0", code=2).endswith("0 is less than 1")


# ---- check -----------------------------------------------------------------------------


def test_check_finds_and_repairs_what_is_safe(store: LeaseStore, keys: Keys, run: Ctl) -> None:
    register(store, "198.18.0.1", POOL[0], POOL[-1])  # its subnet holds every address below
    lease(store, MAC1, POOL[0])
    assert store.reserve(MAC2, POOL[1])
    assert run("check") == "consistent: no problems found\n"
    assert run.json("check") == {"consistent": True, "problems": []}

    for ip in (POOL[2], POOL[4]):
        keys.delete(f"ips::free::{ip}")
    keys.put(f"ips::leased::{POOL[2]}", "02:00:5e:00:00:a1")  # no MAC key
    keys.put("nics::leased::02:00:5e:00:00:a2", POOL[3])  # no address key
    keys.put(f"ips::leased::{POOL[4]}", MAC1)  # MAC1 with two addresses
    keys.put(f"ips::free::{POOL[0]}", POOL[0])  # free and leased
    keys.put(f"ips::leased::{POOL[1]}", MAC3)  # the reserved address leased to another MAC
    keys.put(f"nics::leased::{MAC3}", POOL[1])
    keys.put("ips::reserved::198.18.0.77", MAC3)  # half a reservation

    code, out, _ = run.run("check", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["consistent"] is False
    found = {(p["kind"], p["ip"], p["repairable"]) for p in report["problems"]}
    assert found == {
        ("orphan_lease", POOL[2], True),
        ("orphan_lease", POOL[3], True),
        ("two_leases", POOL[4], True),
        ("free_and_leased", POOL[0], True),
        ("reservation_collision", POOL[1], False),
        ("half_reservation", "198.18.0.77", False),
    }
    assert keys.get(f"ips::leased::{POOL[2]}") is not None  # checking changes nothing

    code, out, _ = run.run("check", "--repair")
    assert code == 1  # what is not safe to repair is left to the operator
    assert out.startswith("6 problems found, 4 repaired\n")
    assert lines(out)[1] == ["KIND", "REPAIRED", "DETAIL"]
    assert keys.get(f"ips::leased::{POOL[2]}") is None
    assert keys.get("nics::leased::02:00:5e:00:00:a2") is None
    assert keys.get(f"ips::leased::{POOL[4]}") is None
    assert keys.get(f"ips::free::{POOL[0]}") is None
    assert keys.get(f"ips::leased::{POOL[0]}") == MAC1  # the real lease is untouched
    assert keys.get(f"nics::leased::{MAC1}") == POOL[0]

    run("release", MAC3)  # the operator's part: end the colliding lease...
    run("reserve", MAC3, "198.18.0.77")  # ...and complete the half reservation
    assert run("check") == "consistent: no problems found\n"


def test_check_repair_exits_0_when_everything_was_repaired(keys: Keys, run: Ctl) -> None:
    keys.put("nics::offered::02:00:5e:00:00:b1", POOL[0])  # an offer's orphan half
    code, out, _ = run.run("check")
    assert code == 1 and "orphan_offer" in out and "REPAIRABLE" in out
    assert run.json("check", "--repair")["problems"][0]["repaired"] is True
    assert run("check") == "consistent: no problems found\n"


# ---- flags, configuration, errors --------------------------------------------------------


def test_etcd_flags_from_anywhere_environment_and_config_file(
    store: LeaseStore,
    etcd_server: Any,
    etcd_prefix: str,
    run: Ctl,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lease(store, MAC1, POOL[0])
    expected = [{**run.json("lease", "show", MAC1)}]
    endpoint = ["-etcd.discovery.endpoints", etcd_server.endpoint]  # Go style, as the daemon
    assert run.json(*endpoint, "leases", "-etcd.prefix", etcd_prefix) == expected  # after it
    assert json.loads(run("--json", "leases")) == expected  # --json before the command
    conf = tmp_path / "etcdhcp.conf"
    conf.write_text(f"etcd.discovery.endpoints = {etcd_server.endpoint}\n")
    monkeypatch.setenv("ETCDHCP_ETCD_PREFIX", etcd_prefix)
    code, out, err = run.run(f"--config={conf}", "leases", "--json", flags=False)
    assert (code, err) == (0, "") and json.loads(out) == expected
    # No endpoint: the embedded etcd's client address (here moved to the test's etcd).
    monkeypatch.setenv("ETCDHCP_ETCD_EMBEDDED_LISTEN", f"127.0.0.1:{etcd_server.port}")
    code, out, err = run.run("leases", "--json", flags=False)
    assert (code, err) == (0, "") and json.loads(out) == expected


def test_without_an_endpoint_it_talks_to_the_embedded_etcds_address() -> None:
    flags = parse_flags(ctl.build_parser(), ["--config=", "leases"], env={})
    assert ctl._endpoints(etcd_fields(flags)) == ["http://127.0.0.1:2479"]


def ctl_process(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etcdhcp.ctl", "--config=", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_errors_are_one_line_on_stderr_never_a_traceback() -> None:
    dead = dead_endpoint()
    down = ctl_process("--etcd.discovery.endpoints", dead, "leases")
    assert down.returncode == 1 and down.stdout == ""
    assert down.stderr.startswith(f"etcdhcpctl: etcd unreachable at http://{dead}: ")
    assert down.stderr.count("\n") == 1
    for args, message in (
        (["reserve", "02:00:5e:00:00:01"], "the following arguments are required: IP"),
        (["lease", "show", "x"], "MAC|IP: 'x' is neither a MAC nor an IPv4 address"),
        (["bogus"], "COMMAND: invalid choice: 'bogus'"),
        (["--etcd.discovery.endpoints", "ftp://x", "leases"], "scheme must be http or https"),
        (["leases", "--etcd.prefx", "p"], "unrecognized argument --etcd.prefx"),
    ):
        bad = ctl_process(*args)
        assert bad.returncode == 2, bad
        assert bad.stderr.count("\n") == 1 and message in bad.stderr, bad.stderr
        assert bad.stderr.startswith("etcdhcpctl: ")
    helped = ctl_process("watch", "--help")
    assert helped.returncode == 0 and "--from-revision" in helped.stdout


def test_watch_from_a_compacted_revision_says_so(
    store: LeaseStore, etcd: Etcd, etcd_client: Any, run: Ctl
) -> None:
    lease(store, MAC1, POOL[0])
    compacted = etcd.range("anything").header.revision
    etcd_client.compact(compacted)
    told = run.fails("watch", "--from-revision", "1", "--timeout", "10")
    assert told == (
        f"etcdhcpctl: etcd: revision 1 is compacted; the oldest one left is {compacted}"
    )
