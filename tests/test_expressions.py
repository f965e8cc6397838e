"""Kea client-class expressions: every function, Kea's own examples, and Kea's parser as judge.

Requests are built with scapy (tests/packets.py) and decoded by etcdhcp.codec, so the
expressions see what the server will see. Expected values come from Kea 2.2's ARM
(classification chapter), its unit tests (src/lib/eval/tests/token_unittest.cc) and
its sources; `kea-dhcp4 -t` (Debian's 2.2) decides which expressions are valid and
where the error is.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import packets
from etcdhcp import expressions
from etcdhcp.codec import Request
from etcdhcp.expressions import Context, ExpressionError, builtin_classes, classify, compile

KEA_EXAMPLES = Path("/usr/share/doc/kea/examples/kea4")
# A few of Kea's standard option names: the lead's option-definition table plugs in here.
OPTION_NAMES = {
    "host-name": 12,
    "vendor-class-identifier": 60,
    "dhcp-client-identifier": 61,
    "user-class": 77,
    "client-system": 93,
}.get
MAC = "02:00:5e:00:00:01"


def request(*options: tuple[int, bytes], **kw: Any) -> Request:
    """A DISCOVER from MAC with these extra options, as the codec decodes it."""
    return packets.decoded(packets.discover(MAC, extra=list(options), **kw))


def matches(
    text: str, req: Request | None = None, classes: tuple[str, ...] = (), **kw: Any
) -> bool:
    expression = compile(text, known_classes=classes, option_code=OPTION_NAMES)
    return expression.evaluate(req or request(), classes, **kw)


def equals(text: str, expected: bytes, req: Request | None = None, **kw: Any) -> bool:
    """Whether string expression `text` evaluates to `expected` (compared as a hex literal)."""
    literal = f"0x{expected.hex()}" if expected else "''"
    return matches(f"{text} == {literal}", req, **kw)


# ---- literals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'example'", b"example"),
        ("0x5a7d", b"Z}"),
        ("0X5A7D", b"Z}"),
        ("0x123", b"\x01\x23"),  # odd digits: a leading zero, as Kea
        ("10.0.0.1", b"\x0a\x00\x00\x01"),
        ("2001:db8::1", bytes.fromhex("20010db8000000000000000000000001")),
        ("123", b"\x00\x00\x00\x7b"),  # an integer is its 4 bytes, big endian
        ("''", b""),
    ],
)
def test_literals(text: str, expected: bytes) -> None:
    assert equals(text, expected)


# ---- options ----------------------------------------------------------------------------


def test_option_hex_text_and_exists() -> None:
    req = request((60, b"PXEClient:Arch:00007"), (93, b"\x00\x07"), (77, b"iPXE"))
    assert matches("option[60].hex == 'PXEClient:Arch:00007'", req)
    assert matches("option[60].text == 'PXEClient:Arch:00007'", req)  # a string option
    assert matches("option[93].hex == 0x0007", req)
    assert matches("option[77].exists and not option[43].exists", req)
    assert matches("substring(option[77].hex,0,4) == 'iPXE'", req)  # the ARM's iPXE test


def test_a_missing_option_is_the_empty_string() -> None:
    assert matches("option[43].hex == ''")
    assert matches("option[43].text == ''")
    assert not matches("option[43].exists")


def test_text_of_an_option_without_a_string_type_is_keas_generic_rendering() -> None:
    # Kea's Option::toText(0), which option[N].text gives for untyped options.
    req = request((77, b"iPXE"), (224, b""))
    assert equals("option[77].text", b"type=077, len=004: 69:50:58:45", req)
    assert equals("option[224].text", b"type=224, len=000: ", req)
    assert not matches("option[77].text == 'iPXE'", req)


def test_string_options_lose_trailing_nuls_and_vanish_when_empty() -> None:
    # Kea's OptionString: trailing NULs trimmed; nothing left means no option at all.
    req = request((60, b"PXEClient\x00\x00"), (12, b"\x00"), (66, b"tftp"))
    assert equals("option[60].hex", b"PXEClient", req)
    assert not matches("option[12].exists", req)
    assert matches("option[66].text == 'tftp'", req)
    assert matches("option[12].exists", request((12, b"host")))


def test_option_names_go_through_the_lookup() -> None:
    req = request((60, b"MSFT 5.0"), (12, b"pc1"))
    assert matches("option[vendor-class-identifier].text == 'MSFT 5.0'", req)
    assert matches("option[ host-name ].hex == 'pc1'", req)  # blanks before ']' allowed
    with pytest.raises(ExpressionError, match=r"^at 8: option 'no-such' is not defined$"):
        compile("option[no-such].exists", option_code=OPTION_NAMES)
    with pytest.raises(ExpressionError, match="not defined"):
        compile("option[host-name].exists")  # no lookup: no names


def test_options_split_over_several_instances_are_seen_whole() -> None:
    long_value = bytes(range(256)) + b"tail"  # the codec joins RFC 3396 instances
    req = request((224, long_value[:255]), (224, long_value[255:]))
    assert equals("option[224].hex", long_value, req)
    assert matches("substring(option[224].hex, -4, all) == 'tail'", req)


# ---- relay agent information (option 82) ------------------------------------------------


RELAYED = {"giaddr": packets.RELAY_IP}


def test_relay4_sub_options() -> None:
    req = request((82, b"\x01\x04port\x02\x06\x02\x00\x5e\x00\x00\x09"), **RELAYED)
    assert matches("relay4[1].hex == 'port'", req)
    assert matches("relay4[2].hex == 0x02005e000009", req)
    assert matches("relay4[1].exists and not relay4[5].exists", req)
    assert equals("relay4[1].text", b"type=001, len=004: 70:6f:72:74", req)
    assert matches("option[82].option[1].hex == 'port'", req)  # the same, by sub-option


def test_relay4_sub_options_are_parsed_as_kea_does() -> None:
    # No PAD or END in the agent space; a truncated last one is ignored; repeats fuse.
    req = request((82, b"\x00\x01a\xff\x01b\x01\x02xy\x01\x01z\x02\x09short"), **RELAYED)
    assert equals("relay4[0].hex", b"a", req)
    assert equals("relay4[255].hex", b"b", req)
    assert equals("relay4[1].hex", b"xyz", req)
    assert not matches("relay4[2].exists", req)


def test_relay4_without_option_82() -> None:
    assert not matches("relay4[1].exists")
    assert matches("relay4[1].hex == ''")


# ---- vendor options (124, 125) ----------------------------------------------------------


DOCSIS = (4491).to_bytes(4, "big")


def test_vendor_specific_information() -> None:
    sub = b"\x01\x09docsis3.0\x02\x01x"
    req = request((125, DOCSIS + bytes((len(sub),)) + sub))
    assert matches("vendor[*].exists and vendor[4491].exists and not vendor[9].exists", req)
    assert matches("vendor.enterprise == 4491", req)
    assert matches("vendor[4491].option[1].hex == 'docsis3.0'", req)
    assert matches("vendor[*].option[2].exists and not vendor[4491].option[3].exists", req)
    assert matches("option[125].option[1].hex == 'docsis3.0'", req)
    assert matches("vendor[9].option[1].hex == ''", req)
    assert matches("vendor.enterprise == ''")  # absent: the empty string
    assert not matches("vendor[*].exists", request((125, b"\x00\x00")))  # malformed


def test_vendor_class() -> None:
    body = DOCSIS + b"\x09docsis3.0" + DOCSIS + b"\x03two"
    req = request((124, body))
    assert matches("vendor-class[*].exists and vendor-class[4491].exists", req)
    assert not matches("vendor-class[1].exists", req)
    assert matches("vendor-class.enterprise == 4491", req)
    assert matches("vendor-class[4491].data == 'docsis3.0'", req)
    assert matches("vendor-class[4491].data[0] == 'docsis3.0'", req)
    assert matches("vendor-class[4491].data[1] == 'two'", req)
    assert matches("vendor-class[4491].data[2] == ''", req)
    assert not matches("vendor-class[*].exists", request((124, DOCSIS + b"\x05ab")))


def test_option_43_sub_options_are_never_seen_as_in_keas_classification() -> None:
    req = request((43, b"\x01\x02ab"))
    assert matches("option[43].exists and not option[43].option[1].exists", req)


# ---- packet fields ----------------------------------------------------------------------


def test_pkt4_fields() -> None:
    req = packets.decoded(
        packets.request(MAC, ciaddr="198.18.0.20", giaddr=packets.RELAY_IP, xid=0x01020304)
    )
    assert matches("pkt4.mac == 0x02005e000001", req)
    assert matches("hexstring(pkt4.mac, ':') == '02:00:5e:00:00:01'", req)
    assert matches("pkt4.hlen == 6 and pkt4.htype == 1", req)
    assert matches("pkt4.ciaddr == 198.18.0.20 and pkt4.giaddr == 198.18.0.254", req)
    assert matches("pkt4.yiaddr == 0.0.0.0 and pkt4.siaddr == 0.0.0.0", req)
    assert matches("pkt4.msgtype == 3", req)
    assert matches("pkt4.transid == 16909060", req)
    assert matches("addrtotext(pkt4.giaddr) == '198.18.0.254'", req)
    assert matches("uint32totext(pkt4.transid) == '16909060'", req)


def test_pkt_metadata() -> None:
    req = request(**RELAYED)
    assert matches("pkt.src == 198.18.0.254 and pkt.dst == 198.18.0.1", req)
    assert matches("pkt.iface == 'lab0'", req, context=Context(iface="lab0"))
    assert matches("pkt.iface == ''", req)
    # Kea's Pkt4::len(): 236 header bytes plus each option with its 2 header bytes.
    expected = 236 + sum(2 + len(v) for v in req.options.values())
    assert equals("pkt.len", expected.to_bytes(4, "big"), req)


# ---- functions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    # Kea's token_unittest.cc, TokenTest.substring*
    [
        ("0", "6", "foobar"), ("0", "all", "foobar"), ("0", "123456", "foobar"),
        ("-6", "all", "foobar"), ("3", "3", "bar"), ("3", "all", "bar"), ("-3", "all", "bar"),
        ("-3", "123", "bar"), ("1", "4", "ooba"), ("-5", "4", "ooba"), ("-1", "-4", "ooba"),
        ("5", "-4", "ooba"), ("5", "all", "r"), ("5", "1", "r"), ("5", "5", "r"),
        ("-1", "all", "r"), ("-1", "1", "r"), ("-1", "5", "r"), ("0", "-4", ""),
        ("1", "-4", "f"), ("2", "-4", "fo"), ("3", "-4", "foo"), ("3", "4", "bar"),
        ("4", "4", "ar"), ("5", "4", "r"), ("6", "4", ""), ("-7", "1", ""), ("-7", "-11", ""),
        ("-7", "all", ""), ("6", "1", ""), ("6", "-11", ""), ("6", "all", ""), ("0", "0", ""),
    ],
)  # fmt: skip
def test_substring(start: str, length: str, expected: str) -> None:
    assert equals(f"substring('foobar', {start}, {length})", expected.encode())


def test_substring_of_nothing_and_beyond_a_c_int() -> None:
    assert equals("substring('', 0, all)", b"")
    assert matches("substring('', 9999999999, all) == ''")  # empty input: no conversion
    # Kea cannot convert the start to an int: an evaluation error, so no match.
    assert not matches("substring('x', 9999999999, all) == ''")


@pytest.mark.parametrize(
    ("text", "delimiters", "field", "expected"),
    # Kea's token_unittest.cc, TokenTest.split and splitMultipleDelims
    [
        ("", ".", 1, ""), (".two.three..five.", "", 1, ".two.three..five."),
        (".two.three..five.", ".", 0, ""), (".two.three..five.", ".", 1, ""),
        (".two.three..five.", ".", 2, "two"), (".two.three..five.", ".", 3, "three"),
        (".two.three..five.", ".", 4, ""), (".two.three..five.", ".", 5, "five"),
        (".two.three..five.", ".", 6, ""), (".two.three..five.", ".", 7, ""),
        ("just_one", ".", 1, "just_one"), (".two:three.:five.", ".:", 3, "three"),
        (".two:three.:five.", ".:", 5, "five"), ("a]b", "]", 2, "b"), ("a-b", "-", 2, "b"),
    ],
)  # fmt: skip
def test_split(text: str, delimiters: str, field: int, expected: str) -> None:
    assert equals(f"split('{text}', '{delimiters}', {field})", expected.encode())


def test_concat_plus_hexstring_and_ifelse() -> None:
    assert matches("concat('foo', 'bar') == 'foobar'")
    assert matches("'foo' + 'bar' + 0x21 == 'foobar!'")
    assert matches("'ab' == 'a' + 'b'")  # '+' binds tighter than '=='
    assert equals("hexstring('foo', '-')", b"66-6f-6f")
    assert equals("hexstring(0x0a1b2c3e, ':')", b"0a:1b:2c:3e")
    assert equals("hexstring('', ':')", b"")
    assert equals("ifelse('foo' == 'bar', 'us', 'them')", b"them")
    assert equals("ifelse(option[53].exists, 'us', 'them')", b"us")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("addrtotext(192.10.0.1)", "192.10.0.1"),
        ("addrtotext(2003:db8::)", "2003:db8::"),
        ("addrtotext(::ffff:1.2.3.4)", "::ffff:1.2.3.4"),
        ("addrtotext('')", ""),
        ("int8totext(0xff)", "-1"),
        ("int16totext(0xfffe)", "-2"),
        ("int32totext(0x80000000)", "-2147483648"),
        ("uint8totext(0xff)", "255"),
        ("uint16totext(0xfffe)", "65534"),
        ("uint32totext(4294967295)", "4294967295"),
        ("uint16totext('')", ""),
    ],
)
def test_conversions(text: str, expected: str) -> None:
    assert equals(text, expected.encode())


@pytest.mark.parametrize(
    "text",
    [
        "addrtotext(0x010203) == ''",
        "uint16totext(0x01) == ''",
        "int32totext(pkt4.mac) == ''",
        # Kea 2.2 evaluates both sides of and/or and both branches of ifelse.
        "member('ALL') or addrtotext('x') == ''",
        "ifelse(member('ALL'), 'a', addrtotext('x')) == 'a'",
    ],
)
def test_an_evaluation_error_is_no_match(text: str) -> None:
    assert not matches(text, classes=("ALL",))


def test_boolean_operators_and_precedence() -> None:
    assert matches("not ('foo' == 'bar')")
    assert not matches("('foo' == 'bar') and ('bar' == 'foo')")
    assert matches("'a' == 'b' or 'a' == 'a' and 'b' == 'b'")  # and before or
    assert not matches("not 'a' == 'a' or 'a' == 'b'")  # not before or
    assert matches("(('a')) == 'a'")
    assert matches("'' == ''")  # Kea's idiom for true


# ---- classes ----------------------------------------------------------------------------


def test_member_needs_a_class_defined_before_or_built_in() -> None:
    assert matches("member('phones')", classes=("phones",))
    assert not compile("member('phones')", ["phones"]).evaluate(request(), ["ALL"])
    for builtin in ("ALL", "KNOWN", "UNKNOWN", "BOOTP", "VENDOR_CLASS_x", "HA_server1"):
        compile(f"member('{builtin}')")
    with pytest.raises(ExpressionError, match=r"^at 8: not defined client class 'later'$"):
        compile("member('later')", ["phones"])
    with pytest.raises(ExpressionError, match="not defined client class 'VENDOR_CLASS_'"):
        compile("member('VENDOR_CLASS_')")  # a prefix alone is no built-in name
    assert compile("member('KNOWN') and member('a')", ["a"]).depends_on_known
    assert compile("member('KNOWN') and member('a')", ["a"]).members == {"KNOWN", "a"}
    assert not compile("member('a')", ["a"]).depends_on_known


def test_builtin_classes() -> None:
    assert builtin_classes(request()) == ["ALL"]
    assert builtin_classes(request((60, b"PXEClient\x00"))) == ["ALL", "VENDOR_CLASS_PXEClient"]
    assert builtin_classes(request((60, b"\x00"))) == ["ALL"]
    assert builtin_classes(request((60, b"x\xff"))) == ["ALL", "VENDOR_CLASS_x\\xff"]


def test_classify_in_order_sees_earlier_classes() -> None:
    names = ["phones", "voip-phones", "laptops", "any"]
    tests = [
        ("phones", "substring(option[60].hex,0,6) == 'Aastra'"),
        ("voip-phones", "member('phones') and member('VENDOR_CLASS_Aastra 6731i')"),
        ("laptops", "not member('phones')"),
        ("any", "member('ALL')"),
    ]
    compiled = [(n, compile(t, names[:i])) for i, (n, t) in enumerate(tests)]
    phone = request((60, b"Aastra 6731i"))
    assert classify(phone, compiled) == [
        "ALL",
        "VENDOR_CLASS_Aastra 6731i",
        "phones",
        "voip-phones",
        "any",
    ]
    assert classify(request(), compiled) == ["ALL", "laptops", "any"]


# ---- Kea's example configurations -------------------------------------------------------


def kea_json(path: Path) -> Any:
    """Kea's JSON: comments (//, #, /* */) dropped and .5 made 0.5, outside strings."""
    pattern = r'("(?:\\.|[^"\\])*")|//[^\n]*|#[^\n]*|/\*.*?\*/|(?<=[:,\[\s])(\.\d)'

    def keep(match: re.Match[str]) -> str:
        string, fraction = match.groups()
        return string or (f"0{fraction}" if fraction else "")

    return json.loads(re.sub(pattern, keep, path.read_text(), flags=re.S))


