"""Hosts: per-device records (Kea's `reservations` entries), checked, and the index
a packet's host is found in.

A host record names its client by exactly one identifier, `hw-address`, `client-id`
(option 61) or `circuit-id` (option 82 sub-option 1), and gives it what Kea's
reservations give: an address, a hostname, options, boot fields and classes. It is
global (Kea's top-level `reservations`, scope 0) or belongs to one scope (a subnet4's
`reservations`, by subnet id). Parsing is pure, as for scopes: `etcdhcpctl` runs it
before writing and every server on what it reads; a record that does not validate is
refused by JSON path. Identifiers are stored and looked up in one spelling, lower-case
colon-separated hex, whatever form (Kea's) they were written in.

`HostIndex` is one immutable version of every accepted record: a lookup is a dict
probe, and a new version is a copy with the changes applied (livehosts.py swaps it in).
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from etcdhcp import optiondefs
from etcdhcp.codec import Request
from etcdhcp.scopes import (
    BOOT_KEYS,
    STANDARD_DEFS,
    Boot,
    OptionData,
    ScopeError,
    parse_boot,
    parse_option_data,
)

GLOBAL = 0  # the scope id of global hosts (Kea's top-level `reservations`)
MAX_SCOPE_ID = 0xFFFFFFFF
HW_ADDRESS, CLIENT_ID, CIRCUIT_ID = "hw-address", "client-id", "circuit-id"
ID_TYPES = (HW_ADDRESS, CLIENT_ID, CIRCUIT_ID)
# Kea's default `host-reservation-identifiers` for DHCPv4; `duid` has no host records here.
DEFAULT_IDENTIFIERS = (HW_ADDRESS, "duid", CIRCUIT_ID, CLIENT_ID)
HOST_KEYS = frozenset(
    {
        *ID_TYPES,
        "ip-address",
        "hostname",
        "option-data",
        *BOOT_KEYS,
        "client-classes",
        "user-context",
        "comment",
    }
)
_REFUSED_IDENTIFIERS = {
    "flex-id": "needs Kea's flex_id hook library, which etcdhcp does not have (docs/hosts.md)",
    "duid": "is not an identifier of DHCPv4 hosts here: use client-id (docs/hosts.md)",
}
MAX_IDENTIFIER = 128  # bytes, as Kea
MAC_BYTES = 6  # etcdhcp serves Ethernet (codec refuses other hardware)
CIRCUIT_ID_SUBOPTION = 1  # RFC 3046
_HEX_OCTETS = re.compile(r"[0-9a-f]{1,2}(?:([:\- ])[0-9a-f]{1,2}(?:\1[0-9a-f]{1,2})*)?")
_HEX_RUN = re.compile(r"(?:0x)?([0-9a-f]+)")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
EMPTY_OPTIONS = OptionData()
EMPTY_BOOT = Boot()

HostKey = tuple[int, str, str]  # (scope id, identifier type, identifier)


@dataclass(frozen=True, slots=True)
class Host:
    """One host record, checked; built only by `parse_host`, so always valid.

    `document` is the record as stored: Kea's shape, identifier and address normalised.
    """

    scope_id: int
    id_type: str
    identifier: str
    ip: str | None
    hostname: str | None
    options: OptionData
    boot: Boot
    classes: tuple[str, ...]
    document: Mapping[str, Any] = field(compare=False, repr=False)

    @property
    def key(self) -> HostKey:
        return (self.scope_id, self.id_type, self.identifier)

    @property
    def name(self) -> str:
        return record_name(self.scope_id, self.id_type, self.identifier)

    @property
    def holder(self) -> str:
        return holder(self.id_type, self.identifier)


def holder(id_type: str, identifier: str) -> str:
    """Who a host's address is reserved for (the value of its `ips::reserved::` key): the
    MAC for hw-address hosts, as a legacy reservation, `<id-type>=<identifier>` otherwise."""
    return identifier if id_type == HW_ADDRESS else f"{id_type}={identifier}"


def record_name(scope: int | str, id_type: str, identifier: str) -> str:
    """How operators name a host: `<scope>/<id-type>=<identifier>` (etcdhcpctl host show)."""
    return f"{scope}/{id_type}={identifier}"


# ---- parsing ---------------------------------------------------------------------------------


def identifier_bytes(id_type: str, value: Any, path: str) -> bytes:
    """An identifier as Kea reads it: hex (octets separated by colons, or one run of
    digits, `0x` allowed), or 'quoted text' for client-id and circuit-id."""
    if not isinstance(value, str) or not value.strip():
        raise ScopeError(path, f"{value!r} is not an identifier (hex, e.g. 01:02:03)")
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        if id_type == HW_ADDRESS:
            raise ScopeError(path, "a hw-address is hex, not quoted text")
        data = text[1:-1].encode()
    else:
        lowered = text.lower()
        if _HEX_OCTETS.fullmatch(lowered) and not _HEX_RUN.fullmatch(lowered):
            data = bytes(int(octet, 16) for octet in re.split(r"[:\- ]", lowered))
        elif run := _HEX_RUN.fullmatch(lowered):
            digits = run.group(1)
            data = bytes.fromhex(digits.zfill(len(digits) + len(digits) % 2))
        else:
            raise ScopeError(path, f"{value!r} is neither hex nor 'quoted text'")
    if id_type == HW_ADDRESS and len(data) != MAC_BYTES:
        raise ScopeError(path, f"{value!r} is not a MAC address (6 octets, e.g. 02:00:5e:00:53:01)")
    if not 0 < len(data) <= MAX_IDENTIFIER:
        raise ScopeError(path, f"{value!r}: an identifier has 1 to {MAX_IDENTIFIER} octets")
    return data


def normalise_identifier(id_type: str, value: Any, path: str = "identifier") -> str:
    """`value` in the one spelling stored and looked up: lower-case colon-separated hex."""
    return identifier_bytes(id_type, value, path).hex(":")


def parse_address(value: Any, path: str) -> str:
    """A host's address: a unicast IPv4 address, dotted quad."""
    try:
        address = ipaddress.IPv4Address(value if isinstance(value, str) else "")
    except ValueError:
        raise ScopeError(path, f"{value!r} is not an IPv4 address") from None
    if (
        address.is_unspecified
        or address.is_multicast
        or address.is_loopback
        or int(address) == 0xFFFFFFFF
    ):
        raise ScopeError(path, f"{address} cannot be a client's address")
    return str(address)


