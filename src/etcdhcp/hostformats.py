"""Host records in and out of the formats provisioning already has: Kea's JSON, CSV,
dnsmasq `dhcp-host=` lines and /etc/ethers.

Each reader turns a file into Kea-shaped `reservations` entries, each with where it
came from (a line number, or a JSON path), and refuses what it cannot carry over
exactly, one line each: nothing is guessed or silently dropped. `check` then parses the
entries as host records and refuses, by the same names, what a set of hosts may not
hold: a bad field, an address outside the scope (or every served subnet), and two
entries with one identifier, one address, or two addresses for one MAC. Pure: no etcd.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from etcdhcp import optiondefs
from etcdhcp.hosts import (
    CLIENT_ID,
    GLOBAL,
    HW_ADDRESS,
    Host,
    HostKey,
    identifier_bytes,
    parse_host,
)
from etcdhcp.scopes import STANDARD_DEFS, ScopeError, ScopeSet

CSV_FIELDS = ("mac", "ip", "hostname", "bootfile")
CSV_KEYS = {"hw-address": 0, "ip-address": 1, "hostname": 2, "boot-file-name": 3}
_LEASE_TIME = re.compile(r"(?:\d+[smhdw]?|infinite)", re.IGNORECASE)
_DNSMASQ_MAC = re.compile(r"(?:(\d+)-)?([^:]*:.*)")  # with its hardware type, maybe: 1-...
_DNSMASQ_KEY = re.compile(r"(?:--)?([a-z][a-z0-9-]*)=(.*)", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    """One Kea `reservations` entry read from a file, and where: `line 12` or a JSON path."""

    where: str
    scope_id: int
    doc: dict[str, Any]


@dataclass
class Read:
    """A reader's result: the entries, and its refusals (`line 12: ...`) in file order."""

    entries: list[Entry] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of the lines that say something: not blank, not a # comment."""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, stripped


# ---- JSON -----------------------------------------------------------------------------------


def read_json(data: Any, scope_id: int = GLOBAL) -> Read:
    """Kea's JSON: a `reservations` list (for `scope_id`), or a configuration ({"Dhcp4":
    ...} or its Dhcp4 map): its global `reservations` and each subnet4's, shared
    networks' subnets too, by the subnet's id."""
    read = Read()
    if isinstance(data, list):
        _reservations(read, data, "reservations", scope_id)
        return read
    if not isinstance(data, dict):
        read.refusals.append("a hosts file holds a JSON list of reservations or a Kea object")
        return read
    root = ""
    if "Dhcp4" in data:
        data, root = data["Dhcp4"], "Dhcp4."
        if not isinstance(data, dict):
            read.refusals.append("Dhcp4: must be a JSON object")
            return read
    _reservations(read, data.get("reservations", []), f"{root}reservations", GLOBAL)
    for i, network in enumerate(_list(read, data.get("shared-networks", []), "shared-networks")):
        path = f"{root}shared-networks[{i}]"
        if isinstance(network, dict):
            _subnets(read, network.get("subnet4", []), f"{path}.subnet4")
    _subnets(read, data.get("subnet4", []), f"{root}subnet4")
    return read


def _list(read: Read, value: Any, path: str) -> list[Any]:
    if isinstance(value, list):
        return value
    read.refusals.append(f"{path}: must be a list")
    return []


def _subnets(read: Read, subnets: Any, path: str) -> None:
    for i, subnet in enumerate(_list(read, subnets, path)):
        where = f"{path}[{i}]"
        if not isinstance(subnet, dict) or "reservations" not in subnet:
            continue
        scope_id = subnet.get("id")
        if isinstance(scope_id, bool) or not isinstance(scope_id, int) or scope_id < 1:
            read.refusals.append(f"{where}.id: {scope_id!r} is not a subnet id (its hosts' scope)")
            continue
        _reservations(read, subnet["reservations"], f"{where}.reservations", scope_id)