def example_classes() -> list[tuple[str, list[dict[str, Any]]]]:
    found = []
    for path in sorted(KEA_EXAMPLES.glob("*.json")):
        classes = kea_json(path).get("Dhcp4", {}).get("client-classes", [])
        if any("test" in c for c in classes):
            found.append((path.name, classes))
    return found


def test_the_examples_include_classify_and_classify2() -> None:
    assert {"classify.json", "classify2.json"} <= {name for name, _ in example_classes()}


@pytest.mark.parametrize(("name", "classes"), example_classes(), ids=lambda x: str(x)[:30])
def test_every_kea_example_class_compiles(name: str, classes: list[dict[str, Any]]) -> None:
    defined: list[str] = []
    for cls in classes:
        if "test" in cls:
            compile(cls["test"], defined, OPTION_NAMES)
        defined.append(cls["name"])


def test_classify_json_selects_as_documented() -> None:
    classes = dict(example_classes())["classify.json"]
    tests = [(c["name"], compile(c["test"])) for c in classes if "test" in c]
    discover = packets.decoded(
        packets.frame("discover", "01:02:03:04:05:06", xid=0, extra=[(60, b"Aastra 6731i")])
    )
    assert classify(discover, tests)[2:] == [c["name"] for c in classes]
    other = packets.decoded(packets.request(MAC, requested="198.18.0.9", xid=7))
    assert classify(other, tests) == ["ALL"]


