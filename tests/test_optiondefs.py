"""optiondefs: Kea 2.2's option definitions and option-data -> wire bytes.

Byte-for-byte agreement with a running kea-dhcp4 is in
tests/integration/test_kea_options.py; these are the rules case by case.
"""

from __future__ import annotations

from typing import Any

import pytest

from etcdhcp import optiondefs as o
from etcdhcp.optiondefs import OptionDef, OptionError

STD = o.OptionDefs()


def enc(data: str | None = None, defs: o.OptionDefs = STD, level: Any = (), **kw: Any) -> bytes:
    entry = {k.replace("_", "-"): v for k, v in kw.items()}
    if data is not None:
        entry["data"] = data
    return o.encode(entry, defs, level)[1]


def refused(match: str, defs: o.OptionDefs = STD, level: Any = (), **kw: Any) -> str:
    with pytest.raises(OptionError, match=match) as e:
        enc(defs=defs, level=level, **kw)
    assert "\n" not in str(e.value)
    assert str(e.value).startswith(("option ", "option-def "))
    return str(e.value)


# ---- the table ---------------------------------------------------------------------


def test_the_standard_table_is_kea_2_2s() -> None:
    codes = [d.code for d in o.STANDARD_V4]
    names = [d.name for d in o.STANDARD_V4]
    assert len(codes) == len(set(codes)) == 113  # std_option_defs.h of Kea-2.2.0
    assert len(names) == len(set(names))
    assert all(d.type in o.TYPES and d.space == "dhcp4" for d in o.STANDARD_V4)
    by_code = {d.code: d for d in o.STANDARD_V4}
    assert by_code[119] == OptionDef("domain-search", 119, "fqdn", True)
    assert by_code[93] == OptionDef("client-system", 93, "uint16", True)
    assert by_code[77].type == by_code[61].type == "binary"
    assert by_code[114].name == "v4-captive-portal"
    assert by_code[118] == OptionDef("subnet-selection", 118, "ipv4-address")
    assert (by_code[66].name, by_code[67].name) == ("tftp-server-name", "boot-file-name")
    assert by_code[82].encapsulate == "dhcp-agent-options-space"
    assert 43 not in by_code and 121 not in by_code  # last resort: option-def may define them
    assert {d.code for d in o.LAST_RESORT_V4} == {43, 121}


def test_lookup_by_code_and_by_name() -> None:
    assert STD.find("dhcp4", 6, None).name == "domain-name-servers"
    assert STD.find("dhcp4", None, "ntp-servers").code == 42
    assert STD.find("dhcp4", 43, None).encapsulate == "vendor-encapsulated-options-space"
    assert STD.find("vendor-4491", 2, None).name == "tftp-servers"
    assert STD.find("dhcp4", 224, None) is None
    assert STD.find("my-space", 1, None) is None


def test_basic_options_are_kea_appendbasicoptions() -> None:
    assert frozenset({3, 6, 15, 54}) == o.BASIC_OPTIONS


# ---- values by type ------------------------------------------------------------------


def test_address_arrays_and_single_addresses() -> None:
    assert enc("192.0.2.1, 192.0.2.2", name="routers") == bytes([192, 0, 2, 1, 192, 0, 2, 2])
    assert enc("198.18.0.0", code=118) == bytes([198, 18, 0, 0])
    refused("'192.0.2' is not an IPv4 address", name="routers", data="192.0.2.1, 192.0.2")
    refused("is not an IPv4 address", name="subnet-mask", data="2001:db8::1")
    refused("takes one ipv4-address value, got 2", name="swap-server", data="1.2.3.4,1.2.3.5")
    refused("needs a ipv4-address value", name="routers", data="")


