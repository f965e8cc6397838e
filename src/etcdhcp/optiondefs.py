"""DHCPv4 option definitions in ISC Kea's terms, and Kea `option-data` -> wire bytes.

Pure: no etcd, no socket. A Kea configuration's `option-def` and `option-data` carry
over as written: the standard table is Kea 2.2's (`src/lib/dhcp/std_option_defs.h`,
space `dhcp4`; DOCSIS3 `docsis3-v4`, also used for `vendor-4491`), the text of each
value is read as Kea's `OptionDefinition::writeToBuffer` reads it, and the bytes are
those Kea 2.2 sends (checked byte for byte against kea-dhcp4 in
tests/integration/test_kea_options.py). Where this module is stricter than Kea (a
scalar given several values, an IPv6 literal in an ipv4-address field, an empty array,
a site-specific code with no option-def) it refuses the entry rather than send other
bytes. Not reproduced: Kea's own handling of fqdn (81), which its DDNS code rewrites.

`encode` returns an option's payload; splitting one longer than 255 bytes (RFC 3396) and
fitting options into a message is the caller's job.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DHCP4 = "dhcp4"
VENDOR_ENCAPSULATED_SPACE = "vendor-encapsulated-options-space"
AGENT_SPACE = "dhcp-agent-options-space"
DOCSIS3_V4_SPACE = "docsis3-v4"
CABLELABS_ENTERPRISE = 4491
DOMAIN_SEARCH = 119  # RFC 3397: sent compressed
SITE_SPECIFIC = range(224, 255)  # RFC 2132 §2; here usable only with an option-def

# Kea sends these when configured even if the client did not ask (Kea 2.2
# src/bin/dhcp4/dhcp4_srv.cc, Dhcpv4Srv::appendBasicOptions, `required_options`:
# DHO_ROUTERS, DHO_DOMAIN_NAME_SERVERS, DHO_DOMAIN_NAME, DHO_DHCP_SERVER_IDENTIFIER).
# The subnet mask (1) and the lease times (51, 58, 59) come from the lease itself.
BASIC_OPTIONS = frozenset({3, 6, 15, 54})

# Kea's option data types (option_data_types.cc). "internal" is Kea >= 2.5's type for
# options with their own text form (classless-static-route); no option-def may use it.
TYPES = frozenset(
    {
        "empty", "binary", "boolean", "int8", "int16", "int32", "uint8", "uint16",
        "uint32", "ipv4-address", "ipv6-address", "ipv6-prefix", "psid", "string",
        "tuple", "fqdn", "record", "internal",
    }
)  # fmt: skip
_FIXED = {
    "boolean": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4,
    "uint32": 4, "ipv4-address": 4, "ipv6-address": 16, "psid": 3,
}  # fmt: skip
_INT_RANGE = {
    "int8": (-(2**7), 2**7 - 1), "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1), "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1), "uint32": (0, 2**32 - 1),
}  # fmt: skip
# option-data keys Kea 2.2 accepts (SimpleParser4::OPTION4_PARAMETERS) and option-def
# keys (OPTION4_DEF_PARAMETERS).
OPTION_DATA_KEYS = frozenset(
    {"name", "data", "code", "space", "csv-format", "always-send", "user-context",
     "comment", "metadata"}
)  # fmt: skip
OPTION_DEF_KEYS = frozenset(
    {"name", "code", "type", "record-types", "space", "encapsulate", "array",
     "user-context", "comment", "metadata"}
)  # fmt: skip
_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?")


class OptionError(ValueError):
    """A bad option-data entry or option-def: one line naming the option and the fault."""


@dataclass(frozen=True)
class OptionDef:
    """One option definition, as Kea's `option-def` entry spells it."""

    name: str
    code: int
    type: str
    array: bool = False
    record_types: tuple[str, ...] = ()
    space: str = DHCP4
    encapsulate: str = ""


def _d(
    name: str, code: int, type_: str, array: bool = False, *rec: str, enc: str = ""
) -> OptionDef:
    return OptionDef(name, code, type_, array, tuple(rec), DHCP4, enc)


_A4, _STR, _U8, _U16, _U32, _BOOL, _BIN, _FQDN = (
    "ipv4-address", "string", "uint8", "uint16", "uint32", "boolean", "binary", "fqdn",
)  # fmt: skip

