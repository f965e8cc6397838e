"""What to answer: RFC 2131 §4.3 decisions, as pure functions.

`decide` turns a request and its scopes into an `Intent` (what the lease store
must do); the store carries the intent out in one transaction; `conclude` turns
the intent and the store's answer into the reply's type and address, or into a
reason for silence. Neither touches etcd or a socket, so every rule here is tested
alone. `destination` says where a reply goes (RFC 2131 §4.1).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from etcdhcp.codec import (
    ACK,
    BROADCAST_MAC,
    CLIENT_PORT,
    DECLINE,
    DISCOVER,
    INFORM,
    NAK,
    OFFER,
    RELEASE,
    REQUEST,
    SERVER_PORT,
    ZERO_IP,
    Reply,
    Request,
)
from etcdhcp.hosts import EMPTY_INDEX, Host, HostIndex, request_identifier
from etcdhcp.scopes import Scope, ScopeSet

LIMITED_BROADCAST = "255.255.255.255"


# ---- intents: what the store is asked to do ------------------------------------------------


@dataclass(frozen=True)
class Reserved:
    """The client's host has address `ip` on its link, reserved for `holder` (the value of
    the address's reservation key: the MAC, or `<id-type>=<identifier>`)."""

    ip: str
    holder: str


@dataclass(frozen=True)
class Offer:
    """DISCOVER: hold an address of `family` (the scope, then its shared-network siblings),
    or the client's `reserved` one."""

    family: tuple[Scope, ...]
    requested: str | None
    reserved: Reserved | None = None


@dataclass(frozen=True)
class Commit:
    """REQUEST: lease `ip` for `lease_time` seconds; `silent_if_unknown`: INIT-REBOOT's rule."""

    ip: str
    scope: Scope
    lease_time: int
    allow_free: bool
    silent_if_unknown: bool = False
    holder: str | None = None  # the reservation `ip` is taken under (None: the MAC's, if any)


@dataclass(frozen=True)
class Withdraw:
    """REQUEST for another server: give back our offer unless it is for `keep`."""

    keep: str | None


@dataclass(frozen=True)
class Release:
    ip: str


@dataclass(frozen=True)
class Decline:
    ip: str


@dataclass(frozen=True)
class Inform:
    """DHCPINFORM: configuration only (RFC 2131 §3.4)."""

    scope: Scope


@dataclass(frozen=True)
class Nak:
    why: str


@dataclass(frozen=True)
class Ignore:
    """No store work and no answer; `reason` labels etcdhcp_requests_ignored_total."""

    reason: str


@dataclass(frozen=True)
class Drop:
    """Not ours to answer (no scope for the client's link); counted as a dropped packet."""

    reason: str


Intent = Offer | Commit | Withdraw | Release | Decline | Inform | Nak | Ignore | Drop


def request_state(req: Request) -> str:
    """The client state a DHCPREQUEST comes from (RFC 2131 §4.3.2)."""
    if req.server_id is not None:
        return "selecting"
    if req.ciaddr == ZERO_IP:
        return "init-reboot" if req.requested_ip else "invalid"
    if req.relayed or req.dst_ip != LIMITED_BROADCAST:
        return "renewing"
    return "rebinding"


def decide(
    req: Request,
    scope: Scope | None,
    scopes: ScopeSet,
    server_ip: str,
    classes: Collection[str] = (),
    host: Host | None = None,
    hosts: HostIndex = EMPTY_INDEX,
) -> Intent:
    """What the store must do for `req`, whose link is `scope`'s, for a client of
    `classes` whose host record is `host` (pure: pools limited to other classes are not
    offered or leased; an address reserved for a host goes to that host only, and a
    client with a reserved address on its link gets that one).

    Without a scope only what names an address is acted on: a RELEASE or DECLINE (the
    store checks the client holds it), and a renewal sent to us, which is NAKed so the
    client starts again on whatever its link is now (its scope was removed).
    """
    kind = req.message_type
    if scope is None:
        if kind in (RELEASE, DECLINE):
            return _release_or_decline(req, server_ip)
        if kind == REQUEST and request_state(req) == "renewing" and not req.relayed:
            return Nak(f"address {req.ciaddr} is not on a network this server serves")
        return Drop("no_scope")
    reserved = _reserved(host, scope, scopes, classes)
    if kind == DISCOVER:
        requested = req.requested_ip
        if requested and scopes.owner(requested, scope, classes) is None:
            requested = None  # an address of another link: offer one of this link
        return Offer(scopes.family(scope, classes), requested, reserved)
    if kind == REQUEST:
        return _request(req, _Client(scope, scopes, classes, reserved, hosts), server_ip)
    if kind in (RELEASE, DECLINE):
        return _release_or_decline(req, server_ip)
    if kind == INFORM:
        if req.ciaddr == ZERO_IP and not req.relayed:
            return Ignore("inform_without_ciaddr")
        return Inform(scope)
    return Ignore("invalid_request")  # pragma: no cover - the codec admits only the above


def _reserved(
    host: Host | None, scope: Scope, scopes: ScopeSet, classes: Collection[str]
) -> Reserved | None:
    """The host's address when it is on the client's link (a global host's may not be)."""
    if host is None or host.ip is None or scopes.owner(host.ip, scope, classes) is None:
        return None
    return Reserved(host.ip, host.holder)


@dataclass(frozen=True)
class _Client:
    """What a REQUEST is judged against: the client's link, classes and reservation."""

    scope: Scope
    scopes: ScopeSet
    classes: Collection[str]
    reserved: Reserved | None
    hosts: HostIndex