@pytest.mark.parametrize(
    ("name", "text", "wire"),
    [
        ("default-ip-ttl", "255", b"\xff"),
        ("default-ip-ttl", "0x1F", b"\x1f"),
        ("default-ip-ttl", "1F", b"\x1f"),  # Kea falls back to hex
        ("default-ip-ttl", "+7", b"\x07"),
        ("interface-mtu", "1500", b"\x05\xdc"),
        ("time-offset", "-25200", b"\xff\xff\x9d\x90"),
        ("time-offset", "2147483647", b"\x7f\xff\xff\xff"),
        ("dhcp-lease-time", "4294967295", b"\xff\xff\xff\xff"),
        ("client-system", "0, 7, 9", b"\x00\x00\x00\x07\x00\x09"),
        ("path-mtu-plateau-table", "68, 0x5dc", b"\x00\x44\x05\xdc"),
    ],
)
def test_integers(name: str, text: str, wire: bytes) -> None:
    assert enc(text, name=name) == wire


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("default-ip-ttl", "256", "out of the uint8 range 0..255"),
        ("default-ip-ttl", "-1", "out of the uint8 range"),
        ("interface-mtu", "65536", "out of the uint16 range"),
        ("time-offset", "2147483648", "out of the int32 range"),
        ("dhcp-lease-time", "4294967296", "out of the uint32 range"),
        ("default-ip-ttl", "ten", "'ten' is not an integer"),
        ("default-ip-ttl", "1.5", "is not an integer"),
    ],
)
def test_integer_errors(name: str, text: str, match: str) -> None:
    refused(match, name=name, data=text)


@pytest.mark.parametrize(
    ("text", "wire"), [("true", 1), ("TRUE", 1), ("False", 0), ("1", 1), ("0", 0)]
)
def test_booleans(text: str, wire: int) -> None:
    assert enc(text, name="ip-forwarding") == bytes([wire])


@pytest.mark.parametrize("text", ["yes", "2", "-1", "on"])
def test_boolean_errors(text: str) -> None:
    refused("is not a boolean", name="ip-forwarding", data=text)


def test_strings() -> None:
    assert enc("example.org", name="domain-name") == b"example.org"
    assert enc("  padded  ", name="host-name") == b"padded"  # values are trimmed
    assert enc("a\\,b", name="domain-name") == b"a,b"  # Kea's escaped comma
    assert enc("ü", name="domain-name") == "ü".encode()
    assert enc("'quoted text'", name="root-path", csv_format=False) == b"quoted text"
    assert enc("41420000", name="root-path", csv_format=False) == b"AB"  # NULs trimmed
    refused("takes one string value, got 2", name="domain-name", data="a.org, b.org")
    refused("needs a string value", name="domain-name", data="")
    refused("cannot be empty", name="domain-name", data="0000", csv_format=False)


def test_binary_hex_forms_as_kea_accepts_them() -> None:
    want = b"\x01\x02\x0a\xff"
    for text in ("01:02:0a:ff", "01 02 0a ff", "0x01020aff", "01020AFF", "1:2:a:ff"):
        assert enc(text, name="user-class", csv_format=False) == want, text
    assert enc("0x102", name="user-class", csv_format=False) == b"\x01\x02"  # odd: leading 0
    assert enc("01 02 0A FF", name="user-class") == want  # csv-format: white space ignored
    refused("two separators in a row", name="user-class", data="01::02", csv_format=False)
    refused("is not hex octets", name="user-class", data="012:03", csv_format=False)
    refused("is not an even number of hex digits", name="user-class", data="0g")
    refused("is not an even number of hex digits", name="user-class", data="012")


def test_fqdn_wire_format() -> None:
    wire = b"\x07example\x03org\x00"
    assert o.fqdn_wire("example.org") == wire
    assert o.fqdn_wire("example.org.") == wire
    assert o.fqdn_wire("Example.ORG") == b"\x07Example\x03ORG\x00"  # case kept, as Kea
    assert o.fqdn_wire(".") == o.fqdn_wire("@") == b"\x00"
    assert o.fqdn_wire("a\\.b.org") == b"\x03a.b\x03org\x00"
    assert o.fqdn_wire("\\065b.org") == b"\x02Ab\x03org\x00"
    assert enc("lost.example.org", name="v4-lost") == b"\x04lost" + wire


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a..org", "empty label"),
        (".org", "empty label"),
        ("a" * 64 + ".org", "over 63 bytes"),
        (".".join(["a" * 60] * 5), "over 255 bytes"),
        ("a\\2.org", "bad \\\\DDD escape"),
        ("a\\999.org", "bad \\\\DDD escape"),
        ("org\\", "ends with a backslash"),
    ],
)
def test_fqdn_errors(text: str, match: str) -> None:
    refused(match, name="v4-lost", data=text)