# Kea 2.2 STANDARD_V4_OPTION_DEFINITIONS, in its order.
STANDARD_V4 = (
    _d("subnet-mask", 1, _A4),
    _d("time-offset", 2, "int32"),
    _d("routers", 3, _A4, True),
    _d("time-servers", 4, _A4, True),
    _d("name-servers", 5, _A4, True),
    _d("domain-name-servers", 6, _A4, True),
    _d("log-servers", 7, _A4, True),
    _d("cookie-servers", 8, _A4, True),
    _d("lpr-servers", 9, _A4, True),
    _d("impress-servers", 10, _A4, True),
    _d("resource-location-servers", 11, _A4, True),
    _d("host-name", 12, _STR),
    _d("boot-size", 13, _U16),
    _d("merit-dump", 14, _STR),
    _d("domain-name", 15, _STR),
    _d("swap-server", 16, _A4),
    _d("root-path", 17, _STR),
    _d("extensions-path", 18, _STR),
    _d("ip-forwarding", 19, _BOOL),
    _d("non-local-source-routing", 20, _BOOL),
    _d("policy-filter", 21, _A4, True),
    _d("max-dgram-reassembly", 22, _U16),
    _d("default-ip-ttl", 23, _U8),
    _d("path-mtu-aging-timeout", 24, _U32),
    _d("path-mtu-plateau-table", 25, _U16, True),
    _d("interface-mtu", 26, _U16),
    _d("all-subnets-local", 27, _BOOL),
    _d("broadcast-address", 28, _A4),
    _d("perform-mask-discovery", 29, _BOOL),
    _d("mask-supplier", 30, _BOOL),
    _d("router-discovery", 31, _BOOL),
    _d("router-solicitation-address", 32, _A4),
    _d("static-routes", 33, _A4, True),
    _d("trailer-encapsulation", 34, _BOOL),
    _d("arp-cache-timeout", 35, _U32),
    _d("ieee802-3-encapsulation", 36, _BOOL),
    _d("default-tcp-ttl", 37, _U8),
    _d("tcp-keepalive-interval", 38, _U32),
    _d("tcp-keepalive-garbage", 39, _BOOL),
    _d("nis-domain", 40, _STR),
    _d("nis-servers", 41, _A4, True),
    _d("ntp-servers", 42, _A4, True),
    _d("netbios-name-servers", 44, _A4, True),
    _d("netbios-dd-server", 45, _A4, True),
    _d("netbios-node-type", 46, _U8),
    _d("netbios-scope", 47, _STR),
    _d("font-servers", 48, _A4, True),
    _d("x-display-manager", 49, _A4, True),
    _d("dhcp-requested-address", 50, _A4),
    _d("dhcp-lease-time", 51, _U32),
    _d("dhcp-option-overload", 52, _U8),
    _d("dhcp-message-type", 53, _U8),
    _d("dhcp-server-identifier", 54, _A4),
    _d("dhcp-parameter-request-list", 55, _U8, True),
    _d("dhcp-message", 56, _STR),
    _d("dhcp-max-message-size", 57, _U16),
    _d("dhcp-renewal-time", 58, _U32),
    _d("dhcp-rebinding-time", 59, _U32),
    _d("vendor-class-identifier", 60, _STR),
    _d("dhcp-client-identifier", 61, _BIN),
    _d("nwip-domain-name", 62, _STR),
    _d("nwip-suboptions", 63, _BIN),
    _d("nisplus-domain-name", 64, _STR),
    _d("nisplus-servers", 65, _A4, True),
    _d("tftp-server-name", 66, _STR),
    _d("boot-file-name", 67, _STR),
    _d("mobile-ip-home-agent", 68, _A4, True),
    _d("smtp-server", 69, _A4, True),
    _d("pop-server", 70, _A4, True),
    _d("nntp-server", 71, _A4, True),
    _d("www-server", 72, _A4, True),
    _d("finger-server", 73, _A4, True),
    _d("irc-server", 74, _A4, True),
    _d("streettalk-server", 75, _A4, True),
    _d("streettalk-directory-assistance-server", 76, _A4, True),
    _d("user-class", 77, _BIN),
    _d("slp-directory-agent", 78, "record", True, _BOOL, _A4),
    _d("slp-service-scope", 79, "record", False, _BOOL, _STR),
    _d("fqdn", 81, "record", False, _U8, _U8, _U8, _FQDN),
    _d("dhcp-agent-options", 82, "empty", enc=AGENT_SPACE),
    _d("nds-servers", 85, _A4, True),
    _d("nds-tree-name", 86, _STR),
    _d("nds-context", 87, _STR),
    _d("bcms-controller-names", 88, _FQDN, True),
    _d("bcms-controller-address", 89, _A4, True),
    _d("authenticate", 90, _BIN),
    _d("client-last-transaction-time", 91, _U32),
    _d("associated-ip", 92, _A4, True),
    _d("client-system", 93, _U16, True),
    _d("client-ndi", 94, "record", False, _U8, _U8, _U8),
    _d("uuid-guid", 97, "record", False, _U8, _BIN),
    _d("uap-servers", 98, _STR),
    _d("geoconf-civic", 99, _BIN),
    _d("pcode", 100, _STR),
    _d("tcode", 101, _STR),
    _d("v6-only-preferred", 108, _U32),
    _d("netinfo-server-address", 112, _A4, True),
    _d("netinfo-server-tag", 113, _STR),
    _d("v4-captive-portal", 114, _STR),
    _d("auto-config", 116, _U8),
    _d("name-service-search", 117, _U16, True),
    _d("subnet-selection", 118, _A4),
    _d("domain-search", 119, _FQDN, True),
    _d("vivco-suboptions", 124, "record", False, _U32, _BIN),
    _d("vivso-suboptions", 125, _U32),
    _d("pana-agent", 136, _A4, True),
    _d("v4-lost", 137, _FQDN),
    _d("capwap-ac-v4", 138, _A4, True),
    _d("sip-ua-cs-domains", 141, _FQDN, True),
    _d("rdnss-selection", 146, "record", True, _U8, _A4, _A4, _FQDN),
    _d("v4-portparams", 159, "record", False, _U8, "psid"),
    _d("option-6rd", 212, "record", True, _U8, _U8, "ipv6-address", _A4),
    _d("v4-access-domain", 213, _FQDN),
)

