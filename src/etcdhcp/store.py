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
    P ips::reserved::<ip>   = <mac>   reserved for that MAC (etcdhcpctl reserve); no TTL
    P reservations::<mac>   = <ip>    the same reservation by MAC, written in the same
                                      transaction
    P servers::<server-ip>  = JSON    a live server (registry.py): address, interface, range,
                                      version, start; its own etcd lease, TTL ~10 s, kept
                                      alive while it runs, revoked at a clean shutdown

An address is in exactly one of free / offered / leased / declined, or in none
for a moment after a TTL ran out (the reseeder makes it free again). Every move
between states is one guarded etcd transaction, so no two servers can hand one
address to two clients. A reserved address is never free: it is offered and leased
only to its MAC (without an offer hold: nobody else can take it), and stays
reserved when that lease ends.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from etcdhcp import metrics
from etcdhcp.codec import ip_int
from etcdhcp.etcd import (
    Branch,
    Etcd,
    EtcdError,
    LeaseBuckets,
    LeaseNotFound,
    first_value,
    prefix_end,
)
from etcdhcp.etcdwire import absent, delete, get, nested, present, put, value_is
from etcdhcp.hosts import GLOBAL, HW_ADDRESS, Host, HostKey, holder, record_name
from etcdhcp.scopes import Document, Scope, ScopeSet, document_name

log = logging.getLogger(__name__)
T = TypeVar("T")

SEED_BATCH = 64  # guarded puts per transaction: etcd's default --max-txn-ops counts nested ops
CHECK_BATCH = 25  # addresses per read-only check (5 reads each, under 128 ops)
DELETE_BATCH = 128  # deletes per transaction: etcd's default --max-txn-ops
RESERVE_ATTEMPTS = 5  # reads and guarded writes before giving up on a busy store
SCAN_PAGE = 5000  # keys per range read when scanning a prefix
FREE_CANDIDATES = 32  # free keys read at once into the offer cache
OFFER_ATTEMPTS = 3 * FREE_CANDIDATES  # candidates taken by others meanwhile are skipped
# Every state an address can be in, one key prefix each (a declined address is
# quarantined: its key says `declined`, CONTRACT's word for the event).
ADDRESS_STATES = ("free", "offered", "leased", "reserved", "quarantined")
OUTSIDE = "outside"  # the pool gauges' `scope` for addresses in no scope's pools
CANDIDATE_PAGES = 8  # reads of a subnet's free keys shared with other subnets, at most


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


R = TypeVar("R", bound="_JsonRecord")