def test_domain_search_is_compressed_as_rfc_3397_shows() -> None:
    # RFC 3397 §3's example list, byte for byte. Kea 2.2 sends the names uncompressed
    # (a difference kept: the issue and the RFC ask for compression), and reads
    # compression pointers in hex data (factoryFqdnList), as optiondefs does.
    plain = b"\x03eng\x05apple\x03com\x00" + b"\x09marketing\x05apple\x03com\x00"
    compressed = b"\x03eng\x05apple\x03com\x00\x09marketing\xc0\x04"
    assert enc("eng.apple.com, marketing.apple.com", name="domain-search") == compressed
    assert o.uncompressed_names(compressed) == plain
    assert enc(compressed.hex(), name="domain-search", csv_format=False) == plain
    # A name repeated whole is one pointer; names sharing nothing stay whole.
    assert enc("a.org, a.org, b.net", name="domain-search") == (
        b"\x01a\x03org\x00\xc0\x00\x01b\x03net\x00"
    )
    refused("bad compression pointer", name="domain-search", data="03656e67c0", csv_format=False)
    refused("data ends inside a domain name", name="domain-search", data="03656e67",
            csv_format=False)  # fmt: skip
    refused("empty label", name="domain-search", data="a.org, b..org")


def test_tuples_psid_and_ipv6_prefixes_in_custom_definitions() -> None:
    defs = o.load_option_defs(
        [
            {"name": "t", "code": 225, "type": "tuple", "array": True},
            {"name": "p", "code": 226, "type": "psid"},
            {"name": "x", "code": 227, "type": "ipv6-prefix"},
        ]
    )
    assert enc("a, bc", defs, name="t") == b"\x01a\x02bc"
    assert enc("3/4", defs, name="p") == b"\x04\x30\x00"
    assert enc("0/0", defs, name="p") == b"\x00\x00\x00"
    assert enc("2001:db8:ffff::/35", defs, name="x") == bytes.fromhex("2320010db8e0")
    assert enc("::/0", defs, name="x") == b"\x00"
    refused("over 255", defs, name="t", data="a" * 256)
    refused("PSID 16 does not fit in 4 bits", defs, name="p", data="16/4")
    refused("PSID length 17", defs, name="p", data="1/17")
    refused("not in the form A/B", defs, name="p", data="3")
    refused("prefix length 129", defs, name="x", data="2001:db8::/129")


def test_records() -> None:
    assert enc("true, 192.0.2.59, 192.0.2.60", name="slp-directory-agent") == bytes.fromhex(
        "01c000023bc000023c"
    )  # an array record: its last field repeats
    assert enc("0, 1, 0", name="client-ndi") == b"\x00\x01\x00"
    assert enc("0, 0102", name="uuid-guid") == b"\x00\x01\x02"
    assert enc("2, 3/4", name="v4-portparams") == b"\x02\x04\x30\x00"
    refused("takes 3 values \\(uint8, uint8, uint8\\), got 2", name="client-ndi", data="0, 1")
    refused("takes 3 values, got 4", name="client-ndi", data="0, 1, 0, 1")


def test_vivco_packs_the_enterprise_number_before_every_class_data() -> None:
    assert enc("4491, 03 61 62 63", name="vivco-suboptions") == bytes.fromhex("0000118b03616263")
    two = enc("4491, 0161 00000009 0162", name="vivco-suboptions")
    assert two == bytes.fromhex("0000118b01610000118b0162")  # Kea writes the first's
    refused("class-data length runs past", name="vivco-suboptions", data="4491, 05 01")


# ---- classless static routes (121) ---------------------------------------------------


