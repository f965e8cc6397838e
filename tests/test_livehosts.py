"""livehosts: every server follows the host records in etcd, and survives bad ones."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from conftest import Keys
from etcdhcp import globalconfig, metrics
from etcdhcp.etcd import Etcd, prefix_end
from etcdhcp.hosts import CLIENT_ID, GLOBAL, HW_ADDRESS, parse_host
from etcdhcp.livehosts import LiveHosts
from etcdhcp.scopes import Document
from etcdhcp.store import HostStore
from waiting import wait_until

MAC1, MAC2 = "02:00:5e:00:00:01", "02:00:5e:00:00:02"


def record(**doc: object) -> str:
    return json.dumps({k.replace("_", "-"): v for k, v in doc.items()})


@pytest.fixture
def live(etcd: Etcd, etcd_prefix: str) -> Iterator[LiveHosts]:
    hosts = LiveHosts(HostStore(etcd, etcd_prefix))
    hosts.load()
    hosts.start()
    yield hosts
    hosts.stop()


def gauge(metric: object) -> float:
    return metric._value.get()  # type: ignore[attr-defined]


def test_records_at_start_then_every_change_within_a_second(
    etcd: Etcd, etcd_prefix: str, keys: Keys
) -> None:
    keys.put(f"hosts::0::hw-address::{MAC1}", record(hw_address=MAC1, ip_address="198.18.0.5"))
    hosts = LiveHosts(HostStore(etcd, etcd_prefix))
    hosts.load()
    hosts.start()
    try:
        first = hosts()
        assert first.lookup(GLOBAL, HW_ADDRESS, MAC1).ip == "198.18.0.5"
        assert gauge(metrics.HOSTS) == 1
        keys.put("hosts::3::client-id::01:02", record(client_id="01:02", hostname="pc"))
        wait_until(lambda: hosts().lookup(3, CLIENT_ID, "01:02") is not None, 1.0, "added")
        keys.put(f"hosts::0::hw-address::{MAC1}", record(hw_address=MAC1, ip_address="198.18.0.6"))
        wait_until(lambda: hosts().by_ip("198.18.0.6") is not None, 1.0, "changed")
        assert hosts().by_ip("198.18.0.5") is None
        keys.delete("hosts::3::client-id::01:02")
        wait_until(lambda: len(hosts()) == 1, 1.0, "removed")
        assert gauge(metrics.HOSTS) == 1
        # The version a packet started with never changes under it.
        assert first.lookup(GLOBAL, HW_ADDRESS, MAC1).ip == "198.18.0.5" and len(first) == 1
    finally:
        hosts.stop()


def test_a_bad_record_keeps_its_previous_version_until_fixed(
    live: LiveHosts, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"hosts::0::hw-address::{MAC1}"
    keys.put(key, record(hw_address=MAC1, hostname="good"))
    wait_until(lambda: len(live()) == 1, 1.0, "served")
    with caplog.at_level(logging.ERROR, "etcdhcp.livehosts"):
        keys.put(key, record(hw_address=MAC1, hostname="not good"))
        keys.put(f"hosts::0::hw-address::{MAC2}", record(hw_address=MAC2, x=1))
        keys.put("hosts::junk", "{}")
        wait_until(lambda: len(live.problems) == 3, 1.0, "refused")
    assert live().lookup(GLOBAL, HW_ADDRESS, MAC1).hostname == "good"
    assert live().lookup(GLOBAL, HW_ADDRESS, MAC2) is None
    assert gauge(metrics.HOST_RECORDS_REJECTED) == 3
    assert live.problems[f"0/hw-address={MAC1}"].endswith(
        "'not good' is not a host name (labels of letters, digits, '-')"
    )
    assert (
        live.problems["junk/="] == "junk/=: 'junk' is not a scope id (0: global, else a subnet id)"
    )
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 3 and all(
        "refused (a previous version stays served)" in m for m in logged
    )
    keys.put(key, record(hw_address=MAC1, hostname="fixed"))
    keys.delete(f"hosts::0::hw-address::{MAC2}")
    keys.delete("hosts::junk")
    wait_until(lambda: not live.problems, 1.0, "fixed")
    assert live().lookup(GLOBAL, HW_ADDRESS, MAC1).hostname == "fixed"
    assert gauge(metrics.HOST_RECORDS_REJECTED) == 0


def test_a_bulk_change_is_served_whole(live: LiveHosts, etcd: Etcd, etcd_prefix: str) -> None:
    store = HostStore(etcd, etcd_prefix)
    many = [
        parse_host({"hw-address": f"02:00:5e:00:{i >> 8:02x}:{i & 0xFF:02x}"}, "h", 1)
        for i in range(500)
    ]
    done = store.write(store.plan(many))
    assert len(done.written) == 500
    wait_until(lambda: len(live()) == 500, 2.0, "all served")
    # The served version has seen the last write. (Not etcd's revision now: a test
    # before this one may leave an etcd lease whose keys expire meanwhile.)
    prefix = f"{etcd_prefix}hosts::"
    newest = max(kv.mod_revision for kv in etcd.range(prefix, prefix_end(prefix)).kvs)
    assert live.revision >= newest


def test_records_are_parsed_again_when_the_option_definitions_change(
    etcd: Etcd, etcd_prefix: str, keys: Keys
) -> None:
    custom = {"option-def": [{"name": "site-id", "code": 224, "type": "uint16"}]}
    documents = [Document(globalconfig.GLOBAL_DOC, json.dumps(custom).encode(), 1)]
    view = {"now": globalconfig.assemble(documents, None, {}).scopes}
    keys.put(
        f"hosts::0::hw-address::{MAC1}",
        record(hw_address=MAC1, option_data=[{"name": "site-id", "data": "7"}]),
    )
    hosts = LiveHosts(HostStore(etcd, etcd_prefix), lambda: view["now"])
    hosts.load()
    hosts.start()
    try:
        assert hosts().lookup(GLOBAL, HW_ADDRESS, MAC1).options.options == ((224, b"\x00\x07"),)
        # The definition goes: the host keeps its previous version, and says why.
        old, view["now"] = view["now"], globalconfig.assemble([], None, {}).scopes
        hosts.scopes_changed(old, view["now"])
        wait_until(lambda: hosts.problems, 1.0, "refused")
        assert hosts().lookup(GLOBAL, HW_ADDRESS, MAC1).options.options == ((224, b"\x00\x07"),)
        # It comes back as another type: the record is parsed with it.
        custom["option-def"][0]["type"] = "uint8"
        documents = [Document(globalconfig.GLOBAL_DOC, json.dumps(custom).encode(), 2)]
        old, view["now"] = view["now"], globalconfig.assemble(documents, None, {}).scopes
        hosts.scopes_changed(old, view["now"])
        wait_until(lambda: not hosts.problems, 1.0, "accepted again")
        assert hosts().lookup(GLOBAL, HW_ADDRESS, MAC1).options.options == ((224, b"\x07"),)
    finally:
        hosts.stop()
