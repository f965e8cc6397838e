"""clientclasses: Kea's client-classes list, parsed and evaluated (no etcd, no socket)."""

from __future__ import annotations

import pytest

import packets
from etcdhcp.clientclasses import parse_classes
from etcdhcp.optiondefs import OptionDefs
from etcdhcp.scopes import ScopeError

mac = packets.mac
PXE_BIOS = [("vendor_class_id", b"PXEClient:Arch:00000:UNDI:002001"), (93, b"\x00\x00")]
IPXE_EFI = [(93, b"\x00\x07"), (77, b"iPXE")]


def classes(entries: list) -> object:
    return parse_classes(entries, "client-classes", OptionDefs())


NETBOOT = classes(
    [
        {"name": "ipxe", "test": "substring(option[77].hex,0,4) == 'iPXE'"},
        {"name": "bios", "test": "option[93].hex == 0x0000 and not member('ipxe')"},
        {"name": "uefi", "test": "option[93].hex == 0x0007 and not member('ipxe')"},
        {"name": "VENDOR_CLASS_PXEClient:Arch:00000:UNDI:002001", "boot-file-name": "v.0"},
        {"name": "by-name-only"},
    ]
)


def names(options: list) -> tuple[str, ...]:
    return NETBOOT.classify(packets.decoded(packets.discover(mac(1), options=options)))


def test_classes_match_in_order_with_builtins_first() -> None:
    assert names(PXE_BIOS) == ("ALL", "VENDOR_CLASS_PXEClient:Arch:00000:UNDI:002001", "bios")
    assert names(IPXE_EFI) == ("ALL", "ipxe")  # member('ipxe') sees the earlier match
    assert names([]) == ("ALL",)


def test_defined_classes_come_in_the_order_the_request_joined_them() -> None:
    # Kea 2.2 (test_kea_classes.py): a defined VENDOR_CLASS_ class is joined before any
    # tested one, so its options and boot fields win over a class defined above it.
    found = NETBOOT.of(names(PXE_BIOS))
    assert [c.name for c in found] == ["VENDOR_CLASS_PXEClient:Arch:00000:UNDI:002001", "bios"]
    assert found[0].boot.boot_file_name == b"v.0"


def test_a_class_carries_options_and_boot_fields() -> None:
    [phone] = classes(
        [
            {
                "name": "phone",
                "test": "option[60].text == 'phone'",
                "option-data": [{"name": "tftp-server-name", "data": "tftp.example"}],
                "next-server": "198.18.0.9",
                "server-hostname": "boot",
                "boot-file-name": "phone.cfg",
            }
        ]
    ).defined
    assert phone.options.options == ((66, b"tftp.example"),)
    assert (phone.boot.next_server, phone.boot.server_hostname) == ("198.18.0.9", b"boot")
    assert phone.boot.boot_file_name == b"phone.cfg"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("x", "client-classes: must be a list of classes"),
        ([{"name": "a", "only-if-required": True}], "client-classes[0].only-if-required: is not"),
        ([{"test": "'a' == 'a'"}], "client-classes[0].name: None is not a class name"),
        ([{"name": "a"}, {"name": "a"}], "client-classes[1].name: class 'a' is defined twice"),
        ([{"name": "a", "test": "option[60].text == "}], "client-classes[0].test: at 20: "),
        ([{"name": "a", "test": "member('b')"}], "client-classes[0].test: at "),
        ([{"name": "a", "test": 5}], "client-classes[0].test: 5 is not an expression"),
        ([{"name": "a", "boot-file-name": "x" * 128}], "client-classes[0].boot-file-name: is 128"),
        ([{"name": "a", "next-server": "nope"}], "client-classes[0].next-server: "),
        (
            [{"name": "a", "option-data": [{"name": "no-such-option", "data": "1"}]}],
            "client-classes[0].option-data[0]: ",
        ),
    ],
)
def test_bad_classes_are_refused_in_one_line_naming_the_path(entries: object, message: str) -> None:
    with pytest.raises(ScopeError) as refused:
        classes(entries)  # type: ignore[arg-type]
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_evaluation_is_total_on_malformed_requests() -> None:
    odd = [(93, b"\x00"), (77, b""), (82, b"\x01\xff")]
    assert names(odd) == ("ALL",)


def test_the_second_pass_adds_host_classes_known_and_the_tests_that_need_them() -> None:
    """Kea's order after the host lookup: host classes join, the first-pass tests run
    again after them, then KNOWN or UNKNOWN, then the tests that depend on those (also
    through member() of such a class)."""
    defined = classes(
        [
            {"name": "lab"},  # joined only by a host record
            {"name": "guest", "test": "not member('lab')"},
            {"name": "known-lab", "test": "member('KNOWN') and member('lab')"},
            {"name": "stranger", "test": "member('UNKNOWN')"},
            {"name": "stranger-guest", "test": "member('stranger') and member('guest')"},
        ]
    )
    req = packets.decoded(packets.discover(mac(1)))
    first = defined.classify(req)
    assert first == ("ALL", "guest")  # KNOWN-dependent tests wait for the host lookup
    assert defined.with_host(req, first, (), known=False) == (
        "ALL",
        "guest",
        "UNKNOWN",
        "stranger",
        "stranger-guest",
    )
    # The host's class joins first, so "not member('lab')" no longer matches.
    assert defined.with_host(req, first, ("lab", "lab"), known=True) == (
        "ALL",
        "lab",
        "KNOWN",
        "known-lab",
    )
    assert defined.with_host(req, first, (), known=True) == ("ALL", "guest", "KNOWN")
