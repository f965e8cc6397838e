"""`etcdhcpctl host ...` against the real etcd: every command, every refusal, the keys
written (the record and the legacy reservation keys of its address), and the batches.

Commands run in-process through `ctl.main` (the Ctl helper of test_ctl).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import Keys
from etcdhcp import store as store_module
from etcdhcp.etcd import Etcd
from etcdhcp.hosts import HW_ADDRESS, parse_host
from etcdhcp.store import HostStore, LeaseStore
from test_ctl import Ctl

MAC1, MAC2, MAC3 = "02:00:5e:00:00:01", "02:00:5e:00:00:02", "02:00:5e:00:00:03"
OTHER = "02:00:5e:ff:00:01"  # a client with no host among `many`
LAN = {"id": 1, "subnet": "198.18.1.0/24", "pools": [{"pool": "198.18.1.100 - 198.18.1.199"}]}
OFFICE = {"id": 2, "subnet": "198.18.2.0/24"}
PC = {"hw-address": MAC1, "ip-address": "198.18.1.10", "hostname": "pc-1"}


@pytest.fixture
def run(etcd_server: Any, etcd_prefix: str, capsys: pytest.CaptureFixture[str]) -> Ctl:
    ctl = Ctl(etcd_server.endpoint, etcd_prefix, capsys)
    ctl("scope", "add", json.dumps(LAN))
    ctl("scope", "add", json.dumps(OFFICE))
    return ctl


def hosts(keys: Keys) -> dict[str, Any]:
    """The host records in etcd: key under `hosts::` -> parsed value."""
    return {
        k.removeprefix("hosts::"): json.loads(v)
        for k, v in keys.all().items()
        if k.startswith("hosts::")
    }


def reservation_keys(keys: Keys) -> dict[str, str]:
    """The keys of reserved addresses: `ips::reserved::` and `reservations::`."""
    return {
        k: v.decode()
        for k, v in keys.all().items()
        if k.startswith(("ips::reserved::", "reservations::"))
    }


def fails(run: Ctl, *args: str) -> list[str]:
    """The stderr lines of a command that must fail with exit status 1."""
    code, _out, err = run.run(*args)
    assert code == 1, err
    return err.splitlines()


def test_add_show_list_set_remove_and_the_keys_of_each(run: Ctl, keys: Keys) -> None:
    keys.put("ips::free::198.18.1.10", "198.18.1.10")
    out = run("host", "add", json.dumps({**PC, "hw-address": "02-00-5E-00-00-01"}))
    assert out == "added 1 host: 0/hw-address=02:00:5e:00:00:01\n"
    assert hosts(keys) == {f"0::hw-address::{MAC1}": PC}
    # The address is reserved exactly as `etcdhcpctl reserve` reserves it.
    assert reservation_keys(keys) == {
        "ips::reserved::198.18.1.10": MAC1,
        f"reservations::{MAC1}": "198.18.1.10",
    }
    assert keys.get("ips::free::198.18.1.10") is None
    assert run.json("reservations") == [{"mac": MAC1, "ip": "198.18.1.10"}]
    assert json.loads(run("host", "show", MAC1)) == PC
    assert json.loads(run("host", "show", f"0/hw-address={MAC1}")) == PC
    [row] = run.json("host", "list")
    assert row == {
        "id": f"0/hw-address={MAC1}",
        "ip": "198.18.1.10",
        "hostname": "pc-1",
        "boot_file": "",
        "classes": [],
        "status": "served",
        "problem": None,
    }
    moved = {**PC, "ip-address": "198.18.1.11", "boot-file-name": "pxelinux.0"}
    assert run("host", "set", json.dumps(moved)).startswith("replaced 1 host")
    assert hosts(keys) == {f"0::hw-address::{MAC1}": moved}
    assert reservation_keys(keys) == {
        "ips::reserved::198.18.1.11": MAC1,
        f"reservations::{MAC1}": "198.18.1.11",
    }
    assert run("host", "remove", MAC1) == f"removed 1 host: 0/hw-address={MAC1}\n"
    assert hosts(keys) == {} and reservation_keys(keys) == {}


def test_client_id_and_circuit_id_hosts_reserve_by_their_identifier(run: Ctl, keys: Keys) -> None:
    run("host", "add", '{"client-id": "01:02:03", "ip-address": "198.18.2.7"}', "--scope", "2")
    run("host", "add", json.dumps({"circuit-id": "'port-7'", "ip-address": "198.18.1.7"}))
    assert sorted(hosts(keys)) == [
        "0::circuit-id::70:6f:72:74:2d:37",
        "2::client-id::01:02:03",
    ]
    assert reservation_keys(keys) == {
        "ips::reserved::198.18.2.7": "client-id=01:02:03",
        "ips::reserved::198.18.1.7": "circuit-id=70:6f:72:74:2d:37",
    }
    assert json.loads(run("host", "show", "client-id=01:02:03"))["ip-address"] == "198.18.2.7"
    assert [r["id"] for r in run.json("host", "list", "--scope", "2")] == ["2/client-id=01:02:03"]
    # Reserved for an identifier, not a MAC: no by-MAC half is missing.
    assert run.json("check")["problems"] == []


def test_refusals_name_the_fault_and_write_nothing(run: Ctl, keys: Keys) -> None:
    run("host", "add", json.dumps(PC))
    before = keys.all()
    for args, error in [
        (
            ("host", "add", json.dumps({**PC, "ip-address": "198.18.1.12"})),
            f"host: 0/hw-address={MAC1} is there already (host set)",
        ),
        (
            ("host", "set", json.dumps({"hw-address": MAC2})),
            f"host: 0/hw-address={MAC2}: no such host (host add)",
        ),
        (
            ("host", "add", json.dumps({"hw-address": MAC2, "ip-address": "198.18.1.10"})),
            f"host: 198.18.1.10 is reserved for {MAC1}",
        ),
        (
            ("host", "add", json.dumps({**PC, "ip-address": "198.18.1.12"}), "--scope", "1"),
            f"host: {MAC1} already has 198.18.1.10 reserved (a host in another scope, or "
            "etcdhcpctl reserve): a MAC holds one reserved address",
        ),
        (
            ("host", "add", json.dumps({"hw-address": MAC2, "ip-address": "198.18.9.1"})),
            "host: 198.18.9.1 is outside every served subnet",
        ),
        (
            ("host", "add", json.dumps({"hw-address": MAC2}), "--scope", "7"),
            "host: scope 7 does not exist (etcdhcpctl scope list)",
        ),
        (
            ("host", "add", json.dumps({"hw-address": "02:00:5e:00:00"})),
            "host.hw-address: '02:00:5e:00:00' is not a MAC address (6 octets, e.g. "
            "02:00:5e:00:53:01)",
        ),
        (
            ("host", "add", json.dumps({"flex-id": "'x'"})),
            "host.flex-id: needs Kea's flex_id hook library, which etcdhcp does not have "
            "(docs/hosts.md)",
        ),
    ]:
        assert fails(run, *args) == [f"etcdhcpctl: refused, nothing written: {error}"], args
    assert keys.all() == before
    assert run.fails("host", "show", MAC2) == (
        f"etcdhcpctl: hw-address={MAC2}: no such host (etcdhcpctl host list)"
    )
    assert "'02:zz' is neither hex" in run.fails("host", "show", "02:zz", code=2)
    assert "'mac' is not one of" in run.fails("host", "remove", "mac=1", code=2)
    assert "is not a scope id" in run.fails("host", "list", "--scope", "x", code=2)


def test_a_legacy_reservation_is_the_same_host_and_other_clients_keep_theirs(
    run: Ctl, keys: Keys
) -> None:
    run("reserve", MAC1, "198.18.1.10")
    run("reserve", MAC2, "198.18.1.20")
    # The same MAC and address: the host adopts the reservation.
    assert run("host", "add", json.dumps(PC)).startswith("added 1 host")
    # Another address for a MAC reserved by `reserve`: refused, not moved.
    error = fails(run, "host", "add", json.dumps({"hw-address": MAC2, "ip-address": "198.18.1.21"}))
    assert error == [
        f"etcdhcpctl: refused, nothing written: host: {MAC2} already has 198.18.1.20 reserved "
        "(a host in another scope, or etcdhcpctl reserve): a MAC holds one reserved address"
    ]
    assert reservation_keys(keys) == {
        "ips::reserved::198.18.1.10": MAC1,
        f"reservations::{MAC1}": "198.18.1.10",
        "ips::reserved::198.18.1.20": MAC2,
        f"reservations::{MAC2}": "198.18.1.20",
    }


def test_an_address_another_client_leases_is_reserved_and_reported(run: Ctl, keys: Keys) -> None:
    keys.put("ips::leased::198.18.1.150", MAC3)
    keys.put(f"nics::leased::{MAC3}", "198.18.1.150")
    out = run("host", "add", json.dumps({"hw-address": MAC1, "ip-address": "198.18.1.150"}))
    assert out.splitlines() == [
        "note: host: 198.18.1.150 is leased to 02:00:5e:00:00:03 now: it is reserved from now "
        "on, and that client keeps it until its next renewal",
        f"added 1 host: 0/hw-address={MAC1}",
    ]
    assert keys.get("ips::reserved::198.18.1.150") == MAC1
    assert keys.get("ips::leased::198.18.1.150") == MAC3  # the lead's pipeline moves it


def test_a_global_host_and_a_scope_s_host_of_one_client_cannot_share_an_address(
    run: Ctl, keys: Keys
) -> None:
    run(
        "host",
        "add",
        json.dumps({"client-id": "01:02", "ip-address": "198.18.1.10"}),
        "--scope",
        "1",
    )
    twin = json.dumps({"client-id": "01:02", "ip-address": "198.18.1.10"})
    assert fails(run, "host", "add", twin) == [
        "etcdhcpctl: refused, nothing written: host: 198.18.1.10 is the address of "
        "1/client-id=01:02 too"
    ]
    run("host", "add", json.dumps({**PC, "ip-address": "198.18.1.20"}))
    assert fails(
        run, "host", "add", json.dumps({**PC, "ip-address": "198.18.1.20"}), "--scope", "1"
    ) == [
        "etcdhcpctl: refused, nothing written: host: 198.18.1.20 is the address of "
        f"0/hw-address={MAC1} too"
    ]
    # Without the address, or with the record it names removed, it is a host like any other.
    added = run.json("host", "add", json.dumps({"client-id": "01:02"}))
    assert added == {"added": ["0/client-id=01:02"], "unchanged": [], "notes": []}
    run("host", "remove", "1/client-id=01:02")
    assert keys.get("ips::reserved::198.18.1.10") is None
    run("host", "set", twin)
    assert keys.get("ips::reserved::198.18.1.10") == "client-id=01:02"


def test_remove_asks_which_scope_when_a_mac_has_hosts_in_two(run: Ctl, keys: Keys) -> None:
    run("host", "add", json.dumps({"hw-address": MAC1}), "--scope", "1")
    run("host", "add", json.dumps({"hw-address": MAC1}), "--scope", "2")
    assert run.fails("host", "remove", MAC1) == (
        f"etcdhcpctl: hw-address={MAC1} is a host in scopes 1, 2: name one, e.g. "
        f"1/hw-address={MAC1}"
    )
    run("host", "remove", f"2/hw-address={MAC1}")
    assert list(hosts(keys)) == [f"1::hw-address::{MAC1}"]


def test_a_record_written_by_hand_is_listed_as_refused(run: Ctl, keys: Keys) -> None:
    keys.put(f"hosts::0::hw-address::{MAC1}", '{"hw-address": "02:00:5e:00:00:01", "x": 1}')
    code, out, _err = run.run("host", "list")
    assert code == 1
    assert "refused: 0/hw-address=02:00:5e:00:00:01.x: is not supported" in out
    code, out, err = run.run("host", "export")
    # Nothing rather than a file that lacks a host unnoticed.
    assert code == 1 and out == ""
    assert err.startswith("etcdhcpctl: 1 records do not parse, nothing exported: 0/hw-address=")


def test_check_reports_refused_records_and_hosts_without_their_reserved_key(
    run: Ctl, keys: Keys
) -> None:
    run("host", "add", json.dumps(PC))
    assert run.run("check")[0] == 0
    keys.put(f"hosts::1::hw-address::{MAC2}", json.dumps({"hw-address": MAC2, "x": 1}))
    by_hand = {"hw-address": MAC3, "ip-address": "198.18.1.12"}
    keys.put(f"hosts::0::hw-address::{MAC3}", json.dumps(by_hand))  # no ips::reserved:: key
    keys.delete("ips::reserved::198.18.1.10")
    code, out, _err = run.run("check", "--json")
    assert code == 1
    found = {p["kind"]: p["detail"] for p in json.loads(out)["problems"]}
    assert found["refused_host_record"].startswith(f"1/hw-address={MAC2}.x: is not supported")
    kinds = sorted(p["kind"] for p in json.loads(out)["problems"])
    assert kinds == [
        "half_reservation",  # reservations::MAC1 names an address no longer reserved
        "host_not_reserved",
        "host_not_reserved",
        "refused_host_record",
    ]
    assert "0/hw-address=02:00:5e:00:00:03 has 198.18.1.12, reserved for nobody" in out


# ---- import and export ---------------------------------------------------------------------

CSV = """mac,ip,hostname,bootfile
02:00:5e:00:01:01,198.18.1.10,pc-1,pxelinux.0
02:00:5e:00:01:02,198.18.1.11,pc-2
"""
BAD_CSV = """mac,ip,hostname
02:00:5e:00:01:01,198.18.1.10,pc-1
02:00:5e:00:01:01,198.18.1.11,pc-1-again
02:00:5e:00:01:03,198.18.9.12,far-away
02:00:5e:00:01:0g,198.18.1.13,typo
02:00:5e:00:01:05,198.18.1.14,fine
"""
BAD_LINES = [
    "line 3: duplicate hw-address 02:00:5e:00:01:01 (line 2)",
    "line 4: 198.18.9.12 is outside every served subnet",
    "line 5: hw-address: '02:00:5e:00:01:0g' is neither hex nor 'quoted text'",
]
BAD_FILES = {
    "csv": (BAD_CSV, BAD_LINES),
    "dnsmasq": (
        "dhcp-host=02:00:5e:00:01:01,198.18.1.10,pc-1\n"
        "dhcp-host=02:00:5e:00:01:01,198.18.1.11,pc-1-again\n"
        "dhcp-host=02:00:5e:00:01:03,198.18.9.12,far-away\n"
        "dhcp-host=02:00:5e:00:01:0g,198.18.1.13,typo\n"
        "dhcp-host=02:00:5e:00:01:05,198.18.1.14,fine,12h\n",
        [
            "line 2: duplicate hw-address 02:00:5e:00:01:01 (line 1)",
            "line 3: 198.18.9.12 is outside every served subnet",
            "line 4: hw-address: '02:00:5e:00:01:0g' is neither hex nor 'quoted text'",
            "line 5: lease time 12h is not supported per host (the scope's valid-lifetime holds)",
        ],
    ),
    "ethers": (
        "02:00:5e:00:01:01 198.18.1.10\n"
        "02:00:5e:00:01:01 198.18.1.11\n"
        "02:00:5e:00:01:03 198.18.9.12\n"
        "02:00:5e:00:01:0g 198.18.1.13\n"
        "02:00:5e:00:01:05 printer\n",
        [
            "line 2: duplicate hw-address 02:00:5e:00:01:01 (line 1)",
            "line 3: 198.18.9.12 is outside every served subnet",
            "line 4: hw-address: '02:00:5e:00:01:0g' is neither hex nor 'quoted text'",
            "line 5: printer is a host name, not an address: etcdhcp does not resolve names at "
            "import; write the address",
        ],
    ),
    "json": (
        json.dumps(
            {
                "Dhcp4": {
                    "reservations": [
                        {"hw-address": "02:00:5e:00:01:01", "ip-address": "198.18.1.10"},
                        {"hw-address": "02:00:5e:00:01:01", "ip-address": "198.18.1.11"},
                        {"hw-address": "02:00:5e:00:01:03", "ip-address": "198.18.9.12"},
                    ],
                    "subnet4": [{"id": 2, "reservations": [{"hw-address": "02:00:5e:00:01:0g"}]}],
                }
            }
        ),
        [
            "Dhcp4.reservations[1]: duplicate hw-address 02:00:5e:00:01:01 (Dhcp4.reservations[0])",
            "Dhcp4.reservations[2]: 198.18.9.12 is outside every served subnet",
            "Dhcp4.subnet4[0].reservations[0].hw-address: '02:00:5e:00:01:0g' is neither hex "
            "nor 'quoted text'",
        ],
    ),
}


@pytest.mark.parametrize("fmt", sorted(BAD_FILES))
def test_an_import_with_bad_lines_names_each_and_writes_nothing(
    run: Ctl, keys: Keys, tmp_path: Path, fmt: str
) -> None:
    text, refusals = BAD_FILES[fmt]
    path = tmp_path / f"hosts.{fmt}"
    path.write_text(text)
    before = keys.all()
    entries = 4 if fmt == "json" else 5
    assert fails(run, "host", "import", str(path), "--format", fmt) == [
        *refusals,
        f"etcdhcpctl: refused, nothing written: {len(refusals)} problems in {entries} "
        "entries (above)",
    ]
    assert keys.all() == before


def test_import_dry_run_then_import_then_again_unchanged(
    run: Ctl, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hosts.csv"  # the format comes from the name
    path.write_text(CSV)
    out = run("host", "import", str(path), "--scope", "1", "--dry-run")
    assert out.startswith("would write 2 hosts: 1/hw-address=02:00:5e:00:01:01")
    assert hosts(keys) == {}
    assert run("host", "import", str(path), "--scope", "1").startswith("imported 2 hosts")
    assert hosts(keys)["1::hw-address::02:00:5e:00:01:01"] == {
        "hw-address": "02:00:5e:00:01:01",
        "ip-address": "198.18.1.10",
        "hostname": "pc-1",
        "boot-file-name": "pxelinux.0",
    }
    assert run("host", "import", str(path), "--scope", "1") == "imported 0 hosts; 2 unchanged\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("02:00:5e:00:01:09 198.18.1.19\n"))
    run("host", "import", "-", "--format", "ethers")
    assert keys.get("ips::reserved::198.18.1.19") == "02:00:5e:00:01:09"


def test_export_reads_back_through_import(run: Ctl, keys: Keys, tmp_path: Path) -> None:
    run("host", "add", json.dumps(PC))
    run(
        "host",
        "add",
        json.dumps({"client-id": "'pc-2'", "ip-address": "198.18.2.5"}),
        "--scope",
        "2",
    )
    exported = run("host", "export")
    stored = keys.all()
    path = tmp_path / "out.json"
    path.write_text(exported)
    assert run("host", "import", str(path)) == "imported 0 hosts; 2 unchanged\n"
    assert keys.all() == stored
    assert run("host", "export", "--format", "csv", "--scope", "0") == (
        f"mac,ip,hostname,bootfile\n{MAC1},198.18.1.10,pc-1,\n"
    )
    assert "CSV cannot hold its client-id" in run.fails("host", "export", "--format", "csv")


def test_an_import_that_moves_addresses_between_hosts(run: Ctl, keys: Keys, tmp_path: Path) -> None:
    run("host", "add", json.dumps({"hw-address": MAC1, "ip-address": "198.18.1.10"}))
    run("host", "add", json.dumps({"hw-address": MAC2, "ip-address": "198.18.1.20"}))
    path = tmp_path / "swap.json"  # the two swap addresses, a third takes one of theirs
    path.write_text(
        json.dumps(
            [
                {"hw-address": MAC1, "ip-address": "198.18.1.20"},
                {"hw-address": MAC2, "ip-address": "198.18.1.30"},
                {"hw-address": MAC3, "ip-address": "198.18.1.10"},
            ]
        )
    )
    assert run("host", "import", str(path)).startswith("imported 3 hosts")
    assert reservation_keys(keys) == {
        "ips::reserved::198.18.1.20": MAC1,
        "ips::reserved::198.18.1.30": MAC2,
        "ips::reserved::198.18.1.10": MAC3,
        f"reservations::{MAC1}": "198.18.1.20",
        f"reservations::{MAC2}": "198.18.1.30",
        f"reservations::{MAC3}": "198.18.1.10",
    }


# ---- the store's batches -------------------------------------------------------------------


def many(n: int, scope: int = 1) -> list[Any]:
    return [
        parse_host(
            {
                "hw-address": f"02:00:5e:00:{i >> 8:02x}:{i & 0xFF:02x}",
                "ip-address": f"198.18.1.{i}",
            },
            "h",
            scope,
        )
        for i in range(1, n + 1)
    ]


def test_a_batch_is_all_or_nothing_and_running_again_completes(
    etcd: Etcd, etcd_prefix: str, keys: Keys
) -> None:
    store = HostStore(etcd, etcd_prefix)
    plan = store.plan(many(100))
    # Four keys change per host (record, two reservation keys, the free key): 32 a batch.
    assert [len(b.hosts) for b in plan.batches] == [32, 32, 32, 4]
    assert all(len(b.ops) <= store_module.MAX_TXN_OPS for b in plan.batches)
    # Someone reserves an address of the third batch meanwhile: nothing of that batch is
    # written; after it no batch is sent (those already in flight finish).
    keys.put("ips::reserved::198.18.1.70", OTHER)
    done = store.write(plan)
    third = plan.batches[2].hosts
    assert set(third) <= set(done.failed) and len(done.written) + len(done.failed) == 100
    assert all(store.record(k) is None for k in third)
    assert keys.get("ips::reserved::198.18.1.65") is None  # in the third batch too
    written = {k for k in keys.all() if k.startswith("hosts::")}
    assert len(written) == len(done.written)
    # Planned again, the written hosts are unchanged and the reserved address refused.
    again = store.plan(many(100))
    assert len(again.unchanged) == len(done.written)
    assert again.refusals == {
        (1, HW_ADDRESS, "02:00:5e:00:00:46"): f"198.18.1.70 is reserved for {OTHER}"
    }


def test_a_large_change_reads_by_scanning(
    etcd: Etcd, etcd_prefix: str, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "HOST_SCAN_WHEN", 10)
    store = HostStore(etcd, etcd_prefix)
    LeaseStore.for_operator(etcd, etcd_prefix).reserve(OTHER, "198.18.1.5")
    scanned: list[str] = []
    scan = store.leases._scan
    monkeypatch.setattr(
        store.leases, "_scan", lambda prefix, **kw: scanned.append(prefix) or scan(prefix, **kw)
    )
    plan = store.plan(many(50))
    assert plan.refusals == {
        (1, HW_ADDRESS, "02:00:5e:00:00:05"): f"198.18.1.5 is reserved for {OTHER}"
    }
    assert {p.removeprefix(etcd_prefix) for p in scanned} == {
        "hosts::",
        "ips::reserved::",
        "reservations::",
        "ips::leased::",
    }
    # A prefix holding far more keys than the change names is read key by key.
    for i in range(50):
        keys.put(f"ips::leased::198.18.7.{i}", OTHER)
    scanned.clear()
    store.plan(many(11))
    assert etcd_prefix + "ips::leased::" not in scanned and etcd_prefix + "hosts::" in scanned