def test_classless_static_routes_rfc_3442_examples() -> None:
    text = (
        "0.0.0.0/0 - 198.18.0.1, 10.0.0.0/8 - 198.18.0.2, 10.17.0.0/16 - 198.18.0.3, "
        "10.27.129.0/24 - 198.18.0.4, 10.229.0.128/25 - 198.18.0.5, "
        "10.198.122.47/32 - 198.18.0.6"
    )
    gw = [bytes([198, 18, 0, k]) for k in range(1, 7)]
    want = (
        b"\x00" + gw[0] + b"\x08\x0a" + gw[1] + b"\x10\x0a\x11" + gw[2]
        + b"\x18\x0a\x1b\x81" + gw[3] + b"\x19\x0a\xe5\x00\x80" + gw[4]
        + b"\x20\x0a\xc6\x7a\x2f" + gw[5]
    )  # fmt: skip
    assert enc(text, name="classless-static-route") == want
    assert enc(want.hex(), code=121, csv_format=False) == want


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("10.0.0.0/8", "not in the form"),
        ("10.0.0.0/33 - 10.0.0.1", "prefix length is not in 0..32"),
        ("10.0.0.0 - 10.0.0.1", "not in the form A/B"),
        ("10.0.0/8 - 10.0.0.1", "is not an IPv4 address"),
        ("", "needs at least one route"),
    ],
)
def test_classless_static_route_errors(text: str, match: str) -> None:
    refused(match, name="classless-static-route", data=text)


def test_a_configuration_may_define_121_itself_as_kea_2_2_configurations_do() -> None:
    defs = o.load_option_defs([{"name": "rfc3442", "code": 121, "type": "uint8", "array": True}])
    assert enc("8, 10, 198, 18, 0, 1", defs, code=121) == bytes([8, 10, 198, 18, 0, 1])
    refused("truncated route", code=121, data="08", csv_format=False)


# ---- encapsulation and vendor options ---------------------------------------------------


VENDOR_DEFS = [
    {"name": "acs-url", "code": 1, "type": "string", "space": "vendor-encapsulated-options-space"},
    {"name": "prov-code", "code": 2, "type": "uint8", "space": "vendor-encapsulated-options-space"},
]


def test_vendor_encapsulated_options_collect_their_space_in_code_order() -> None:
    defs = o.load_option_defs(VENDOR_DEFS)
    level = [
        {"name": "vendor-encapsulated-options"},
        {"name": "prov-code", "space": "vendor-encapsulated-options-space", "data": "7"},
        {"name": "acs-url", "space": "vendor-encapsulated-options-space", "data": "http://a"},
    ]
    assert enc(defs=defs, level=level, name="vendor-encapsulated-options") == (
        b"\x01\x08http://a" + b"\x02\x01\x07"
    )
    assert enc(name="vendor-encapsulated-options") == b""  # Kea sends it empty
    # sub-options given as hex data win over the level's, then all go in code order
    hexdata = "0201090301ff"
    got = enc(hexdata, defs, level, name="vendor-encapsulated-options", csv_format=False)
    assert got == b"\x01\x08http://a" + b"\x02\x01\x09" + b"\x03\x01\xff"
    refused("sub-option at byte 0 of the data is truncated", defs, level,
            name="vendor-encapsulated-options", data="0205", csv_format=False)  # fmt: skip
    refused("takes no data", name="vendor-encapsulated-options", data="01")


def test_an_option_def_may_replace_the_last_resort_43() -> None:
    defs = o.load_option_defs([{"name": "vendor-encapsulated-options", "code": 43,
                                "type": "ipv4-address"}])  # fmt: skip
    assert enc("198.18.0.9", defs, code=43) == bytes([198, 18, 0, 9])


def test_spaces_that_encapsulate_each_other_are_refused() -> None:
    defs = o.load_option_defs(
        [
            {"name": "a", "code": 1, "type": "empty", "space": "sa", "encapsulate": "sb"},
            {"name": "b", "code": 1, "type": "empty", "space": "sb", "encapsulate": "sa"},
            {"name": "top", "code": 230, "type": "empty", "encapsulate": "sa"},
        ]
    )
    level = [{"name": "top"}, {"name": "a", "space": "sa"}, {"name": "b", "space": "sb"}]
    refused("encapsulate each other", defs, level, name="top")


def test_vivso_carries_the_always_send_vendor_sub_options() -> None:
    level = [
        {"name": "vivso-suboptions", "data": "4491"},
        {"name": "tftp-servers", "space": "vendor-4491", "data": "198.18.0.9",
         "always-send": True},
        {"name": "oro", "space": "vendor-4491", "data": "1"},  # only when a client asks
    ]  # fmt: skip
    assert enc("4491", level=level, name="vivso-suboptions") == bytes.fromhex(
        "0000118b060204c6120009"
    )
    assert enc("4491", name="vivso-suboptions") == bytes.fromhex("0000118b00")
    assert enc("0000118b00", name="vivso-suboptions", csv_format=False) == b"\x00\x00\x11\x8b\x00"
    refused("data-len does not match", name="vivso-suboptions", data="0000118b05",
            csv_format=False)  # fmt: skip