def _reservations(read: Read, entries: Any, path: str, scope_id: int) -> None:
    for i, entry in enumerate(_list(read, entries, path)):
        read.entries.append(Entry(f"{path}[{i}]", scope_id, entry))


# ---- CSV ------------------------------------------------------------------------------------


def read_csv(text: str, scope_id: int = GLOBAL) -> Read:
    """`mac,ip,hostname[,bootfile]` a line; the header line is optional, empty fields are
    left out (a host without an address or a name), # lines are comments."""
    read = Read()
    rows = csv.reader(io.StringIO(text))
    for row in rows:
        number = rows.line_num
        fields = [f.strip() for f in row]
        if not any(fields) or fields[0].startswith("#"):
            continue
        if [f.lower() for f in fields] == list(CSV_FIELDS[: len(fields)]):
            continue  # the header
        if not 2 <= len(fields) <= len(CSV_FIELDS):
            read.refusals.append(
                f"line {number}: {len(fields)} fields; expected mac,ip,hostname[,bootfile]"
            )
            continue
        doc = {key: fields[i] for key, i in CSV_KEYS.items() if i < len(fields) and fields[i]}
        read.entries.append(Entry(f"line {number}", scope_id, doc))
    return read


# ---- dnsmasq --------------------------------------------------------------------------------


def read_dnsmasq(text: str, scope_id: int = GLOBAL) -> Read:
    """dnsmasq's `dhcp-host=` lines (or a dhcp-hostsfile's, without `dhcp-host=`):
    `[MAC[,MAC..]][,id:CLIENT-ID][,set:TAG][,IP][,HOSTNAME]`. A tag that is set becomes
    a client class. Refused, with the reason: lease times, `ignore`, `tag:` conditions,
    IPv6, wildcard MACs, several MACs sharing one address, a MAC with an id:."""
    read = Read()
    for number, line in _lines(text):
        key = _DNSMASQ_KEY.fullmatch(line)
        if key and key.group(1).lower() != "dhcp-host":
            read.refusals.append(f"line {number}: {key.group(1)}= is not a dhcp-host= line")
            continue
        value = key.group(2) if key else line
        try:
            docs = _dhcp_host(value)
        except ValueError as exc:
            read.refusals.append(f"line {number}: {exc}")
            continue
        read.entries += [Entry(f"line {number}", scope_id, doc) for doc in docs]
    return read


def _dhcp_host(value: str) -> list[dict[str, Any]]:
    """The host entries of one dhcp-host value; ValueError saying what is not supported."""
    macs: list[str] = []
    client_id = ip = hostname = None
    classes: list[str] = []
    for token in (t.strip() for t in value.split(",")):
        lowered = token.lower()
        if not token:
            continue
        if lowered.startswith("id:"):
            if token[3:] != "*":  # id:* : match by MAC whatever the client id, as here
                client_id = _dnsmasq_client_id(token[3:])
        elif lowered.startswith("set:"):
            classes.append(token[4:])
        elif lowered.startswith("tag:"):
            raise ValueError(f"{token} (a condition on tags) is not supported")
        elif lowered == "ignore":
            raise ValueError("'ignore' (never answer the client) is not supported")
        elif token.startswith("["):
            raise ValueError(f"{token} is an IPv6 address: etcdhcp serves DHCPv4")
        elif _is_address(token):
            if ip is not None:
                raise ValueError(f"two addresses ({ip}, {token})")
            ip = token
        elif mac := _DNSMASQ_MAC.fullmatch(token):
            if "*" in token:
                raise ValueError(f"{token}: wildcard MACs are not supported")
            if mac.group(1) not in (None, "1", "01"):
                raise ValueError(f"{token}: hardware type {mac.group(1)} is not Ethernet")
            macs.append(mac.group(2))
        elif _LEASE_TIME.fullmatch(token):
            raise ValueError(
                f"lease time {token} is not supported per host (the scope's valid-lifetime holds)"
            )
        elif hostname is not None:
            raise ValueError(f"two host names ({hostname}, {token})")
        else:
            hostname = token
    if client_id is not None and macs:
        raise ValueError("a MAC and an id: on one line: a host has one identifier; split it")
    if client_id is None and not macs:
        raise ValueError("no MAC and no id: (a host needs one)")
    if len(macs) > 1 and ip is not None:
        raise ValueError(
            f"{len(macs)} MACs share {ip}: an address is reserved for one client (docs/hosts.md)"
        )
    extra: dict[str, Any] = {}
    if ip is not None:
        extra["ip-address"] = ip
    if hostname is not None:
        extra["hostname"] = hostname
    if classes:
        extra["client-classes"] = classes
    if client_id is not None:
        return [{CLIENT_ID: client_id, **extra}]
    return [{HW_ADDRESS: mac, **extra} for mac in macs]