def _hostname(value: Any, path: str) -> str | None:
    """Option 12's value: dot-separated labels (letters, digits, '-', '_'); "" is none."""
    if not isinstance(value, str):
        raise ScopeError(path, f"{value!r} is not a string")
    if value == "":
        return None
    labels = value[:-1].split(".") if value.endswith(".") else value.split(".")
    if len(value) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ScopeError(path, f"{value!r} is not a host name (labels of letters, digits, '-')")
    return value


def _classes(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ScopeError(path, "must be a list of class names")
    for i, name in enumerate(value):
        if not isinstance(name, str) or not name:
            raise ScopeError(f"{path}[{i}]", f"{name!r} is not a class name")
    return tuple(value)


def parse_host(
    doc: Any, path: str, scope_id: int = GLOBAL, defs: optiondefs.OptionDefs = STANDARD_DEFS
) -> Host:
    """One Kea `reservations` entry -> Host, or ScopeError naming the JSON path at fault.

    `defs` are the option definitions of the global document (its `option-def`)."""
    if not isinstance(doc, dict):
        raise ScopeError(path, "must be a JSON object")
    for key in doc:
        if key not in HOST_KEYS:
            why = _REFUSED_IDENTIFIERS.get(key, "is not supported by etcdhcp (docs/hosts.md)")
            raise ScopeError(f"{path}.{key}", why)
    given = [key for key in ID_TYPES if key in doc]
    if len(given) != 1:
        found = f"{len(given)} ({', '.join(given)})" if given else "none"
        raise ScopeError(path, f"needs exactly one of {', '.join(ID_TYPES)}; found {found}")
    id_type = given[0]
    identifier = normalise_identifier(id_type, doc[id_type], f"{path}.{id_type}")
    ip = parse_address(doc["ip-address"], f"{path}.ip-address") if "ip-address" in doc else None
    hostname = _hostname(doc["hostname"], f"{path}.hostname") if "hostname" in doc else None
    options = EMPTY_OPTIONS
    if "option-data" in doc:
        options = parse_option_data(doc["option-data"], f"{path}.option-data", defs)
    boot = parse_boot(doc, path) if any(k in doc for k in BOOT_KEYS) else EMPTY_BOOT
    classes = (
        _classes(doc["client-classes"], f"{path}.client-classes") if "client-classes" in doc else ()
    )
    if "user-context" in doc and not isinstance(doc["user-context"], dict):
        raise ScopeError(f"{path}.user-context", "must be a JSON object")
    if "comment" in doc and not isinstance(doc["comment"], str):
        raise ScopeError(f"{path}.comment", "must be a string")
    # Interned keys: json.loads makes new key strings for every record, and the index
    # keeps 100,000 documents.
    document = {sys.intern(key): value for key, value in doc.items()}
    document[id_type] = identifier
    if ip is not None:
        document["ip-address"] = ip
    return Host(scope_id, id_type, identifier, ip, hostname, options, boot, classes, document)


def parse_scope_id(text: str, path: str) -> int:
    """A host's scope as written in its key or on the command line: 0 (global) or a
    subnet id, in decimal without leading zeros (one spelling, one key)."""
    if not re.fullmatch(r"0|[1-9][0-9]{0,9}", text) or int(text) > MAX_SCOPE_ID:
        raise ScopeError(path, f"{text!r} is not a scope id (0: global, else a subnet id)")
    return int(text)


def parse_record(
    scope: str, id_type: str, identifier: str, raw: bytes, defs: optiondefs.OptionDefs
) -> Host:
    """A stored record (its key's parts and value) -> Host; ScopeError naming it."""
    name = record_name(scope, id_type, identifier)
    scope_id = parse_scope_id(scope, name)
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScopeError(name, f"is not JSON ({exc})") from None
    host = parse_host(doc, name, scope_id, defs)
    if (host.id_type, host.identifier) != (id_type, identifier):
        raise ScopeError(name, f"the record says {host.id_type}={host.identifier}, not its key's")
    return host


def parse_identifier_order(value: Any, path: str) -> tuple[str, ...]:
    """Kea's `host-reservation-identifiers` (DHCPv4): which identifiers are looked up, in
    order. `duid` (Kea's default lists it) and `flex-id` (Kea's flex_id hook library)
    are accepted and find nothing here: no host record has such an identifier."""
    if not isinstance(value, list) or not value:
        raise ScopeError(path, "must be a non-empty list of identifier types")
    known = (*ID_TYPES, "duid", "flex-id")
    for i, name in enumerate(value):
        if name not in known:
            why = _REFUSED_IDENTIFIERS.get(name, f"is not one of {', '.join(known)}")
            raise ScopeError(f"{path}[{i}]", f"{name!r} {why}")
    if len(set(value)) != len(value):
        raise ScopeError(path, "lists an identifier type twice")
    return tuple(value)


# ---- the index ---------------------------------------------------------------------------


class HostIndex:
    """Every accepted host, by (scope, identifier type, identifier) and by address.

    Immutable: `changed` returns a new version, so a packet keeps the version it
    started with. Which identifier types occur is kept, so a request is not asked for
    an identifier (option 82's sub-options are parsed per call) no host uses.
    """

    __slots__ = ("_by_ip", "_by_key", "_types")

    def __init__(self, hosts: Iterable[Host] = ()) -> None:
        self._by_key: dict[HostKey, Host] = {}
        self._by_ip: dict[str, Host] = {}
        self._types: dict[str, int] = {}
        self._apply(hosts, ())

    def _apply(self, added: Iterable[Host], removed: Iterable[Host]) -> None:
        for host in removed:
            if self._by_key.get(host.key) is host:
                self._drop(host)
        for host in added:
            old = self._by_key.get(host.key)
            if old is not None:
                self._drop(old)
            self._by_key[host.key] = host
            self._types[host.id_type] = self._types.get(host.id_type, 0) + 1
            if host.ip is not None:
                self._by_ip[host.ip] = host

    def _drop(self, host: Host) -> None:
        del self._by_key[host.key]
        self._types[host.id_type] -= 1
        if not self._types[host.id_type]:
            del self._types[host.id_type]
        if host.ip is not None and self._by_ip.get(host.ip) is host:
            del self._by_ip[host.ip]

    def changed(self, added: Iterable[Host] = (), removed: Iterable[Host] = ()) -> HostIndex:
        """A new version: this one without `removed` (those still held) and with `added`
        (replacing the host of the same key)."""
        new = HostIndex.__new__(HostIndex)
        new._by_key, new._by_ip, new._types = (
            dict(self._by_key),
            dict(self._by_ip),
            dict(self._types),
        )
        new._apply(added, removed)
        return new

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Host]:
        return iter(self._by_key.values())

    def lookup(self, scope_id: int, id_type: str, identifier: str) -> Host | None:
        """The host of `scope_id` (GLOBAL: a global one) with this normalised identifier."""
        return self._by_key.get((scope_id, id_type, identifier))

    def by_ip(self, ip: str) -> Host | None:
        """The host whose reserved address is `ip` (dotted quad)."""
        return self._by_ip.get(ip)

    def uses(self, id_type: str) -> bool:
        return id_type in self._types