# ---- option-data entries -------------------------------------------------------------


def test_name_code_and_space_rules() -> None:
    assert o.encode({"code": 15, "data": "x.org"}, STD) == (15, b"x.org")
    assert o.encode({"name": "domain-name", "code": 15, "data": "x.org"}, STD)[0] == 15
    refused("code 3 in 'dhcp4' is named 'routers'", name="domain-name", code=3, data="1.2.3.4")
    refused("needs a 'name' or a 'code'", data="1")
    refused("no definition of 'dhcp4.no-such'", name="no-such", data="1")
    refused("code 256 is not in 0..255", code=256, data="01")
    refused("code 0 is reserved for PAD", code=0, data="01", csv_format=False)
    refused("code 255 is reserved for END", code=255, data="01", csv_format=False)
    refused("invalid option space 'dhcp6'", name="routers", space="dhcp6", data="1.2.3.4")
    refused("invalid option space", name="routers", space="-bad", data="1.2.3.4")
    refused("has no spaces", name="domain name", data="x")


def test_unknown_keys_and_wrong_json_types_are_named() -> None:
    msg = refused("unknown key 'colour', 'size'", name="routers", data="1.2.3.4", colour=1,
                  size=2)  # fmt: skip
    assert msg.startswith("option 'dhcp4.routers'")
    refused("'code' must be an integer", code="3", data="1.2.3.4")
    refused("'code' must be an integer", code=True, data="1.2.3.4")
    refused("'always-send' must be true or false", name="routers", data="1.2.3.4",
            always_send="yes")  # fmt: skip
    refused("'csv-format' must be true or false", name="routers", data="1.2.3.4", csv_format=1)
    refused("'data' must be a string", name="interface-mtu", data=1500)
    with pytest.raises(OptionError, match="must be an object"):
        o.encode(["routers"], STD)  # type: ignore[arg-type]
    assert enc("1.2.3.4", name="routers", comment="ok", user_context={"a": 1}) == bytes(
        [1, 2, 3, 4]
    )


def test_undefined_codes_take_raw_hex_but_site_specific_ones_need_a_definition() -> None:
    assert enc("C6120005", code=150) == bytes([198, 18, 0, 5])
    assert enc("C6120005", code=150, csv_format=False) == bytes([198, 18, 0, 5])
    refused("csv-format needs a definition of code 150", code=150, data="01", csv_format=True)
    refused("site-specific code 252 needs an option-def", code=252, data="00", csv_format=False)
    defs = o.load_option_defs([{"name": "wpad", "code": 252, "type": "string"}])
    assert enc("http://wpad/wpad.dat", defs, code=252) == b"http://wpad/wpad.dat"
    assert o.encode({"code": 5, "space": "other", "data": "0102"}, STD) == (5, b"\x01\x02")


def test_an_entry_of_a_custom_space_is_encoded_with_its_definition() -> None:
    defs = o.load_option_defs([{"name": "x", "code": 1, "type": "uint16", "space": "sp"}])
    assert o.encode({"name": "x", "space": "sp", "data": "258"}, defs) == (1, b"\x01\x02")


# ---- option-def ------------------------------------------------------------------------


