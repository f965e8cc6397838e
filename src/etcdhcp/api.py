"""The JSON views of etcdhcp's state: one function per view, shared by `etcdhcpctl
--json` and the admin API (`/api/v1/...`), so scripts get the same shapes from both.

Every view reads through `LeaseStore`; this module knows no key names. It also parses
the MACs and addresses operators type, once, for both front ends.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from dataclasses import asdict, dataclass
from typing import Any

from etcdhcp.globalconfig import assemble
from etcdhcp.scopes import Assembly, Scope
from etcdhcp.store import (
    ADDRESS_STATES,
    AddressPool,
    ConfigStore,
    Lease,
    LeaseStore,
    ServerInfo,
    address_order,
)

_MAC_FORMS = (
    re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}"),  # 08:9e:.. or 08-9e-..
    re.compile(r"[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}"),  # Cisco: 089e.08b5.af01
    re.compile(r"[0-9a-f]{12}"),
)


def parse_mac(text: str) -> str:
    """`text` spelled as etcdhcp stores MACs (lower case, colon-separated); ValueError if none."""
    lowered = text.strip().lower()
    if not any(form.fullmatch(lowered) for form in _MAC_FORMS):
        raise ValueError(f"{text!r} is not a MAC address")
    digits = re.sub(r"[^0-9a-f]", "", lowered)
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def parse_ip(text: str) -> str:
    """`text` as a dotted-quad IPv4 address; ValueError if it is not one."""
    try:
        return str(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 address") from None


def parse_mac_or_ip(text: str) -> tuple[str, str]:
    """("mac", mac) or ("ip", address); ValueError if `text` is neither."""
    for kind, parse in (("ip", parse_ip), ("mac", parse_mac)):
        try:
            return kind, parse(text)
        except ValueError:
            pass
    raise ValueError(f"{text!r} is neither a MAC nor an IPv4 address")


# ---- leases ---------------------------------------------------------------------------


def lease_view(lease: Lease, reserved: bool) -> dict[str, Any]:
    """One lease: `expires` and `granted` are unix times (null for a hand pin)."""
    return {**asdict(lease), "reserved": reserved}


def leases(store: LeaseStore) -> list[dict[str, Any]]:
    """Every lease, by address."""
    reserved = {(r.ip, r.mac) for r in store.reservations()}
    return [lease_view(lease, (lease.ip, lease.mac) in reserved) for lease in store.leases()]


def lease(store: LeaseStore, mac_or_ip: str) -> dict[str, Any] | None:
    """The lease of one MAC or address, None if it has none; ValueError for bad input."""
    kind, value = parse_mac_or_ip(mac_or_ip)
    found = store.lease_by_mac(value) if kind == "mac" else store.lease_by_ip(value)
    if found is None:
        return None
    return lease_view(found, store.reservation(found.mac) == found.ip)


def reservations(store: LeaseStore) -> list[dict[str, Any]]:
    """Every reservation, by address."""
    return [asdict(r) for r in store.reservations()]


# ---- servers and their ranges ---------------------------------------------------------


def servers(store: LeaseStore) -> list[dict[str, Any]]:
    """Every live server's registration, by address (an empty list when none runs)."""
    return [asdict(s) for s in _by_address(store.servers())]


def _by_address(found: list[ServerInfo]) -> list[ServerInfo]:
    return sorted(found, key=lambda s: address_order(s.server_ip))


@dataclass(frozen=True)
class ServedRange:
    """One pool as servers seed it: of a scope in etcd, or of live servers' flags."""

    pool: AddressPool
    scope: str  # the scope's id, or "flags" for a range given on servers' command lines
    subnet: str | None
    servers: tuple[str, ...]


def scope_assembly(store: LeaseStore) -> Assembly:
    """Every scope document in etcd, checked as each server checks them (flags aside)."""
    _revision, documents = ConfigStore(store.etcd, store.prefix).documents()
    return assemble(documents, None, {})


