"""The scopes scenario's documents: valid Kea subnet4 entries that etcdhcp accepts
together, each relay address choosing its own LAN's scope, inside the lab's range."""

from __future__ import annotations

import ipaddress
import json

import pytest
from bench import scopedocs

from etcdhcp import globalconfig, scopes

LAB = ipaddress.IPv4Network("198.18.0.0/16")


def _view(count: int, relays: int) -> scopes.ScopeSet:
    entries = scopedocs.documents(count, relays)
    docs = [
        scopes.Document(f"subnet4/{e['id']}", json.dumps(e).encode(), i + 1)
        for i, e in enumerate(entries)
    ]
    built = globalconfig.assemble(docs, None, {})
    assert built.problems == {}
    return built.scopes


@pytest.mark.parametrize(("count", "relays", "idle_prefix"), [(1000, 10, 27), (10000, 10, 30)])
def test_every_relay_chooses_its_own_lan_and_the_rest_are_idle(
    count: int, relays: int, idle_prefix: int
) -> None:
    view = _view(count, relays)
    assert len(view) == count
    for k, giaddr in enumerate(f"198.18.{k}.1" for k in range(1, relays + 1)):
        scope = view.containing(int(ipaddress.IPv4Address(giaddr)))
        assert scope is not None and scope.id == k + 1 and scope.size() == 200
    assert {s.subnet.prefixlen for s in view.scopes[relays:]} == {idle_prefix}
    assert all(s.subnet.subnet_of(LAB) for s in view.scopes)


def test_the_baseline_is_one_scope_holding_every_relay_address() -> None:
    view = _view(1, 10)
    (scope,) = view.scopes
    assert scope.size() == scopedocs.ONE_SCOPE_POOL
    assert view.containing(int(ipaddress.IPv4Address("198.18.10.1"))) is scope
    assert not scope.in_pools(int(ipaddress.IPv4Address("198.18.10.1")))
    assert scopedocs.pool_size(scopedocs.documents(1, 10)) == scopedocs.ONE_SCOPE_POOL


def test_counts_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot give each of 10 relays"):
        scopedocs.idle_block(5, 10)
    with pytest.raises(ValueError, match="do not fit"):
        scopedocs.idle_block(20000, 10)
    assert scopedocs.idle_block(20, 5) == 256  # no bigger than a LAN
