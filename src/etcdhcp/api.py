"""The JSON views of etcdhcp's state: one function per view, shared by `etcdhcpctl
--json` and the admin API (`/api/v1/...`), so scripts get the same shapes from both.

Every view reads through `LeaseStore`; this module knows no key names. It also parses
the MACs and addresses operators type, once, for both front ends.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass
from typing import Any

from etcdhcp.store import AddressPool, Lease, LeaseStore, ServerInfo, address_order

STATES = ("free", "offered", "leased", "reserved", "quarantined")
"""The states `pool` counts, in the order tables show them."""

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
    """One range as live servers seed it, and which servers do."""

    pool: AddressPool
    servers: tuple[str, ...]


def served_ranges(store: LeaseStore) -> list[ServedRange]:
    """The distinct ranges of the live servers (servers sharing a range share a row)."""
    by_range: dict[tuple[int, int], list[str]] = {}
    for server in _by_address(store.servers()):
        try:
            first = ipaddress.IPv4Address(server.range_from or "")
            last = ipaddress.IPv4Address(server.range_to or "")
        except ValueError:
            continue  # a registration without a readable range seeds nothing we can count
        by_range.setdefault((int(first), int(last)), []).append(server.server_ip)
    return [
        ServedRange(AddressPool(ipaddress.IPv4Address(f), ipaddress.IPv4Address(t)), tuple(ips))
        for (f, t), ips in sorted(by_range.items())
    ]


def pool(store: LeaseStore) -> dict[str, Any]:
    """Addresses per state in each live server's range, plus those outside every range."""
    snap = store.snapshot()
    by_state = {
        "free": snap.free,
        "offered": snap.offered,
        "leased": snap.leased,
        "reserved": snap.reserved,
        "quarantined": snap.declined,
    }
    ranges = served_ranges(store)
    rows = [
        {
            "from": str(r.pool.first),
            "to": str(r.pool.last),
            "size": len(r.pool),
            "servers": list(r.servers),
            **dict.fromkeys(STATES, 0),
        }
        for r in ranges
    ]
    outside = dict.fromkeys(STATES, 0)
    for state, ips in by_state.items():
        for ip in ips:
            inside = [row for row, r in zip(rows, ranges, strict=True) if ip in r.pool]
            for row in inside:
                row[state] += 1
            if not inside:
                outside[state] += 1
    return {"ranges": rows, "outside": outside}
