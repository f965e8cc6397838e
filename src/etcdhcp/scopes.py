"""Scopes: the subnets etcdhcp serves, in the shape of ISC Kea's `subnet4` entries.

A scope is one subnet with its pools, lease times, options and the relay addresses
that select it; a shared network is several scopes on one link, tried in turn when
one is full. Documents are Kea's own shapes (`subnet4` entries, `shared-networks`
entries), so a Kea configuration moves over as written; every key we do not
support is refused by its JSON path, never ignored. Parsing and checking here is
pure (no etcd): `etcdhcpctl` runs it before writing and every server runs it on
what it reads, keeping its previous view of a document that fails.

`ScopeSet` is one immutable view of every scope with the indexes that choose a
packet's scope in constant time whatever the number of scopes: a dict per prefix
length of the subnets present (a /24 network is found with one dict lookup), and
a dict of relay addresses.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import ipaddress
import itertools
import json
import math
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from etcdhcp import optiondefs
from etcdhcp.codec import OPT_DNS, OPT_ROUTER, ZERO_IP, Request, ip_int

FLAG_SCOPE_ID = 0  # the scope the command-line flags describe; Kea's ids start at 1
MAX_SCOPE_ID = 0xFFFFFFFF
MAX_LIFETIME = 0xFFFFFFFE  # option 51 is 32 bits; 0xffffffff means infinite
DEFAULT_T1_PERCENT = 0.5  # RFC 2131 §4.4.5
DEFAULT_T2_PERCENT = 0.875

LIFETIME_KEYS = ("valid-lifetime", "min-valid-lifetime", "max-valid-lifetime")
TIMER_KEYS = ("renew-timer", "rebind-timer", "calculate-tee-times", "t1-percent", "t2-percent")
BOOT_KEYS = ("next-server", "server-hostname", "boot-file-name")
# Keys a subnet inherits from its shared network (and the global level) when it does not
# set them (Kea's rule).
INHERITED_KEYS = (*LIFETIME_KEYS, *TIMER_KEYS, *BOOT_KEYS, "interface", "relay", "client-class")
SUBNET_KEYS = frozenset(
    {"id", "subnet", "pools", "option-data", "user-context", "comment", *INHERITED_KEYS}
)
POOL_KEYS = frozenset({"pool", "option-data", "client-class", "user-context", "comment"})
SNAME_LEN = 64  # the BOOTP header's sname and file fields, NUL-terminated (RFC 2131 §2)
FILE_LEN = 128
NETWORK_KEYS = frozenset(
    {"name", "subnet4", "option-data", "user-context", "comment", *INHERITED_KEYS}
)


class ScopeError(ValueError):
    """A document that does not describe a scope we can serve; one line naming where."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class Boot:
    """The BOOTP header's boot fields: siaddr (`next-server`), sname and file.

    Empty means "not set here": a more general level's value, or, for `next_server`,
    the server's own address (the original's siaddr)."""

    next_server: str | None = None
    server_hostname: bytes = b""
    boot_file_name: bytes = b""

    def under(self, inner: Boot) -> Boot:
        """`inner` (a more specific level) over this one, field by field."""
        return Boot(
            inner.next_server or self.next_server,
            inner.server_hostname or self.server_hostname,
            inner.boot_file_name or self.boot_file_name,
        )


@dataclass(frozen=True)
class Pool:
    """An inclusive address range of a scope, as integers (cheap to compare per packet)."""

    first: int
    last: int
    options: tuple[tuple[int, bytes], ...] = ()
    always_send: frozenset[int] = frozenset()
    client_class: str | None = None  # only members of this class get addresses from it

    def __contains__(self, ip: int) -> bool:
        return self.first <= ip <= self.last

    def __len__(self) -> int:
        return self.last - self.first + 1

    def addresses(self) -> Iterator[str]:
        for value in range(self.first, self.last + 1):
            yield str(ipaddress.IPv4Address(value))

    @property
    def text(self) -> str:
        return f"{ipaddress.IPv4Address(self.first)} - {ipaddress.IPv4Address(self.last)}"