# Kea 2.2 DOCSIS3_V4_OPTION_DEFINITIONS (docsis3_option_defs.h): the vendor-4491 space.
DOCSIS3_V4 = (
    OptionDef("oro", 1, _U8, True, (), DOCSIS3_V4_SPACE),
    OptionDef("tftp-servers", 2, _A4, True, (), DOCSIS3_V4_SPACE),
)

# Looked up after option-def, so a configuration may define these codes itself.
# 43 is Kea 2.2's LAST_RESORT_V4_OPTION_DEFINITIONS. 121 is not in Kea 2.2 (a 2.2
# configuration declares it with option-def); this is Kea >= 2.5's definition and text
# form ("10.0.0.0/8 - 10.2.3.1, 0.0.0.0/0 - 10.2.3.1").
LAST_RESORT_V4 = (
    _d("vendor-encapsulated-options", 43, "empty", enc=VENDOR_ENCAPSULATED_SPACE),
    _d("classless-static-route", 121, "internal"),
)


class OptionDefs:
    """Where definitions are looked up, in Kea's order: option-def, standard, last resort."""

    def __init__(self, custom: Iterable[OptionDef] = ()) -> None:
        self._by_code: dict[tuple[str, int], OptionDef] = {}
        self._by_name: dict[tuple[str, str], OptionDef] = {}
        for d in custom:
            where = f"option-def '{d.space}.{d.name}' (code {d.code})"
            if (d.space, d.code) in self._by_code or (d.space, d.name) in self._by_name:
                raise OptionError(f"{where}: defined twice")
            if _standard(d.space, d.code, None) or _standard(d.space, None, d.name):
                raise OptionError(f"{where}: a standard definition cannot be overridden")
            self._by_code[d.space, d.code] = d
            self._by_name[d.space, d.name] = d

    @property
    def custom(self) -> tuple[OptionDef, ...]:
        """The option-def definitions, in the order given."""
        return tuple(self._by_code.values())

    def find(self, space: str, code: int | None, name: str | None) -> OptionDef | None:
        """The definition of ``code`` (else ``name``) in ``space``, or None."""
        d = self._by_code.get((space, code)) if code is not None else None
        d = d or (self._by_name.get((space, name)) if code is None else None)
        d = d or _standard(space, code, name)
        if d is None and space == DHCP4:
            d = next((x for x in LAST_RESORT_V4 if _matches(x, code, name)), None)
        return d


def _matches(d: OptionDef, code: int | None, name: str | None) -> bool:
    return d.code == code if code is not None else d.name == name


def _standard(space: str, code: int | None, name: str | None) -> OptionDef | None:
    table: Sequence[OptionDef] = ()
    if space == DHCP4:
        table = STANDARD_V4
    elif space in (DOCSIS3_V4_SPACE, f"vendor-{CABLELABS_ENTERPRISE}"):
        table = DOCSIS3_V4
    return next((d for d in table if _matches(d, code, name)), None)


# -- option-def -------------------------------------------------------------------


def parse_option_def(entry: Mapping[str, object]) -> OptionDef:
    """One Kea `option-def` entry -> OptionDef, checked as Kea 2.2's OptionDefParser does."""
    label = f"option-def '{entry.get('name', entry.get('code', '?'))}'"
    _refuse_unknown(entry, OPTION_DEF_KEYS, label)
    name = _field(entry, "name", str, label)
    code = _field(entry, "code", int, label)
    type_ = _field(entry, "type", str, label)
    space = _field(entry, "space", str, label, DHCP4)
    array = _field(entry, "array", bool, label, False)
    encapsulate = _field(entry, "encapsulate", str, label, "")
    records = tuple(
        t for t in (x.strip() for x in _field(entry, "record-types", str, label, "").split(","))
        if t
    )  # fmt: skip
    label = f"option-def '{space}.{name}'"
    if not _NAME_RE.fullmatch(name):
        raise OptionError(f"{label}: invalid name (letters, digits, '-' and '_' only)")
    for what, s in (("space", space), ("encapsulate", encapsulate)):
        if s and not _NAME_RE.fullmatch(s):
            raise OptionError(f"{label}: invalid {what} name '{s}'")
    if not 0 <= code <= 255:
        raise OptionError(f"{label}: code {code} is not in 0..255")
    if space == DHCP4 and code in (0, 255):
        raise OptionError(f"{label}: code {code} is reserved for {'PAD' if code == 0 else 'END'}")
    if type_ not in TYPES or type_ == "internal":
        raise OptionError(f"{label}: unknown type '{type_}'")
    if encapsulate and array:
        raise OptionError(f"{label}: an array cannot encapsulate an option space")
    if encapsulate == space:
        raise OptionError(f"{label}: cannot encapsulate its own space '{space}'")
    if records and type_ != "record":
        raise OptionError(f"{label}: record-types need type 'record', not '{type_}'")
    if type_ == "record":
        _check_record(label, records, array)
    elif array and type_ in ("string", "binary", "empty"):
        raise OptionError(f"{label}: an array of {type_} is not a valid definition")
    return OptionDef(name, code, type_, array, records, space, encapsulate)