EMPTY_INDEX = HostIndex()


def request_identifier(request: Request, id_type: str) -> str | None:
    """The request's identifier of `id_type`, normalised as records are; None if absent."""
    if id_type == HW_ADDRESS:
        return request.mac
    if id_type == CLIENT_ID:
        value = request.client_id
    elif id_type == CIRCUIT_ID:
        value = request.relay_suboptions.get(CIRCUIT_ID_SUBOPTION)
    else:
        return None  # duid: no host records of that type
    return value.hex(":") if value else None


def find(
    index: HostIndex,
    request: Request,
    scope_ids: Sequence[int],
    identifier_order: Sequence[str] = DEFAULT_IDENTIFIERS,
) -> Host | None:
    """The host of `request`: the hosts of `scope_ids` (the client's scope, then its
    shared-network siblings) first, then the global ones, each tried with the identifier
    types in `identifier_order` (Kea's host-reservation-identifiers).

    Kea looks in the subnet's reservations and then the global ones when both are
    enabled; etcdhcp always does both, in that order (docs/hosts.md).
    """
    if not len(index):
        return None
    wanted = [
        (id_type, value)
        for id_type in identifier_order
        if index.uses(id_type) and (value := request_identifier(request, id_type)) is not None
    ]
    for scope in (*(i for i in scope_ids if i != GLOBAL), GLOBAL):
        for id_type, value in wanted:
            host = index.lookup(scope, id_type, value)
            if host is not None:
                return host
    return None