def _release_or_decline(req: Request, server_ip: str) -> Intent:
    if req.message_type == RELEASE:
        return Release(req.ciaddr)
    if req.server_id not in (None, server_ip) or not req.requested_ip:
        return Ignore("decline_not_ours")
    return Decline(req.requested_ip)


def _request(req: Request, client: _Client, server_ip: str) -> Intent:
    state = request_state(req)
    if state == "selecting":
        if req.server_id != server_ip:
            return Withdraw(req.requested_ip)
        if not req.requested_ip:
            return Ignore("no_requested_address")
        return _commit(req, req.requested_ip, client, allow_free=True, silent=False)
    if state == "init-reboot":
        assert req.requested_ip is not None
        return _commit(req, req.requested_ip, client, allow_free=False, silent=True)
    if state in ("renewing", "rebinding"):
        return _commit(req, req.ciaddr, client, allow_free=True, silent=False)
    return Ignore("invalid_request")


def _commit(req: Request, ip: str, client: _Client, *, allow_free: bool, silent: bool) -> Intent:
    owner = client.scopes.owner(ip, client.scope, client.classes)
    if owner is None:
        return Nak(f"address {ip} is not on this network")
    reserved = client.reserved
    if reserved is not None and ip != reserved.ip:
        # Kea's rule: the client comes back with a DISCOVER and gets its own address.
        return Nak(f"address {ip} is not the one reserved for this client ({reserved.ip})")
    if reserved is None:
        other = client.hosts.by_ip(ip)
        if other is not None and request_identifier(req, other.id_type) != other.identifier:
            return Nak(f"address {ip} is reserved for another client ({other.name})")
        if not owner.in_pools(_ip(ip)) and client.scopes.pool_scope(ip) is not None:
            return Nak(f"address {ip} is in a pool for other client classes")
    lease_time = owner.lease_time(req.requested_lease_time)
    holder = reserved.holder if reserved is not None else None
    return Commit(ip, owner, lease_time, allow_free, silent, holder)


# ---- conclusions: the reply, from the intent and what the store did ------------------------


@dataclass(frozen=True)
class Conclusion:
    """The reply to send (`message_type`, `yiaddr`, `scope` for its options; a NAK has
    none), or silence with `ignored` or `dropped` naming why (both None: nothing to
    count); `lease_time` for leases."""

    message_type: int | None = None
    yiaddr: str = ZERO_IP
    scope: Scope | None = None
    lease_time: int | None = None
    ignored: str | None = None
    dropped: str | None = None
    nak_reason: str | None = None


def conclude(intent: Intent, outcome: object) -> Conclusion:
    """The reply for `intent` given what the store answered (`outcome`)."""
    if isinstance(intent, Offer):
        if outcome is None:
            return Conclusion(ignored="pool_exhausted")
        ip = str(outcome)
        owner = next((s for s in intent.family if s.contains(_ip(ip))), intent.family[0])
        return Conclusion(OFFER, ip, owner, owner.lease_time(None))
    if isinstance(intent, Commit):
        lease = getattr(outcome, "lease", None)
        if lease is not None:
            return Conclusion(ACK, intent.ip, intent.scope, intent.lease_time)
        refusal = getattr(outcome, "refusal", None)
        if refusal == "no_record" and intent.silent_if_unknown:
            return Conclusion(ignored="no_record")
        why = f"address {intent.ip} is not available ({refusal})"
        return Conclusion(NAK, nak_reason=why)
    if isinstance(intent, Nak):
        return Conclusion(NAK, nak_reason=intent.why)
    if isinstance(intent, Inform):
        return Conclusion(ACK, scope=intent.scope)
    if isinstance(intent, Withdraw):
        return Conclusion(ignored="other_server")
    if isinstance(intent, Release):
        return Conclusion(ignored=None if outcome else "release_unknown")
    if isinstance(intent, Decline):
        return Conclusion(ignored=None if outcome else "decline_unknown")
    if isinstance(intent, Drop):
        return Conclusion(dropped=intent.reason)
    return Conclusion(ignored=intent.reason)


def _ip(text: str) -> int:
    return int.from_bytes(bytes(int(part) for part in text.split(".")), "big")


# ---- where the reply goes -------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """Where a reply goes; `mac` None means the kernel routes it (through a relay)."""

    ip: str
    port: int
    mac: str | None


def destination(reply: Reply) -> Destination:
    """RFC 2131 §4.1: relay, then NAK broadcast, then ciaddr, then broadcast bit, then chaddr.

    A client with an address (ciaddr) is answered at the hardware address its frame
    came from, not through the kernel: the kernel's neighbour table may still hold
    another client's MAC for that address (it had it before), and the reply would be
    lost. That is the client's own MAC on our link, and the router's when the client
    renews from behind one; such a client is out of reach of a broadcast, so it gets
    its NAK there too (as Kea sends it), where a client on our link gets it broadcast.
    """
    req = reply.request
    if req.relayed:
        return Destination(req.giaddr, SERVER_PORT, None)
    routed = req.src_mac != req.mac
    if reply.message_type == NAK and not (routed and req.ciaddr != ZERO_IP):
        return Destination(LIMITED_BROADCAST, CLIENT_PORT, BROADCAST_MAC)
    if req.ciaddr != ZERO_IP:
        return Destination(req.ciaddr, CLIENT_PORT, req.src_mac)
    if req.broadcast:
        return Destination(LIMITED_BROADCAST, CLIENT_PORT, BROADCAST_MAC)
    return Destination(reply.yiaddr, CLIENT_PORT, req.mac)