def _check_record(label: str, records: tuple[str, ...], array: bool) -> None:
    if len(records) < 2:
        raise OptionError(f"{label}: a record needs at least 2 record-types")
    for i, t in enumerate(records):
        if t not in TYPES or t in ("record", "empty", "internal"):
            raise OptionError(f"{label}: invalid record type '{t}'")
        if t in ("string", "binary") and i < len(records) - 1:
            raise OptionError(f"{label}: a {t} field must be the last of the record")
    if array and records[-1] in ("string", "binary"):
        raise OptionError(f"{label}: an array record cannot end with a {records[-1]}")


def load_option_defs(entries: Sequence[Mapping[str, object]]) -> OptionDefs:
    """A configuration's `option-def` list -> OptionDefs (duplicates and overrides refused)."""
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise OptionError("option-def must be a list")
    return OptionDefs(parse_option_def(_mapping(e, "option-def entry")) for e in entries)


# -- option-data --------------------------------------------------------------------


def encode(
    entry: Mapping[str, object],
    defs: OptionDefs,
    level: Sequence[Mapping[str, object]] = (),
) -> tuple[int, bytes]:
    """One Kea `option-data` entry -> (code, payload bytes), as Kea 2.2 sends it.

    ``level`` is the whole option-data list of the same configuration level (global,
    subnet, class...): an option whose definition encapsulates a space gets that space's
    entries as sub-options, as Kea's CfgOption::encapsulate does (sub-options given in
    the data win, then all are ordered by code, as Kea packs them). vivso-suboptions
    (125) gets the always-send entries of space `vendor-<enterprise>`; the ones a DOCSIS
    client names in its own ORO are added at reply time by the server.
    """
    return _encode(_mapping(entry, "option-data entry"), defs, level, ())


def _encode(
    entry: Mapping[str, object],
    defs: OptionDefs,
    level: Sequence[Mapping[str, object]],
    seen: tuple[str, ...],
) -> tuple[int, bytes]:
    label = _label(entry)
    _refuse_unknown(entry, OPTION_DATA_KEYS, label)
    name = _field(entry, "name", str, label, None)
    code = _field(entry, "code", int, label, None)
    data = _field(entry, "data", str, label, "")
    space = _field(entry, "space", str, label, DHCP4)
    csv = _field(entry, "csv-format", bool, label, None)
    _field(entry, "always-send", bool, label, False)
    if name is None and code is None:
        raise OptionError(f"{label}: needs a 'name' or a 'code'")
    if name is not None and " " in name:
        raise OptionError(f"{label}: an option name has no spaces")
    if not _NAME_RE.fullmatch(space) or space == "dhcp6":
        raise OptionError(f"{label}: invalid option space '{space}'")
    if code is not None and not 0 <= code <= 255:
        raise OptionError(f"{label}: code {code} is not in 0..255")
    if space == DHCP4 and code in (0, 255):
        raise OptionError(f"{label}: code {code} is reserved for {'PAD' if code == 0 else 'END'}")
    d = defs.find(space, code, name)
    try:
        if d is None:
            if code is None:
                raise _BadValue(f"no definition of '{space}.{name}' (add an option-def)")
            if space == DHCP4 and code in SITE_SPECIFIC:
                raise _BadValue(f"site-specific code {code} needs an option-def")
            if csv:
                raise _BadValue(f"csv-format needs a definition of code {code}")
            return code, _binary_data(data)
        if name is not None and name != d.name:
            raise _BadValue(f"code {d.code} in '{space}' is named '{d.name}'")
        label = f"option '{space}.{d.name}' (code {d.code})"
        payload = _text_payload(d, data) if csv is not False else _binary_data(data)
        head, subs = _split(d, payload, csv is not False)
        if d.space == DHCP4 and d.code == DOMAIN_SEARCH and csv is not False:
            head = compress_names(head)
        if d.encapsulate or (d.space == DHCP4 and d.code == 125):
            head += _with_suboptions(d, head, subs, defs, level, (*seen, space))
        return d.code, head
    except _BadValue as e:
        raise OptionError(f"{label}: {e}") from None


class _BadValue(ValueError):
    """A fault in an option's value; _encode prefixes the option's label."""


def _label(entry: Mapping[str, object]) -> str:
    space = entry.get("space", DHCP4)
    if "name" in entry:
        return f"option '{space}.{entry['name']}'"
    return f"option code {entry.get('code', '?')} in '{space}'"