@dataclass(frozen=True)
class Scope:
    """One served subnet; built only by `parse_subnet` / `flag_scope`, so always valid."""

    id: int
    subnet: ipaddress.IPv4Network
    pools: tuple[Pool, ...]
    valid_lifetime: int
    min_lifetime: int
    max_lifetime: int
    renew_timer: int | None = None
    rebind_timer: int | None = None
    t1_percent: float = DEFAULT_T1_PERCENT
    t2_percent: float = DEFAULT_T2_PERCENT
    options: tuple[tuple[int, bytes], ...] = ()  # encoded option-data, in document order
    always_send: frozenset[int] = frozenset()  # codes sent even when not asked for
    relay_addresses: tuple[str, ...] = ()
    interface: str | None = None
    shared_network: str | None = None
    boot: Boot = field(default_factory=lambda: Boot())
    client_class: str | None = None  # only members of this class are served here
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def network_int(self) -> int:
        return int(self.subnet.network_address)

    @property
    def mask_int(self) -> int:
        return int(self.subnet.netmask)

    def contains(self, ip: int) -> bool:
        return ip & self.mask_int == self.network_int

    def in_pools(self, ip: int) -> bool:
        return any(ip in pool for pool in self.pools)

    def pool_of(self, ip: int) -> Pool | None:
        return next((pool for pool in self.pools if ip in pool), None)

    def size(self) -> int:
        return sum(len(pool) for pool in self.pools)

    def admits(self, classes: Collection[str]) -> bool:
        """Whether a client of `classes` may be served here (Kea's `client-class`)."""
        return self.client_class is None or self.client_class in classes

    def for_classes(self, classes: Collection[str]) -> Scope:
        """This scope as a client of `classes` sees it: without the pools it may not use."""
        if all(pool.client_class is None for pool in self.pools):
            return self
        return _for_classes(self, frozenset(c for c in classes if c in self._pool_classes))

    @functools.cached_property
    def _pool_classes(self) -> frozenset[str]:
        return frozenset(p.client_class for p in self.pools if p.client_class is not None)

    def lease_time(self, requested: int | None) -> int:
        """The lease to grant: the client's wish (option 51) clamped to [min, max]."""
        if requested is None:
            return self.valid_lifetime
        return max(self.min_lifetime, min(self.max_lifetime, requested))

    def timers(self, lease_time: int) -> tuple[int, int]:
        """T1 and T2 for a lease: explicit timers when below the lease, else the percentages."""
        t1 = self.renew_timer
        if t1 is None or t1 >= lease_time:
            t1 = int(lease_time * self.t1_percent)
        t2 = self.rebind_timer
        if t2 is None or t2 >= lease_time:
            t2 = int(lease_time * self.t2_percent)
        return t1, max(t1, t2)

    @property
    def label(self) -> str:
        """The `scope` label of metrics: the id, as text."""
        return str(self.id)


@functools.lru_cache(maxsize=4096)
def _for_classes(scope: Scope, classes: frozenset[str]) -> Scope:
    pools = tuple(p for p in scope.pools if p.client_class is None or p.client_class in classes)
    return dataclasses.replace(scope, pools=pools)


# ---- parsing one document -------------------------------------------------------------------


