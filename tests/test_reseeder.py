"""reseeder: full passes and the watch that returns vacated addresses, on the real etcd."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from etcdhcp import metrics
from etcdhcp.etcd import Etcd
from etcdhcp.reseeder import RECLAIM_SPREAD, ExpiryIndex, Reseeder
from etcdhcp.scopes import ScopeSet
from etcdhcp.store import LeaseStore
from stores import make_store, scope_of
from waiting import wait_until

POOL = [f"198.18.0.{i}" for i in range(10, 15)]
OUTSIDE = "198.18.0.200"
MAC1, MAC2, MAC3 = "02:00:5e:00:00:01", "02:00:5e:00:00:02", "02:00:5e:00:00:03"


def gauge(state: str, scope: str = "0") -> float | None:
    """The pool gauge of the test store's scope (the flags' scope, id 0)."""
    labels = {"scope": scope, "state": state}
    return metrics.REGISTRY.get_sample_value("etcdhcp_pool_addresses", labels)


def pool_store(etcd: Etcd, prefix: str, **kw: Any) -> LeaseStore:
    return make_store(etcd, prefix, POOL[0], POOL[-1], **kw)


@pytest.fixture
def running() -> Iterator[Callable[..., Reseeder]]:
    """Starts reseeders (a long interval: only the watches can act) and always stops them.

    `spread` fixes the server's random delay past a lease's due time.
    """
    started: list[Reseeder] = []

    def start(store: LeaseStore, spread: float | None = None) -> Reseeder:
        reseeder = Reseeder(store, interval=3600)
        if spread is not None:
            reseeder._spread = spread
        reseeder.full_pass()
        reseeder.start()
        started.append(reseeder)
        time.sleep(0.3)  # let the watch be established
        return reseeder

    yield start
    for reseeder in started:
        reseeder.stop(timeout=5.0)
        assert not any(t.is_alive() for t in reseeder._threads)


def test_full_pass_seeds_reclaims_and_sets_the_gauges(
    etcd: Etcd, etcd_prefix: str, etcd_client: Any
) -> None:
    now = [time.time()]
    store = pool_store(etcd, etcd_prefix, clock=lambda: now[0])
    reseeder = Reseeder(store, interval=3600)
    reseeder.full_pass()
    assert store.counts() == {"free": 5, "offered": 0, "leased": 0, "reserved": 0, "quarantined": 0}
    assert gauge("free") == 5 and gauge("leased") == 0 and gauge("reserved") == 0

    assert store.offer(MAC1, POOL[4]) == POOL[4]
    assert store.commit(MAC2, POOL[0], allow_free=True).lease
    assert store.reserve(MAC3, POOL[1])
    reseeder.update_gauges()
    assert (gauge("free"), gauge("offered"), gauge("leased"), gauge("reserved")) == (2, 1, 1, 1)

    etcd_client.delete(f"{etcd_prefix}ips::free::{POOL[3]}")  # an address in no state
    now[0] += 2 * 60 + 1  # the lease of MAC2 is past its absolute end
    reseeder.full_pass()
    assert store.lease_by_mac(MAC2) is None
    counts = store.counts()
    assert counts == {"free": 3, "offered": 1, "leased": 0, "reserved": 1, "quarantined": 0}
    assert gauge("free") == 3 and gauge("leased") == 0 and gauge("offered") == 1
    # A free key written by hand outside every pool is counted apart, not as free.
    etcd_client.put(f"{etcd_prefix}ips::free::198.18.9.9", "198.18.9.9")
    reseeder.update_gauges()
    assert gauge("free") == 3 and gauge("free", scope="outside") == 1


def test_expired_offer_returns_through_the_watch(
    etcd: Etcd, etcd_prefix: str, running: Callable[[LeaseStore], Reseeder]
) -> None:
    store = pool_store(etcd, etcd_prefix, offer_hold=1)
    running(store)
    assert store.counts()["free"] == 5
    ip = store.offer(MAC1)
    assert ip is not None
    assert store.counts()["free"] == 4
    # etcd ends the offer's lease after 2-3 s; the watch frees it about a second later,
    # long before the 3600 s interval.
    wait_until(lambda: store.counts()["free"] == 5, 10.0, "the expired offer back in the pool")
    assert store.counts() == {"free": 5, "offered": 0, "leased": 0, "reserved": 0, "quarantined": 0}
    assert etcd.range(f"{etcd_prefix}nics::offered::{MAC1}").kvs == []


def test_released_out_of_range_address_does_not_come_back(
    etcd: Etcd,
    etcd_prefix: str,
    etcd_client: Any,
    running: Callable[[LeaseStore], Reseeder],
) -> None:
    store = pool_store(etcd, etcd_prefix)
    reseeder = running(store)
    etcd_client.put(f"{etcd_prefix}ips::free::{OUTSIDE}", OUTSIDE)
    assert store.commit(MAC1, OUTSIDE, allow_free=True).lease is not None
    assert store.commit(MAC2, POOL[2], allow_free=True).lease is not None
    assert store.release(MAC1, OUTSIDE)
    # An in-range lease that ends early (its etcd lease revoked, as on expiry) comes back...
    _, meta = etcd_client.get(f"{etcd_prefix}ips::leased::{POOL[2]}")
    etcd_client.revoke_lease(meta.lease_id)
    wait_until(lambda: store.counts()["free"] == 5, 5.0, "the address back in the pool")
    assert etcd_client.get(f"{etcd_prefix}ips::free::{POOL[2]}")[0] == POOL[2].encode()
    # ... the released out-of-range one stays out, also after a full pass.
    reseeder.full_pass()
    assert etcd_client.get(f"{etcd_prefix}ips::free::{OUTSIDE}")[0] is None
    assert store.counts() == {"free": 5, "offered": 0, "leased": 0, "reserved": 0, "quarantined": 0}


def test_expiry_index_orders_replaces_and_retries() -> None:
    index = ExpiryIndex()
    assert index.next_time() is None and index.due(1e12) == []
    assert index.set("a", 30.0)  # the soonest
    assert index.set("b", 10.0)
    assert not index.set("c", 20.0)
    assert index.set("b", 40.0) is False  # moved later: "c" is the soonest now
    index.set("c", None)  # gone
    assert index.next_time() == 30.0 and len(index) == 2
    assert index.due(29.9) == []
    assert index.due(35.0) == ["a"]
    index.retry(["a", "b"], 50.0)  # "b" has a time of its own: kept
    assert index.due(45.0) == ["b"]
    assert index.due(50.0) == [] and index.due(50.01) == ["a"] and len(index) == 0
    for n in range(500):  # renewals leave stale entries; they do not pile up
        index.set("a", float(n))
    assert len(index._heap) <= 2 * len(index) + 64
    index.replace({"x": 5.0, "y": 1.0})
    assert index.next_time() == 1.0 and index.due(10.0) == ["y", "x"]


def reclaimed_at(keys: Any, ips: list[str], bound: float) -> dict[str, float]:
    """When (unix time) each of `ips` was first seen free again, polled every 50 ms."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + bound
    while len(seen) < len(ips) and time.monotonic() < deadline:
        for ip in ips:
            if ip not in seen and keys.get(f"ips::free::{ip}") == ip:
                seen[ip] = time.time()
        time.sleep(0.05)
    assert len(seen) == len(ips), f"only {sorted(seen)} came back within {bound}s"
    return seen