def _with_suboptions(
    d: OptionDef,
    head: bytes,
    given: bytes,
    defs: OptionDefs,
    level: Sequence[Mapping[str, object]],
    seen: tuple[str, ...],
) -> bytes:
    """The sub-option part Kea packs after the option's own fields."""
    vendor = d.space == DHCP4 and d.code == 125
    space = f"vendor-{int.from_bytes(head, 'big')}" if vendor else d.encapsulate
    if space in seen:
        raise _BadValue(f"option spaces encapsulate each other ({space})")
    subs: dict[int, bytes] = {}
    for code, value in _tlvs(given):
        subs.setdefault(code, value)
    for e in level:
        e = _mapping(e, "option-data entry")
        if e.get("space", DHCP4) != space or (vendor and e.get("always-send") is not True):
            continue
        code, value = _encode(e, defs, level, seen)
        subs.setdefault(code, value)
    body = b"".join(_tlv(c, v) for c, v in sorted(subs.items()))
    if vendor:  # RFC 3925 §4: enterprise-number, data-len, sub-options
        if len(body) > 255:
            raise _BadValue(f"the vendor sub-options take {len(body)} bytes, over 255")
        return bytes([len(body)]) + body
    return body


def _tlv(code: int, value: bytes) -> bytes:
    if len(value) > 255:
        raise _BadValue(f"sub-option {code} is {len(value)} bytes, over 255")
    return bytes([code, len(value)]) + value


def _tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """Sub-option TLVs given in hex data (no PAD/END inside an encapsulated space)."""
    out, i = [], 0
    while i < len(data):
        if i + 2 > len(data) or i + 2 + data[i + 1] > len(data):
            raise _BadValue(f"sub-option at byte {i} of the data is truncated")
        out.append((data[i], data[i + 2 : i + 2 + data[i + 1]]))
        i += 2 + data[i + 1]
    return out


# -- text (csv-format) ----------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    """Kea's str::tokens(text, ",", escape=true): `\\,` keeps a comma, empty tokens dropped."""
    out: list[str] = []
    token: list[str] = []
    escaped = False
    for c in text:
        if c == "," and not escaped:
            if token:
                out.append("".join(token))
            token = []
        elif c == "\\" and not escaped:
            escaped = True
        else:
            if escaped and c not in ",\\":
                token.append("\\")
            token.append(c)
            escaped = False
    if escaped:
        token.append("\\")
    if token:
        out.append("".join(token))
    return [t.strip(" \t\n") for t in out]


def _text_payload(d: OptionDef, data: str) -> bytes:
    """The bytes of a csv-format `data` for definition ``d`` (OptionDefinition::optionFactory).

    Stricter than Kea 2.2, which ignores values past the ones a definition takes (a
    comma in a domain-name silently cuts it): extra values are refused here.
    """
    if d.type == "internal":
        return _static_routes(data)
    values = _tokens(data)
    if d.type == "record":
        fields = list(d.record_types)
        if len(values) < len(fields):
            raise _BadValue(f"takes {len(fields)} values ({', '.join(fields)}), got {len(values)}")
        if len(values) > len(fields) and not d.array:
            raise _BadValue(f"takes {len(fields)} values, got {len(values)}")
        fields += [fields[-1]] * (len(values) - len(fields))
        return b"".join(_value(t, v) for t, v in zip(fields, values, strict=True))
    if d.type == "empty":
        if values:
            raise _BadValue("takes no data")
        return b""
    if not values:
        raise _BadValue(f"needs a {d.type} value")
    if len(values) > 1 and not d.array:
        raise _BadValue(f"takes one {d.type} value, got {len(values)} (write a comma as \\,)")
    return b"".join(_value(d.type, v) for v in values)


def _value(type_: str, text: str) -> bytes:
    """One value in Kea's text form -> bytes (OptionDefinition::writeToBuffer)."""
    if type_ in _INT_RANGE:
        low, high = _INT_RANGE[type_]
        n = _integer(text)
        if not low <= n <= high:
            raise _BadValue(f"{text!r} is out of the {type_} range {low}..{high}")
        return n.to_bytes(_FIXED[type_], "big", signed=type_.startswith("int"))
    if type_ == "boolean":
        return bytes([_boolean(text)])
    if type_ == "ipv4-address":
        return _address(ipaddress.IPv4Address, text, "IPv4").packed
    if type_ == "ipv6-address":
        return _address(ipaddress.IPv6Address, text, "IPv6").packed
    if type_ == "ipv6-prefix":
        return _ipv6_prefix(text)
    if type_ == "psid":
        return _psid(text)
    if type_ == "string":
        return text.encode()
    if type_ == "fqdn":
        return fqdn_wire(text)
    if type_ == "tuple":
        raw = text.encode()
        if len(raw) > 255:
            raise _BadValue(f"tuple {text[:20]!r}... is {len(raw)} bytes, over 255")
        return bytes([len(raw)]) + raw
    if type_ == "binary":
        return _hex(text)
    raise _BadValue(f"a value of type {type_} cannot be written")


