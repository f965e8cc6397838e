"""store: every state move of LeaseStore, on the real etcd."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import Keys
from etcdhcp import metrics
from etcdhcp.etcd import Etcd, LeaseBuckets, prefix_end
from etcdhcp.etcdwire import delete
from etcdhcp.store import FREE_CANDIDATES, SEED_BATCH, AddressPool, Lease, LeaseStore
from stores import make_store

SERVER = "198.18.0.1"
POOL = [f"198.18.0.{i}" for i in range(10, 15)]
MAC1, MAC2, MAC3 = "02:00:5e:00:00:01", "02:00:5e:00:00:02", "02:00:5e:00:00:03"
OUTSIDE = "198.18.0.200"  # in the subnet, outside the range


def etcd_requests(op: str, outcome: str = "ok") -> float:
    value = metrics.REGISTRY.get_sample_value(
        "etcdhcp_etcd_requests_total", {"op": op, "outcome": outcome}
    )
    return value or 0.0


@contextlib.contextmanager
def counting(etcd: Etcd, method: str) -> Iterator[list[int]]:
    """Counts calls of one request method of this Etcd; the requests still reach etcd."""
    calls = [0]
    lock = threading.Lock()
    real = getattr(etcd, method)

    def counted(*args: Any, **kw: Any) -> Any:
        with lock:
            calls[0] += 1
        return real(*args, **kw)

    setattr(etcd, method, counted)
    try:
        yield calls
    finally:
        delattr(etcd, method)


@pytest.fixture
def store(etcd: Etcd, etcd_prefix: str) -> LeaseStore:
    s = make_store(etcd, etcd_prefix, POOL[0], POOL[-1])
    assert s.seed() == len(POOL)
    return s


def free_set(keys: Keys) -> set[str]:
    return {k.split("::")[-1] for k in keys.all() if k.startswith("ips::free::")}


# ---- the pool ---------------------------------------------------------------------------


def test_address_pool_is_inclusive() -> None:
    pool = AddressPool(ipaddress.IPv4Address("198.18.0.10"), ipaddress.IPv4Address("198.18.0.14"))
    assert list(pool) == POOL
    assert len(pool) == 5
    assert "198.18.0.14" in pool and "198.18.0.10" in pool
    assert "198.18.0.15" not in pool and "garbage" not in pool
    assert all(pool.random_address() in pool for _ in range(50))


def test_seed_a_slash_20_is_batched_and_idempotent(etcd: Etcd, etcd_prefix: str) -> None:
    store = make_store(etcd, etcd_prefix, "198.18.0.0", "198.18.15.255")
    metric = etcd_requests("txn")
    with counting(etcd, "txn") as txns:
        assert store.seed() == 4096
    assert txns[0] == 4096 // SEED_BATCH + 1  # + the read of the reserved addresses
    assert etcd_requests("txn") - metric >= txns[0]  # and the metric counted them
    assert store.counts() == {
        "free": 4096,
        "offered": 0,
        "leased": 0,
        "reserved": 0,
        "quarantined": 0,
    }
    with counting(etcd, "txn") as txns:
        assert store.seed() == 0  # nothing missing: reads only, no write
    assert txns[0] == 1  # the reserved addresses' check, a read
    assert store.counts()["free"] == 4096


def test_seed_restores_only_addresses_in_no_state(store: LeaseStore, keys: Keys) -> None:
    ip = store.offer(MAC1)
    assert ip is not None
    leased = store.offer(MAC2)
    assert leased is not None and store.commit(MAC2, leased, allow_free=False).lease
    vanished = next(a for a in POOL if a not in (ip, leased))
    keys.delete(f"ips::free::{vanished}")
    assert store.seed() == 1
    assert keys.get(f"ips::free::{vanished}") == vanished
    assert store.counts() == {"free": 3, "offered": 1, "leased": 1, "reserved": 0, "quarantined": 0}
    assert keys.get(f"ips::free::{ip}") is None and keys.get(f"ips::free::{leased}") is None


def test_the_reserved_scan_is_read_again_only_when_a_reservation_changed(
    store: LeaseStore, keys: Keys
) -> None:
    keys.put(f"ips::reserved::{POOL[0]}", MAC1)
    keys.put(f"ips::reserved::{OUTSIDE}", MAC2)
    assert sorted(store.reserved_addresses()) == [POOL[0], OUTSIDE]
    with counting(store.etcd, "range") as scans:
        assert sorted(store.reserved_addresses()) == [POOL[0], OUTSIDE]
        assert scans == [0]  # one transaction said nothing changed
        keys.put(f"ips::reserved::{OUTSIDE}", MAC3)  # same count, a newer key
        store.reserved_addresses()
        assert scans == [1]
        keys.delete(f"ips::reserved::{OUTSIDE}")  # fewer keys, none newer
        assert store.reserved_addresses() == (POOL[0],)
        keys.delete(f"ips::reserved::{POOL[0]}")
        keys.put(f"ips::reserved::{POOL[1]}", MAC1)  # as many keys, another one
        assert store.reserved_addresses() == (POOL[1],)
        assert scans == [3]
    counts = store.pool_counts(store.scopes())
    assert counts["0"]["reserved"] == 1 and counts["outside"]["reserved"] == 0


def test_the_last_address_of_the_range_is_issued(store: LeaseStore, keys: Keys) -> None:
    assert free_set(keys) == set(POOL)
    offered = {store.offer(f"02:00:5e:00:01:{i:02x}") for i in range(5)}
    assert offered == set(POOL)  # .14 included
    assert store.offer("02:00:5e:00:01:ff") is None
    assert store.counts() == {"free": 0, "offered": 5, "leased": 0, "reserved": 0, "quarantined": 0}


@pytest.fixture(scope="module")
def big_pool(etcd_server: Any) -> Iterator[tuple[Etcd, str]]:
    """A /16 seeded once (65536 free keys), removed afterwards."""
    etcd = Etcd([etcd_server.endpoint], timeout=10.0)
    prefix = f"t-big-{uuid.uuid4().hex[:8]}::"
    store = make_store(etcd, prefix, "198.18.0.0", "198.18.255.255")
    assert store.seed() == 65536
    yield etcd, prefix
    etcd.txn([], [delete(prefix, prefix_end(prefix))])
    etcd.close()


def test_offer_reads_a_few_free_keys_not_the_whole_pool(big_pool: tuple[Etcd, str]) -> None:
    etcd, prefix = big_pool
    store = make_store(etcd, prefix, "198.18.0.0", "198.18.255.255")
    reads: list[tuple[int, int]] = []  # (limit, keys returned) per range request
    real_range = etcd.range

    def spy(*args: Any, **kw: Any) -> Any:
        response = real_range(*args, **kw)
        reads.append((kw.get("limit", 0), len(response.kvs)))
        return response

    etcd.range = spy  # type: ignore[method-assign]
    try:
        offered = {store.offer(f"02:00:5e:00:02:{i:02x}") for i in range(10)}
    finally:
        del etcd.range
    assert len(offered) == 10 and None not in offered
    assert all(store.scopes().in_pools(ip) for ip in offered if ip)
    assert reads and all(limit == FREE_CANDIDATES for limit, _ in reads)
    assert sum(n for _, n in reads) <= 10 * 2 * FREE_CANDIDATES
    assert len(reads) <= 20  # at most two small reads per offer
    assert store.counts()["offered"] == 10


# ---- offers -------------------------------------------------------------------------------


def test_offer_prefers_lease_then_pending_offer_then_requested(
    store: LeaseStore, keys: Keys
) -> None:
    assert store.offer(MAC1, "198.18.0.12") == "198.18.0.12"
    assert store.offer(MAC1, "198.18.0.13") == "198.18.0.12"  # its pending offer wins
    assert keys.get("ips::free::198.18.0.13") == "198.18.0.13"
    assert store.commit(MAC1, "198.18.0.12", allow_free=False).lease
    assert store.offer(MAC1) == "198.18.0.12"  # its lease
    assert store.offer(MAC2, "198.18.0.12") != "198.18.0.12"  # leased to someone else


def test_hand_added_free_address_outside_the_range_is_handed_out(
    store: LeaseStore, keys: Keys
) -> None:
    for i in range(5):
        assert store.offer(f"02:00:5e:00:03:{i:02x}") in POOL
    keys.put(f"ips::free::{OUTSIDE}", OUTSIDE)
    assert store.offer(MAC1) == OUTSIDE
    assert store.commit(MAC1, OUTSIDE, allow_free=False).lease is not None
    assert keys.get(f"ips::leased::{OUTSIDE}") == MAC1


def test_withdraw_offer(store: LeaseStore, keys: Keys) -> None:
    ip = store.offer(MAC1)
    assert ip is not None
    assert store.withdraw_offer(MAC1, keep=ip) is False  # a peer is committing it
    assert keys.get(f"ips::offered::{ip}") == MAC1
    assert store.withdraw_offer(MAC1, keep="198.18.0.99") is True
    assert keys.get(f"ips::offered::{ip}") is None
    assert keys.get(f"nics::offered::{MAC1}") is None
    assert keys.get(f"ips::free::{ip}") == ip
    assert store.withdraw_offer(MAC1, keep=None) is False  # nothing held any more


def test_withdrawn_offer_outside_the_range_is_phased_out(store: LeaseStore, keys: Keys) -> None:
    keys.put(f"ips::free::{OUTSIDE}", OUTSIDE)
    assert store.offer(MAC1, OUTSIDE) == OUTSIDE
    assert store.withdraw_offer(MAC1, keep=None) is True
    assert keys.get(f"ips::free::{OUTSIDE}") is None
    assert keys.get(f"ips::offered::{OUTSIDE}") is None


# ---- commit -----------------------------------------------------------------------------


def test_commit_from_offer(store: LeaseStore, keys: Keys) -> None:
    ip = store.offer(MAC1)
    assert ip is not None
    result = store.commit(MAC1, ip, allow_free=False, hostname="pc", client_id="01aa")
    assert result.lease is not None and not result.renewed and result.refusal is None
    assert result.lease.ip == ip and result.lease.mac == MAC1
    assert keys.get(f"ips::leased::{ip}") == MAC1
    assert keys.get(f"nics::leased::{MAC1}") == ip
    assert keys.get(f"ips::offered::{ip}") is None
    assert keys.get(f"nics::offered::{MAC1}") is None
    info = json.loads(keys.get(f"leases::{ip}") or "{}")
    assert info["hostname"] == "pc" and info["client_id"] == "01aa" and info["server"] == SERVER


def test_commit_renews(store: LeaseStore) -> None:
    ip = store.offer(MAC1)
    assert ip is not None
    first = store.commit(MAC1, ip, allow_free=False)
    again = store.commit(MAC1, ip, allow_free=False)
    assert again.lease is not None and again.renewed
    assert first.lease is not None and again.lease.expires >= first.lease.expires  # type: ignore[operator]


def test_commit_from_free(store: LeaseStore, keys: Keys) -> None:
    assert store.commit(MAC1, "198.18.0.11", allow_free=False).refusal == "no_record"
    assert keys.get("ips::free::198.18.0.11") == "198.18.0.11"
    result = store.commit(MAC1, "198.18.0.11", allow_free=True)
    assert result.lease is not None and not result.renewed
    assert keys.get("ips::free::198.18.0.11") is None
    assert keys.get("nics::leased::" + MAC1) == "198.18.0.11"


def test_commit_refusals(store: LeaseStore, keys: Keys) -> None:
    ip1 = store.offer(MAC1)
    assert ip1 is not None and store.commit(MAC1, ip1, allow_free=False).lease
    # taken: leased to another MAC
    assert store.commit(MAC2, ip1, allow_free=True).refusal == "taken"
    # taken: offered to another MAC
    ip3 = store.offer(MAC3)
    assert ip3 is not None
    assert store.commit(MAC2, ip3, allow_free=True).refusal == "taken"
    # other_address: the MAC holds another lease
    free_ip = next(a for a in POOL if a not in (ip1, ip3))
    assert store.commit(MAC1, free_ip, allow_free=True).refusal == "other_address"
    # no_record: an address in no state at all (outside the range, never added)
    assert store.commit(MAC2, OUTSIDE, allow_free=True).refusal == "no_record"
    # half a pair (a damaged hand edit) is not extended
    keys.delete(f"nics::leased::{MAC1}")
    assert store.commit(MAC1, ip1, allow_free=True).refusal == "taken"
    assert store.counts()["leased"] == 1


def test_commit_survives_a_revoked_etcd_lease(
    store: LeaseStore, keys: Keys, etcd_client: Any
) -> None:
    ip = store.offer(MAC1)
    assert ip is not None and store.commit(MAC1, ip, allow_free=False).lease
    etcd_client.revoke_lease(keys.lease_id(f"ips::leased::{ip}"))
    assert keys.get(f"ips::leased::{ip}") is None  # revoked with its keys
    other = store.offer(MAC2)
    assert other is not None
    result = store.commit(MAC2, other, allow_free=False)  # the cached lease is gone: retried
    assert result.lease is not None
    assert keys.get(f"ips::leased::{other}") == MAC2
    assert keys.lease_id(f"ips::leased::{other}") != 0


def test_lease_buckets_share_one_etcd_lease(
    etcd: Etcd, etcd_prefix: str, keys: Keys, etcd_client: Any
) -> None:
    now = time.time()
    store = make_store(etcd, etcd_prefix, POOL[0], POOL[-1], clock=lambda: now)
    store.seed()
    macs = [f"02:00:5e:00:04:{i:02x}" for i in range(5)]
    metric = etcd_requests("grant")
    with counting(etcd, "grant") as grants:
        for mac, ip in zip(macs, POOL, strict=True):
            assert store.commit(mac, ip, allow_free=True).lease is not None
    assert grants[0] == 1
    assert etcd_requests("grant") - metric >= 1
    ids = {keys.lease_id(f"ips::leased::{ip}") for ip in POOL}
    ids |= {keys.lease_id(f"nics::leased::{mac}") for mac in macs}
    ids |= {keys.lease_id(f"leases::{ip}") for ip in POOL}
    assert len(ids) == 1 and 0 not in ids
    ttl = etcd_client.get_lease_info(ids.pop()).TTL
    assert 120 <= ttl <= 120 + 120 // 16 + 2  # twice the DHCP lease, plus one bucket
    # Renewals in the same bucket grant nothing either.
    with counting(etcd, "grant") as grants:
        assert store.commit(macs[0], POOL[0], allow_free=False).renewed
    assert grants[0] == 0


def test_lease_buckets_move_on_with_the_clock(etcd: Etcd) -> None:
    now = [1_900_000_000.0]
    buckets = LeaseBuckets(etcd, 160, clock=lambda: now[0])
    assert buckets.granularity == 10
    first = buckets.lease()
    now[0] += 0.5
    assert buckets.lease() == first
    now[0] += 10
    second = buckets.lease()
    assert second != first
    buckets.forget()
    assert buckets.lease() not in (first, second)


# ---- release, decline ----------------------------------------------------------------


def test_release(store: LeaseStore, keys: Keys) -> None:
    ip = store.offer(MAC1)
    assert ip is not None and store.commit(MAC1, ip, allow_free=False).lease
    before = keys.all()
    assert store.release(MAC2, ip) is False
    assert store.release(MAC1, "198.18.0.99") is False
    assert keys.all() == before
    assert store.release(MAC1, ip) is True
    assert keys.get(f"ips::free::{ip}") == ip
    for suffix in (f"ips::leased::{ip}", f"nics::leased::{MAC1}", f"leases::{ip}"):
        assert keys.get(suffix) is None
    assert store.release(MAC1, ip) is False  # twice: nothing left


def test_release_outside_the_range_phases_the_address_out(store: LeaseStore, keys: Keys) -> None:
    keys.put(f"ips::free::{OUTSIDE}", OUTSIDE)
    assert store.commit(MAC1, OUTSIDE, allow_free=True).lease is not None
    assert store.release(MAC1, OUTSIDE) is True
    assert keys.get(f"ips::free::{OUTSIDE}") is None
    assert keys.get(f"ips::leased::{OUTSIDE}") is None
    assert store.seed() == 0  # and the reseeder does not bring it back
    assert keys.get(f"ips::free::{OUTSIDE}") is None


def test_decline(store: LeaseStore, keys: Keys) -> None:
    offered = store.offer(MAC1)
    assert offered is not None
    assert store.decline(MAC2, offered) is False  # not its offer
    assert store.decline(MAC1, offered) is True
    assert keys.get(f"ips::declined::{offered}") == MAC1
    assert keys.get(f"ips::offered::{offered}") is None
    assert keys.get(f"nics::offered::{MAC1}") is None
    assert keys.lease_id(f"ips::declined::{offered}") != 0  # quarantine ends by itself

    leased = store.offer(MAC2)
    assert leased is not None and store.commit(MAC2, leased, allow_free=False).lease
    assert store.decline(MAC2, leased) is True
    assert keys.get(f"ips::declined::{leased}") == MAC2
    assert keys.get(f"nics::leased::{MAC2}") is None
    assert store.counts() == {"free": 3, "offered": 0, "leased": 0, "reserved": 0, "quarantined": 2}
    assert store.seed() == 0  # quarantined addresses are accounted for
    assert offered not in {store.offer(f"02:00:5e:00:05:{i:02x}") for i in range(4)}


# ---- pool maintenance -----------------------------------------------------------------


def test_free_if_vacant(store: LeaseStore, keys: Keys) -> None:
    leased = store.offer(MAC1)
    assert leased is not None and store.commit(MAC1, leased, allow_free=False).lease
    vacant = next(a for a in POOL if a != leased)
    keys.delete(f"ips::free::{vacant}")
    already_free = next(a for a in POOL if a not in (leased, vacant))
    with counting(store.etcd, "txn") as txns:
        assert store.free_if_vacant([vacant, leased, already_free, OUTSIDE, vacant]) == 1
    assert txns[0] == 2  # one read-only check, one write
    assert keys.get(f"ips::free::{vacant}") == vacant
    assert keys.get(f"ips::free::{leased}") is None
    assert keys.get(f"ips::free::{OUTSIDE}") is None
    with counting(store.etcd, "txn") as txns:
        assert store.free_if_vacant([leased, already_free]) == 0
    assert txns[0] == 1  # nothing vacant: no write


def test_reclaim_expired_with_an_injected_clock(etcd: Etcd, etcd_prefix: str, keys: Keys) -> None:
    now = [1_900_000_000.0]
    store = make_store(etcd, etcd_prefix, POOL[0], POOL[-1], clock=lambda: now[0])
    store.seed()
    assert store.commit(MAC1, POOL[0], allow_free=True).lease
    keys.put(f"ips::free::{OUTSIDE}", OUTSIDE)
    assert store.commit(MAC2, OUTSIDE, allow_free=True).lease
    # A hand pin without a lease record and an orphan record without a lease.
    keys.put(f"nics::leased::{MAC3}", POOL[1])
    keys.put(f"ips::leased::{POOL[1]}", MAC3)
    keys.delete(f"ips::free::{POOL[1]}")
    orphan = Lease(ip=POOL[2], mac="02:00:5e:00:00:09", expires=now[0] - 1000)
    keys.put(f"leases::{POOL[2]}", orphan.to_json())
    # Unreadable records are skipped, never fatal to the pass.
    unreadable = {
        f"leases::{POOL[3]}": "not json",
        f"leases::{POOL[4]}": "42",
        "leases::198.18.0.201": '{"ip": "198.18.0.201", "mac": "x", "expires": "soon"}',
        "leases::198.18.0.202": '{"ip": "198.18.0.202", "mac": "x", "expires": [1]}',
    }
    for suffix, value in unreadable.items():
        keys.put(suffix, value)

    now[0] += 60 + store.expiry_skew  # the DHCP lease ran out, but not the skew after it
    assert store.reclaim_expired() == 0
    assert keys.get(f"ips::leased::{POOL[0]}") == MAC1
    assert keys.get(f"leases::{POOL[2]}") is None  # the orphan record is cleaned up

    now[0] += 0.01
    assert store.reclaim_expired() == 2
    assert keys.get(f"ips::leased::{POOL[0]}") is None
    assert keys.get(f"nics::leased::{MAC1}") is None
    assert keys.get(f"ips::free::{POOL[0]}") == POOL[0]
    assert keys.get(f"ips::leased::{OUTSIDE}") is None
    assert keys.get(f"ips::free::{OUTSIDE}") is None  # phased out
    assert keys.get(f"nics::leased::{MAC3}") == POOL[1]  # the pin stays
    for suffix, value in unreadable.items():
        assert keys.get(suffix) == value


def test_reclaim_goes_by_the_record_not_this_servers_lease_time(
    etcd: Etcd, etcd_prefix: str, keys: Keys
) -> None:
    now = [1_900_000_000.0]
    granting = make_store(etcd, etcd_prefix, POOL[0], POOL[-1], lease_time=60, clock=lambda: now[0])
    granting.seed()
    assert granting.commit(MAC1, POOL[0], allow_free=True).lease
    # Another server (or this one after a restart) with a longer lease time.
    other = make_store(etcd, etcd_prefix, POOL[0], POOL[-1], lease_time=3600, clock=lambda: now[0])
    now[0] += 60 + other.expiry_skew + 0.01
    assert other.reclaim_expired() == 1
    assert keys.get(f"ips::free::{POOL[0]}") == POOL[0]


def test_expiries_scan_and_watch(etcd: Etcd, etcd_prefix: str, keys: Keys) -> None:
    now = [1_900_000_000.0]
    store = make_store(etcd, etcd_prefix, POOL[0], POOL[-1], clock=lambda: now[0])
    store.seed()
    assert store.commit(MAC1, POOL[0], allow_free=True).lease
    keys.put(f"leases::{POOL[4]}", "not json")  # logged, left out
    due, revision = store.expiries()
    assert due == {POOL[0]: now[0] + 60 + store.expiry_skew}

    changes, cancel = store.watch_expiries(revision)
    seen: list[tuple[str, float | None]] = []

    def follow() -> None:
        for change in changes:
            seen.append(change)
            if len(seen) == 4:
                return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        now[0] += 30
        assert store.commit(MAC1, POOL[0], allow_free=False).renewed  # a renewal moves it
        assert store.commit(MAC2, POOL[1], allow_free=True).lease
        pin = Lease(ip=POOL[1], mac=MAC2)  # rewritten without an expiry: never due
        keys.put(f"leases::{POOL[1]}", pin.to_json())
        assert store.release(MAC1, POOL[0])
        follower.join(10)
    finally:
        cancel()
    end = now[0] + 60 + store.expiry_skew
    assert seen == [(POOL[0], end), (POOL[1], end), (POOL[1], None), (POOL[0], None)]


def test_reclaim_due_reads_the_records_first(etcd: Etcd, etcd_prefix: str, keys: Keys) -> None:
    now = [1_900_000_000.0]
    store = make_store(etcd, etcd_prefix, POOL[0], POOL[-1], clock=lambda: now[0])
    store.seed()
    assert store.commit(MAC1, POOL[0], allow_free=True).lease
    assert store.commit(MAC2, POOL[1], allow_free=True).lease
    now[0] += 30
    assert store.commit(MAC2, POOL[1], allow_free=False).renewed  # after the index was read
    now[0] += 30 + store.expiry_skew + 0.01  # MAC1's lease is due, MAC2's renewal is not
    before = metrics.REGISTRY.get_sample_value(
        "etcdhcp_leases_total", {"event": "expired_reclaimed"}
    )
    with counting(store.etcd, "txn") as reads:
        assert store.reclaim_due([POOL[0], POOL[1], POOL[2], POOL[0]]) == 1
    assert reads[0] == 1  # the three records in one read
    after = metrics.REGISTRY.get_sample_value(
        "etcdhcp_leases_total", {"event": "expired_reclaimed"}
    )
    assert after == before + 1
    assert keys.get(f"ips::leased::{POOL[0]}") is None
    assert keys.get(f"nics::leased::{MAC1}") is None
    assert keys.get(f"leases::{POOL[0]}") is None
    assert keys.get(f"ips::free::{POOL[0]}") == POOL[0]
    assert keys.get(f"ips::leased::{POOL[1]}") == MAC2
    assert store.reclaim_due([POOL[0]]) == 0  # already gone


def test_lease_lookups(store: LeaseStore, keys: Keys) -> None:
    ip = store.offer(MAC1)
    assert ip is not None
    granted = store.commit(MAC1, ip, allow_free=False, hostname="h", client_id="ff01").lease
    assert granted is not None
    assert store.lease_by_mac(MAC1) == granted
    assert store.lease_by_ip(ip) == granted
    assert store.lease_by_ip(ip, MAC1) == granted
    assert store.lease_by_ip(ip, MAC2) is None
    assert store.lease_by_mac(MAC2) is None
    assert store.lease_by_ip("198.18.0.99") is None
    # A hand pin has no record: address and MAC only.
    keys.put(f"nics::leased::{MAC3}", "198.18.0.50")
    keys.put("ips::leased::198.18.0.50", MAC3)
    assert store.lease_by_mac(MAC3) == Lease(ip="198.18.0.50", mac=MAC3)
    # A record left by another holder is not trusted.
    keys.put("leases::198.18.0.50", granted.to_json())
    assert store.lease_by_ip("198.18.0.50") == Lease(ip="198.18.0.50", mac=MAC3)
    assert Lease.from_json(granted.to_json()) == granted
