"""The lease store: the only module that knows etcd key names.

Key layout (prefix P, default `etcdhcp::`; CONTRACT §2 plus the keys added here):

    P ips::free::<ip>       = <ip>    the address is free (no TTL)
    P ips::leased::<ip>     = <mac>   leased; etcd lease TTL = 2 x the DHCP lease
    P nics::leased::<mac>   = <ip>    same etcd lease as the key above
    P leases::<ip>          = JSON    lease details: absolute expiry, server, hostname;
                                      same etcd lease
    P ips::offered::<ip>    = <mac>   held for an offer; TTL = --dhcp.offer-hold
    P nics::offered::<mac>  = <ip>    same etcd lease as the key above
    P ips::declined::<ip>   = <mac>   quarantined after a DECLINE; TTL = --dhcp.decline-time

An address is in exactly one of free / offered / leased / declined, or in none
for a moment after a TTL ran out (the reseeder makes it free again). Every move
between states is one guarded etcd transaction, so no two servers can hand one
address to two clients.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from etcdhcp import metrics
from etcdhcp.etcd import (
    Branch,
    Etcd,
    LeaseBuckets,
    LeaseNotFound,
    absent,
    delete,
    first_value,
    get,
    nested,
    prefix_end,
    present,
    put,
    value_is,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

SEED_BATCH = 64  # guarded puts per transaction: etcd's default --max-txn-ops counts nested ops
CHECK_BATCH = 32  # addresses per read-only check (4 reads each, under 128 ops)
SCAN_PAGE = 5000  # keys per range read when scanning a prefix
FREE_CANDIDATES = 8


@dataclass(frozen=True)
class AddressPool:
    """The inclusive range of addresses this server seeds (-dhcp.issue-from .. -issue-to)."""

    first: ipaddress.IPv4Address
    last: ipaddress.IPv4Address

    def __contains__(self, ip: object) -> bool:
        try:
            address = ipaddress.IPv4Address(str(ip))
        except ValueError:
            return False
        return self.first <= address <= self.last

    def __iter__(self) -> Iterator[str]:
        for value in range(int(self.first), int(self.last) + 1):
            yield str(ipaddress.IPv4Address(value))

    def __len__(self) -> int:
        return int(self.last) - int(self.first) + 1

    def random_address(self) -> str:
        return str(ipaddress.IPv4Address(random.randint(int(self.first), int(self.last))))


@dataclass(frozen=True)
class Lease:
    """One lease as operators see it; `expires` is absolute (unix time), None for a hand pin."""

    ip: str
    mac: str
    expires: float | None = None
    granted: float | None = None
    server: str | None = None
    hostname: str | None = None
    client_id: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Lease:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("a lease record must be a JSON object")
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Commit:
    """The result of a REQUEST: the lease, or why not ("taken", "other_address", "no_record")."""

    lease: Lease | None
    renewed: bool = False
    refusal: str | None = None


class LeaseStore:
    def __init__(
        self,
        etcd: Etcd,
        *,
        prefix: str,
        pool: AddressPool,
        lease_time: float,
        offer_hold: float,
        decline_time: float,
        server_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.etcd = etcd
        self.prefix = prefix
        self.pool = pool
        self.lease_time = lease_time
        self.server_id = server_id
        self._clock = clock
        self._dhcp_leases = LeaseBuckets(etcd, 2 * lease_time, clock)
        self._offer_leases = LeaseBuckets(etcd, offer_hold, clock)
        self._decline_leases = LeaseBuckets(etcd, decline_time, clock)
        self.free_prefix = f"{prefix}ips::free::"
        self.leased_prefix = f"{prefix}ips::leased::"
        self.nic_prefix = f"{prefix}nics::leased::"
        self.info_prefix = f"{prefix}leases::"
        self.offered_prefix = f"{prefix}ips::offered::"
        self.offer_nic_prefix = f"{prefix}nics::offered::"
        self.declined_prefix = f"{prefix}ips::declined::"

    # ---- key names

    def _free(self, ip: str) -> str:
        return self.free_prefix + ip

    def _leased(self, ip: str) -> str:
        return self.leased_prefix + ip

    def _nic(self, mac: str) -> str:
        return self.nic_prefix + mac

    def _info(self, ip: str) -> str:
        return self.info_prefix + ip

    def _offered(self, ip: str) -> str:
        return self.offered_prefix + ip

    def _offer_nic(self, mac: str) -> str:
        return self.offer_nic_prefix + mac

    def _declined(self, ip: str) -> str:
        return self.declined_prefix + ip

    # ---- DISCOVER

    def offer(self, mac: str, requested: str | None = None) -> str | None:
        """The address to offer `mac`, held for it under an offer key; None if the pool is empty.

        In order: its current lease, its pending offer (so every server answering one
        broadcast DISCOVER offers the same address), the requested address if free,
        any free address.
        """
        return self._with_live_leases(self._offer, mac, requested)

    def _offer(self, mac: str, requested: str | None) -> str | None:
        known = [
            Branch([present(self._nic(mac))], [get(self._nic(mac))]),
            Branch([present(self._offer_nic(mac))], [get(self._offer_nic(mac))]),
        ]
        if requested:
            choice = self.etcd.choose([*known, self._take_for_offer(mac, requested)])
            if choice.index is not None:
                return _held_address(choice, requested)
        for _ in range(4):
            candidates = self._free_candidates()
            if not candidates:
                choice = self.etcd.choose(known)
                return None if choice.index is None else _held_address(choice, "")
            for ip in candidates:
                choice = self.etcd.choose([*known, self._take_for_offer(mac, ip)])
                if choice.index is not None:
                    return _held_address(choice, ip)
        return None

    def _take_for_offer(self, mac: str, ip: str) -> Branch:
        lease = self._offer_leases.lease()
        return Branch(
            [present(self._free(ip))],
            [
                delete(self._free(ip)),
                put(self._offered(ip), mac, lease),
                put(self._offer_nic(mac), ip, lease),
            ],
        )

    def withdraw_offer(self, mac: str, keep: str | None) -> bool:
        """Return `mac`'s held offer to the pool unless it is for `keep`.

        Called when the client chose another server's offer (RFC 2131 §4.3.2). An
        offer for the very address the client requested stays: a peer sharing this
        store made it, and is about to commit it.
        """
        held = self.etcd.range(self._offer_nic(mac)).kvs
        if not held or held[0].value.decode() == keep:
            return False
        ip = held[0].value.decode()
        back_to_pool = [put(self._free(ip), ip)] if ip in self.pool else []
        choice = self.etcd.choose(
            [
                Branch(
                    [value_is(self._offer_nic(mac), ip), value_is(self._offered(ip), mac)],
                    [delete(self._offer_nic(mac)), delete(self._offered(ip)), *back_to_pool],
                )
            ]
        )
        return choice.index == 0

    def _free_candidates(self) -> list[str]:
        """A few free addresses from a random point of the free keys: O(1) in the pool size.

        Starting at a random key spreads concurrent DISCOVERs (and servers) over the
        pool, so they rarely race for one address.
        """
        start = self._free(self.pool.random_address())
        end = prefix_end(self.free_prefix)
        keys = [
            kv.key for kv in self.etcd.range(start, end, limit=FREE_CANDIDATES, keys_only=True).kvs
        ]
        if len(keys) < FREE_CANDIDATES:
            keys += [
                kv.key
                for kv in self.etcd.range(
                    self.free_prefix, start.encode(), limit=FREE_CANDIDATES, keys_only=True
                ).kvs
            ]
        ips = [key.decode()[len(self.free_prefix) :] for key in keys]
        random.shuffle(ips)
        return ips

    # ---- REQUEST

    def commit(
        self,
        mac: str,
        ip: str,
        *,
        allow_free: bool,
        hostname: str | None = None,
        client_id: str | None = None,
    ) -> Commit:
        """Lease `ip` to `mac`: renew its lease, take its offer, or (if allowed) a free address.

        One transaction and one consensus write; the etcd lease is shared with other
        leases ending in the same time bucket, so a renewal grants no new etcd lease.
        """
        return self._with_live_leases(self._commit, mac, ip, allow_free, hostname, client_id)

    def _with_live_leases(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn; if etcd lost a cached etcd lease (revoked, expired early), re-grant once."""
        try:
            return fn(*args)
        except LeaseNotFound:
            for buckets in (self._dhcp_leases, self._offer_leases, self._decline_leases):
                buckets.forget()
            return fn(*args)

    def _commit(
        self, mac: str, ip: str, allow_free: bool, hostname: str | None, client_id: str | None
    ) -> Commit:
        now = self._clock()
        lease = Lease(
            ip=ip,
            mac=mac,
            expires=now + self.lease_time,
            granted=now,
            server=self.server_id,
            hostname=hostname,
            client_id=client_id,
        )
        etcd_lease = self._dhcp_leases.lease()
        write = [
            put(self._leased(ip), mac, etcd_lease),
            put(self._nic(mac), ip, etcd_lease),
            put(self._info(ip), lease.to_json(), etcd_lease),
        ]
        branches = [
            Branch([value_is(self._leased(ip), mac), value_is(self._nic(mac), ip)], write),
            Branch(
                [value_is(self._offered(ip), mac), absent(self._nic(mac))],
                [delete(self._offered(ip)), delete(self._offer_nic(mac)), *write],
            ),
        ]
        if allow_free:
            branches.append(
                Branch(
                    [present(self._free(ip)), absent(self._nic(mac))],
                    [delete(self._free(ip)), *write],
                )
            )
        otherwise = [get(self._leased(ip)), get(self._nic(mac)), get(self._offered(ip))]
        choice = self.etcd.choose(branches, otherwise)
        if choice.index is not None:
            renewed = choice.index == 0
            metrics.LEASES.labels(event="renewed" if renewed else "granted").inc()
            return Commit(lease, renewed=renewed)
        holder, mac_ip, offered_to = (first_value(r) for r in choice.responses)
        if (holder and holder.decode() != mac) or (offered_to and offered_to.decode() != mac):
            return Commit(None, refusal="taken")
        if mac_ip and mac_ip.decode() != ip:
            return Commit(None, refusal="other_address")
        if holder or mac_ip:
            return Commit(None, refusal="taken")  # half a pair: not safe to extend
        return Commit(None, refusal="no_record")

    # ---- RELEASE, DECLINE

    def _lease_held(self, mac: str, ip: str) -> list[Any]:
        return [value_is(self._leased(ip), mac), value_is(self._nic(mac), ip)]

    def _drop_lease(self, mac: str, ip: str) -> list[Any]:
        return [delete(self._leased(ip)), delete(self._nic(mac)), delete(self._info(ip))]

    def release(self, mac: str, ip: str) -> bool:
        """Free `ip` if it is leased to `mac`; addresses outside the range are phased out."""
        back_to_pool = [put(self._free(ip), ip)] if ip in self.pool else []
        choice = self.etcd.choose(
            [Branch(self._lease_held(mac, ip), [*self._drop_lease(mac, ip), *back_to_pool])]
        )
        if choice.index is None:
            return False
        metrics.LEASES.labels(event="released").inc()
        return True

    def decline(self, mac: str, ip: str) -> bool:
        """Quarantine `ip` (someone else answers ARP for it) if `mac` held or was offered it."""
        return self._with_live_leases(self._decline, mac, ip)

    def _decline(self, mac: str, ip: str) -> bool:
        quarantine = put(self._declined(ip), mac, self._decline_leases.lease())
        choice = self.etcd.choose(
            [
                Branch(self._lease_held(mac, ip), [*self._drop_lease(mac, ip), quarantine]),
                Branch(
                    [value_is(self._offered(ip), mac)],
                    [delete(self._offered(ip)), delete(self._offer_nic(mac)), quarantine],
                ),
            ]
        )
        if choice.index is None:
            return False
        metrics.LEASES.labels(event="declined").inc()
        return True

    # ---- reads for operators and tests

    def lease_by_mac(self, mac: str) -> Lease | None:
        raw_ip = self.etcd.range(self._nic(mac)).kvs
        if not raw_ip:
            return None
        return self.lease_by_ip(raw_ip[0].value.decode(), mac)

    def lease_by_ip(self, ip: str, mac: str | None = None) -> Lease | None:
        response = self.etcd.txn([], [get(self._leased(ip)), get(self._info(ip))])
        holder, info = (first_value(r) for r in response.responses)
        if holder is None or (mac is not None and holder.decode() != mac):
            return None
        if info is not None:
            lease = Lease.from_json(info)
            if lease.mac == holder.decode():
                return lease
        return Lease(ip=ip, mac=holder.decode())

    def counts(self) -> dict[str, int]:
        """Addresses per state, from count-only reads (cheap for any pool size)."""
        prefixes = {
            "free": self.free_prefix,
            "offered": self.offered_prefix,
            "leased": self.leased_prefix,
            "quarantined": self.declined_prefix,
        }
        ops = [_count(p) for p in prefixes.values()]
        response = self.etcd.txn([], ops)
        return {
            state: r.response_range.count
            for state, r in zip(prefixes, response.responses, strict=True)
        }

    # ---- pool maintenance (the reseeder's tools)

    def _scan(self, prefix: str, keys_only: bool = True) -> Iterator[tuple[str, bytes]]:
        """Every (suffix, value) under `prefix`, read page by page."""
        start = prefix.encode()
        end = prefix_end(prefix)
        while True:
            response = self.etcd.range(start, end, limit=SCAN_PAGE, keys_only=keys_only)
            for kv in response.kvs:
                yield kv.key.decode()[len(prefix) :], kv.value
            if not response.more or not response.kvs:
                return
            start = response.kvs[-1].key + b"\x00"

    def _accounted(self) -> set[str]:
        """Every address that is free, offered, leased or quarantined right now."""
        seen: set[str] = set()
        for prefix in (
            self.free_prefix,
            self.leased_prefix,
            self.offered_prefix,
            self.declined_prefix,
        ):
            seen.update(suffix for suffix, _ in self._scan(prefix))
        return seen

    def _guarded_free(self, ip: str) -> Any:
        """Put `ip` in the free pool only if it is in no state at all (a nested transaction)."""
        return nested(
            [
                absent(self._free(ip)),
                absent(self._leased(ip)),
                absent(self._offered(ip)),
                absent(self._declined(ip)),
            ],
            [put(self._free(ip), ip)],
        )

    def _free_batches(self, ips: list[str], parallel: int = 8) -> int:
        batches = [ips[i : i + SEED_BATCH] for i in range(0, len(ips), SEED_BATCH)]

        def write(batch: list[str]) -> int:
            response = self.etcd.txn([], [self._guarded_free(ip) for ip in batch])
            return sum(1 for r in response.responses if r.response_txn.succeeded)

        if len(batches) <= 1:
            return sum(write(b) for b in batches)
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="seed") as pool:
            return sum(pool.map(write, batches))

    def seed(self) -> int:
        """Make every range address that is in no state free; returns how many were added."""
        accounted = self._accounted()
        missing = [ip for ip in self.pool if ip not in accounted]
        return self._free_batches(missing) if missing else 0

    def free_if_vacant(self, ips: Iterable[str]) -> int:
        """Return range addresses whose lease, offer or quarantine ended to the free pool.

        Reads first so that the common case (the address moved on to another state in
        the same transaction) costs no write.
        """
        candidates = sorted({ip for ip in ips if ip in self.pool})
        vacant: list[str] = []
        for i in range(0, len(candidates), CHECK_BATCH):
            batch = candidates[i : i + CHECK_BATCH]
            ops = [
                _count(key, single=True)
                for ip in batch
                for key in (self._free(ip), self._leased(ip), self._offered(ip), self._declined(ip))
            ]
            responses = self.etcd.txn([], ops).responses
            for j, ip in enumerate(batch):
                if all(r.response_range.count == 0 for r in responses[4 * j : 4 * j + 4]):
                    vacant.append(ip)
        return self._free_batches(vacant) if vacant else 0

    def reclaim_expired(self) -> int:
        """Remove leases past their absolute end (2 x lease after the grant, like the TTL).

        etcd restarts TTLs after a leader change, so the absolute time is what counts.
        """
        now = self._clock()
        reclaimed = 0
        for ip, raw in list(self._scan(self.info_prefix, keys_only=False)):
            try:
                lease = Lease.from_json(raw)
                ends = None if lease.expires is None else float(lease.expires) + self.lease_time
            except (ValueError, TypeError):
                log.warning("ignoring unreadable lease record for %s", ip)
                continue
            if ends is None or ends > now:
                continue
            back_to_pool = [put(self._free(ip), ip)] if ip in self.pool else []
            choice = self.etcd.choose(
                [
                    Branch(
                        [*self._lease_held(lease.mac, ip), value_is(self._info(ip), raw)],
                        [*self._drop_lease(lease.mac, ip), *back_to_pool],
                    ),
                    Branch([absent(self._leased(ip))], [delete(self._info(ip))]),
                ]
            )
            if choice.index == 0:
                reclaimed += 1
                metrics.LEASES.labels(event="expired_reclaimed").inc()
        return reclaimed

    def watch_vacated(self) -> tuple[Iterator[str], Callable[[], None]]:
        """Addresses whose leased, offered or declined key was deleted (expiry included)."""
        watched = (self.leased_prefix, self.offered_prefix, self.declined_prefix)
        keys, cancel = self.etcd.watch_deletes(f"{self.prefix}ips::")

        def addresses() -> Iterator[str]:
            for key in keys:
                for prefix in watched:
                    if key.startswith(prefix):
                        yield key[len(prefix) :]

        return addresses(), cancel


def _count(key: str, single: bool = False) -> Any:
    op = get(key) if single else get(key, prefix_end(key))
    op.request_range.count_only = True
    return op


def _held_address(choice: Any, taken: str) -> str:
    """The address from an `offer` choice: an existing lease or offer (read), or the taken one."""
    if choice.index in (0, 1):
        return first_value(choice.responses[0]).decode()
    return taken