_DECIMAL_RE = re.compile(r"[+-]?[0-9]+")
_HEX_RE = re.compile(r"([+-]?)(?:0[xX])?([0-9a-fA-F]+)")


def _integer(text: str) -> int:
    """Kea's lexicalCastWithRangeCheck: decimal, else hexadecimal ("0x1F" and "1F")."""
    if _DECIMAL_RE.fullmatch(text):
        return int(text)
    m = _HEX_RE.fullmatch(text)
    if not m:
        raise _BadValue(f"{text!r} is not an integer")
    return int(m.group(1) + m.group(2), 16)


def _boolean(text: str) -> int:
    """Kea's convertToBool: true/false in any case, or the integers 1 and 0."""
    if text.lower() in ("true", "false"):
        return int(text.lower() == "true")
    if _DECIMAL_RE.fullmatch(text) and int(text) in (0, 1):
        return int(text)
    raise _BadValue(f"{text!r} is not a boolean (true, false, 1 or 0)")


def _address(cls: type, text: str, family: str) -> Any:
    try:
        return cls(text)
    except ValueError:
        raise _BadValue(f"{text!r} is not an {family} address") from None


def _split_slash(text: str, what: str) -> tuple[str, str]:
    text = text.replace(" ", "").replace("\t", "")
    if "/" not in text:
        raise _BadValue(f"{what} {text!r} is not in the form A/B")
    left, right = text.split("/", 1)
    return left, right