def served_ranges(store: LeaseStore, assembly: Assembly | None = None) -> list[ServedRange]:
    """The pools of etcd's scopes, then the distinct flag ranges of the live servers
    (servers sharing a range share a row)."""
    live = _by_address(store.servers())
    everyone = tuple(s.server_ip for s in live)
    view = (assembly or scope_assembly(store)).scopes
    found = [
        ServedRange(_pool(p.first, p.last), scope.label, str(scope.subnet), everyone)
        for scope in view.scopes
        for p in scope.pools
    ]
    by_range: dict[tuple[int, int, str | None], list[str]] = {}
    for server in live:
        try:
            first = ipaddress.IPv4Address(server.range_from or "")
            last = ipaddress.IPv4Address(server.range_to or "")
        except ValueError:
            continue  # a registration without a readable range seeds nothing we can count
        by_range.setdefault((int(first), int(last), server.subnet), []).append(server.server_ip)
    found += [
        ServedRange(_pool(f, t), "flags", subnet, tuple(ips))
        for (f, t, subnet), ips in sorted(by_range.items(), key=lambda item: item[0][:2])
    ]
    return found


def served_subnets(store: LeaseStore) -> list[ipaddress.IPv4Network]:
    """The subnets of etcd's scopes and of the live servers' flags."""
    subnets = [scope.subnet for scope in scope_assembly(store).scopes.scopes]
    for server in store.servers():
        try:
            subnets.append(ipaddress.IPv4Network(server.subnet or "", strict=False))
        except ValueError:
            continue  # an older server's registration: no subnet
    return subnets


def outside_every_subnet(store: LeaseStore, ips: list[str]) -> list[str]:
    """Those of `ips` that no served scope's subnet holds (a client there has no router)."""
    subnets = served_subnets(store)
    return [ip for ip in ips if not any(ipaddress.IPv4Address(ip) in n for n in subnets)]


def _pool(first: int, last: int) -> AddressPool:
    return AddressPool(ipaddress.IPv4Address(first), ipaddress.IPv4Address(last))


def pool(store: LeaseStore) -> dict[str, Any]:
    """Addresses per state in each served pool (by scope), plus those outside every pool."""
    snap = store.snapshot()
    by_state = {
        "free": snap.free,
        "offered": snap.offered,
        "leased": snap.leased,
        "reserved": snap.reserved,
        "quarantined": snap.declined,
    }
    ranges = sorted(served_ranges(store), key=lambda r: int(r.pool.first))
    rows = [
        {
            "scope": r.scope,
            "subnet": r.subnet,
            "from": str(r.pool.first),
            "to": str(r.pool.last),
            "size": len(r.pool),
            "servers": list(r.servers),
            **dict.fromkeys(ADDRESS_STATES, 0),
        }
        for r in ranges
    ]
    starts = [int(r.pool.first) for r in ranges]
    outside = dict.fromkeys(ADDRESS_STATES, 0)
    for state, ips in by_state.items():
        for ip in ips:
            inside = _holding(ranges, starts, ip)
            for i in inside:
                rows[i][state] += 1
            if not inside:
                outside[state] += 1
    return {"ranges": rows, "outside": outside}


def _holding(ranges: list[ServedRange], starts: list[int], ip: str) -> list[int]:
    """Indexes of the ranges (sorted by start) holding `ip`: a bisection, then the few
    before it that may overlap (flag ranges of different servers can)."""
    try:
        value = int(ipaddress.IPv4Address(ip))
    except ValueError:
        return []
    at = bisect.bisect_right(starts, value) - 1
    found = []
    while at >= 0 and len(found) < len(ranges):
        if int(ranges[at].pool.last) >= value:
            found.append(at)
        elif ranges[at].scope != "flags" and not found:
            break  # scopes never overlap: nothing earlier can hold it
        at -= 1
    return found


def scopes(store: LeaseStore) -> list[dict[str, Any]]:
    """Every scope document's scopes, with whether servers serve it or refuse it (why)."""
    _revision, documents = ConfigStore(store.etcd, store.prefix).documents()
    built = assemble(documents, None, {})  # one read: the rows follow the same documents
    rows = []
    for doc in documents:
        accepted = built.accepted.get(doc.name)
        served = accepted[1] if accepted else ()
        rows += [
            {"document": doc.name, **scope_view(scope), "status": "served"} for scope in served
        ]
        if doc.name in built.problems:
            rows.append(
                {"document": doc.name, "status": "refused", "problem": built.problems[doc.name]}
            )
    return rows


def scope_view(scope: Scope) -> dict[str, Any]:
    """One scope as scripts see it."""
    return {
        "id": scope.id,
        "subnet": str(scope.subnet),
        "pools": [p.text for p in scope.pools],
        "size": scope.size(),
        "shared_network": scope.shared_network,
        "relay": list(scope.relay_addresses),
        "interface": scope.interface,
        "valid_lifetime": scope.valid_lifetime,
    }
