"""reseeder: full passes and the watch that returns vacated addresses, on the real etcd."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from etcdhcp import metrics
from etcdhcp.etcd import Etcd
from etcdhcp.reseeder import Reseeder
from etcdhcp.store import LeaseStore
from stores import make_store
from waiting import wait_until

POOL = [f"198.18.0.{i}" for i in range(10, 15)]
OUTSIDE = "198.18.0.200"
MAC1, MAC2 = "02:00:5e:00:00:01", "02:00:5e:00:00:02"


def gauge(state: str) -> float | None:
    return metrics.REGISTRY.get_sample_value("etcdhcp_pool_addresses", {"state": state})


def pool_store(etcd: Etcd, prefix: str, **kw: Any) -> LeaseStore:
    return make_store(etcd, prefix, POOL[0], POOL[-1], **kw)


@pytest.fixture
def running() -> Iterator[Callable[[LeaseStore], Reseeder]]:
    """Starts reseeders (a long interval: only the watch can act) and always stops them."""
    started: list[Reseeder] = []

    def start(store: LeaseStore) -> Reseeder:
        reseeder = Reseeder(store, interval=3600)
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
    assert store.counts() == {"free": 5, "offered": 0, "leased": 0, "quarantined": 0}
    assert gauge("free") == 5 and gauge("leased") == 0

    assert store.offer(MAC1, POOL[4]) == POOL[4]
    assert store.commit(MAC2, POOL[0], allow_free=True).lease
    reseeder.update_gauges()
    assert (gauge("free"), gauge("offered"), gauge("leased")) == (3, 1, 1)

    etcd_client.delete(f"{etcd_prefix}ips::free::{POOL[3]}")  # an address in no state
    now[0] += 2 * 60 + 1  # the lease of MAC2 is past its absolute end
    reseeder.full_pass()
    assert store.lease_by_mac(MAC2) is None
    counts = store.counts()
    assert counts == {"free": 4, "offered": 1, "leased": 0, "quarantined": 0}
    assert gauge("free") == 4 and gauge("leased") == 0 and gauge("offered") == 1


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
    assert store.counts() == {"free": 5, "offered": 0, "leased": 0, "quarantined": 0}
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
    assert store.counts() == {"free": 5, "offered": 0, "leased": 0, "quarantined": 0}