def _refuse_unknown(doc: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
    for key in doc:
        if key not in allowed:
            raise ScopeError(f"{path}.{key}", "is not supported by etcdhcp (docs/scopes.md)")


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ScopeError(path, "must be a JSON object")
    return value


def _integer(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScopeError(path, f"{value!r} is not an integer")
    if not low <= value <= high:
        raise ScopeError(path, f"{value} is not between {low} and {high}")
    return value


def _address(value: Any, path: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value if isinstance(value, str) else "")
    except ValueError:
        raise ScopeError(path, f"{value!r} is not an IPv4 address") from None


def _subnet(value: Any, path: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.IPv4Network(value if isinstance(value, str) else "", strict=True)
    except ValueError as exc:
        raise ScopeError(path, f"{value!r} is not an IPv4 subnet ({exc})") from None
    if network.prefixlen == 0:
        raise ScopeError(path, "0.0.0.0/0 is not a subnet a server can serve")
    return network


def _pool_range(text: Any, path: str) -> tuple[int, int]:
    """Kea's two forms: "a - b" and "a/len"."""
    if not isinstance(text, str):
        raise ScopeError(path, f"{text!r} is not a pool ('first - last' or 'address/length')")
    if "-" in text:
        first_text, _, last_text = text.partition("-")
        first = int(_address(first_text.strip(), path))
        last = int(_address(last_text.strip(), path))
    else:
        network = _subnet(text.strip(), path)
        first, last = int(network.network_address), int(network.broadcast_address)
    if first > last:
        raise ScopeError(path, f"{text!r} ends before it starts")
    return first, last


@dataclass(frozen=True)
class OptionData:
    """One level's `option-data`, encoded: (code, value) pairs and the always-send codes."""

    options: tuple[tuple[int, bytes], ...] = ()
    always: frozenset[int] = frozenset()

    def under(self, inner: OptionData) -> OptionData:
        """`inner` (a more specific level) over this one: its options win, code by code."""
        codes = {code for code, _ in inner.options}
        kept = tuple(o for o in self.options if o[0] not in codes)
        return OptionData((*kept, *inner.options), self.always | inner.always)


STANDARD_DEFS = optiondefs.OptionDefs()


def parse_option_data(
    value: Any, path: str, defs: optiondefs.OptionDefs = STANDARD_DEFS
) -> OptionData:
    """A Kea `option-data` list, encoded with `defs` (ScopeError naming the entry).

    Only `dhcp4`-space entries are options of a reply. An entry of another space (a
    sub-option space that 43 or a custom option encapsulates, `vendor-<n>` for 125) is
    checked here but only feeds the option encapsulating it, as in Kea: its code means
    something else at the top level (vlanid 2 is not time-offset), and its always-send
    is the encapsulating option's business."""
    if not isinstance(value, list):
        raise ScopeError(path, "must be a list of options")
    encoded, always = [], set()
    for i, entry in enumerate(value):
        entry = _object(entry, f"{path}[{i}]")
        try:
            code, data = optiondefs.encode(entry, defs, value)
        except optiondefs.OptionError as exc:
            raise ScopeError(f"{path}[{i}]", str(exc)) from None
        if entry.get("space", optiondefs.DHCP4) != optiondefs.DHCP4:
            continue
        encoded.append((code, data))
        if entry.get("always-send") is True:
            always.add(code)
    return OptionData(tuple(encoded), frozenset(always))


def _relay(value: Any, path: str) -> tuple[str, ...]:
    relay = _object(value, path)
    _refuse_unknown(relay, frozenset({"ip-addresses", "ip-address"}), path)
    addresses = list(relay.get("ip-addresses", []))
    if "ip-address" in relay:  # Kea 1.x's single address
        addresses.append(relay["ip-address"])
    return tuple(str(_address(a, f"{path}.ip-addresses[{i}]")) for i, a in enumerate(addresses))


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ScopeError(path, f"{value!r} is not a non-empty string")
    return value


def parse_boot(doc: Mapping[str, Any], path: str) -> Boot:
    """Kea's `next-server`, `server-hostname` and `boot-file-name` of one level."""
    next_server = doc.get("next-server")
    if next_server is not None:
        next_server = str(_address(next_server, f"{path}.next-server"))
        if next_server == ZERO_IP:
            next_server = None  # Kea's way of writing "not set"
    fields = []
    for key, size in (("server-hostname", SNAME_LEN), ("boot-file-name", FILE_LEN)):
        value = doc.get(key, "")
        if not isinstance(value, str):
            raise ScopeError(f"{path}.{key}", f"{value!r} is not a string")
        encoded = value.encode()
        if len(encoded) >= size:
            raise ScopeError(f"{path}.{key}", f"is {len(encoded)} bytes; at most {size - 1} fit")
        fields.append(encoded)
    return Boot(next_server, *fields)


def _class_name(doc: Mapping[str, Any], path: str) -> str | None:
    value = doc.get("client-class")
    return None if value in (None, "") else _text(value, f"{path}.client-class")


@dataclass(frozen=True)
class Defaults:
    """What a scope takes when neither it nor its shared network says (the global level):
    the flags' lease time and options (`-dhcp.option`, under the global document's
    option-data), the global document's inherited keys, its option definitions."""

    valid_lifetime: int = 3600
    inherited: Mapping[str, Any] = field(default_factory=dict, compare=False)
    defs: optiondefs.OptionDefs = STANDARD_DEFS
    options: OptionData = field(default_factory=OptionData)


DEFAULTS = Defaults()


def parse_subnet(
    doc: Any,
    path: str = "subnet4[0]",
    defaults: Defaults = DEFAULTS,
    network: Mapping[str, Any] | None = None,
) -> Scope:
    """One Kea `subnet4` entry -> Scope, or ScopeError naming the JSON path at fault."""
    doc = _object(doc, path)
    _refuse_unknown(doc, SUBNET_KEYS, path)
    inherited = {k: network[k] for k in INHERITED_KEYS if network and k in network}
    merged = {**defaults.inherited, **inherited, **doc}
    if "id" not in doc:
        raise ScopeError(f"{path}.id", "is required (a number from 1)")
    scope_id = _integer(doc["id"], f"{path}.id", 1, MAX_SCOPE_ID)
    if "subnet" not in doc:
        raise ScopeError(f"{path}.subnet", "is required (e.g. 192.0.2.0/24)")
    subnet = _subnet(doc["subnet"], f"{path}.subnet")
    pools = _pools(doc.get("pools", []), f"{path}.pools", subnet, defaults.defs)
    valid = _integer(
        merged.get("valid-lifetime", defaults.valid_lifetime), f"{path}.valid-lifetime", 1,
        MAX_LIFETIME,
    )  # fmt: skip
    low = _integer(merged.get("min-valid-lifetime", valid), f"{path}.min-valid-lifetime", 1, valid)
    high = _integer(
        merged.get("max-valid-lifetime", valid), f"{path}.max-valid-lifetime", valid, MAX_LIFETIME
    )
    renew = merged.get("renew-timer")
    rebind = merged.get("rebind-timer")
    if renew is not None:
        renew = _integer(renew, f"{path}.renew-timer", 1, MAX_LIFETIME)
    if rebind is not None:
        rebind = _integer(rebind, f"{path}.rebind-timer", 1, MAX_LIFETIME)
    if renew is not None and rebind is not None and renew > rebind:
        raise ScopeError(f"{path}.renew-timer", f"{renew} is after rebind-timer {rebind}")
    t1, t2 = _percentages(merged, path)
    outer = OptionData()
    if network:
        outer = parse_option_data(
            network.get("option-data", []), f"{path}.shared-network.option-data", defaults.defs
        )
    options = outer.under(
        parse_option_data(doc.get("option-data", []), f"{path}.option-data", defaults.defs)
    )
    _check_routers(options.options, subnet, f"{path}.option-data")
    interface = merged.get("interface")
    return Scope(
        id=scope_id,
        subnet=subnet,
        pools=pools,
        valid_lifetime=valid,
        min_lifetime=low,
        max_lifetime=high,
        renew_timer=renew,
        rebind_timer=rebind,
        t1_percent=t1,
        t2_percent=t2,
        options=options.options,
        always_send=options.always,
        relay_addresses=_relay(merged["relay"], f"{path}.relay") if "relay" in merged else (),
        interface=_text(interface, f"{path}.interface") if interface is not None else None,
        shared_network=network.get("name") if network else None,
        boot=parse_boot(merged, path),
        client_class=_class_name(merged, path),
        document=doc,
    )


def _percentages(merged: Mapping[str, Any], path: str) -> tuple[float, float]:
    """Kea's t1-percent / t2-percent (used when calculate-tee-times is not false)."""
    t1 = merged.get("t1-percent", DEFAULT_T1_PERCENT)
    t2 = merged.get("t2-percent", DEFAULT_T2_PERCENT)
    for key, value in (("t1-percent", t1), ("t2-percent", t2)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise ScopeError(f"{path}.{key}", f"{value!r} is not a fraction between 0 and 1")
    if t1 >= t2:
        raise ScopeError(f"{path}.t1-percent", f"{t1} is not below t2-percent {t2}")
    tee = merged.get("calculate-tee-times", True)
    if not isinstance(tee, bool):
        raise ScopeError(f"{path}.calculate-tee-times", f"{tee!r} is not true or false")
    return float(t1), float(t2)


def _pools(
    value: Any, path: str, subnet: ipaddress.IPv4Network, defs: optiondefs.OptionDefs
) -> tuple[Pool, ...]:
    if not isinstance(value, list):
        raise ScopeError(path, 'must be a list of {"pool": "first - last"} objects')
    special = set()
    if subnet.prefixlen <= 30:  # /31 and /32 have no network or broadcast address
        special = {int(subnet.network_address), int(subnet.broadcast_address)}
    pools = []
    for i, entry in enumerate(value):
        where = f"{path}[{i}]"
        entry = _object(entry, where)
        _refuse_unknown(entry, POOL_KEYS, where)
        if "pool" not in entry:
            raise ScopeError(f"{where}.pool", "is required")
        first, last = _pool_range(entry["pool"], f"{where}.pool")
        for end in (first, last):
            if not subnet.network_address <= ipaddress.IPv4Address(end) <= subnet.broadcast_address:
                raise ScopeError(f"{where}.pool", f"{entry['pool']!r} is outside {subnet}")
        if special & {first, last}:
            raise ScopeError(
                f"{where}.pool", f"{entry['pool']!r} includes the network or broadcast address"
            )
        options = parse_option_data(entry.get("option-data", []), f"{where}.option-data", defs)
        pools.append(Pool(first, last, options.options, options.always, _class_name(entry, where)))
    ordered = sorted(pools, key=lambda p: p.first)
    for before, after in itertools.pairwise(ordered):
        if after.first <= before.last:
            raise ScopeError(path, f"pools {before.text} and {after.text} overlap")
    return tuple(pools)


def _check_routers(
    options: Sequence[tuple[int, bytes]], subnet: ipaddress.IPv4Network, path: str
) -> None:
    for code, value in options:
        if code != OPT_ROUTER:
            continue
        for i in range(0, len(value) - 3, 4):
            router = ipaddress.IPv4Address(value[i : i + 4])
            if router not in subnet:
                raise ScopeError(f"{path}.routers", f"router {router} is outside {subnet}")


def parse_shared_network(
    doc: Any, path: str = "shared-networks[0]", defaults: Defaults = DEFAULTS
) -> tuple[Scope, ...]:
    """One Kea `shared-networks` entry -> its scopes (each knows the network's name)."""
    doc = _object(doc, path)
    _refuse_unknown(doc, NETWORK_KEYS, path)
    name = _text(doc.get("name"), f"{path}.name")
    subnets = doc.get("subnet4", [])
    if not isinstance(subnets, list) or not subnets:
        raise ScopeError(f"{path}.subnet4", "must list the network's subnets")
    network = {**doc, "name": name}
    scopes = tuple(
        parse_subnet(s, f"{path}.subnet4[{i}]", defaults, network) for i, s in enumerate(subnets)
    )
    check_together(scopes)
    return scopes


def check_together(scopes: Sequence[Scope]) -> None:
    """Refuse duplicate ids and overlapping subnets among `scopes` (ScopeError)."""
    seen: dict[int, Scope] = {}
    for scope in scopes:
        if scope.id in seen:
            raise ScopeError(
                f"scope {scope.id}", f"the id is used by {seen[scope.id].subnet} and {scope.subnet}"
            )
        seen[scope.id] = scope
    ordered = sorted(scopes, key=lambda s: (s.network_int, s.subnet.prefixlen))
    for before, after in itertools.pairwise(ordered):
        if after.subnet.overlaps(before.subnet):
            raise ScopeError(
                f"scope {after.id}",
                f"subnet {after.subnet} overlaps {before.subnet} of scope {before.id}",
            )


# ---- the flags' scope -----------------------------------------------------------------------


def flag_scope(
    subnet: ipaddress.IPv4Network,
    first: ipaddress.IPv4Address,
    last: ipaddress.IPv4Address,
    router: ipaddress.IPv4Address,
    dns: Sequence[ipaddress.IPv4Address],
    lease_time: float,
    interface: str,
) -> Scope:
    """The one scope the original's flags describe: exactly today's behaviour."""
    lifetime = min(MAX_LIFETIME, max(1, math.floor(lease_time)))
    options = (
        (OPT_ROUTER, router.packed),
        (OPT_DNS, b"".join(d.packed for d in dns)),
    )
    return Scope(
        id=FLAG_SCOPE_ID,
        subnet=subnet,
        pools=(Pool(int(first), int(last)),),
        valid_lifetime=lifetime,
        min_lifetime=lifetime,
        max_lifetime=lifetime,
        options=options,
        interface=interface,
    )


# ---- the view every packet consults ---------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """Where a packet arrived: the served interface's name and its address (option 54)."""

    name: str
    server_ip: str


class ScopeSet:
    """Every scope this server serves, indexed for constant-time selection. Immutable."""

    def __init__(self, scopes: Iterable[Scope]) -> None:
        self.scopes: tuple[Scope, ...] = tuple(sorted(scopes, key=lambda s: s.id))
        self.globals: Any = None  # globalconfig.Globals, set by globalconfig.assemble
        self.by_id = {s.id: s for s in self.scopes}
        # prefix length -> network address -> scope; longest prefix first.
        by_length: dict[int, dict[int, Scope]] = {}
        for scope in self.scopes:
            by_length.setdefault(scope.subnet.prefixlen, {})[scope.network_int] = scope
        self._by_length = sorted(
            ((0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF, table) for n, table in by_length.items()
        )[::-1]
        # relay address / interface name -> every scope it names, in id order (Kea's).
        self._by_relay: dict[int, list[Scope]] = {}
        self._by_interface: dict[str, list[Scope]] = {}
        families: dict[str, list[Scope]] = {}
        for scope in self.scopes:
            for relay in scope.relay_addresses:
                self._by_relay.setdefault(ip_int(relay), []).append(scope)
            if scope.interface:
                self._by_interface.setdefault(scope.interface, []).append(scope)
            if scope.shared_network:
                families.setdefault(scope.shared_network, []).append(scope)
        self._families = {name: tuple(members) for name, members in families.items()}

    def __len__(self) -> int:
        return len(self.scopes)

    def containing(self, ip: int) -> Scope | None:
        """The scope whose subnet holds `ip` (the longest prefix, though none overlap)."""
        for mask, table in self._by_length:
            scope = table.get(ip & mask)
            if scope is not None:
                return scope
        return None

    def in_pools(self, ip: str) -> bool:
        """True when `ip` is in some scope's pool: the address belongs in the free pool."""
        return self.pool_scope(ip) is not None

    def pool_scope(self, ip: str) -> Scope | None:
        """The scope whose pools hold `ip`, if any."""
        try:
            value = ip_int(ip)
        except ValueError:
            return None
        scope = self.containing(value)
        return scope if scope is not None and scope.in_pools(value) else None

    def addresses(self) -> set[str]:
        """Every pool address of every scope (for phasing out what a change removed)."""
        return {ip for scope in self.scopes for pool in scope.pools for ip in pool.addresses()}

    def family(self, scope: Scope, classes: Collection[str] = ()) -> tuple[Scope, ...]:
        """`scope` first, then the other scopes of its shared network that admit a client
        of `classes`, each without the pools such a client may not use."""
        if scope.shared_network is None:
            return (scope.for_classes(classes),)
        others = (
            s for s in self._families[scope.shared_network] if s is not scope and s.admits(classes)
        )
        return tuple(s.for_classes(classes) for s in (scope, *others))

    def select(self, request: Request, link: Link, classes: Collection[str] = ()) -> Scope | None:
        """The scope of the link the client is on that admits a client of `classes`.

        Kea 2.2's CfgSubnets4::selectSubnet: every scope naming the giaddr as a relay
        address (or the arrival interface) is a candidate, the first admitting the
        client wins; a scope found by an address it contains (giaddr, option 118 or
        82.5, ciaddr, the interface's address) is the only candidate, so a client it
        does not admit is dropped even when a shared-network sibling would admit it
        (the allocation, not the selection, then moves on to siblings: `family`)."""
        return next((s for s in self._candidates(request, link) if s.admits(classes)), None)

    def _candidates(self, request: Request, link: Link) -> Iterator[Scope]:
        """RFC 2131 §4.3.1, RFC 3527, RFC 3011: the scopes of the link the client is on,
        in the order Kea tries them."""
        if request.relayed:
            selector = request.link_selection or request.subnet_selection
            if selector is not None:
                yield from self._holding(selector)
                return
            yield from self._by_relay.get(ip_int(request.giaddr), ())
            yield from self._holding(request.giaddr)
            return
        if request.subnet_selection is not None:
            yield from self._holding(request.subnet_selection)
            return
        if request.ciaddr != ZERO_IP:
            # A client with an address talks to us directly, relayed or not when it got
            # it (RFC 2131 §4.3.2 RENEWING): its address says where it is.
            own = self.containing(ip_int(request.ciaddr))
            if own is not None:
                yield own
                return
        yield from self._by_interface.get(link.name, ())
        yield from self._holding(link.server_ip)

    def _holding(self, ip: str) -> Iterator[Scope]:
        scope = self.containing(ip_int(ip))
        if scope is not None:
            yield scope

    def owner(self, ip: str, selected: Scope, classes: Collection[str] = ()) -> Scope | None:
        """The scope of `selected`'s link (itself or a shared-network sibling admitting
        `classes`) holding `ip`, as a client of `classes` sees it."""
        value = ip_int(ip)
        return next((s for s in self.family(selected, classes) if s.contains(value)), None)


# ---- documents: what etcd holds, one per key ------------------------------------------------

SUBNET_DOC = "subnet4"
NETWORK_DOC = "shared-networks"
DOCUMENT_KINDS = (SUBNET_DOC, NETWORK_DOC)


def document_name(kind: str, key: int | str) -> str:
    """The name of one document: `subnet4/<id>` or `shared-networks/<name>`."""
    return f"{kind}/{key}"


def parse_document(name: str, raw: bytes | str, defaults: Defaults = DEFAULTS) -> tuple[Scope, ...]:
    """One stored document -> its scopes; ScopeError (naming the document) when it is bad."""
    kind, _, key = name.partition("/")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScopeError(name, f"is not JSON ({exc})") from None
    if kind == SUBNET_DOC:
        scope = parse_subnet(doc, name, defaults)
        if str(scope.id) != key:
            raise ScopeError(f"{name}.id", f"{scope.id} does not match the key's id {key}")
        return (scope,)
    if kind == NETWORK_DOC:
        scopes = parse_shared_network(doc, name, defaults)
        if doc.get("name") != key:
            raise ScopeError(f"{name}.name", f"{doc.get('name')!r} does not match the key {key!r}")
        return scopes
    raise ScopeError(name, f"unknown kind of document (not one of {', '.join(DOCUMENT_KINDS)})")


@dataclass(frozen=True)
class Document:
    """One document as read from etcd: its name, bytes and modification revision."""

    name: str
    raw: bytes
    revision: int = 0


@dataclass(frozen=True)
class Assembly:
    """The result of `assemble`: the view to serve, what each document gave, what was refused."""

    scopes: ScopeSet
    accepted: dict[str, tuple[Document, tuple[Scope, ...]]]  # name -> what is served from it
    problems: dict[str, str]  # name -> the one-line reason it (or its new version) is refused


class _Overlaps:
    """Disjoint subnets and used ids, to find what a new scope collides with in O(log n)."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._spans: list[tuple[int, int, Scope]] = []
        self._ids: dict[int, Scope] = {}

    def conflict(self, scope: Scope) -> str | None:
        if scope.id in self._ids:
            return f"scope id {scope.id} is used by {self._ids[scope.id].subnet} too"
        low, high = scope.network_int, int(scope.subnet.broadcast_address)
        at = bisect.bisect_right(self._starts, high) - 1
        if at >= 0 and self._spans[at][1] >= low:
            other = self._spans[at][2]
            return f"subnet {scope.subnet} overlaps {other.subnet} of scope {other.id}"
        return None

    def add(self, scope: Scope) -> None:
        low = scope.network_int
        at = bisect.bisect_right(self._starts, low)
        self._starts.insert(at, low)
        self._spans.insert(at, (low, int(scope.subnet.broadcast_address), scope))
        self._ids[scope.id] = scope


def assemble(
    documents: Iterable[Document],
    flag: Scope | None,
    previous: Mapping[str, tuple[Document, tuple[Scope, ...]]],
    defaults: Defaults = DEFAULTS,
    *,
    reparse: bool = False,
) -> Assembly:
    """Build the view from every stored document, keeping the previous version of a bad one.

    A document that does not parse, or whose scopes collide with the flags' scope or
    with an older document (lower revision: first written, first served), is refused;
    what it served before stays served, when that still fits. `reparse`: the global
    level changed, so unchanged documents are parsed again (their previous version
    stays the fallback).
    """
    taken = _Overlaps()
    chosen: list[Scope] = []
    if flag is not None:
        taken.add(flag)
        chosen.append(flag)
    accepted: dict[str, tuple[Document, tuple[Scope, ...]]] = {}
    problems: dict[str, str] = {}
    for doc in sorted(documents, key=lambda d: (d.revision, d.name)):
        old = previous.get(doc.name)
        candidates: list[tuple[Document, tuple[Scope, ...]]] = []
        if old is not None and old[0].raw == doc.raw and not reparse:
            candidates.append(old)
        else:
            try:
                candidates.append((doc, parse_document(doc.name, doc.raw, defaults)))
            except ScopeError as exc:
                problems[doc.name] = str(exc)
            if old is not None:
                candidates.append(old)
        for source, scopes in candidates:
            clash = next((c for s in scopes if (c := taken.conflict(s))), None)
            if clash is None:
                for scope in scopes:
                    taken.add(scope)
                chosen.extend(scopes)
                accepted[doc.name] = (source, scopes)
                break
            if source is doc:
                problems[doc.name] = f"{doc.name}: {clash}"
    return Assembly(ScopeSet(chosen), accepted, problems)


def name_of(entry: Any, path: str) -> str:
    """The document name a Kea entry is stored under: a shared network (it lists
    `subnet4`) by its name, a subnet by its id."""
    entry = _object(entry, path)
    if "subnet4" in entry:
        return document_name(NETWORK_DOC, _text(entry.get("name"), f"{path}.name"))
    return document_name(SUBNET_DOC, _integer(entry.get("id"), f"{path}.id", 1, MAX_SCOPE_ID))