# ---- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(option[60].hex == 'x'", "at 23: expected ')', found end of expression"),
        ("'a' and 'b'", "at 5: expected '==', found 'and'"),
        ("option[60].hex", "at 15: expected '==', found end of expression"),
        ("option[300].hex == ''", "at 8: option code 300 out of range 0..255"),
        ("option[60] == 'a'", "at 12: expected '.', found '=='"),
        ("option[60].data == ''", "at 12: expected 'hex' or 'text' or 'exists', found 'data'"),
        ("substring('a', 0) == ''", "at 17: expected ',', found ')'"),
        ("'a' = 'b'", "at 5: invalid character '='"),
        ("true", "at 1: invalid character 't'"),
        ("pkt6.msgtype == 1", "at 1: pkt6 can only be used in DHCPv6"),
        (
            "concat(member('ALL'), 'a') == ''",
            "at 8: expected a string expression, found a condition",
        ),
        ("1.2.3.400 == ''", "at 1: 1.2.3.400 is not an IP address"),
        ("'a' == 'a'\n and\n 'b'", "at line 3 column 5: expected '==', found end of expression"),
        ("", "at 1: expected an expression, found end of expression"),
    ],
)
def test_parse_errors_name_the_position(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile(text, option_code=OPTION_NAMES)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_nesting_is_bounded() -> None:
    depth = expressions.MAX_NESTING
    assert matches("(" * (depth - 1) + "'a'" + ")" * (depth - 1) + " == 'a'")
    with pytest.raises(ExpressionError, match="nested more than"):
        compile("(" * depth + "'a'" + ")" * depth + " == 'a'")
    with pytest.raises(ExpressionError, match="nested more than"):
        compile("not " * (depth + 1) + "'a' == 'a'")
    # Long flat chains are not nesting: they evaluate without deep recursion.
    assert matches("'a'" + " + 'a'" * 5000 + " == " + "'" + "a" * 5001 + "'")
    assert matches("'' == 'x'" + " or '' == 'x'" * 5000 + " or '' == ''")


# ---- Kea's parser as the judge ----------------------------------------------------------

# Valid: the ARM's examples, the brief's, and corner cases of the lexer and grammar.
KEA_VALID = [
    "pkt4.mac == 0x010203040506", "pkt4.msgtype == 1", "pkt4.transid == 0",
    "substring(option[60].hex,0,6) == 'Aastra'", "member('ALL')", "'' == ''",
    "member('defined') and member('KNOWN')", "not member('defined')",
    "substring(option[1].hex,0,6) == 0x0002AABBCCDD", "option[123].exists",
    "option[12].option[34].exists", "relay4[123].hex == 'x'", "pkt.iface == 'eth0'",
    "pkt.src == 10.1.2.3", "pkt.dst == 10.1.2.3", "pkt.len == 513", "pkt4.hlen == 6",
    "pkt4.htype == 6", "pkt4.ciaddr == 192.0.2.1", "pkt4.giaddr == 192.0.2.1",
    "pkt4.yiaddr == 192.0.2.1", "pkt4.siaddr == 192.0.2.1", "vendor[*].exists",
    "vendor[4491].exists", "vendor.enterprise == 4491", "vendor[4491].option[1].exists",
    "vendor[4491].option[1].hex == 'docsis3.0'", "vendor-class[*].exists",
    "vendor-class.enterprise == 4491", "vendor-class[4491].data == 'docsis3.0'",
    "vendor-class[4491].data[3] == 'docsis3.0'", "('foo' == 'bar') or ('bar' == 'foo')",
    "concat('foo','bar') == 'foobar'", "'foo' + 'bar' == 'foobar'",
    "ifelse('foo' == 'bar','us','them') == 'them'", "hexstring('foo', '-') == '66-6f-6f'",
    "split('foo.bar', '.', 2) == 'bar'", "addrtotext (192.10.0.1) == '192.10.0.1'",
    "addrtotext (2003:db8::) == '2003:db8::'", "int8totext (0xff) == '-1'",
    "uint32totext (4294967295) == '4294967295'", "option[host-name].text == 'x'",
    "option[ host-name ].exists", "substring(option[60].hex, -1, all) == 'x'",
    "'a' == 'b' + 'c'", "'a' + 'b' == 'c' or not 'a' == 'b'", "(('a')) == 'a'",
    "ifelse(option[77].exists and not option[60].exists, 'a', 'b') == 'a'",
    "0X0a == 0x0A", "option[0].exists", "not not not member('ALL')",
    "substring('x', 9223372036854775807, all) == ''", "member('VENDOR_CLASS_docsis3.0')",
    "option[60].text == 'PXEClient'\n and pkt4.htype == 1",
]  # fmt: skip
KEA_INVALID = [
    "", "'a'", "'a' == ", "(option[60].hex == 'x'", "'a' and 'b'", "member('nope')",
    "option[300].hex == ''", "pkt6.msgtype == 1", "relay6[0].peeraddr == ''", "a = b",
    "option[60].hex", "option[nosuchoption].hex == ''", "1.2.3.400 == ''", "true",
    "'a' = 'b'", "member(defined)", "option[60] == 'a'", "option[60].data == ''",
    "substring('a', 'b', 1) == ''", "substring('a', 0) == ''", "int8totext(-1) == ''",
    "4294967296 == ''", "relay4[1].option[2].hex == ''", "vendor[*].hex == ''",
    "vendor-class[1].option[1].hex == ''", "vendor-class[1].data[256] == ''",
    "'a' == 'b' == 'c'", "not 'a'", "ifelse('a', 'b', 'c') == ''",
    "concat(member('ALL'), 'a') == ''", "'a' + member('ALL')", "option[-1].exists",
    "pkt4.chaddr == ''", "pkt4.mac == 'x' && 'a' == 'a'", "Member('ALL')",
    "lcase('A') == 'a'", "option[60].hex == 'a\nb'", "'it''s' == ''",
    "member('defined') or member('later')", "split('a', '.', all) == ''",
    "'a' == 'a'\n and\n 'b'", "member('ALL')\nor x",
]  # fmt: skip
KEA_NAMES = {"host-name": 12, "vendor-class-identifier": 60}.get


def kea_verdict(text: str, tmp_path: Path) -> tuple[int, int] | None:
    """None if `kea-dhcp4 -t` accepts the class, else the line and column it reports."""
    config = {"Dhcp4": {"client-classes": [{"name": "defined"}, {"name": "c", "test": text}]}}
    path = tmp_path / "kea-dhcp4.json"
    path.write_text(json.dumps(config))
    out = subprocess.run(["kea-dhcp4", "-t", str(path)], capture_output=True, text=True, timeout=30)
    if out.returncode == 0:
        return None
    where = re.search(r"<string>:(\d+)\.(\d+)", out.stdout + out.stderr)
    assert where, out.stdout + out.stderr
    return int(where.group(1)), int(where.group(2))


@pytest.mark.parametrize("text", KEA_VALID + KEA_INVALID)
def test_kea_accepts_the_same_expressions_and_reports_the_same_position(
    text: str, tmp_path: Path
) -> None:
    try:
        compile(text, ["defined"], KEA_NAMES)
        ours = None
    except ExpressionError as exc:
        ours = (exc.line, exc.column)
    assert ours == kea_verdict(text, tmp_path)
    assert (ours is None) == (text in KEA_VALID)