def test_expired_leases_come_back_within_seconds_on_other_servers(
    etcd: Etcd,
    etcd_prefix: str,
    keys: Any,
    running: Callable[..., Reseeder],
) -> None:
    """A server grants every address and vanishes; the others reclaim each lease once
    it is due (expiry + skew + their spread), not at the next full pass nor the etcd TTL."""
    # The granting server's clock lags 55 s: its 60 s leases end 5 s from now by the
    # record, while their etcd TTL (2 x 60 s by its clock) lasts two minutes.
    granting = pool_store(etcd, etcd_prefix, clock=lambda: time.time() - 55)
    granting.seed()
    for n, ip in enumerate(POOL):
        assert granting.commit(f"02:00:5e:00:01:{n:02x}", ip, allow_free=True).lease
    records = {lease.ip: lease for lease in granting.leases()}
    assert granting.counts()["free"] == 0
    first = pool_store(etcd, etcd_prefix, server_id="198.18.0.2")
    second = pool_store(etcd, etcd_prefix, server_id="198.18.0.3")
    first_reseeder = running(first, spread=0.0)
    running(second, spread=1.0)
    calls = {"first": 0, "second": 0}
    for name, store in (("first", first), ("second", second)):
        real = store.reclaim_due

        def counted(ips: Any, real: Any = real, name: str = name) -> int:
            calls[name] += 1
            return real(ips)

        store.reclaim_due = counted  # type: ignore[method-assign]
    # A renewal (by the granting server, 1 s before the end) keeps one lease.
    kept = POOL[0]
    time.sleep(max(0.0, records[kept].expires - 1 - time.time()))
    renewal = granting.commit(records[kept].mac, kept, allow_free=False)
    assert renewal.renewed and renewal.lease and renewal.lease.expires
    back = reclaimed_at(keys, POOL[1:], bound=15.0)
    skew = first.expiry_skew
    delays = [back[ip] - records[ip].expires for ip in POOL[1:]]
    assert all(skew <= d <= skew + 1.0 for d in delays), delays
    assert keys.get(f"ips::leased::{kept}") == records[kept].mac
    assert calls["first"] >= 1
    assert calls["second"] == 0  # it saw the first server's deletes before its own time
    # With the first server gone, the second one reclaims the renewed lease in its turn.
    first_reseeder.stop()
    back = reclaimed_at(keys, [kept], bound=15.0)
    delay = back[kept] - renewal.lease.expires
    assert skew + 1.0 <= delay <= skew + 2.0, delay
    assert calls["second"] >= 1
    assert 0.0 <= Reseeder(first, interval=1)._spread <= RECLAIM_SPREAD


def test_a_removed_scopes_gauges_go_and_the_others_are_set_in_place(
    etcd: Etcd, etcd_prefix: str
) -> None:
    other = replace(scope_of("198.20.0.10", "198.20.0.11", subnet="198.20.0.0/24"), id=7)
    views = [ScopeSet([scope_of(POOL[0], POOL[-1]), other])]
    store = make_store(etcd, etcd_prefix, POOL[0], POOL[-1], scopes=lambda: views[0])
    reseeder = Reseeder(store, interval=3600)
    reseeder.full_pass()
    assert gauge("free", scope="7") == 2 and gauge("free") == 5
    views[0] = ScopeSet([views[0].by_id[0]])
    reseeder.update_gauges()
    assert gauge("free", scope="7") is None and gauge("free") == 5
    assert gauge("free", scope="outside") == 2  # its free keys, until phased out
