"""options: which options a reply carries, and in which order (no etcd, no socket)."""

from __future__ import annotations

import packets
from etcdhcp import codec
from etcdhcp.codec import ACK, NAK, OFFER, decode
from etcdhcp.options import assemble
from etcdhcp.scopes import parse_subnet

SERVER = packets.SERVER_IP
mac = packets.mac
SCOPE = parse_subnet(
    {
        "id": 1,
        "subnet": "198.18.0.0/24",
        "valid-lifetime": 3600,
        "pools": [
            {"pool": "198.18.0.10 - 198.18.0.19"},
            {
                "pool": "198.18.0.20 - 198.18.0.29",
                "option-data": [{"name": "domain-name", "data": "pool.example"}],
            },
        ],
        "option-data": [
            {"name": "routers", "data": "198.18.0.1"},
            {"name": "domain-name-servers", "data": "198.18.0.3, 198.18.0.4"},
            {"name": "domain-name", "data": "lan.example"},
            {"name": "ntp-servers", "data": "198.18.0.5"},
            {"name": "interface-mtu", "data": "9000", "always-send": True},
        ],
    }
)


def codes(raw: bytes, yiaddr: str = "198.18.0.10", kind: int = OFFER) -> list[int]:
    return [code for code, _ in assemble(decode(raw), kind, SERVER, SCOPE, yiaddr, 3600)]


def prl(*asked: int) -> bytes:
    return packets.discover(mac(1), options=[("param_req_list", list(asked))])


def test_the_parameter_request_list_order_with_lease_times_first() -> None:
    # 53, 54, the lease times; then 6, 42, 15 as asked; then what is sent unasked.
    assert codes(prl(6, 42, 15)) == [53, 54, 51, 58, 59, 6, 42, 15, 1, 3, 26]


def test_the_subnet_mask_always_comes_before_the_router() -> None:
    """RFC 2132 §3.3, whatever the client's list says (issue 17, item 1)."""
    assert codes(prl(3, 1, 6)).index(1) < codes(prl(3, 1, 6)).index(3)
    assert codes(prl(3, 6)) == [53, 54, 51, 58, 59, 1, 3, 6, 15, 26]
    assert codes(prl(3))[5:7] == [1, 3]


def test_options_not_asked_for_are_not_sent_unless_basic_or_always_send() -> None:
    sent = codes(prl(1))
    assert 42 not in sent  # ntp-servers: configured, not asked
    assert {1, 3, 6, 15, 26} <= set(sent)  # Kea's basic options, and always-send MTU


def test_a_pool_option_wins_over_the_scope_option() -> None:
    req = decode(prl(15))
    in_pool = dict(assemble(req, OFFER, SERVER, SCOPE, "198.18.0.25", 3600))
    assert in_pool[15] == b"pool.example"
    elsewhere = dict(assemble(req, OFFER, SERVER, SCOPE, "198.18.0.15", 3600))
    assert elsewhere[15] == b"lan.example"


def test_lease_times_and_echoes() -> None:
    agent = b"\x01\x03abc"
    client_id = b"\x01" + codec.mac_to_bytes(mac(1))
    raw = packets.discover(mac(1), options=[("client_id", client_id)], extra=[(82, agent)])
    options = assemble(decode(raw), ACK, SERVER, SCOPE, "198.18.0.10", 3600)
    values = dict(options)
    assert values[51] == codec.u32_option(3600)
    assert values[58] == codec.u32_option(1800)  # T1 = 50%
    assert values[59] == codec.u32_option(3150)  # T2 = 87.5%
    assert options[-2:] == ((61, client_id), (82, agent))


def test_subnet_selection_is_echoed_and_an_empty_agent_option_is_not() -> None:
    # RFC 3011 §3, and Kea 2.2 (test_kea_classes.py): 118 comes back whether asked or
    # not, also in a NAK; Kea leaves out an option 82 without sub-options.
    selection = bytes((198, 18, 0, 0))
    raw = packets.discover(mac(1), extra=[(118, selection), (82, b"")])
    for kind, yiaddr in ((OFFER, "198.18.0.10"), (NAK, "0.0.0.0")):
        options = assemble(decode(raw), kind, SERVER, SCOPE, yiaddr, 3600)
        assert options[-1] == (118, selection)
        assert 82 not in dict(options)


def test_a_nak_carries_its_message_and_no_configuration() -> None:
    options = assemble(decode(prl(1, 3)), NAK, SERVER, SCOPE, "0.0.0.0", None, "no")
    assert [code for code, _ in options] == [53, 54, 56]
    assert dict(options)[56] == b"no"


def test_inform_gets_configuration_without_lease_times() -> None:
    sent = [c for c, _ in assemble(decode(prl(1, 3)), ACK, SERVER, SCOPE, "0.0.0.0", None)]
    assert not {51, 58, 59} & set(sent) and sent[:4] == [53, 54, 1, 3]