class _JsonRecord:
    """A dataclass stored in etcd as one JSON object; unknown fields are ignored."""

    def to_json(self) -> str:
        # vars(), not asdict(): the fields are plain values, and asdict deep-copies.
        return json.dumps(vars(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls: type[R], raw: bytes | str) -> R:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(f"a {cls.__name__} record must be a JSON object")
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Lease(_JsonRecord):
    """One lease as operators see it; `expires` is absolute (unix time), None for a hand pin."""

    ip: str
    mac: str
    expires: float | None = None
    granted: float | None = None
    server: str | None = None
    hostname: str | None = None
    client_id: str | None = None
    host: str | None = None  # the host record the client was served by (hosts.record_name)
    classes: list[str] | None = None  # the client's classes when it was granted (not ALL)


@dataclass(frozen=True)
class ServerInfo(_JsonRecord):
    """One live server as the registry shows it (`P servers::<server_ip>`).

    `started` is unix time; `range_from`/`range_to` the addresses it seeds from its
    flags, in `subnet` (all three None when it serves only etcd's scopes).
    """

    server_ip: str
    interface: str | None = None
    range_from: str | None = None
    range_to: str | None = None
    version: str | None = None
    started: float | None = None
    hostname: str | None = None
    pid: int | None = None
    subnet: str | None = None


@dataclass(frozen=True)
class _LeaseNotes:
    """What a commit records besides the address: who the client says it is, the server,
    and the host record (and its reservation holder) it was served by."""

    hostname: str | None
    client_id: str | None
    server: str | None
    holder: str | None
    host: str | None
    classes: list[str] | None


@dataclass(frozen=True)
class Commit:
    """The result of a REQUEST: the lease, or why not ("taken", "other_address", "no_record")."""

    lease: Lease | None
    renewed: bool = False
    refusal: str | None = None


class Refused(Exception):
    """An operator's change that the state in etcd does not allow; the message says why."""


@dataclass(frozen=True)
class Reservation:
    """An address every server offers only to this MAC (etcdhcpctl reserve)."""

    mac: str
    ip: str


@dataclass(frozen=True)
class Connection:
    """A device connecting (its MAC's lease created) or disconnecting (the lease gone)."""

    revision: int
    event: str  # "connect" or "disconnect"
    mac: str
    ip: str


@dataclass(frozen=True)
class Snapshot:
    """Every address and MAC key, read at one etcd revision: a consistent picture."""

    revision: int
    free: frozenset[str]
    leased: dict[str, str]  # ip -> mac
    nics: dict[str, str]  # mac -> ip
    offered: dict[str, str]  # ip -> mac
    offer_nics: dict[str, str]  # mac -> ip
    declined: dict[str, str]  # ip -> mac
    reserved: dict[str, str]  # ip -> mac
    reservations: dict[str, str]  # mac -> ip


@dataclass(frozen=True)
class Problem:
    """One broken invariant found by `LeaseStore.check`; `repairable` ones are safe to fix."""

    kind: str
    detail: str
    ip: str | None = None
    mac: str | None = None
    repairable: bool = False
    repaired: bool = False


class LeaseStore:
    def __init__(
        self,
        etcd: Etcd,
        *,
        prefix: str,
        scopes: Callable[[], ScopeSet],
        offer_hold: float,
        decline_time: float,
        server_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.etcd = etcd
        self.prefix = prefix
        self.scopes = scopes
        self.server_id = server_id
        self._clock = clock
        self._dhcp_leases: dict[int, LeaseBuckets] = {}  # by DHCP lease time
        self._dhcp_leases_lock = threading.Lock()
        self._offer_leases = LeaseBuckets(etcd, offer_hold, clock)
        self._decline_leases = LeaseBuckets(etcd, decline_time, clock)
        # Probably-free addresses read ahead, by scope (id, subnet, pools).
        self._candidates: dict[tuple[Any, ...], collections.deque[str]] = {}
        self._candidates_lock = threading.Lock()
        self.free_prefix = f"{prefix}ips::free::"
        self.leased_prefix = f"{prefix}ips::leased::"
        self.nic_prefix = f"{prefix}nics::leased::"
        self.info_prefix = f"{prefix}leases::"
        self.offered_prefix = f"{prefix}ips::offered::"
        self.offer_nic_prefix = f"{prefix}nics::offered::"
        self.declined_prefix = f"{prefix}ips::declined::"
        self.reserved_prefix = f"{prefix}ips::reserved::"
        self.reservation_prefix = f"{prefix}reservations::"
        self.servers_prefix = f"{prefix}servers::"
        self._reserved_scan: _ReservedScan | None = None  # the last one (reserved_addresses)
        self._reserved_gauged: tuple[_ReservedScan, ScopeSet, dict[str, int]] | None = None
        self.state_prefixes = {  # in the order of ADDRESS_STATES
            "free": self.free_prefix,
            "offered": self.offered_prefix,
            "leased": self.leased_prefix,
            "reserved": self.reserved_prefix,
            "quarantined": self.declined_prefix,
        }

    @classmethod
    def for_operator(cls, etcd: Etcd, prefix: str) -> LeaseStore:
        """A store for etcdhcpctl: it serves no scope, so by itself it seeds and frees
        nothing (operators say where an address goes), and it grants no leases."""
        no_scopes = ScopeSet(())
        return cls(
            etcd,
            prefix=prefix,
            scopes=lambda: no_scopes,
            offer_hold=1,
            decline_time=1,
            server_id="etcdhcpctl",
        )

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

    def _reserved(self, ip: str) -> str:
        return self.reserved_prefix + ip

    def _reservation(self, mac: str) -> str:
        return self.reservation_prefix + mac

    # ---- DISCOVER

    def offer(
        self,
        mac: str,
        requested: str | None = None,
        *,
        family: Sequence[Scope] | None = None,
        reserved: tuple[str, str] | None = None,
    ) -> str | None:
        """The address to offer `mac` on a link, held for it under an offer key; None if
        every pool of the link is empty.

        `family` is the chosen scope, then its shared-network siblings (tried in turn
        when one is full). In order: its current lease, its pending offer (so every
        server answering one broadcast DISCOVER offers the same address), the requested
        address if free, any free address of the family's pools. A lease or offer the
        client holds on another link is given up first: the client moved. Without a
        family (tools, tests), every served scope is one.

        `reserved` (address, holder): the client's host has that address on this link;
        it is offered (and nothing else) unless another client holds it.
        """
        if reserved is not None:
            return self._offer_reserved(mac, *reserved)
        chosen = tuple(self.scopes().scopes if family is None else family)
        return self._with_live_leases(self._offer, mac, chosen, requested)

    def _offer_reserved(self, mac: str, ip: str, holder: str) -> str | None:
        """A host's address: a lease or offer the client holds on another address is
        given up first (it moves to its own, as a Kea client does at its next DISCOVER)."""
        held = self.etcd.choose(
            [
                Branch([present(self._nic(mac))], [get(self._nic(mac))]),
                Branch([present(self._offer_nic(mac))], [get(self._offer_nic(mac))]),
            ]
        )
        if held.index is not None:
            old = first_value(held.responses[0]).decode()
            if old != ip:
                lease = held.index == 0
                if self.release(mac, old) if lease else self.withdraw_offer(mac, None):
                    log.info("%s moves from %s to its reserved address %s", mac, old, ip)
        return self._reserved_if_available(mac, ip, holder)

    def _offer(self, mac: str, family: tuple[Scope, ...], requested: str | None) -> str | None:
        known = [  # in the order of _KNOWN
            Branch([present(self._nic(mac))], [get(self._nic(mac))]),
            Branch([present(self._reservation(mac))], [get(self._reservation(mac))]),
            Branch([present(self._offer_nic(mac))], [get(self._offer_nic(mac))]),
        ]
        if requested:
            choice = self.etcd.choose([*known, self._take_for_offer(mac, requested)])
            if choice.index is not None:
                return self._held_address(mac, choice, requested, family)
        for scope in family:
            for _ in range(OFFER_ATTEMPTS):
                ip = self._next_candidate(scope)
                if ip is None:
                    break
                choice = self.etcd.choose([*known, self._take_for_offer(mac, ip)])
                if choice.index is not None:
                    return self._held_address(mac, choice, ip, family)
        choice = self.etcd.choose(known)
        return None if choice.index is None else self._held_address(mac, choice, "", family)

    def _next_candidate(self, scope: Scope) -> str | None:
        """A probably-free address of `scope`'s pools from this server's small cache.

        One range read fills the cache for many DISCOVERs, and concurrent workers
        take different entries, so they do not race each other for one address.
        """
        key = (scope.id, scope.subnet, scope.pools)
        with self._candidates_lock:
            cached = self._candidates.setdefault(key, collections.deque())
            if not cached:
                cached.extend(self._free_candidates(scope))
            return cached.popleft() if cached else None

    def _held_address(
        self, mac: str, choice: Any, taken: str, family: tuple[Scope, ...]
    ) -> str | None:
        """The address from an `offer` choice: one of `known` (read), or the taken one.

        A lease or offer on another link is given up and the offer made again; a
        reservation on another link is the operator's to fix (logged, no offer).
        """
        if choice.index is None or choice.index >= len(_KNOWN):
            return taken
        ip = first_value(choice.responses[0]).decode()
        known = _KNOWN[choice.index]
        on_link = any(scope.contains(ip_int(ip)) for scope in family)
        if known == "reservation":
            if not on_link:
                log.warning("%s is reserved %s, which is not on its link: no offer", mac, ip)
                return None
            return self._reserved_if_available(mac, ip)
        if on_link:
            return ip
        moved = self.release(mac, ip) if known == "lease" else self.withdraw_offer(mac, keep=None)
        if not moved:
            return None  # it changed meanwhile: the client's retransmission tries again
        log.info("%s moved off %s (%s): offering an address of its new link", mac, ip, known)
        return self._offer(mac, family, None)

    def _reserved_if_available(self, mac: str, ip: str, holder: str | None = None) -> str | None:
        """`mac`'s reserved address (reserved for `holder`, by default the MAC) unless a
        quarantine or another client holds it.

        A reserved client gets its own address or nothing: an address from the pool
        would hide the conflict from the operator who reserved it.
        """
        reserved = value_is(self._reserved(ip), holder or mac)
        vacant = [absent(self._offered(ip)), absent(self._declined(ip))]
        usable = self.etcd.choose(
            [
                Branch([reserved, value_is(self._leased(ip), mac)], []),
                Branch([reserved, absent(self._leased(ip)), *vacant], []),
            ]
        )
        if usable.index is not None:
            return ip
        log.warning("reserved address %s of %s is quarantined or held by another client", ip, mac)
        return None

    def _take_for_offer(self, mac: str, ip: str) -> Branch:
        lease = self._offer_leases.lease()
        return Branch(
            [present(self._free(ip)), absent(self._reserved(ip))],  # a stray free key: no
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
        back_to_pool = self._back_to_pool(ip)
        choice = self.etcd.choose(
            [
                Branch(
                    [value_is(self._offer_nic(mac), ip), value_is(self._offered(ip), mac)],
                    [delete(self._offer_nic(mac)), delete(self._offered(ip)), *back_to_pool],
                )
            ]
        )
        return choice.index == 0

    def _free_candidates(self, scope: Scope) -> list[str]:
        """A few free addresses of `scope` from a random point of its keys: O(1) in the pool.

        Free keys sort as text, so a subnet's keys are those under its dotted prefix
        (`198.18.11.` for a /24), shared with neighbours when the subnet is not
        octet-aligned: what is read is filtered by the scope. Its pools come first; a
        free key written by hand elsewhere in its subnet is offered too (CONTRACT §3).
        Starting at a random key spreads servers over the pool, so they rarely race for
        one address.
        """
        if not scope.pools:
            return []
        span = self._free(_dotted_prefix(scope.subnet))
        pool = random.choice(scope.pools)
        start = self._free(str(ipaddress.IPv4Address(random.randint(pool.first, pool.last))))
        found: list[str] = []
        for low, high in ((start.encode(), prefix_end(span)), (span.encode(), start.encode())):
            for _ in range(CANDIDATE_PAGES):
                kvs = self.etcd.range(low, high, limit=FREE_CANDIDATES, keys_only=True).kvs
                found += [
                    ip
                    for kv in kvs
                    if _usable(scope, ip := kv.key.decode()[len(self.free_prefix) :])
                ]
                if len(found) >= FREE_CANDIDATES or len(kvs) < FREE_CANDIDATES:
                    break
                low = kvs[-1].key + b"\x00"
            if len(found) >= FREE_CANDIDATES:
                break
        return found

    # ---- REQUEST

    def commit(
        self,
        mac: str,
        ip: str,
        *,
        allow_free: bool,
        lease_time: int | None = None,
        hostname: str | None = None,
        client_id: str | None = None,
        server: str | None = None,
        holder: str | None = None,
        host: str | None = None,
        classes: Sequence[str] = (),
    ) -> Commit:
        """Lease `ip` to `mac`: renew its lease, take its offer, its reserved address (for
        `holder`, the MAC by default; `host` names the host record), or (if allowed) a
        free address.

        One transaction and one consensus write; the etcd lease is shared with other
        leases ending in the same time bucket, so a renewal grants no new etcd lease.
        `lease_time` defaults to the valid lifetime of the scope holding `ip`; `server`
        (recorded in the lease) to this store's server id: a daemon serving several
        interfaces gives the address of the one the client is on.
        """
        if lease_time is None:
            scope = self.scopes().containing(ip_int(ip))
            if scope is None:
                raise ValueError(f"{ip} is in no served scope: give the lease time")
            lease_time = scope.valid_lifetime
        return self._with_live_leases(
            self._commit,
            mac,
            ip,
            lease_time,
            allow_free,
            _LeaseNotes(hostname, client_id, server, holder, host, list(classes) or None),
        )

    def _with_live_leases(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn; if etcd lost a cached etcd lease (revoked, expired early), re-grant once."""
        try:
            return fn(*args)
        except LeaseNotFound:
            with self._dhcp_leases_lock:
                dhcp = list(self._dhcp_leases.values())
            for buckets in (*dhcp, self._offer_leases, self._decline_leases):
                buckets.forget()
            return fn(*args)

    def _etcd_lease(self, lease_time: int) -> int:
        """An etcd lease for a DHCP lease of `lease_time`: TTL twice that, shared by a bucket."""
        with self._dhcp_leases_lock:
            buckets = self._dhcp_leases.get(lease_time)
            if buckets is None:
                buckets = LeaseBuckets(self.etcd, 2 * lease_time, self._clock)
                self._dhcp_leases[lease_time] = buckets
        return buckets.lease()

    def _commit(
        self,
        mac: str,
        ip: str,
        lease_time: int,
        allow_free: bool,
        notes: _LeaseNotes,
    ) -> Commit:
        now = self._clock()
        lease = Lease(
            ip=ip,
            mac=mac,
            expires=now + lease_time,
            granted=now,
            server=notes.server or self.server_id,
            hostname=notes.hostname,
            client_id=notes.client_id,
            host=notes.host,
            classes=notes.classes,
        )
        holder = notes.holder or mac
        etcd_lease = self._etcd_lease(lease_time)
        write = [
            put(self._leased(ip), mac, etcd_lease),
            put(self._nic(mac), ip, etcd_lease),
            put(self._info(ip), lease.to_json(), etcd_lease),
        ]
        unreserved = [absent(self._reserved(ip)), absent(self._reservation(mac))]
        branches = [
            Branch([value_is(self._leased(ip), mac), value_is(self._nic(mac), ip)], write),
            Branch(
                [
                    value_is(self._reserved(ip), holder),
                    *([value_is(self._reservation(mac), ip)] if holder == mac else []),
                    absent(self._leased(ip)),
                    absent(self._nic(mac)),
                    absent(self._offered(ip)),
                    absent(self._declined(ip)),
                ],
                [delete(self._free(ip)), *write],  # a free key here was added by hand
            ),
            Branch(
                [value_is(self._offered(ip), mac), absent(self._nic(mac)), *unreserved],
                [delete(self._offered(ip)), delete(self._offer_nic(mac)), *write],
            ),
        ]
        if allow_free:
            branches.append(
                Branch(
                    [present(self._free(ip)), absent(self._nic(mac)), *unreserved],
                    [delete(self._free(ip)), *write],
                )
            )
        otherwise = [
            get(self._leased(ip)),
            get(self._nic(mac)),
            get(self._offered(ip)),
            get(self._reserved(ip)),
            get(self._reservation(mac)),
        ]
        choice = self.etcd.choose(branches, otherwise)
        if choice.index is not None:
            renewed = choice.index == 0
            metrics.labelled(metrics.LEASES, "renewed" if renewed else "granted").inc()
            return Commit(lease, renewed=renewed)
        leased_to, mac_ip, offered_to, reserved_for, reservation = (
            first_value(r) for r in choice.responses
        )
        if any(v and v.decode() != mac for v in (leased_to, offered_to)) or (
            reserved_for and reserved_for.decode() != holder
        ):
            return Commit(None, refusal="taken")
        if any(v and v.decode() != ip for v in (mac_ip, reservation)):
            return Commit(None, refusal="other_address")
        if leased_to or mac_ip:
            return Commit(None, refusal="taken")  # half a pair: not safe to extend
        return Commit(None, refusal="no_record")

    # ---- RELEASE, DECLINE

    def _lease_held(self, mac: str, ip: str) -> list[Any]:
        return [value_is(self._leased(ip), mac), value_is(self._nic(mac), ip)]

    def _drop_lease(self, mac: str, ip: str) -> list[Any]:
        return [delete(self._leased(ip)), delete(self._nic(mac)), delete(self._info(ip))]

    def release(self, mac: str, ip: str, to_pool: bool | None = None) -> bool:
        """Free `ip` if it is leased to `mac`; addresses outside the range are phased out.

        `to_pool` overrides the range check (etcdhcpctl, which knows every server's
        range rather than one). A reserved address stays reserved, not free.
        """
        back_to_pool = self._back_to_pool(ip, to_pool)
        choice = self.etcd.choose(
            [Branch(self._lease_held(mac, ip), [*self._drop_lease(mac, ip), *back_to_pool])]
        )
        if choice.index is None:
            return False
        metrics.LEASES.labels(event="released").inc()
        return True

    def _back_to_pool(self, ip: str, to_pool: bool | None = None) -> list[Any]:
        """The op that makes `ip` free: when it is in the range (or `to_pool`) and not reserved."""
        if not (self.scopes().in_pools(ip) if to_pool is None else to_pool):
            return []
        return [nested([absent(self._reserved(ip))], [put(self._free(ip), ip)])]

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
        return _lease_of(ip, holder.decode(), info)

    def pool_counts(self, scopes: ScopeSet) -> dict[str, dict[str, int]]:
        """Addresses by scope (its label) and state, from one keys-only scan per state
        (the reserved addresses: reserved_addresses, counted again only when they or the
        scopes changed); addresses in no scope's pools are counted under "outside"."""
        counts = {label: dict.fromkeys(ADDRESS_STATES, 0) for label in _labels(scopes)}
        for state, prefix in self.state_prefixes.items():
            if state == "reserved":
                for label, count in self._reserved_by_scope(scopes).items():
                    counts[label][state] = count
                continue
            for ip, _ in self._scan(prefix):
                scope = scopes.pool_scope(ip)
                counts[scope.label if scope else OUTSIDE][state] += 1
        return counts

    def _reserved_by_scope(self, scopes: ScopeSet) -> dict[str, int]:
        scan = self._reserved_now()
        gauged = self._reserved_gauged
        if gauged is not None and gauged[0] is scan and gauged[1] is scopes:
            return gauged[2]
        by_scope: dict[str, int] = collections.Counter()
        for ip in scan.addresses:
            scope = scopes.pool_scope(ip)
            by_scope[scope.label if scope else OUTSIDE] += 1
        self._reserved_gauged = (scan, scopes, by_scope)
        return by_scope

    def reserved_addresses(self) -> tuple[str, ...]:
        """Every reserved address (`ips::reserved::`)."""
        return self._reserved_now().addresses

    def _reserved_now(self) -> _ReservedScan:
        """The reserved addresses now. Host records can make this the largest state
        (100,000 hosts, 100,000 keys) and it changes least, so the last scan is used again
        while one transaction says nothing under the prefix changed since: as many keys
        as then, none modified after its revision (etcd reads them; this process decodes
        at most one)."""
        last = self._reserved_scan
        prefix = self.reserved_prefix
        since = last.revision if last is not None else 0
        check = [
            _count(prefix),
            get(prefix, prefix_end(prefix), 1, keys_only=True, modified_after=since),
        ]
        response = self.etcd.txn([], check)
        counted, changed = (r.response_range for r in response.responses)
        if last is not None and counted.count == len(last.addresses) and not changed.kvs:
            return last
        revision = int(response.header.revision)
        scan = _ReservedScan(revision, tuple(ip for ip, _ in self._scan(prefix, revision=revision)))
        self._reserved_scan = scan
        return scan

    def counts(self) -> dict[str, int]:
        """Addresses per state, from count-only reads (cheap for any pool size). A reserved
        address is counted as reserved and, while its client holds it, offered or leased."""
        ops = [_count(p) for p in self.state_prefixes.values()]
        response = self.etcd.txn([], ops)
        return {
            state: r.response_range.count
            for state, r in zip(self.state_prefixes, response.responses, strict=True)
        }

    # ---- the server registry (registry.py keeps our key alive)

    def register(self, server: ServerInfo, etcd_lease: int) -> None:
        """Write `server`'s registry key, bound to `etcd_lease`: it vanishes with the lease."""
        self.etcd.txn(
            [], [put(self.servers_prefix + server.server_ip, server.to_json(), etcd_lease)]
        )

    def servers(self) -> list[ServerInfo]:
        """Every live server's registration, by address; unreadable records are skipped."""
        found = []
        for ip, raw in self._scan(self.servers_prefix, keys_only=False):
            try:
                found.append(ServerInfo.from_json(raw))
            except (ValueError, TypeError):
                log.warning("ignoring unreadable server record for %s", ip)
        return found

    # ---- pool maintenance (the reseeder's tools)

    def _scan(
        self, prefix: str, keys_only: bool = True, revision: int = 0
    ) -> Iterator[tuple[str, bytes]]:
        """Every (suffix, value) under `prefix`, read page by page (at `revision`, if given)."""
        start = prefix.encode()
        end = prefix_end(prefix)
        while True:
            response = self.etcd.range(
                start, end, limit=SCAN_PAGE, keys_only=keys_only, revision=revision
            )
            for kv in response.kvs:
                yield kv.key.decode()[len(prefix) :], kv.value
            if not response.more or not response.kvs:
                return
            start = response.kvs[-1].key + b"\x00"

    def _accounted(self) -> set[str]:
        """Every address that is free, offered, leased, quarantined or reserved right now."""
        seen = set(self.reserved_addresses())
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
                absent(self._reserved(ip)),
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

    def seed(self, scopes: Iterable[Scope] | None = None) -> int:
        """Make every pool address (of `scopes`, default all served) that is in no state
        free; returns how many were added."""
        accounted = self._accounted()
        missing = [
            ip
            for scope in (self.scopes().scopes if scopes is None else scopes)
            for pool in scope.pools
            for ip in pool.addresses()
            if ip not in accounted
        ]
        return self._free_batches(missing) if missing else 0

    def free_if_vacant(self, ips: Iterable[str]) -> int:
        """Return range addresses whose lease, offer, quarantine or reservation ended to the pool.

        Reads first so that the common case (the address moved on to another state in
        the same transaction) costs no write.
        """
        scopes = self.scopes()
        candidates = sorted({ip for ip in ips if scopes.in_pools(ip)})
        vacant: list[str] = []
        for i in range(0, len(candidates), CHECK_BATCH):
            batch = candidates[i : i + CHECK_BATCH]
            states = (self._free, self._leased, self._offered, self._declined, self._reserved)
            ops = [_count(key(ip), single=True) for ip in batch for key in states]
            responses = self.etcd.txn([], ops).responses
            n = len(states)
            for j, ip in enumerate(batch):
                if all(r.response_range.count == 0 for r in responses[n * j : n * j + n]):
                    vacant.append(ip)
        return self._free_batches(vacant) if vacant else 0

    def reclaim_expired(self) -> int:
        """Remove every lease past its absolute expiry plus `expiry_skew` (the full pass).

        etcd restarts TTLs after a leader change, so the absolute time is what counts.
        """
        now = self._clock()
        records = list(self._scan(self.info_prefix, keys_only=False))
        return sum(self._reclaim_record(ip, raw, now) for ip, raw in records)

    def watch_vacated(self) -> tuple[Iterator[str], Callable[[], None]]:
        """Addresses whose leased, offered, declined or reserved key was deleted (expiry too)."""
        watched = (
            self.leased_prefix,
            self.offered_prefix,
            self.declined_prefix,
            self.reserved_prefix,
        )
        keys, cancel = self.etcd.watch_deletes(f"{self.prefix}ips::")

        def addresses() -> Iterator[str]:
            for key in keys:
                for prefix in watched:
                    if key.startswith(prefix):
                        yield key[len(prefix) :]

        return addresses(), cancel

    # ---- operators (etcdhcpctl, the admin API)

    def _revision(self) -> int:
        """The store's current revision (one cheap single-key read)."""
        return int(self.etcd.range(self.prefix).header.revision)

    def _values(self, prefix: str, revision: int) -> dict[str, str]:
        return {k: v.decode() for k, v in self._scan(prefix, keys_only=False, revision=revision)}

    def leases(self) -> list[Lease]:
        """Every lease, by address, with its record when the record is the holder's."""
        revision = self._revision()
        holders = self._values(self.leased_prefix, revision)
        records = dict(self._scan(self.info_prefix, keys_only=False, revision=revision))
        return [
            _lease_of(ip, holders[ip], records.get(ip)) for ip in sorted(holders, key=address_order)
        ]

    def snapshot(self) -> Snapshot:
        """Which address and MAC is in which state, all read at one revision."""
        revision = self._revision()
        return Snapshot(
            revision=revision,
            free=frozenset(ip for ip, _ in self._scan(self.free_prefix, revision=revision)),
            leased=self._values(self.leased_prefix, revision),
            nics=self._values(self.nic_prefix, revision),
            offered=self._values(self.offered_prefix, revision),
            offer_nics=self._values(self.offer_nic_prefix, revision),
            declined=self._values(self.declined_prefix, revision),
            reserved=self._values(self.reserved_prefix, revision),
            reservations=self._values(self.reservation_prefix, revision),
        )

    def reserved_holders(self) -> dict[str, str]:
        """Every reserved address -> whom it is reserved for (`hosts.holder`)."""
        return self._values(self.reserved_prefix, 0)

    def reservations(self) -> list[Reservation]:
        """Every reservation (by MAC), ordered by address."""
        found = [
            Reservation(mac, ip) for mac, ip in self._values(self.reservation_prefix, 0).items()
        ]
        return sorted(found, key=lambda r: address_order(r.ip))

    def reservation(self, mac: str) -> str | None:
        """`mac`'s reserved address, if it has one."""
        found = self.etcd.range(self._reservation(mac)).kvs
        return found[0].value.decode() if found else None

    def reserve(self, mac: str, ip: str) -> bool:
        """Reserve `ip` for `mac` and take it out of the free pool, in one guarded transaction.

        True when the reservation is new (or completes half of one), False when it was
        already there. Refused when the address is leased, offered or reserved to another
        MAC, or the MAC has another reservation or holds a lease on another address.
        """
        keys = {
            "reservation": self._reservation(mac),
            "reserved": self._reserved(ip),
            "leased": self._leased(ip),
            "nic": self._nic(mac),
            "offered": self._offered(ip),
        }
        for _ in range(RESERVE_ATTEMPTS):
            read = self.etcd.txn([], [get(key) for key in keys.values()]).responses
            now = {
                name: None if (v := first_value(r)) is None else v.decode()
                for name, r in zip(keys, read, strict=True)
            }
            if now["reservation"] == ip and now["reserved"] == mac:
                return False
            _refuse_reservation(mac, ip, now)
            ops = [put(keys["reservation"], ip), put(keys["reserved"], mac), delete(self._free(ip))]
            if now["offered"] == mac:  # the offer becomes the reservation
                ops += [delete(self._offered(ip)), delete(self._offer_nic(mac))]
            guards = [_unchanged(key, now[name]) for name, key in keys.items()]
            if self.etcd.txn(guards, ops).succeeded:
                return True
        raise Refused(f"the state of {ip} and {mac} kept changing; try again")

    def unreserve(self, mac: str) -> str | None:
        """Drop `mac`'s reservation; returns its address (None: there was none).

        The address stays leased while the MAC's lease lasts; otherwise the servers
        whose range holds it make it free again (their watch sees the key go).
        """
        ip = self.reservation(mac)
        if ip is None:
            return None
        mirror = nested([value_is(self._reserved(ip), mac)], [delete(self._reserved(ip))])
        choice = self.etcd.choose(
            [
                Branch(
                    [value_is(self._reservation(mac), ip)],
                    [delete(self._reservation(mac)), mirror],
                )
            ]
        )
        return ip if choice.index == 0 else None

    def add_free(self, ips: Iterable[str]) -> int:
        """Make these addresses free where they are in no state; returns how many."""
        return self._free_batches(list(ips))

    def remove_free(self, ips: Iterable[str]) -> list[str]:
        """Delete these addresses' free keys (never a lease); returns the ones removed."""
        wanted = list(ips)
        removed: list[str] = []
        for i in range(0, len(wanted), DELETE_BATCH):
            batch = wanted[i : i + DELETE_BATCH]
            responses = self.etcd.txn([], [delete(self._free(ip)) for ip in batch]).responses
            removed += [
                ip
                for ip, r in zip(batch, responses, strict=True)
                if r.response_delete_range.deleted
            ]
        return removed

    def watch_connections(
        self, start_revision: int = 0
    ) -> tuple[Iterator[Connection], Callable[[], None]]:
        """Devices connecting and disconnecting, from `start_revision` (0: from now on).

        A MAC's lease key created is a connect; deleted (release, expiry, decline) a
        disconnect. Renewals rewrite the key and are not events.
        """
        events, cancel = self.etcd.watch(
            self.nic_prefix, start_revision=start_revision, prev_kv=True
        )

        def connections() -> Iterator[Connection]:
            for event in events:
                mac = event.key[len(self.nic_prefix) :]
                if event.deleted:
                    yield Connection(event.revision, "disconnect", mac, event.value.decode())
                elif event.version == 1:
                    yield Connection(event.revision, "connect", mac, event.value.decode())

        return connections(), cancel

    def check(self, repair: bool = False) -> list[Problem]:
        """The store's invariants, checked on one consistent snapshot.

        Lease and offer keys come in pairs (by address and by MAC) that name each
        other; a free address is in no other state; a reservation names a MAC that
        also names it, and no other MAC leases its address. With `repair`, what is
        safe is fixed, each fix guarded by the values it was decided on: the orphan
        half of a pair is deleted, and so is the free key of an address in another
        state.
        """
        snap = self.snapshot()
        found: list[tuple[Problem, Branch | None]] = []
        found += self._pair_problems("lease", snap.leased, snap.nics, self._leased, self._nic)
        found += self._pair_problems(
            "offer", snap.offered, snap.offer_nics, self._offered, self._offer_nic
        )
        states = (
            ("leased", snap.leased, self._leased),
            ("offered", snap.offered, self._offered),
            ("quarantined", snap.declined, self._declined),
            ("reserved", snap.reserved, self._reserved),
        )
        for ip in sorted(snap.free, key=address_order):
            for state, holders, key in states:
                if ip in holders:
                    fix = Branch(
                        [present(self._free(ip)), value_is(key(ip), holders[ip])],
                        [delete(self._free(ip))],
                    )
                    detail = f"{ip} is free and {state} ({holders[ip]})"
                    found.append((Problem(f"free_and_{state}", detail, ip, holders[ip]), fix))
                    break
        found += _reservation_problems(snap)
        problems = []
        for problem, fix in found:
            if fix is not None:
                repaired = repair and self.etcd.choose([fix]).index == 0
                problem = replace(problem, repairable=True, repaired=repaired)
            problems.append(problem)
        return problems

    def _pair_problems(
        self,
        what: str,
        by_ip: dict[str, str],
        by_mac: dict[str, str],
        ip_key: Callable[[str], str],
        mac_key: Callable[[str], str],
    ) -> list[tuple[Problem, Branch | None]]:
        """Halves of `what` pairs (address -> MAC, MAC -> address) without their other half."""
        found: list[tuple[Problem, Branch | None]] = []
        for ip in sorted(by_ip, key=address_order):
            mac = by_ip[ip]
            other = by_mac.get(mac)
            if other == ip:
                continue
            if other is None:
                kind, detail = f"orphan_{what}", f"{ip}: {what} to {mac}, which has no {what}"
            elif by_ip.get(other) == mac:
                kind = f"two_{what}s"
                detail = f"{ip}: {what} to {mac}, which also has {other} (two addresses)"
            else:
                kind = f"mismatched_{what}"
                detail = f"{ip}: {what} to {mac}, which names {other}"
            drops = [delete(ip_key(ip))] + ([delete(self._info(ip))] if what == "lease" else [])
            fix = Branch([value_is(ip_key(ip), mac), _unchanged(mac_key(mac), other)], drops)
            found.append((Problem(kind, detail, ip, mac), fix))
        for mac in sorted(by_mac):
            ip = by_mac[mac]
            holder = by_ip.get(ip)
            if holder == mac:
                continue
            if holder is None:
                kind, detail = f"orphan_{what}", f"{mac}: {what} of {ip}, which has no {what}"
            elif by_mac.get(holder) == ip:
                kind = f"shared_{what}"
                detail = f"{mac}: {what} of {ip}, which is {holder}'s"
            else:
                kind = f"mismatched_{what}"
                detail = f"{mac}: {what} of {ip}, which names {holder}"
            fix = Branch(
                [value_is(mac_key(mac), ip), _unchanged(ip_key(ip), holder)], [delete(mac_key(mac))]
            )
            found.append((Problem(kind, detail, ip, mac), fix))
        return found

    # ---- expiry

    expiry_skew = 3.0
    """Seconds the clocks of two servers may disagree. A lease record holds its absolute
    expiry by the clock of the server that wrote it; another server reclaims it only
    once its own clock is this far past that, so no client loses its address early
    unless the clocks differ by more (with NTP they differ by milliseconds)."""

    def now(self) -> float:
        """The clock lease expiry is judged by (unix time)."""
        return self._clock()

    def expiries(self) -> tuple[dict[str, float], int]:
        """When each lease may be reclaimed (address -> unix time), and the revision read.

        Hand pins (no record) and records without an expiry are never reclaimed and
        are left out.
        """
        revision = self._revision()
        due: dict[str, float] = {}
        for ip, raw in self._scan(self.info_prefix, keys_only=False, revision=revision):
            end = self._lease_end(ip, raw)
            if end is not None:
                due[ip] = end[1] + self.expiry_skew
        return due, revision

    def watch_expiries(
        self, revision: int
    ) -> tuple[Iterator[tuple[str, float | None]], Callable[[], None]]:
        """(changes to `expiries()` after `revision`, cancel): (address, when), or
        (address, None) once its record is gone or never expires."""
        events, cancel = self.etcd.watch(self.info_prefix, start_revision=revision + 1)

        def changes() -> Iterator[tuple[str, float | None]]:
            for event in events:
                ip = event.key[len(self.info_prefix) :]
                end = None if event.deleted else self._lease_end(ip, event.value)
                yield ip, None if end is None else end[1] + self.expiry_skew

        return changes(), cancel

    def reclaim_due(self, ips: Iterable[str]) -> int:
        """Reclaim the leases of `ips` that are due, judged by their records as read now."""
        wanted = sorted(set(ips), key=address_order)
        reclaimed = 0
        for i in range(0, len(wanted), DELETE_BATCH):
            batch = wanted[i : i + DELETE_BATCH]
            responses = self.etcd.txn([], [get(self._info(ip)) for ip in batch]).responses
            now = self._clock()
            for ip, response in zip(batch, responses, strict=True):
                raw = first_value(response)
                if raw is not None:
                    reclaimed += self._reclaim_record(ip, raw, now)
        return reclaimed

    def _reclaim_record(self, ip: str, raw: bytes, now: float) -> bool:
        """Remove the lease whose record is `raw` if it is due at `now`; the address goes
        back to the pool. Guarded on the record: a renewal meanwhile keeps the lease."""
        end = self._lease_end(ip, raw)
        if end is None or now <= end[1] + self.expiry_skew:
            return False
        mac = end[0]
        choice = self.etcd.choose(
            [
                Branch(
                    [*self._lease_held(mac, ip), value_is(self._info(ip), raw)],
                    [*self._drop_lease(mac, ip), *self._back_to_pool(ip)],
                ),
                Branch(  # a record whose lease is gone
                    [absent(self._leased(ip)), value_is(self._info(ip), raw)],
                    [delete(self._info(ip))],
                ),
            ]
        )
        if choice.index != 0:
            return False
        metrics.LEASES.labels(event="expired_reclaimed").inc()
        return True

    @staticmethod
    def _lease_end(ip: str, raw: bytes) -> tuple[str, float] | None:
        """(holder, absolute expiry) of a lease record; None when it never expires.

        Only the record counts, not this server's lease time (which may have changed
        since the grant). An unreadable record is logged and never reclaimed.
        """
        try:
            lease = Lease.from_json(raw)
        except (ValueError, TypeError):
            lease = None
        if lease is not None and lease.expires is None:
            return None
        if (
            lease is None
            or not isinstance(lease.mac, str)
            or not isinstance(lease.expires, int | float)
            or isinstance(lease.expires, bool)
            or not math.isfinite(lease.expires)
        ):
            log.warning("ignoring unreadable lease record for %s", ip)
            return None
        return lease.mac, float(lease.expires)


def _labels(scopes: ScopeSet) -> list[str]:
    return [*(scope.label for scope in scopes.scopes), OUTSIDE]


def _dotted_prefix(subnet: ipaddress.IPv4Network) -> str:
    """The text every address of `subnet` starts with, up to a dot ("10.1." for 10.1.0.0/16)."""
    first, last = str(subnet.network_address), str(subnet.broadcast_address)
    common = 0
    while common < len(first) and first[common] == last[common]:
        common += 1
    return first[: first.rfind(".", 0, common + 1) + 1] if common < len(first) else first


def _usable(scope: Scope, ip: str) -> bool:
    """A free key `scope` may offer: in its subnet, not its network or broadcast address."""
    try:
        value = ip_int(ip)
    except ValueError:
        return False
    if not scope.contains(value):
        return False
    return scope.subnet.prefixlen > 30 or value not in (
        scope.network_int,
        int(scope.subnet.broadcast_address),
    )


@dataclass(frozen=True)
class _ReservedScan:
    """The reserved addresses as one scan read them, at `revision`."""

    revision: int
    addresses: tuple[str, ...]


def _count(key: str, single: bool = False) -> bytes:
    return get(key, None if single else prefix_end(key), count_only=True)


_KNOWN = ("lease", "reservation", "offer")  # what a MAC may already have, as `_offer` asks


def _lease_of(ip: str, holder: str, info: bytes | None) -> Lease:
    """The lease of `ip` held by `holder`: its record when that is the holder's and readable."""
    if info is not None:
        try:
            lease = Lease.from_json(info)
        except (ValueError, TypeError):
            log.warning("ignoring unreadable lease record for %s", ip)
        else:
            if lease.mac == holder:
                return lease
    return Lease(ip=ip, mac=holder)


def _refuse_reservation(mac: str, ip: str, now: dict[str, str | None]) -> None:
    """Raise Refused when the state read in `LeaseStore.reserve` does not allow it."""
    if now["reservation"] not in (None, ip):
        raise Refused(f"{mac} already has a reservation: {now['reservation']} (unreserve it first)")
    if now["reserved"] not in (None, mac):
        raise Refused(f"{ip} is reserved for {now['reserved']}")
    if now["leased"] not in (None, mac):
        raise Refused(f"{ip} is leased to {now['leased']}")
    if now["offered"] not in (None, mac):
        raise Refused(f"{ip} is being offered to {now['offered']}")
    if now["nic"] not in (None, ip):
        raise Refused(f"{mac} holds a lease on {now['nic']}: release it first")


def _reservation_problems(snap: Snapshot) -> list[tuple[Problem, Branch | None]]:
    """Reservations that collide with another MAC's lease, and halves of reservations.

    None is repaired automatically: either half may be the one the operator meant;
    `etcdhcpctl reserve` completes a half, `unreserve` drops it.
    """
    found: list[tuple[Problem, Branch | None]] = []
    for ip in sorted(snap.reserved, key=address_order):
        mac, holder = snap.reserved[ip], snap.leased.get(ip)
        if "=" in mac:
            # A client-id or circuit-id host's address: no by-MAC half, and its lessee's
            # MAC says nothing about it (servers NAK another client at its renewal).
            continue
        if holder is not None and holder != mac:
            detail = f"{ip} is reserved for {mac} but leased to {holder}"
            found.append((Problem("reservation_collision", detail, ip, mac), None))
        if snap.reservations.get(mac) != ip:
            detail = (
                f"{ip} is reserved for {mac}, whose reservation is {snap.reservations.get(mac)}"
            )
            found.append((Problem("half_reservation", detail, ip, mac), None))
    for mac in sorted(snap.reservations):
        ip = snap.reservations[mac]
        if snap.reserved.get(ip) != mac:
            detail = f"{mac} has {ip} reserved, but {ip} is reserved for {snap.reserved.get(ip)}"
            found.append((Problem("half_reservation", detail, ip, mac), None))
    return found


def _unchanged(key: str, value: str | None) -> Any:
    """A compare that holds while `key` still has the `value` read earlier (None: absent)."""
    return absent(key) if value is None else value_is(key, value)


def address_order(ip: str) -> tuple[int, str]:
    """Sort key: numeric for addresses, and anything unreadable last."""
    try:
        return int(ipaddress.IPv4Address(ip)), ""
    except ValueError:
        return 1 << 32, ip


class ConfigStore:
    """Scope documents in etcd: `P config::subnet4::<id>` and `P config::shared-networks::<name>`.

    Each value is one Kea-shaped JSON document (scopes.py); the document named
    `subnet4/7` lives at `P config::subnet4::7`. Writers (etcdhcpctl) guard each write on
    the values they validated against, so two operators cannot interleave a change.
    """

    def __init__(self, etcd: Etcd, prefix: str) -> None:
        self.etcd = etcd
        self.prefix = f"{prefix}config::"

    def _key(self, name: str) -> str:
        kind, _, key = name.partition("/")
        return f"{self.prefix}{kind}::{key}"

    def _name(self, key: bytes) -> str:
        kind, _, rest = key.decode()[len(self.prefix) :].partition("::")
        return document_name(kind, rest)

    def documents(self) -> tuple[int, list[Document]]:
        """(revision, every document) read at one revision, page by page."""
        found: list[Document] = []
        start, end = self.prefix.encode(), prefix_end(self.prefix)
        revision = 0
        while True:
            response = self.etcd.range(start, end, limit=SCAN_PAGE, revision=revision)
            revision = revision or int(response.header.revision)
            found += [
                Document(self._name(kv.key), kv.value, kv.mod_revision) for kv in response.kvs
            ]
            if not response.more or not response.kvs:
                return revision, found
            start = response.kvs[-1].key + b"\x00"

    def watch(self, start_revision: int) -> tuple[Iterator[int], Callable[[], None]]:
        """(the revision of each change to any document, from `start_revision`, cancel)."""
        events, cancel = self.etcd.watch(self.prefix, start_revision=start_revision)
        return (event.revision for event in events), cancel

    def write(
        self, puts: Mapping[str, str], deletes: Iterable[str], read: Mapping[str, bytes | None]
    ) -> bool:
        """Put and delete documents in one transaction, if every document named in `read`
        still has the value read then (None: absent). False when one changed meanwhile."""
        guards = [
            _unchanged(self._key(n), None if v is None else v.decode()) for n, v in read.items()
        ]
        ops = [put(self._key(n), text) for n, text in puts.items()]
        ops += [delete(self._key(n)) for n in deletes]
        return bool(self.etcd.txn(guards, ops).succeeded)


# ---- hosts (hosts.py): their records, and the reservation keys of their addresses

HOST_READ_BATCH = 128  # gets per read-only transaction: etcd's default --max-txn-ops
HOST_SCAN_WHEN = 1000  # more keys than this under one prefix: scan it rather than get each,
HOST_SCAN_RATIO = 4  # unless it holds this many times more (a scan reads ~3 times faster a key)
MAX_TXN_OPS = 128  # etcd's default --max-txn-ops: operations (and compares) a transaction
HOST_WRITERS = 4  # host write transactions in flight at once


@dataclass(frozen=True)
class HostRecord:
    """One stored host record, `P hosts::<scope>::<id-type>::<identifier>`: its key's
    parts, as written, and its JSON (None: the watch saw it deleted)."""

    scope: str
    id_type: str
    identifier: str
    raw: bytes | None
    revision: int = 0


@dataclass(frozen=True)
class HostBatch:
    """One transaction of a host write: a guard on every key it changes (the value read
    when planning), its operations, and the host records it writes, all or none."""

    guards: list[bytes]
    ops: list[bytes]
    hosts: list[HostKey]


@dataclass(frozen=True)
class HostPlan:
    """A checked host write (`HostStore.plan`), not yet sent. `existing`: the stored
    records of the hosts named; `refusals`: why a host may not be written (nothing may
    then be); `notes`: what is allowed but worth telling (an address another client
    leases now); `unchanged`: records already stored as they are."""

    batches: list[HostBatch]
    existing: dict[HostKey, bytes]
    refusals: dict[HostKey, str]
    notes: dict[HostKey, str]
    unchanged: list[HostKey]


@dataclass(frozen=True)
class HostWrite:
    """What `HostStore.write` did: the hosts written, those not (their batch found a key
    changed since planning, or etcd failed: `error`)."""

    written: list[HostKey]
    failed: list[HostKey]
    error: str | None = None


class _KeyChanges:
    """The keys a host write changes, each once, from the value read to its new one, and
    the host each change belongs to. Hosts whose changes share a key (one gives an
    address up, another takes it) are one group, written in one transaction."""

    def __init__(self, read: Mapping[str, bytes | None]) -> None:
        self.read = {k: None if v is None else v.decode() for k, v in read.items()}
        self.new: dict[str, str | None] = {}
        self.owner: dict[str, HostKey] = {}
        self.frees: dict[HostKey, list[str]] = {}
        self._parent: dict[HostKey, HostKey] = {}

    def value(self, key: str) -> str | None:
        """The key's value once the changes so far are made."""
        return self.new[key] if key in self.new else self.read.get(key)

    def set(self, key: str, value: str | None, host: HostKey) -> None:
        if key in self.owner and (root := self._root(self.owner[key])) != self._root(host):
            self._parent[root] = self._root(host)
        self.new[key], self.owner[key] = value, host

    def _root(self, host: HostKey) -> HostKey:
        while host in self._parent:
            host = self._parent[host]
        return host

    def units(self) -> dict[HostKey, list[str]]:
        """The keys each host changes (those set to the value they have are left out)."""
        units: dict[HostKey, list[str]] = {}
        for key, value in self.new.items():
            if value != self.read.get(key):
                units.setdefault(self.owner[key], []).append(key)
        return units

    def batches(self) -> list[HostBatch]:
        """The changes as transactions of at most MAX_TXN_OPS operations, a group whole
        (a group too big for one is split by host)."""
        units = self.units()
        groups: dict[HostKey, list[HostKey]] = {}
        for host in units:
            groups.setdefault(self._root(host), []).append(host)
        cost = {host: len(keys) + len(self.frees.get(host, ())) for host, keys in units.items()}
        batches: list[HostBatch] = []
        current = HostBatch([], [], [])
        for group in groups.values():
            pieces = [group] if sum(cost[h] for h in group) <= MAX_TXN_OPS else [[h] for h in group]
            for piece in pieces:
                if len(current.ops) + sum(cost[h] for h in piece) > MAX_TXN_OPS:
                    batches.append(current)
                    current = HostBatch([], [], [])
                for host in piece:
                    for key in units[host]:
                        value = self.new[key]
                        current.guards.append(_unchanged(key, self.read.get(key)))
                        current.ops.append(delete(key) if value is None else put(key, value))
                    current.ops.extend(delete(free) for free in self.frees.get(host, ()))
                    current.hosts.append(host)
        if current.hosts:
            batches.append(current)
        return batches


class HostStore:
    """Host records in etcd (hosts.py), and the reservation keys of their addresses.

        P hosts::<scope>::<id-type>::<identifier> = the record's JSON (Kea's shape)

    A host with an `ip-address` also holds `P ips::reserved::<ip>` (the MAC for a
    hw-address host, `<id-type>=<identifier>` otherwise) and, for a hw-address host,
    `P reservations::<mac>` = ip: the keys `etcdhcpctl reserve` writes, so the address is
    reserved exactly as a legacy reservation is (LeaseStore), and one reservation and one
    host of the same MAC and address are one thing. The address's free key goes, as at
    `reserve`. Writes are planned against what etcd holds (`plan`), then sent in batches
    of one guarded transaction each (`write`).
    """

    def __init__(self, etcd: Etcd, prefix: str) -> None:
        self.etcd = etcd
        self.prefix = f"{prefix}hosts::"
        self.leases = LeaseStore.for_operator(etcd, prefix)  # the reservation keys' names

    def _key(self, host: HostKey) -> str:
        scope, id_type, identifier = host
        return f"{self.prefix}{scope}::{id_type}::{identifier}"

    def _record(self, suffix: str, raw: bytes | None, revision: int = 0) -> HostRecord:
        scope, id_type, identifier = [*suffix.split("::", 2), "", ""][:3]
        return HostRecord(scope, id_type, identifier, raw, revision)

    def documents(self) -> tuple[int, list[HostRecord]]:
        """(revision, every stored record) read at one revision, page by page."""
        revision = self.leases._revision()
        records = self.leases._scan(self.prefix, keys_only=False, revision=revision)
        return revision, [self._record(suffix, raw) for suffix, raw in records]

    def record(self, host: HostKey) -> bytes | None:
        """The stored record of one host (None: there is none)."""
        return self._read([self._key(host)])[self._key(host)]

    def watch(self, start_revision: int) -> tuple[Iterator[HostRecord], Callable[[], None]]:
        """(every change to a record from `start_revision`, cancel)."""
        events, cancel = self.etcd.watch(self.prefix, start_revision=start_revision)
        changes = (
            self._record(e.key[len(self.prefix) :], None if e.deleted else e.value, e.revision)
            for e in events
        )
        return changes, cancel

    def _read(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        """The values of `keys` (None: absent): the keys of a prefix mostly made of them by
        scanning it, the others by batches of gets."""
        found: dict[str, bytes | None] = dict.fromkeys(keys)
        leases = self.leases
        singles: list[str] = []
        for prefix in (
            self.prefix,
            leases.reserved_prefix,
            leases.reservation_prefix,
            leases.leased_prefix,
        ):
            mine = [key for key in found if key.startswith(prefix)]
            if len(mine) <= HOST_SCAN_WHEN or self._count(prefix) > HOST_SCAN_RATIO * len(mine):
                singles += mine
                continue
            for suffix, value in leases._scan(prefix, keys_only=False):
                if prefix + suffix in found:
                    found[prefix + suffix] = value
        for i in range(0, len(singles), HOST_READ_BATCH):
            batch = singles[i : i + HOST_READ_BATCH]
            responses = self.etcd.txn([], [get(key) for key in batch]).responses
            found.update(zip(batch, (first_value(r) for r in responses), strict=True))
        return found

    def _count(self, prefix: str) -> int:
        return int(self.etcd.range(prefix, prefix_end(prefix), count_only=True).count)

    def plan(
        self,
        puts: Sequence[Host],
        deletes: Iterable[HostKey] = (),
        scope_of: Callable[[str], int | None] = lambda ip: None,
    ) -> HostPlan:
        """Check writing `puts` (new records, or replacing those of their keys) and deleting
        `deletes` against what etcd holds now; nothing is written (`write` sends the plan).

        Refused: an address reserved for another client (a legacy reservation, or another
        host), a second address for one MAC (`reservations::<mac>` holds one), an address
        the client's record in another scope has too (`scope_of`: the id of the scope whose
        subnet holds an address). Addresses given up by the changed records are released
        in the same transactions.
        """
        leases = self.leases
        new = {host.key: host for host in puts}
        named = dict.fromkeys([*new, *deletes])  # ordered, and a set
        siblings = {h.key: s for h in puts if (s := _sibling(h, scope_of)) is not None}
        stored = self._read(self._key(k) for k in [*named, *siblings.values()])
        existing = {k: raw for k in named if (raw := stored[self._key(k)]) is not None}
        given_up = {k: ip for k, raw in existing.items() if (ip := _stored_address(raw))}
        wanted = [
            leases._reserved(ip) for ip in {*given_up.values(), *(h.ip for h in puts if h.ip)}
        ]
        wanted += [leases._reservation(k[2]) for k in named if k[1] == HW_ADDRESS]
        wanted += [leases._leased(h.ip) for h in puts if h.ip]
        changes = _KeyChanges({**stored, **self._read(wanted)})
        for k, ip in given_up.items():
            if k in new and new[k].ip == ip:
                continue
            if changes.value(leases._reserved(ip)) == holder(k[1], k[2]):
                changes.set(leases._reserved(ip), None, k)
            if k[1] == HW_ADDRESS and changes.value(leases._reservation(k[2])) == ip:
                changes.set(leases._reservation(k[2]), None, k)
        refusals: dict[HostKey, str] = {}
        notes: dict[HostKey, str] = {}
        unchanged: list[HostKey] = []
        for host in puts:
            other = siblings.get(host.key)
            if other is not None and other not in named:
                twin = _stored_address(stored[self._key(other)] or b"{}")
            else:
                twin = new[other].ip if other in new else None
            if host.ip is not None and twin == host.ip:
                assert other is not None
                refusals[host.key] = f"{host.ip} is the address of {record_name(*other)} too"
                continue
            if host.ip is not None:
                refused = self._claim(changes, host)
                if refused:
                    refusals[host.key] = refused
                    continue
                user = changes.read.get(leases._leased(host.ip))
                is_new = changes.read.get(leases._reserved(host.ip)) != host.holder
                if is_new and user not in (None, host.identifier):
                    notes[host.key] = (
                        f"{host.ip} is leased to {user} now: it is reserved from now on, "
                        "and that client keeps it until its next renewal"
                    )
            if _same_json(existing.get(host.key), host.document):
                unchanged.append(host.key)
            else:
                text = json.dumps(host.document, separators=(",", ":"))
                changes.set(self._key(host.key), text, host.key)
        for k in named:
            if k not in new and k in existing:
                changes.set(self._key(k), None, k)
        units = changes.units()
        unchanged = [k for k in unchanged if k not in units]
        return HostPlan(changes.batches(), existing, refusals, notes, unchanged)

    def _claim(self, changes: _KeyChanges, host: Host) -> str | None:
        """Reserve `host`'s address for it in `changes`; why not, when another holds it."""
        leases = self.leases
        assert host.ip is not None
        reserved = leases._reserved(host.ip)
        taken = changes.value(reserved)
        if taken not in (None, host.holder):
            return f"{host.ip} is reserved for {taken}"
        if host.id_type == HW_ADDRESS:
            mine = changes.value(leases._reservation(host.identifier))
            if mine not in (None, host.ip):
                return (
                    f"{host.identifier} already has {mine} reserved (a host in another scope, "
                    "or etcdhcpctl reserve): a MAC holds one reserved address"
                )
            changes.set(leases._reservation(host.identifier), host.ip, host.key)
        changes.set(reserved, host.holder, host.key)
        if changes.read.get(reserved) != host.holder:
            changes.frees.setdefault(host.key, []).append(leases._free(host.ip))
        return None

    def write(self, plan: HostPlan) -> HostWrite:
        """Send a plan's batches (HOST_WRITERS at a time), each all or nothing; after a
        batch fails none is sent any more. Running the same change again completes it:
        what is written already plans as unchanged."""
        stop = threading.Event()
        errors: list[str] = []

        def send(batch: HostBatch) -> bool:
            if stop.is_set():
                return False
            try:
                done = bool(self.etcd.txn(batch.guards, batch.ops).succeeded)
            except EtcdError as exc:
                errors.append(str(exc))
                done = False
            if not done:
                stop.set()
            return done

        with ThreadPoolExecutor(max_workers=HOST_WRITERS, thread_name_prefix="hosts") as pool:
            sent = list(pool.map(send, plan.batches))
        written: list[HostKey] = []
        failed: list[HostKey] = []
        for batch, done in zip(plan.batches, sent, strict=True):
            (written if done else failed).extend(batch.hosts)
        return HostWrite(written, failed, errors[0] if errors else None)


def _sibling(host: Host, scope_of: Callable[[str], int | None]) -> HostKey | None:
    """The one other record that may give `host`'s address to the same client: a scope's
    host's global one, a global host's in the scope holding its address."""
    if host.ip is None:
        return None
    scope = GLOBAL if host.scope_id != GLOBAL else scope_of(host.ip)
    if scope is None or scope == host.scope_id:
        return None
    return scope, host.id_type, host.identifier


def _stored_address(raw: bytes) -> str | None:
    """The address a stored record reserves, read leniently: a record written by hand may
    not parse, and its reservation keys must still be given back."""
    try:
        return str(ipaddress.IPv4Address(json.loads(raw).get("ip-address")))
    except (ValueError, TypeError, AttributeError):
        return None


def _same_json(raw: bytes | None, doc: Mapping[str, Any]) -> bool:
    try:
        return raw is not None and json.loads(raw) == doc
    except ValueError:
        return False
