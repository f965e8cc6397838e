"""Reservations in the store, on the real etcd: every server honours them.

A reservation is two keys written in one guarded transaction (by address and by MAC);
offers and commits give the address to its MAC only, and no path (release, expiry,
reseeding, a withdrawn offer) makes it free while it is reserved.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from conftest import Keys
from etcdhcp.etcd import Etcd, prefix_end
from etcdhcp.etcdwire import delete
from etcdhcp.reseeder import Reseeder
from etcdhcp.store import LeaseStore, Refused
from stores import make_store
from test_store import POOL

MAC1, MAC2, MAC3, MAC4 = (f"02:00:5e:00:00:0{i}" for i in range(1, 5))
RESERVED = POOL[2]
OUTSIDE = "198.18.0.200"


@pytest.fixture
def store(etcd: Etcd, etcd_prefix: str) -> LeaseStore:
    s = make_store(etcd, etcd_prefix, POOL[0], POOL[-1])
    assert s.seed() == len(POOL)
    return s


def reserve_keys(keys: Keys, mac: str, ip: str) -> tuple[str | None, str | None]:
    return keys.get(f"reservations::{mac}"), keys.get(f"ips::reserved::{ip}")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


# ---- writing reservations -------------------------------------------------------------


def test_reserve_writes_both_keys_and_takes_the_address_out_of_the_pool(
    store: LeaseStore, keys: Keys
) -> None:
    assert store.reserve(MAC1, RESERVED) is True
    assert reserve_keys(keys, MAC1, RESERVED) == (RESERVED, MAC1)
    assert keys.get(f"ips::free::{RESERVED}") is None
    assert keys.lease_id(f"reservations::{MAC1}") == 0  # no TTL
    assert keys.lease_id(f"ips::reserved::{RESERVED}") == 0
    assert store.reserve(MAC1, RESERVED) is False  # already there: nothing to do
    assert store.reservation(MAC1) == RESERVED
    assert [(r.mac, r.ip) for r in store.reservations()] == [(MAC1, RESERVED)]


def test_reserve_refusals_change_nothing(store: LeaseStore, keys: Keys) -> None:
    leased = store.offer(MAC1, POOL[0])
    assert leased == POOL[0] and store.commit(MAC1, leased, allow_free=False).lease
    offered = store.offer(MAC2, POOL[1])
    assert offered == POOL[1]
    assert store.reserve(MAC3, POOL[4])
    before = keys.all()
    refusals = {
        (MAC4, leased): f"{leased} is leased to {MAC1}",
        (MAC4, offered): f"{offered} is being offered to {MAC2}",
        (MAC2, POOL[4]): f"{POOL[4]} is reserved for {MAC3}",
        (MAC3, POOL[3]): f"{MAC3} already has a reservation: {POOL[4]}",
        (MAC1, POOL[3]): f"{MAC1} holds a lease on {leased}",
    }
    for (mac, ip), reason in refusals.items():
        with pytest.raises(Refused, match=reason):
            store.reserve(mac, ip)
    assert keys.all() == before


def test_reserving_a_clients_own_lease_or_offer(store: LeaseStore, keys: Keys) -> None:
    leased = store.offer(MAC1, POOL[0])
    assert leased and store.commit(MAC1, leased, allow_free=False).lease
    assert store.reserve(MAC1, leased) is True  # the lease goes on, now reserved
    assert keys.get(f"ips::leased::{leased}") == MAC1
    offered = store.offer(MAC2, POOL[1])
    assert offered == POOL[1]
    assert store.reserve(MAC2, offered) is True  # the offer becomes the reservation
    assert keys.get(f"ips::offered::{offered}") is None
    assert keys.get(f"nics::offered::{MAC2}") is None
    assert store.offer(MAC2) == offered


def test_reserve_completes_half_a_reservation(store: LeaseStore, keys: Keys) -> None:
    keys.put(f"ips::reserved::{RESERVED}", MAC1)  # a hand edit, or half of an old one
    assert store.reserve(MAC1, RESERVED) is True
    assert reserve_keys(keys, MAC1, RESERVED) == (RESERVED, MAC1)


# ---- servers honour them ---------------------------------------------------------------


def test_a_reserved_mac_is_offered_its_address_and_nobody_else_is(
    store: LeaseStore, keys: Keys
) -> None:
    assert store.reserve(MAC1, RESERVED)
    assert store.offer(MAC1) == RESERVED
    assert store.offer(MAC1, POOL[0]) == RESERVED  # whatever it asks for
    assert keys.get(f"ips::offered::{RESERVED}") is None  # no hold needed
    others = {store.offer(f"02:00:5e:00:01:{i:02x}") for i in range(len(POOL) - 1)}
    assert others == set(POOL) - {RESERVED}
    assert store.offer("02:00:5e:00:01:ff") is None  # the pool is exhausted, not the reservation
    assert store.offer("02:00:5e:00:01:fe", RESERVED) is None


def test_commit_grants_a_reserved_address_to_its_mac_only(store: LeaseStore, keys: Keys) -> None:
    assert store.reserve(MAC1, RESERVED)
    assert store.commit(MAC2, RESERVED, allow_free=True).refusal == "taken"
    assert store.commit(MAC1, POOL[0], allow_free=True).refusal == "other_address"
    keys.put(f"ips::free::{RESERVED}", RESERVED)  # a hand-added free key does not open it
    assert store.offer(MAC2, RESERVED) != RESERVED
    assert store.commit(MAC3, RESERVED, allow_free=True).refusal == "taken"
    # INIT-REBOOT (allow_free=False): a reserved client's own address is granted.
    granted = store.commit(MAC1, RESERVED, allow_free=False, hostname="printer")
    assert granted.lease is not None and not granted.renewed
    assert keys.get(f"ips::leased::{RESERVED}") == MAC1
    assert keys.get(f"nics::leased::{MAC1}") == RESERVED
    assert keys.get(f"ips::free::{RESERVED}") is None  # the stray free key went with it
    assert store.commit(MAC1, RESERVED, allow_free=False).renewed


def test_a_quarantined_reserved_address_is_not_offered(store: LeaseStore) -> None:
    assert store.reserve(MAC1, RESERVED)
    assert store.commit(MAC1, RESERVED, allow_free=False).lease
    assert store.decline(MAC1, RESERVED)
    assert store.offer(MAC1) is None  # its own address or nothing
    assert store.commit(MAC1, RESERVED, allow_free=True).lease is None
    assert store.seed() == 0  # and the reseeder leaves it alone


def test_the_address_stays_reserved_when_the_lease_ends(
    etcd: Etcd, etcd_prefix: str, keys: Keys
) -> None:
    now = [time.time()]
    store = make_store(etcd, etcd_prefix, POOL[0], POOL[-1], clock=lambda: now[0])
    store.seed()
    assert store.reserve(MAC1, RESERVED)
    # Released: not free, still reserved, and offered to it again.
    assert store.commit(MAC1, RESERVED, allow_free=False).lease
    assert store.release(MAC1, RESERVED) is True
    assert keys.get(f"ips::free::{RESERVED}") is None
    assert store.release(MAC1, RESERVED, to_pool=True) is False  # nothing left to release
    assert store.offer(MAC1) == RESERVED
    # Expired past its absolute end: reclaimed, not freed.
    assert store.commit(MAC1, RESERVED, allow_free=False).lease
    now[0] += 2 * 60 + 1
    assert store.reclaim_expired() == 1
    assert keys.get(f"ips::leased::{RESERVED}") is None
    # Gone by TTL: the watch's vacancy check and the full pass skip it too.
    assert store.free_if_vacant([RESERVED]) == 0
    assert store.seed() == 0
    assert keys.get(f"ips::free::{RESERVED}") is None
    assert reserve_keys(keys, MAC1, RESERVED) == (RESERVED, MAC1)


def test_an_operator_release_with_to_pool_keeps_a_reservation(
    store: LeaseStore, keys: Keys
) -> None:
    keys.put(f"ips::free::{OUTSIDE}", OUTSIDE)
    assert store.reserve(MAC1, OUTSIDE)
    assert store.commit(MAC1, OUTSIDE, allow_free=False).lease
    assert store.release(MAC1, OUTSIDE, to_pool=True)
    assert keys.get(f"ips::free::{OUTSIDE}") is None
    assert store.commit(MAC2, POOL[0], allow_free=True).lease
    assert store.release(MAC2, POOL[0], to_pool=False)  # the operator said: not to the pool
    assert keys.get(f"ips::free::{POOL[0]}") is None


def test_a_withdrawn_offer_never_frees_a_reserved_address(store: LeaseStore, keys: Keys) -> None:
    offered = store.offer(MAC1, RESERVED)
    assert offered == RESERVED
    keys.put(f"ips::reserved::{RESERVED}", MAC2)  # reserved meanwhile, by hand
    assert store.withdraw_offer(MAC1, keep=None) is True
    assert keys.get(f"ips::free::{RESERVED}") is None


# ---- unreserving --------------------------------------------------------------------


def test_unreserve_gives_a_vacant_address_back_to_the_pool(store: LeaseStore, keys: Keys) -> None:
    assert store.reserve(MAC1, RESERVED)
    assert store.unreserve(MAC1) == RESERVED
    assert reserve_keys(keys, MAC1, RESERVED) == (None, None)
    assert store.unreserve(MAC1) is None
    assert store.free_if_vacant([RESERVED]) == 1  # what the reseeder's watch does
    assert keys.get(f"ips::free::{RESERVED}") == RESERVED


def test_unreserve_leaves_a_running_lease_alone(store: LeaseStore, keys: Keys) -> None:
    assert store.reserve(MAC1, RESERVED)
    assert store.commit(MAC1, RESERVED, allow_free=False).lease
    assert store.unreserve(MAC1) == RESERVED
    assert keys.get(f"ips::leased::{RESERVED}") == MAC1
    assert store.commit(MAC1, RESERVED, allow_free=False).renewed
    assert store.release(MAC1, RESERVED)
    assert keys.get(f"ips::free::{RESERVED}") == RESERVED  # an ordinary address again


def test_unreserve_keeps_another_macs_mirror_key(store: LeaseStore, keys: Keys) -> None:
    keys.put(f"reservations::{MAC1}", RESERVED)
    keys.put(f"ips::reserved::{RESERVED}", MAC2)  # inconsistent hand edits
    assert store.unreserve(MAC1) == RESERVED
    assert reserve_keys(keys, MAC1, RESERVED) == (None, MAC2)


def test_the_reseeders_watch_frees_an_unreserved_address(etcd: Etcd, etcd_prefix: str) -> None:
    store = make_store(etcd, etcd_prefix, POOL[0], POOL[-1])
    reseeder = Reseeder(store, interval=3600)  # only the watch can act within the test
    reseeder.full_pass()
    reseeder.start()
    try:
        assert store.reserve(MAC1, RESERVED)
        assert store.counts()["free"] == len(POOL) - 1
        assert store.unreserve(MAC1) == RESERVED
        wait_until(lambda: store.counts()["free"] == len(POOL), 10, "the address to be free")
    finally:
        reseeder.stop()


def test_seeding_a_slash_16_with_the_reservation_guard(etcd: Etcd, etcd_prefix: str) -> None:
    """Five compares per guarded put, 64 puts a transaction: within etcd's op limits."""
    store = make_store(etcd, etcd_prefix, "198.18.0.0", "198.18.255.255")
    try:
        assert store.reserve(MAC1, "198.18.7.7")
        assert store.seed() == 65535
        assert store.counts()["free"] == 65535
        assert store.snapshot().reserved == {"198.18.7.7": MAC1}
    finally:
        etcd.txn([], [delete(etcd_prefix, prefix_end(etcd_prefix))])