def _dnsmasq_client_id(text: str) -> str:
    """dnsmasq's id: is hex octets separated by colons, or else text (Kea's 'quoted')."""
    try:
        identifier_bytes(CLIENT_ID, text, "id")
    except ScopeError:
        return f"'{text}'"
    return text if ":" in text else f"'{text}'"


def _is_address(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


# ---- /etc/ethers ----------------------------------------------------------------------------


def read_ethers(text: str, scope_id: int = GLOBAL) -> Read:
    """/etc/ethers: `MAC ADDRESS` a line. A host name instead of the address is refused:
    etcdhcp does not resolve names at import (the answer would depend on the machine and
    the moment), so give the address."""
    read = Read()
    for number, line in _lines(text):
        fields = line.split("#", 1)[0].split()
        if len(fields) != 2:
            read.refusals.append(f"line {number}: {len(fields)} fields; expected MAC ADDRESS")
        elif not _is_address(fields[1]):
            read.refusals.append(
                f"line {number}: {fields[1]} is a host name, not an address: etcdhcp does not "
                "resolve names at import; write the address"
            )
        else:
            doc = {HW_ADDRESS: fields[0], "ip-address": fields[1]}
            read.entries.append(Entry(f"line {number}", scope_id, doc))
    return read


READERS: dict[str, Callable[[str, int], Read]] = {
    "csv": read_csv,
    "dnsmasq": read_dnsmasq,
    "ethers": read_ethers,
}
FORMATS = ("json", *READERS)


# ---- checking -------------------------------------------------------------------------------


@dataclass
class Checked:
    """`check`'s result: the hosts, where each came from, and the refusals in file order."""

    hosts: list[Host] = field(default_factory=list)
    where: dict[HostKey, str] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)


def refusal(where: str, exc: ScopeError) -> str:
    """A parse error of the entry at `where`: its JSON path as it is, a line's as `line 12:
    hw-address: ...`."""
    if not where.startswith("line "):
        return str(exc)
    message = str(exc)[len(exc.path) + 2 :]
    field_path = exc.path[len(where) + 1 :]
    return f"{where}: {field_path}: {message}" if field_path else f"{where}: {message}"