def test_option_def_parsing() -> None:
    d = o.parse_option_def(
        {"name": "my-rec", "code": 224, "type": "record", "array": True,
         "record-types": "uint8, ipv4-address", "space": "dhcp4", "encapsulate": "",
         "comment": "x"}
    )  # fmt: skip
    assert d == OptionDef("my-rec", 224, "record", True, ("uint8", "ipv4-address"))
    assert o.parse_option_def({"name": "e", "code": 1, "type": "empty", "space": "s",
                               "encapsulate": "t"}).encapsulate == "t"  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"code": 224, "type": "uint8"}, "'name' is required"),
        ({"name": "x", "type": "uint8"}, "'code' is required"),
        ({"name": "x", "code": 224}, "'type' is required"),
        ({"name": "-x", "code": 224, "type": "uint8"}, "invalid name"),
        ({"name": "x y", "code": 224, "type": "uint8"}, "invalid name"),
        ({"name": "x", "code": 256, "type": "uint8"}, "code 256 is not in 0..255"),
        ({"name": "x", "code": 0, "type": "uint8"}, "reserved for PAD"),
        ({"name": "x", "code": 224, "type": "float"}, "unknown type 'float'"),
        ({"name": "x", "code": 224, "type": "internal"}, "unknown type 'internal'"),
        ({"name": "x", "code": 224, "type": "string", "array": True}, "array of string"),
        ({"name": "x", "code": 224, "type": "record", "record-types": "uint8"}, "at least 2"),
        ({"name": "x", "code": 224, "type": "record", "record-types": "string, uint8"},
         "a string field must be the last"),
        ({"name": "x", "code": 224, "type": "record", "record-types": "uint8, empty"},
         "invalid record type 'empty'"),
        ({"name": "x", "code": 224, "type": "record", "array": True,
          "record-types": "uint8, binary"}, "cannot end with a binary"),
        ({"name": "x", "code": 224, "type": "uint8", "record-types": "uint8, uint8"},
         "record-types need type 'record'"),
        ({"name": "x", "code": 224, "type": "uint8", "array": True, "encapsulate": "s"},
         "an array cannot encapsulate"),
        ({"name": "x", "code": 1, "type": "empty", "space": "s", "encapsulate": "s"},
         "cannot encapsulate its own space"),
        ({"name": "x", "code": 224, "type": "uint8", "space": "bad space"}, "invalid space"),
        ({"name": "x", "code": 224, "type": "uint8", "kind": "x"}, "unknown key 'kind'"),
        ({"name": "x", "code": 224, "type": "uint8", "array": "no"}, "'array' must be true"),
    ],
)  # fmt: skip
def test_option_def_errors(entry: dict[str, Any], match: str) -> None:
    with pytest.raises(OptionError, match=match) as e:
        o.parse_option_def(entry)
    assert "\n" not in str(e.value) and str(e.value).startswith("option-def ")


def test_option_defs_refuse_duplicates_and_standard_overrides() -> None:
    with pytest.raises(OptionError, match="a standard definition cannot be overridden"):
        o.load_option_defs([{"name": "gateways", "code": 3, "type": "ipv4-address"}])
    with pytest.raises(OptionError, match="a standard definition cannot be overridden"):
        o.load_option_defs([{"name": "routers", "code": 224, "type": "ipv4-address"}])
    with pytest.raises(OptionError, match="defined twice"):
        o.load_option_defs(
            [{"name": "a", "code": 224, "type": "uint8"}, {"name": "b", "code": 224,
                                                           "type": "uint8"}]
        )  # fmt: skip
    with pytest.raises(OptionError, match="option-def must be a list"):
        o.load_option_defs({"name": "a"})  # type: ignore[arg-type]
    same_code_other_space = o.load_option_defs(
        [{"name": "a", "code": 3, "type": "uint8", "space": "mine"}]
    )
    assert same_code_other_space.custom[0].space == "mine"


# ---- reply order -------------------------------------------------------------------------


AVAILABLE = {c: b"x" for c in (1, 3, 6, 15, 42, 54, 119, 121)}


def test_order_follows_the_parameter_request_list() -> None:
    assert o.order(bytes([6, 42, 1, 3]), AVAILABLE, set()) == [6, 42, 1, 3]
    assert o.order(bytes([121, 119, 99, 6, 6]), AVAILABLE, set()) == [121, 119, 6]


def test_subnet_mask_goes_before_router() -> None:
    assert o.order(bytes([3, 6, 1]), AVAILABLE, set()) == [1, 3, 6]
    assert o.order(bytes([42, 3, 15, 1]), AVAILABLE, set()) == [42, 1, 3, 15]
    assert o.order(bytes([3, 6]), AVAILABLE, set()) == [3, 6]


def test_always_send_and_basic_options_follow_in_code_order() -> None:
    always = set(o.BASIC_OPTIONS) | {121, 200}
    assert o.order(bytes([6, 1]), AVAILABLE, always) == [6, 1, 3, 15, 54, 121]
    assert o.order(b"", AVAILABLE, always) == [3, 6, 15, 54, 121]
