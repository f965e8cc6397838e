"""optiondefs.encode against Kea 2.2, byte for byte: Kea's replies are the reference.

kea-dhcp4 serves the option-data of ISC's all-options.json (kea-doc, a corpus nobody
here wrote) plus this file's own definitions in dhcp4 (site-specific records, arrays,
encapsulation, hex and quoted data, vendor sub-options); a scapy DISCOVER asks for every
code, and each option's bytes in Kea's OFFER must equal optiondefs.encode of the same
entry. Entries Kea refuses must be refused by optiondefs too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etcdhcp import keajson, optiondefs

from .kea import Kea, base_config, probe
from .lab import Lab

ALL_OPTIONS = Path("/usr/share/doc/kea/examples/kea4/all-options.json")
MAC = "02:00:5e:00:01:01"
BATCH = 25  # codes per DISCOVER: keeps every OFFER under the 1500-byte MTU

EXTRA_DEFS: list[dict[str, Any]] = [
    {"name": "wpad", "code": 252, "type": "string"},
    {"name": "site-record", "code": 224, "type": "record",
     "record-types": "ipv4-address, psid, tuple, fqdn, string"},
    {"name": "site-fancy", "code": 254, "type": "record", "array": True,
     "record-types": "int8, int16, int32, uint8, uint16, uint32, ipv4-address, psid, tuple, fqdn"},
    {"name": "site-encap", "code": 232, "type": "empty", "encapsulate": "my-fancy-space"},
    {"name": "site-u32s", "code": 225, "type": "uint32", "array": True},
    {"name": "site-prefix", "code": 226, "type": "ipv6-prefix"},
    {"name": "site-int16", "code": 227, "type": "int16"},
    {"name": "site-hexint", "code": 228, "type": "uint8"},
    {"name": "site-bool", "code": 229, "type": "boolean"},
    {"name": "site-tuples", "code": 230, "type": "tuple", "array": True},
    {"name": "site-binary", "code": 231, "type": "binary"},
    {"name": "site-names", "code": 233, "type": "fqdn", "array": True},
    {"name": "site-ip-hex", "code": 234, "type": "ipv4-address", "array": True},
    {"name": "site-quoted", "code": 235, "type": "string"},
    {"name": "site-u16-encap", "code": 236, "type": "uint16", "encapsulate": "site-sub-space"},
    {"name": "site-escaped", "code": 237, "type": "string"},
    {"name": "vendor-ip", "code": 1, "type": "ipv4-address",
     "space": "vendor-encapsulated-options-space"},
    {"name": "vendor-text", "code": 2, "type": "string",
     "space": "vendor-encapsulated-options-space"},
]  # fmt: skip
EXTRA_DATA: list[dict[str, Any]] = [
    {"name": "wpad", "data": "http://wpad.example.org/wpad.dat"},
    {"name": "site-record", "data": "192.0.2.74, 3/4, 1, example.org, string"},
    {"name": "site-fancy",
     "data": "-128, -32768, -2147483648, 0, 0, 0, 192.0.2.75, 0/0, a, Example.ORG., example.net"},
    {"name": "site-encap"},  # gets my-fancy-space's 1, 224 and 254 as sub-options
    {"name": "site-u32s", "data": "0, 4294967295, 0x10"},
    {"name": "site-prefix", "data": "2001:db8:ffff::/35"},
    {"name": "site-int16", "data": "-5"},
    {"name": "site-hexint", "data": "1F"},
    {"name": "site-bool", "data": "FALSE"},
    {"name": "site-tuples", "data": "a, bc, d\\,e"},
    {"name": "site-binary", "data": "01:02:0a:ff", "csv-format": False},
    # example.com, then www + a compression pointer to it: Kea sends it uncompressed
    {"name": "site-names", "data": "076578616d706c6503636f6d0003777777c000", "csv-format": False},
    {"name": "site-ip-hex", "data": "C6:12:00:05:C6:12:00:06", "csv-format": False},
    {"name": "site-quoted", "data": "'quoted text'", "csv-format": False},
    {"name": "site-u16-encap", "data": "513"},
    {"code": 5, "space": "site-sub-space", "data": "0102", "csv-format": False},
    {"name": "site-escaped", "data": "a\\,b\\\\c"},
    {"name": "vendor-ip", "space": "vendor-encapsulated-options-space", "data": "192.0.2.9"},
    {"name": "vendor-text", "space": "vendor-encapsulated-options-space", "data": "phone cfg"},
    {"name": "tftp-servers", "space": "vendor-4491", "data": "192.0.2.76", "always-send": True},
    {"code": 150, "data": "C6 12 00 05", "csv-format": False},  # no definition: raw bytes
    {"name": "authenticate", "data": "0x102030405", "csv-format": False},
    {"name": "client-last-transaction-time", "data": "86400"},
    {"name": "associated-ip", "data": "c0000201C0000202", "csv-format": False},
]  # fmt: skip

# Entries Kea 2.2 refuses (kea-dhcp4 -t); optiondefs must refuse each of them too.
REFUSED: list[dict[str, Any]] = [
    {"name": "default-ip-ttl", "data": "256"},
    {"name": "ip-forwarding", "data": "2"},
    {"name": "routers", "data": "192.0.2.1, 192.0.2"},
    {"name": "domain-search", "data": "a..example.org"},
    {"name": "no-such-option", "data": "1"},
    {"code": 3, "name": "domain-name", "data": "192.0.2.1"},
    {"name": "client-ndi", "data": "0, 1"},
    {"code": 200, "data": "01", "csv-format": True},
    {"name": "interface-mtu", "data": "1500", "colour": "red"},
    {"name": "time-offset", "data": "2147483648"},
    {"name": "boot-size", "data": "zz"},
    {"name": "nwip-suboptions", "data": "0g", "csv-format": False},
    {"name": "vivco-suboptions", "data": "4491, 05 01"},
]


def _kea_config(lab: Lab) -> dict[str, Any]:
    source = keajson.load(ALL_OPTIONS)["Dhcp4"]
    config = base_config(lab.workdir / "kea")
    config["Dhcp4"]["option-def"] = source["option-def"] + EXTRA_DEFS
    config["Dhcp4"]["option-data"] = source["option-data"] + EXTRA_DATA
    return config


def _as_kea_sends(code: int, payload: bytes) -> bytes:
    """Kept difference: domain-search (119) is sent compressed (RFC 3397, as the issue
    asks), Kea 2.2 sends it uncompressed; the names must be the same."""
    return optiondefs.uncompressed_names(payload) if code == optiondefs.DOMAIN_SEARCH else payload


def test_every_option_is_encoded_as_kea_sends_it(lab: Lab) -> None:
    config = _kea_config(lab)
    level = config["Dhcp4"]["option-data"]
    defs = optiondefs.load_option_defs(config["Dhcp4"]["option-def"])
    ours: dict[int, tuple[str, bytes]] = {}
    for entry in level:
        if entry.get("space", "dhcp4") == "dhcp4":
            code, payload = optiondefs.encode(entry, defs, level)
            ours[code] = (str(entry.get("name", code)), payload)
    assert len(ours) == 120  # all-options.json: 100 dhcp4 entries; this file: 20

    kea = Kea(lab, config).start()
    client = lab.add_client("probe")
    codes = sorted(ours)
    theirs: dict[int, bytes] = {}
    for i in range(0, len(codes), BATCH):
        reply = probe(client, MAC, codes[i : i + BATCH])
        assert reply["type"] == 2, reply  # OFFER
        theirs.update({c: v for c, v in reply["options"].items() if c in codes[i : i + BATCH]})
    assert kea.stop() == 0, kea.log()[-2000:]

    missing = [f"{c} {ours[c][0]}" for c in codes if c not in theirs]
    differ = [
        f"{c} {name}: kea {theirs[c].hex()} ours {mine.hex()}"
        for c, (name, mine) in ours.items()
        if c in theirs and theirs[c] != _as_kea_sends(c, mine)
    ]
    assert not missing, f"Kea did not send: {missing}"
    assert not differ, "\n".join(differ)


def test_what_kea_refuses_is_refused(lab: Lab) -> None:
    kea_accepts, we_accept = [], []
    for k, entry in enumerate(REFUSED):
        config = base_config(lab.workdir / "kea")
        config["Dhcp4"]["option-data"] = [entry]
        if not Kea(lab, config, name=f"kea-check-{k}").check():
            kea_accepts.append(entry)
        try:
            optiondefs.encode(entry, optiondefs.OptionDefs(), [entry])
            we_accept.append(entry)
        except optiondefs.OptionError as e:
            assert "\n" not in str(e) and str(e).startswith("option "), e
    assert not kea_accepts, f"Kea accepts {kea_accepts}"
    assert not we_accept, f"optiondefs accepts {we_accept}"