def check(
    entries: Iterable[Entry],
    scopes: ScopeSet,
    subnets: Sequence[ipaddress.IPv4Network] = (),
    defs: optiondefs.OptionDefs = STANDARD_DEFS,
) -> Checked:
    """Parse `entries` as host records and refuse what they may not hold together.

    A scope's host must have an existing scope and an address in its subnet; a global
    host's address must be in some served subnet (a scope's, or `subnets`: the live
    servers' flags). Within the entries: one record per identifier and scope, one per
    address, one address per MAC (`reservations::<mac>` holds one).
    """
    checked = Checked()
    by_ip: dict[str, str] = {}
    by_mac: dict[str, tuple[str, str]] = {}
    for entry in entries:
        try:
            host = parse_host(entry.doc, entry.where, entry.scope_id, defs)
        except ScopeError as exc:
            checked.refusals.append(refusal(entry.where, exc))
            continue
        problem = _placement(host, scopes, subnets)
        if problem is None and host.key in checked.where:
            problem = (
                f"duplicate {host.id_type} {host.identifier} ({checked.where[host.key]})"
                if host.scope_id == GLOBAL
                else f"duplicate {host.id_type} {host.identifier} in scope {host.scope_id} "
                f"({checked.where[host.key]})"
            )
        if problem is None and host.ip is not None:
            if host.ip in by_ip:
                problem = f"duplicate address {host.ip} ({by_ip[host.ip]})"
            elif host.id_type == HW_ADDRESS and host.identifier in by_mac:
                other_ip, other = by_mac[host.identifier]
                problem = (
                    f"{host.identifier} has {other_ip} already ({other}): "
                    "a MAC holds one reserved address"
                )
        if problem is not None:
            checked.refusals.append(f"{entry.where}: {problem}")
            continue
        checked.hosts.append(host)
        checked.where[host.key] = entry.where
        if host.ip is not None:
            by_ip[host.ip] = entry.where
            if host.id_type == HW_ADDRESS:
                by_mac[host.identifier] = (host.ip, entry.where)
    return checked


def _placement(
    host: Host, scopes: ScopeSet, subnets: Sequence[ipaddress.IPv4Network]
) -> str | None:
    """Why `host` cannot be where it is: a missing scope, an address off its subnet."""
    scope = scopes.by_id.get(host.scope_id)
    if host.scope_id != GLOBAL and scope is None:
        return f"scope {host.scope_id} does not exist (etcdhcpctl scope list)"
    if host.ip is None:
        return None
    address = ipaddress.IPv4Address(host.ip)
    if scope is None:
        scope = scopes.containing(int(address))
        if scope is None and not any(address in subnet for subnet in subnets):
            return f"{host.ip} is outside every served subnet"
    if scope is None:
        return None
    if not scope.contains(int(address)):
        return f"{host.ip} is outside scope {scope.id}'s subnet {scope.subnet}"
    if scope.subnet.prefixlen <= 30 and address in (
        scope.subnet.network_address,
        scope.subnet.broadcast_address,
    ):
        return f"{host.ip} is the network or broadcast address of {scope.subnet}"
    return None


# ---- export ---------------------------------------------------------------------------------


def to_json(hosts: Iterable[Host]) -> dict[str, Any]:
    """Hosts as a Kea-shaped object `read_json` reads back: global `reservations`, and
    `subnet4` entries of an id and `reservations` (the scopes' subnets are not included)."""
    by_scope: dict[int, list[Any]] = {}
    for host in sorted(hosts, key=lambda h: h.key):
        by_scope.setdefault(host.scope_id, []).append(dict(host.document))
    found: dict[str, Any] = {"reservations": by_scope.pop(GLOBAL, [])}
    if by_scope:
        found["subnet4"] = [{"id": n, "reservations": r} for n, r in sorted(by_scope.items())]
    return found


def to_csv(hosts: Iterable[Host]) -> str:
    """Hosts as `mac,ip,hostname,bootfile` lines under a header; ValueError naming the first
    host CSV cannot hold (another identifier, other fields, hosts of several scopes)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    scopes = set()
    for host in sorted(hosts, key=lambda h: h.key):
        extra = sorted(set(host.document) - set(CSV_KEYS))
        if host.id_type != HW_ADDRESS or extra:
            what = extra[0] if extra else host.id_type
            raise ValueError(f"{host.name}: CSV cannot hold its {what}; use --format json")
        scopes.add(host.scope_id)
        if len(scopes) > 1:
            raise ValueError(
                f"hosts of scopes {', '.join(map(str, sorted(scopes)))}: CSV holds one "
                "scope's; give --scope or use --format json"
            )
        row = [""] * len(CSV_FIELDS)
        for key, i in CSV_KEYS.items():
            row[i] = str(host.document.get(key, ""))
        writer.writerow(row)
    return out.getvalue()
