"""liveconfig: every server follows the scope documents in etcd, and survives bad ones."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import Keys
from etcdhcp import globalconfig, metrics
from etcdhcp.etcd import Etcd
from etcdhcp.liveconfig import LiveScopes
from etcdhcp.scopes import FLAG_SCOPE_ID, ScopeSet
from etcdhcp.store import ConfigStore
from stores import scope_of
from waiting import wait_until

FLAGS = scope_of("198.18.0.10", "198.18.0.20", subnet="198.18.0.0/24")


def subnet(n: int, **extra: Any) -> str:
    return json.dumps(
        {
            "id": n,
            "subnet": f"198.18.{n}.0/24",
            "pools": [{"pool": f"198.18.{n}.10 - 198.18.{n}.20"}],
            **extra,
        }
    )


@pytest.fixture
def live(etcd: Etcd, etcd_prefix: str) -> Iterator[LiveScopes]:
    scopes = LiveScopes(ConfigStore(etcd, etcd_prefix), FLAGS, flag_always=True)
    scopes.load()
    scopes.start()
    yield scopes
    scopes.stop()


def ids(view: ScopeSet) -> list[int]:
    return [s.id for s in view.scopes]


def test_a_document_written_with_etcdctl_is_served_within_a_second(
    live: LiveScopes, keys: Keys
) -> None:
    assert ids(live()) == [FLAG_SCOPE_ID]
    started = time.monotonic()
    keys.put("config::subnet4::1", subnet(1))
    wait_until(lambda: 1 in live().by_id, 1.0, "scope 1 served")
    applied = time.monotonic() - started
    assert applied < 1.0 and ids(live()) == [FLAG_SCOPE_ID, 1]
    keys.put("config::subnet4::1", subnet(1, **{"valid-lifetime": 77}))
    wait_until(lambda: live().by_id[1].valid_lifetime == 77, 1.0, "scope 1 changed")
    keys.delete("config::subnet4::1")
    wait_until(lambda: 1 not in live().by_id, 1.0, "scope 1 removed")
    assert metrics.SCOPES._value.get() == 1


def test_a_bad_document_keeps_its_previous_version_with_a_log_line_and_a_metric(
    live: LiveScopes, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    keys.put("config::subnet4::2", subnet(2))
    wait_until(lambda: 2 in live().by_id, 1.0, "scope 2 served")
    for bad in (
        "{not json",
        subnet(2, pools=[{"pool": "198.18.9.10 - 198.18.9.20"}]),  # outside its subnet
        subnet(2, surprise=True),  # an unknown key
        json.dumps({"id": 2, "subnet": "198.18.0.0/25"}),  # overlaps the flags' scope
    ):
        keys.put("config::subnet4::2", bad)
        wait_until(lambda: "subnet4/2" in live.problems, 1.0, "the document refused")
        assert str(live().by_id[2].subnet) == "198.18.2.0/24"  # the previous version
        assert metrics.CONFIG_REJECTED._value.get() == 1
        keys.put("config::subnet4::2", subnet(2))  # fixed
        wait_until(lambda: not live.problems, 1.0, "the document accepted again")
    refusals = [r for r in caplog.records if "subnet4/2 refused" in r.getMessage()]
    assert len(refusals) == 4 and all("\n" not in r.getMessage() for r in refusals)
    # A new document that is bad from the start is simply not served.
    keys.put("config::subnet4::3", subnet(3, id=4))
    wait_until(lambda: "subnet4/3" in live.problems, 1.0, "the document refused")
    assert 3 not in live().by_id and 4 not in live().by_id


def test_without_range_flags_the_flags_scope_yields_to_etcd(
    etcd: Etcd, etcd_prefix: str, keys: Keys
) -> None:
    """The original's default range is served only while etcd has no scope at all."""
    scopes = LiveScopes(ConfigStore(etcd, etcd_prefix), FLAGS, flag_always=False)
    scopes.load()
    scopes.start()
    try:
        assert ids(scopes()) == [FLAG_SCOPE_ID]
        keys.put("config::global::dhcp4", json.dumps({"boot-file-name": "x"}))
        wait_until(lambda: globalconfig.of(scopes()).boot.boot_file_name, 1.0, "global read")
        assert ids(scopes()) == [FLAG_SCOPE_ID]  # a global document is not a scope
        keys.put("config::subnet4::1", subnet(1))
        wait_until(lambda: ids(scopes()) == [1], 1.0, "only etcd's scope")
        keys.delete("config::subnet4::1")
        wait_until(lambda: ids(scopes()) == [FLAG_SCOPE_ID], 1.0, "the flags' scope back")
    finally:
        scopes.stop()


def test_listeners_see_every_swap(live: LiveScopes, keys: Keys) -> None:
    seen: list[tuple[list[int], list[int]]] = []
    live.listen(lambda old, new: seen.append((ids(old), ids(new))))
    keys.put("config::shared-networks::floor", json.dumps({"name": "floor", "subnet4": [
        json.loads(subnet(5)), json.loads(subnet(6))]}))  # fmt: skip
    wait_until(lambda: seen, 1.0, "a swap")
    assert seen[-1] == ([FLAG_SCOPE_ID], [FLAG_SCOPE_ID, 5, 6])
    assert [s.id for s in live().family(live().by_id[6])] == [6, 5]


def test_a_bad_global_document_keeps_the_previous_classes(
    live: LiveScopes, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 15: a malformed expression written with etcdctl changes nothing served."""
    good = {"client-classes": [{"name": "pxe", "test": "option[93].exists"}]}
    keys.put("config::global::dhcp4", json.dumps(good))
    wait_until(lambda: globalconfig.of(live()).classes.defined, 1.0, "the class served")
    bad = {"client-classes": [{"name": "pxe", "test": "option[93].exists and"}]}
    keys.put("config::global::dhcp4", json.dumps(bad))
    wait_until(lambda: "global/dhcp4" in live.problems, 1.0, "the document refused")
    [kept] = globalconfig.of(live()).classes.defined
    assert kept.test is not None and kept.test.text == "option[93].exists"
    assert metrics.CONFIG_REJECTED._value.get() == 1
    [line] = [r.getMessage() for r in caplog.records if "global/dhcp4 refused" in r.getMessage()]
    assert "client-classes[0].test: at " in line
