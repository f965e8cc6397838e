"""Real-world client-class tests: Kea's examples, PXE/UEFI/iPXE, relay and vendor classes.

Shared by the property tests (tests/test_fuzz.py) and the atheris harness
(tests/fuzz/fuzz_expressions.py): every request a client can send goes through all of
them, and none may raise.
"""

from __future__ import annotations

from etcdhcp import expressions

TESTS = (
    "pkt4.mac == 0x010203040506",
    "pkt4.msgtype == 1",
    "pkt4.transid == 0",
    "substring(option[60].hex,0,6) == 'Aastra'",
    "substring(option[60].hex,0,9) == 'PXEClient'",
    "substring(option[60].hex,0,10) == 'HTTPClient'",
    "option[93].hex == 0x0000 or option[93].hex == 0x0007 or option[93].hex == 0x0009",
    "substring(option[77].hex,0,4) == 'iPXE'",
    "option[77].text == 'iPXE' and not option[175].exists",
    "split(option[60].text, ':', 3) == '00007'",
    "int8totext(substring(option[93].hex, 1, 1)) == '7'",
    "relay4[1].hex == 'port1' and relay4[2].exists",
    "hexstring(relay4[2].hex, ':') == '00:11:22:33:44:55'",
    "option[82].option[1].exists or option[82].option[255].exists",
    "ifelse(option[82].exists, relay4[1].hex, pkt4.mac) == 'x'",
    "vendor-class[4491].exists and vendor-class[*].data == 'docsis3.0'",
    "vendor-class[4491].data[2] == '' or vendor-class.enterprise == 3561",
    "vendor[4491].option[2].hex == 'x' or vendor[*].exists",
    "vendor.enterprise == 4491 and option[125].option[1].text == ''",
    "pkt4.giaddr == 10.0.0.1 and pkt4.ciaddr == 0.0.0.0 or pkt4.hlen == 6",
    "pkt4.htype == 1 and pkt4.yiaddr == pkt4.siaddr",
    "addrtotext(option[50].hex) == '198.18.0.10'",
    "addrtotext(option[3].hex) == '' and addrtotext(pkt4.giaddr) == '0.0.0.0'",
    "uint16totext(option[57].hex) == '1500' or int16totext(option[57].hex) == '-1'",
    "uint32totext(pkt4.transid) == '0' or int32totext(option[51].hex) == ''",
    "uint8totext(option[53].hex) == '1'",
    "concat(option[61].hex, pkt4.mac) + 'x' == ''",
    "substring(option[61].hex, -6, all) == pkt4.mac",
    "substring(option[55].hex, 0, -9999999999) == ''",
    "substring(option[12].hex, 9999999999, 3) == ''",
    "pkt.len == 300 and pkt.iface == 'eth0' or pkt.src == 0.0.0.0 and pkt.dst == 255.255.255.255",
    "option[12].text == 'host' and option[12].option[1].hex == ''",
    "option[host-name].exists and option[vendor-class-identifier].exists",
    "member('c0') and not member('KNOWN') or member('VENDOR_CLASS_PXEClient')",
    "not member('ALL')",
)
NAMES = {"host-name": 12, "vendor-class-identifier": 60}.get


def compiled() -> list[tuple[str, expressions.Expression]]:
    """Each test compiled as class c<i>, which may name the classes before it."""
    names = [f"c{i}" for i in range(len(TESTS))]
    return [
        (name, expressions.compile(test, names[:i], NAMES))
        for i, (name, test) in enumerate(zip(names, TESTS, strict=True))
    ]