def _ipv6_prefix(text: str) -> bytes:
    """ "2001:db8::/32" -> length byte and the prefix's significant octets (writePrefix)."""
    addr, length_text = _split_slash(text, "IPv6 prefix")
    length = _integer(length_text)
    if not 0 <= length <= 128:
        raise _BadValue(f"IPv6 prefix length {length} is not in 0..128")
    packed = bytearray(_address(ipaddress.IPv6Address, addr, "IPv6").packed[: (length + 7) // 8])
    if length % 8:
        packed[-1] &= (0xFF << (8 - length % 8)) & 0xFF
    return bytes([length]) + bytes(packed)


def _psid(text: str) -> bytes:
    """ "PSID/LEN" -> LEN byte and the PSID left-aligned in 16 bits (RFC 7597, writePsid)."""
    psid_text, len_text = _split_slash(text, "PSID")
    psid, length = _integer(psid_text), _integer(len_text)
    if not 0 <= length <= 16:
        raise _BadValue(f"PSID length {length} is not in 0..16")
    if not 0 <= psid <= 0xFFFF or (length and psid >= 1 << length):
        raise _BadValue(f"PSID {psid} does not fit in {length} bits")
    return bytes([length]) + ((psid << (16 - length)) & 0xFFFF).to_bytes(2, "big")


def fqdn_wire(name: str) -> bytes:
    """A domain name in text -> DNS wire format, uncompressed, with its root label.

    As Kea's isc::dns::Name: case kept, a trailing dot optional, "." or "@" is the root,
    `\\.` and `\\DDD` escapes, labels of at most 63 bytes, at most 255 bytes in all.
    """
    if name in (".", "@"):
        return b"\x00"
    if not name:
        raise _BadValue("an empty domain name")
    labels: list[bytes] = []
    label = bytearray()
    raw = name.encode()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == ord("."):
            if not label:
                raise _BadValue(f"empty label in domain name {name!r}")
            labels.append(bytes(label))
            label = bytearray()
            i += 1
            continue
        if c == ord("\\"):
            digits = raw[i + 1 : i + 4]
            if digits[:1].isdigit():
                if len(digits) < 3 or not digits.isdigit() or int(digits) > 255:
                    raise _BadValue(f"bad \\DDD escape in domain name {name!r}")
                label.append(int(digits))
                i += 4
                continue
            if i + 1 >= len(raw):
                raise _BadValue(f"domain name {name!r} ends with a backslash")
            c = raw[i + 1]
            i += 1
        label.append(c)
        i += 1
        if len(label) > 63:
            raise _BadValue(f"a label of domain name {name!r} is over 63 bytes")
    if label:
        labels.append(bytes(label))
    wire = b"".join(bytes([len(x)]) + x for x in labels) + b"\x00"
    if len(wire) > 255:
        raise _BadValue(f"domain name {name[:30]!r}... is over 255 bytes")
    return wire


def _static_routes(text: str) -> bytes:
    """Kea's classless-static-route text ("10.0.0.0/8 - 10.2.3.1, ...") -> RFC 3442 bytes.

    Destination octets are sent as written (Kea does not clear host bits either).
    """
    out = bytearray()
    for route in (r.strip() for r in text.split(",")):
        if not route:
            continue
        parts = [p.strip() for p in route.split("-") if p.strip()]
        if len(parts) != 2:
            raise _BadValue(f"route {route!r} is not in the form 10.229.0.128/25 - 10.229.0.1")
        dest, width_text = _split_slash(parts[0], "destination")
        if not _DECIMAL_RE.fullmatch(width_text) or not 0 <= int(width_text) <= 32:
            raise _BadValue(f"route {route!r}: prefix length is not in 0..32")
        width = int(width_text)
        out.append(width)
        out += _address(ipaddress.IPv4Address, dest, "IPv4").packed[: (width + 7) // 8]
        out += _address(ipaddress.IPv4Address, parts[1], "IPv4").packed
    if not out:
        raise _BadValue("needs at least one route")
    return bytes(out)


# -- hex data (csv-format false) and the wire layout ----------------------------------


def _hex(text: str) -> bytes:
    """Kea's decodeHex: hex digits, white space anywhere ignored, an even count."""
    digits = "".join(text.split())
    if len(digits) % 2 or not re.fullmatch(r"[0-9a-fA-F]*", digits):
        raise _BadValue(f"{text!r} is not an even number of hex digits")
    return bytes.fromhex(digits)


def _binary_data(text: str) -> bytes:
    """csv-format false data as Kea reads it: 'quoted text', or hex as "0a:0b", "0a 0b",
    "0x0a0b" or "0a0b" (decodeFormattedHexString; an odd digit count gets a leading 0)."""
    stripped = text.strip(" \t\n")
    if len(stripped) > 1 and stripped[0] == stripped[-1] == "'":
        inner = stripped[1:-1].strip(" \t\n")
        if inner:
            return inner.encode()
    for sep in (":", " "):
        if sep in text:
            parts = text.split(sep)
            if any(not p for p in parts) and len(parts) > 1:
                raise _BadValue(f"two separators in a row in hex data {text!r}")
            if any(len(p) > 2 or not re.fullmatch(r"[0-9a-fA-F]+", p) for p in parts):
                raise _BadValue(f"{text!r} is not hex octets separated by {sep!r}")
            return bytes(int(p, 16) for p in parts)
    digits = text[2:] if len(text) > 2 and text.startswith("0x") else text
    return _hex(("0" if len(text) % 2 else "") + digits)


def _split(d: OptionDef, payload: bytes, from_text: bool) -> tuple[bytes, bytes]:
    """(the option's own fields, sub-option bytes given in the data), checked like Kea's
    option classes check what they unpack; some are normalised as Kea's pack does."""
    if d.space == DHCP4 and d.code == 125:  # OptionVendor: enterprise, data-len, options
        if len(payload) < 4:
            raise _BadValue("needs a 4-byte enterprise number")
        rest = payload[4:]
        if rest and rest[0] != len(rest) - 1:
            raise _BadValue("data-len does not match the sub-options that follow it")
        return payload[:4], rest[1:]
    if d.type == "internal":
        return (payload if from_text else _check_static_routes(payload)), b""
    fields = [] if d.type == "empty" else list(d.record_types) or [d.type]
    pos = 0
    out = bytearray()
    for i, t in enumerate(fields):
        last = i == len(fields) - 1
        pos = _field_end(t, payload, pos, out)
        while last and d.array and pos < len(payload):
            pos = _field_end(t, payload, pos, out)
    rest = payload[pos:]
    if rest and not d.encapsulate:
        raise _BadValue(f"{len(rest)} bytes left after the {d.type} value")
    if d.type == "string" and not out.rstrip(b"\x00"):
        raise _BadValue("a string option cannot be empty")
    if d.type == "string":  # OptionString drops trailing NULs
        out = bytearray(out.rstrip(b"\x00"))
    if d.space == DHCP4 and d.code == 124:
        out = bytearray(_vivco(bytes(out)))
    return bytes(out), rest


def _field_end(t: str, data: bytes, pos: int, out: bytearray) -> int:
    """Check one field of type ``t`` at ``pos``, append it to ``out``; the next position."""
    if t in _FIXED:
        end = pos + _FIXED[t]
        if end > len(data):
            raise _BadValue(f"data ends inside a {t} field")
        if t == "boolean" and data[pos] > 1:
            raise _BadValue(f"boolean byte {data[pos]} is not 0 or 1")
    elif t in ("string", "binary"):
        end = len(data)
    elif t == "tuple":
        if pos >= len(data) or pos + 1 + data[pos] > len(data):
            raise _BadValue("data ends inside a tuple")
        end = pos + 1 + data[pos]
    elif t == "ipv6-prefix":
        if pos >= len(data) or data[pos] > 128 or pos + 1 + (data[pos] + 7) // 8 > len(data):
            raise _BadValue("bad or truncated ipv6-prefix field")
        end = pos + 1 + (data[pos] + 7) // 8
    elif t == "fqdn":
        name, end = _read_name(data, pos)
        out += name
        return end
    else:
        raise _BadValue(f"a {t} field cannot be read")
    out += data[pos:end]
    return end


def compress_names(wire: bytes) -> bytes:
    """Uncompressed wire-format names, one after another -> RFC 1035 §4.1.4 compressed,
    as RFC 3397 asks of domain-search: a suffix already written becomes a pointer to it
    (offsets count from the start of the option's data, all instances joined)."""
    out = bytearray()
    written: dict[bytes, int] = {}  # a name's suffix (its wire form) -> where it starts
    pos = 0
    while pos < len(wire):
        labels = []
        while wire[pos]:
            labels.append(wire[pos : pos + 1 + wire[pos]])
            pos += 1 + wire[pos]
        pos += 1
        for i in range(len(labels)):
            suffix = b"".join(labels[i:]) + b"\x00"
            at = written.get(suffix)
            if at is not None:
                out += bytes((0xC0 | at >> 8, at & 0xFF))
                break
            if len(out) < 0x4000:
                written[suffix] = len(out)
            out += labels[i]
        else:
            out += b"\x00"
    return bytes(out)


def uncompressed_names(data: bytes) -> bytes:
    """The names of a (possibly compressed) list, uncompressed (OptionError if malformed)."""
    out, pos = bytearray(), 0
    try:
        while pos < len(data):
            name, pos = _read_name(data, pos)
            out += name
    except _BadValue as e:
        raise OptionError(str(e)) from None
    return bytes(out)


def _read_name(data: bytes, pos: int) -> tuple[bytes, int]:
    """A wire-format name at ``pos`` (compression pointers followed, as Kea's
    factoryFqdnList reads them) -> (the name uncompressed, the position after it)."""
    out = bytearray()
    end = None
    hops = 0
    while True:
        if pos >= len(data):
            raise _BadValue("data ends inside a domain name")
        n = data[pos]
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(data) or hops > 127:
                raise _BadValue("bad compression pointer in a domain name")
            end = pos + 2 if end is None else end
            pos, hops = ((n & 0x3F) << 8) | data[pos + 1], hops + 1
            continue
        if n > 63:
            raise _BadValue(f"bad label length {n} in a domain name")
        out += data[pos : pos + 1 + n]
        if len(out) > 255 or pos + 1 + n > len(data):
            raise _BadValue("domain name too long or truncated")
        pos += 1 + n
        if n == 0:
            return bytes(out), (pos if end is None else end)


def _vivco(payload: bytes) -> bytes:
    """V-I vendor class (124) as Kea's OptionVendorClass packs it: the enterprise number
    before every length-prefixed class-data tuple (the first one's, for each)."""
    if len(payload) < 5:
        raise _BadValue("needs an enterprise number and a class-data length")
    out = bytearray(payload[:4])
    i = 4
    while i < len(payload):
        if i + 1 + payload[i] > len(payload):
            raise _BadValue("class-data length runs past the data")
        if len(out) > 4:
            out += payload[:4]
        out += payload[i : i + 1 + payload[i]]
        i += 1 + payload[i]
        if i < len(payload):
            i += 4
            if i + 1 > len(payload):
                raise _BadValue("truncated: an enterprise number with no class data")
    return bytes(out)


def _check_static_routes(data: bytes) -> bytes:
    i = 0
    while i < len(data):
        width = data[i]
        if width > 32 or i + 1 + (width + 7) // 8 + 4 > len(data):
            raise _BadValue(f"bad or truncated route at byte {i}")
        i += 1 + (width + 7) // 8 + 4
    if not data:
        raise _BadValue("needs at least one route")
    return data


# -- reply order -----------------------------------------------------------------------


def order(requested: bytes, available: Mapping[int, bytes], always: set[int]) -> list[int]:
    """The codes to send: the client's parameter request list order (first mention
    wins), the subnet mask moved just before the router (RFC 2132 §3.3: "the subnet
    mask option MUST be specified before the router option"), then the ``always`` codes
    (always-send, BASIC_OPTIONS) in code order. Only codes in ``available``."""
    codes = list(dict.fromkeys(c for c in requested if c in available))
    codes += sorted(c for c in always if c in available and c not in codes)
    if 1 in codes and 3 in codes and codes.index(1) > codes.index(3):
        codes.remove(1)  # an unasked mask too: "MUST be first" holds for the reply
        codes.insert(codes.index(3), 1)
    return codes


# -- entry checks ------------------------------------------------------------------------


def _mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise OptionError(f"{what} must be an object, not {type(value).__name__}")
    return value


def _refuse_unknown(entry: Mapping[str, object], known: frozenset[str], label: str) -> None:
    unknown = sorted(str(k) for k in entry if k not in known)
    if unknown:
        raise OptionError(f"{label}: unknown key {', '.join(repr(k) for k in unknown)}")


_JSON_TYPE = {str: "a string", int: "an integer", bool: "true or false"}


def _field(entry: Mapping[str, object], key: str, cls: type, label: str, *default: object) -> Any:
    """entry[key] checked to be of ``cls`` (bool is not an int here), else the default."""
    if key not in entry:
        if default:
            return default[0]
        raise OptionError(f"{label}: '{key}' is required")
    value = entry[key]
    if not isinstance(value, cls) or (cls is int and isinstance(value, bool)):
        raise OptionError(f"{label}: '{key}' must be {_JSON_TYPE[cls]}")
    return value
