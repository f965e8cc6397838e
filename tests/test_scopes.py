"""scopes: Kea-shaped documents -> scopes, their checks, and choosing a packet's scope."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

import packets
from etcdhcp.codec import decode
from etcdhcp.optiondefs import load_option_defs
from etcdhcp.scopes import (
    Document,
    Link,
    ScopeError,
    ScopeSet,
    assemble,
    flag_scope,
    parse_document,
    parse_option_data,
    parse_shared_network,
    parse_subnet,
)

mac = packets.mac
LINK = Link("eth0", "198.18.0.1")


def subnet(n: int, **extra: Any) -> dict[str, Any]:
    """Scope `n`: 198.18.n.0/24, pool .10-.20, router .1."""
    return {
        "id": n,
        "subnet": f"198.18.{n}.0/24",
        "pools": [{"pool": f"198.18.{n}.10 - 198.18.{n}.20"}],
        "option-data": [{"name": "routers", "data": f"198.18.{n}.1"}],
        **extra,
    }


def doc(n: int, revision: int = 1, **extra: Any) -> Document:
    return Document(f"subnet4/{n}", json.dumps(subnet(n, **extra)).encode(), revision)


# ---- one document ---------------------------------------------------------------------------


def test_a_kea_subnet4_entry() -> None:
    scope = parse_subnet(
        subnet(
            7,
            **{
                "valid-lifetime": 600,
                "min-valid-lifetime": 300,
                "max-valid-lifetime": 900,
                "renew-timer": 100,
                "rebind-timer": 200,
                "relay": {"ip-addresses": ["198.18.7.254"]},
                "interface": "eth1",
                "user-context": {"site": "lab"},
                "comment": "seventh floor",
            },
        )
    )
    assert scope.id == 7 and scope.subnet == ipaddress.IPv4Network("198.18.7.0/24")
    assert [p.text for p in scope.pools] == ["198.18.7.10 - 198.18.7.20"]
    assert (scope.lease_time(None), scope.lease_time(10), scope.lease_time(10**6)) == (
        600,
        300,
        900,
    )
    assert scope.timers(600) == (100, 200)
    assert scope.timers(150) == (100, 131)  # rebind-timer past the lease: 87.5%
    assert scope.relay_addresses == ("198.18.7.254",) and scope.interface == "eth1"
    assert dict(scope.options)[3] == bytes((198, 18, 7, 1))


def test_pools_in_both_kea_forms() -> None:
    scope = parse_subnet({"id": 1, "subnet": "198.18.0.0/23", "pools": [{"pool": "198.18.1.0/25"}]})
    assert scope.size() == 128 and scope.in_pools(int(ipaddress.IPv4Address("198.18.1.127")))


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        (subnet(1, **{"reservations": []}), "subnet4[0].reservations", "not supported"),
        ({**subnet(1), "pools": [{"pool": "198.18.1.10 - 198.18.1.20", "x": 1}]},
         "subnet4[0].pools[0].x", "not supported"),
        ({**subnet(1), "pools": [{"pool": "198.18.2.10 - 198.18.2.20"}]},
         "subnet4[0].pools[0].pool", "outside 198.18.1.0/24"),
        ({**subnet(1), "pools": [{"pool": "198.18.1.30 - 198.18.1.20"}]},
         "subnet4[0].pools[0].pool", "ends before it starts"),
        ({**subnet(1), "pools": [{"pool": "198.18.1.0 - 198.18.1.20"}]},
         "subnet4[0].pools[0].pool", "network or broadcast"),
        ({**subnet(1), "pools": [{"pool": "198.18.1.10 - 198.18.1.20"},
                                 {"pool": "198.18.1.15 - 198.18.1.30"}]},
         "subnet4[0].pools", "overlap"),
        ({**subnet(1), "option-data": [{"name": "routers", "data": "198.18.9.1"}]},
         "subnet4[0].option-data.routers", "outside 198.18.1.0/24"),
        ({**subnet(1), "option-data": [{"name": "no-such-option", "data": "1"}]},
         "subnet4[0].option-data[0]", ""),
        ({**subnet(1), "id": 0}, "subnet4[0].id", "between 1"),
        ({**subnet(1), "id": "one"}, "subnet4[0].id", "not an integer"),
        ({k: v for k, v in subnet(1).items() if k != "id"}, "subnet4[0].id", "required"),
        ({**subnet(1), "subnet": "198.18.1.1/24"}, "subnet4[0].subnet", "not an IPv4 subnet"),
        ({**subnet(1), "valid-lifetime": 100, "min-valid-lifetime": 200},
         "subnet4[0].min-valid-lifetime", "between 1 and 100"),
        ({**subnet(1), "renew-timer": 300, "rebind-timer": 200},
         "subnet4[0].renew-timer", "after rebind-timer"),
        ({**subnet(1), "relay": {"ip-addresses": ["nope"]}},
         "subnet4[0].relay.ip-addresses[0]", "not an IPv4 address"),
        ("not an object", "subnet4[0]", "JSON object"),
    ],
)  # fmt: skip
def test_a_bad_document_is_refused_by_its_json_path(document: Any, path: str, words: str) -> None:
    with pytest.raises(ScopeError) as caught:
        parse_subnet(document)
    assert caught.value.path == path
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_sub_option_spaces_feed_their_option_and_are_never_sent_alone() -> None:
    """Kea's vendor-specific.json: vlanid (2) and dls (3) of space 339 are sub-options of
    43, not time-offset and routers; their always-send does not send 2 or 3 either."""
    defs = load_option_defs([
        {"name": "vendor-encapsulated-options", "code": 43, "type": "empty",
         "encapsulate": "339"},
        {"name": "vlanid", "code": 2, "space": "339", "type": "uint32"},
        {"name": "dls", "code": 3, "space": "339", "type": "string"},
    ])  # fmt: skip
    data = parse_option_data([
        {"name": "vendor-encapsulated-options"},
        {"name": "vlanid", "space": "339", "data": "123", "always-send": True},
        {"name": "dls", "space": "339", "data": "sdlp://x", "always-send": True},
        {"name": "vivso-suboptions", "data": "4491"},
        {"name": "tftp-servers", "space": "vendor-4491", "data": "198.18.0.9",
         "always-send": True},
        {"name": "time-offset", "data": "-3600", "always-send": True},
    ], "option-data", defs)  # fmt: skip
    assert dict(data.options) == {
        43: b"\x02\x04\x00\x00\x00\x7b\x03\x08sdlp://x",
        125: b"\x00\x00\x11\x8b\x06\x02\x04\xc6\x12\x00\x09",
        2: b"\xff\xff\xf1\xf0",
    }
    assert data.always == {2}
    with pytest.raises(ScopeError, match=r"option-data\[0\]"):  # still checked
        parse_option_data([{"name": "vlanid", "space": "339", "data": "x"}], "option-data", defs)


def test_a_shared_network_lends_its_settings_to_its_subnets() -> None:
    first, second = parse_shared_network(
        {
            "name": "floor-2",
            "valid-lifetime": 1200,
            "relay": {"ip-addresses": ["198.18.2.254"]},
            "option-data": [{"name": "domain-name", "data": "floor2.example"}],
            "subnet4": [subnet(2), subnet(3, **{"valid-lifetime": 60})],
        }
    )
    assert (first.valid_lifetime, second.valid_lifetime) == (1200, 60)
    assert first.shared_network == second.shared_network == "floor-2"
    assert second.relay_addresses == ("198.18.2.254",)
    assert dict(second.options)[15] == b"floor2.example"


def test_a_shared_network_refuses_overlapping_or_duplicate_subnets() -> None:
    with pytest.raises(ScopeError, match="overlaps"):
        parse_shared_network(
            {"name": "n", "subnet4": [subnet(2), {**subnet(3), "subnet": "198.18.2.0/23"}]}
        )
    with pytest.raises(ScopeError, match="id is used"):
        parse_shared_network({"name": "n", "subnet4": [subnet(2), {**subnet(3), "id": 2}]})


def test_a_document_must_match_its_key() -> None:
    with pytest.raises(ScopeError, match="does not match the key's id 9"):
        parse_document("subnet4/9", json.dumps(subnet(1)))
    with pytest.raises(ScopeError, match="is not JSON"):
        parse_document("subnet4/1", b"{oops")
    assert parse_document("subnet4/1", json.dumps(subnet(1)))[0].id == 1


# ---- many documents ------------------------------------------------------------------------


def test_assemble_refuses_the_later_of_two_overlapping_documents() -> None:
    inside_one = {**subnet(9), "subnet": "198.18.1.0/25", "pools": [], "option-data": []}
    clash = Document("subnet4/9", json.dumps(inside_one).encode(), 5)
    built = assemble([doc(1, 2), clash, doc(2, 3)], None, {})
    assert [s.id for s in built.scopes.scopes] == [1, 2]
    assert "overlaps 198.18.1.0/24 of scope 1" in built.problems["subnet4/9"]


def test_assemble_keeps_the_previous_version_of_a_broken_document() -> None:
    first = assemble([doc(1, 2)], None, {})
    broken = Document("subnet4/1", b'{"id": 1, "subnet": "nonsense"}', 3)
    second = assemble([broken], None, first.accepted)
    assert [s.subnet for s in second.scopes.scopes] == [ipaddress.IPv4Network("198.18.1.0/24")]
    assert "subnet4/1.subnet" in second.problems["subnet4/1"]
    # Fixed: served again, and the problem is gone. Removed: gone from the view.
    fixed = assemble([doc(1, 4, **{"valid-lifetime": 99})], None, second.accepted)
    assert fixed.scopes.by_id[1].valid_lifetime == 99 and not fixed.problems
    assert len(assemble([], None, fixed.accepted).scopes) == 0


def test_the_flags_scope_wins_over_an_overlapping_document() -> None:
    flags = flag_scope(
        ipaddress.IPv4Network("198.18.1.0/24"),
        ipaddress.IPv4Address("198.18.1.50"),
        ipaddress.IPv4Address("198.18.1.60"),
        ipaddress.IPv4Address("198.18.1.1"),
        [ipaddress.IPv4Address("198.18.1.1")],
        3600,
        "eth0",
    )
    built = assemble([doc(1), doc(2)], flags, {})
    assert [s.id for s in built.scopes.scopes] == [0, 2]
    assert "subnet4/1" in built.problems


# ---- choosing a packet's scope ---------------------------------------------------------------


VIEW = ScopeSet(
    [
        parse_subnet({**subnet(4), "subnet": "198.18.0.0/24", "pools": [],
                      "option-data": []}),
        parse_subnet(subnet(1)),
        parse_subnet(subnet(5, relay={"ip-addresses": ["198.19.99.1"]})),
        *parse_shared_network({"name": "n", "subnet4": [subnet(2), subnet(3)]}),
    ]
)  # fmt: skip


def chosen(raw: bytes, link: Link = LINK) -> int | None:
    scope = VIEW.select(decode(raw), link)
    return None if scope is None else scope.id


def test_a_local_packet_gets_the_scope_of_its_interface() -> None:
    assert chosen(packets.discover(mac(1))) == 4
    assert chosen(packets.discover(mac(1)), Link("eth9", "198.18.2.1")) == 2
    assert chosen(packets.discover(mac(1)), Link("eth9", "203.0.113.1")) is None


def test_a_renewing_client_gets_the_scope_of_its_address() -> None:
    """Renewals come straight to the server, not through the relay: ciaddr says where."""
    on_two = Link("eth2", "198.18.2.1")
    assert chosen(packets.renew(mac(1), "198.18.3.12"), on_two) == 3  # shared network
    assert chosen(packets.renew(mac(1), "198.18.1.12"), on_two) == 1  # a relayed client
    assert chosen(packets.renew(mac(1), "203.0.113.9"), on_two) == 2  # no scope: the link's


def test_a_relayed_packet_by_giaddr_or_relay_address() -> None:
    assert chosen(packets.discover(mac(1), giaddr="198.18.1.254")) == 1
    assert chosen(packets.discover(mac(1), giaddr="198.19.99.1")) == 5  # relay.ip-addresses
    assert chosen(packets.discover(mac(1), giaddr="198.19.7.1")) is None


def test_link_selection_wins_over_subnet_selection_and_giaddr() -> None:
    link_selection = b"\x05\x04" + bytes((198, 18, 3, 0))
    raw = packets.discover(
        mac(1), giaddr="198.18.1.254", extra=[(118, bytes((198, 18, 2, 0))), (82, link_selection)]
    )
    assert chosen(raw) == 3  # RFC 3527
    raw = packets.discover(mac(1), giaddr="198.18.1.254", extra=[(118, bytes((198, 18, 2, 0)))])
    assert chosen(raw) == 2  # RFC 3011


def test_selection_looks_up_a_dict_per_prefix_length_not_every_scope() -> None:
    many = ScopeSet(parse_subnet({"id": i + 1, "subnet": f"10.{i // 256}.{i % 256}.0/24"})
                    for i in range(2000))  # fmt: skip
    assert len(many._by_length) == 1  # one prefix length: one lookup per packet
    raw = packets.discover(mac(1), giaddr="10.7.200.1")
    scope = many.select(decode(raw), LINK)
    assert scope is not None and str(scope.subnet) == "10.7.200.0/24"


def test_shared_network_family_and_pool_membership() -> None:
    two = VIEW.by_id[2]
    assert [s.id for s in VIEW.family(two)] == [2, 3]
    assert [s.id for s in VIEW.family(VIEW.by_id[1])] == [1]
    assert VIEW.in_pools("198.18.3.15") and not VIEW.in_pools("198.18.3.25")
    assert VIEW.owner("198.18.3.25", two) is VIEW.by_id[3]
    assert VIEW.owner("198.18.1.25", two) is None


# Kea 2.2's CfgSubnets4::selectSubnet with client classes: phones-only subnets (64, 70,
# 62) beside open ones; the campus network (64, 65) is selected by its relay address,
# the lan network (70, 71) by its interface, 62 by its own relay address.
CLASSED = ScopeSet(
    [
        *parse_shared_network({"name": "campus", "relay": {"ip-addresses": ["198.19.66.1"]},
                               "subnet4": [subnet(64, **{"client-class": "VoIP"}), subnet(65)]}),
        *parse_shared_network({"name": "lan", "interface": "eth7",
                               "subnet4": [subnet(70, **{"client-class": "VoIP"}), subnet(71)]}),
        parse_subnet(subnet(62, **{"client-class": "VoIP",
                                   "relay": {"ip-addresses": ["198.18.63.254"]}})),
        parse_subnet(subnet(63)),
    ]
)  # fmt: skip
VOIP, PLAIN = ("VoIP",), ()


def classed(raw: bytes, classes: tuple[str, ...], link: Link = LINK) -> int | None:
    scope = CLASSED.select(decode(raw), link, classes)
    return None if scope is None else scope.id


def test_a_relay_address_selects_the_first_of_its_scopes_the_client_may_use() -> None:
    by_relay = packets.discover(mac(1), giaddr="198.19.66.1")
    assert (classed(by_relay, VOIP), classed(by_relay, PLAIN)) == (64, 65)
    # None of the relay's scopes admits a plain client: the giaddr's own subnet may.
    own = packets.discover(mac(1), giaddr="198.18.63.254")
    assert (classed(own, VOIP), classed(own, PLAIN)) == (62, 63)


def test_an_interface_selects_the_first_of_its_scopes_the_client_may_use() -> None:
    lan = Link("eth7", "198.18.71.1")
    local = packets.discover(mac(1))
    assert (classed(local, VOIP, lan), classed(local, PLAIN, lan)) == (70, 71)
    assert classed(local, PLAIN, Link("eth8", "198.18.70.1")) is None  # by its address


@pytest.mark.parametrize(
    "raw",
    [
        packets.discover(mac(1), giaddr="198.18.64.1"),
        packets.discover(mac(1), giaddr="198.18.1.254", extra=[(118, bytes((198, 18, 64, 0)))]),
        packets.discover(mac(1), giaddr="198.18.1.254",
                         extra=[(82, b"\x05\x04" + bytes((198, 18, 64, 0)))]),
        packets.discover(mac(1), extra=[(118, bytes((198, 18, 64, 0)))]),
        packets.renew(mac(1), "198.18.64.12"),
    ],
    ids=["giaddr", "subnet-selection", "link-selection", "local-118", "ciaddr"],
)  # fmt: skip
def test_a_subnet_found_by_an_address_it_holds_is_the_only_candidate(raw: bytes) -> None:
    """Kea drops a client the subnet does not admit, though a sibling (65) would."""
    on_65 = Link("eth2", "198.18.65.1")
    assert classed(raw, VOIP, on_65) == 64
    assert classed(raw, PLAIN, on_65) is None
