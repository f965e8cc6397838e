"""codec: real frames built with scapy in, wire bytes out (checked by scapy)."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

import packets
from etcdhcp import codec
from etcdhcp.codec import (
    ACK,
    BOOTP_FIXED_LEN,
    MAGIC_COOKIE,
    NAK,
    OFFER,
    Malformed,
    Reply,
    decode,
    encode_bootp,
    encode_frame,
    encode_option,
    parse_options,
)

MAC = "02:00:5e:00:00:2a"
SERVER = packets.SERVER_IP


def reply_options(payload: bytes) -> list[tuple[int, bytes]]:
    """The options of an encoded BOOTP payload, in wire order (END excluded)."""
    assert payload[BOOTP_FIXED_LEN : BOOTP_FIXED_LEN + 4] == MAGIC_COOKIE
    return parse_options(payload[BOOTP_FIXED_LEN + 4 :])


def malformed_reason(raw: bytes) -> str:
    with pytest.raises(Malformed) as info:
        decode(raw)
    return info.value.reason


# ---- decoding every client message type ---------------------------------------------


@pytest.mark.parametrize(
    ("raw", "msg_type", "ciaddr"),
    [
        (packets.discover(MAC, xid=7), codec.DISCOVER, "0.0.0.0"),
        (
            packets.request(MAC, requested="198.18.0.10", server_id=SERVER, xid=7),
            codec.REQUEST,
            "0.0.0.0",
        ),
        (packets.decline(MAC, "198.18.0.10", xid=7), codec.DECLINE, "0.0.0.0"),
        (packets.release(MAC, "198.18.0.10", xid=7), codec.RELEASE, "198.18.0.10"),
        (packets.inform(MAC, "198.18.0.77", xid=7), codec.INFORM, "198.18.0.77"),
    ],
    ids=["discover", "request", "decline", "release", "inform"],
)
def test_decode_each_message_type(raw: bytes, msg_type: int, ciaddr: str) -> None:
    req = decode(raw)
    assert req.message_type == msg_type
    assert req.type_name == codec.MESSAGE_TYPE_NAMES[msg_type]
    assert req.op == 1 and req.htype == 1 and req.hlen == 6
    assert req.mac == MAC
    assert req.xid == 7
    assert req.ciaddr == ciaddr
    assert req.giaddr == "0.0.0.0" and not req.relayed
    assert req.src_mac == MAC


def test_decode_request_fields_and_link_facts() -> None:
    raw = packets.request(
        MAC,
        requested="198.18.0.11",
        server_id=SERVER,
        flags=codec.BROADCAST_FLAG,
        options=[("hostname", b"box\x00")],
    )
    req = decode(raw)
    assert req.requested_ip == "198.18.0.11"
    assert req.server_id == SERVER
    assert req.broadcast
    assert req.hostname == "box"
    assert req.src_ip == "0.0.0.0"
    assert req.dst_ip == "255.255.255.255"
    assert req.client_id is None
    assert req.relay_agent_info is None


def test_decode_relayed_request_keeps_giaddr_and_option_82() -> None:
    agent = b"\x01\x06eth0/1\x02\x04\x0a\x0b\x0c\x0d"
    raw = packets.discover(MAC, giaddr=packets.RELAY_IP, hops=1, extra=[(82, agent)])
    req = decode(raw)
    assert req.relayed
    assert req.giaddr == packets.RELAY_IP
    assert req.hops == 1
    assert req.src_ip == packets.RELAY_IP and req.dst_ip == SERVER
    assert req.relay_agent_info == agent


# ---- every Malformed reason -----------------------------------------------------------


def _udp67(payload: bytes, **ip: object) -> bytes:
    return bytes(
        Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255", **ip)
        / UDP(sport=68, dport=67)
        / Raw(payload)
    )


def test_truncated() -> None:
    whole = bytes(BOOTP(chaddr=b"\x02" * 6, options=MAGIC_COOKIE))
    assert malformed_reason(_udp67(whole[:200])) == "truncated"
    # The header without the cookie is still too short.
    assert malformed_reason(_udp67(whole[:BOOTP_FIXED_LEN])) == "truncated"


def test_not_bootrequest() -> None:
    assert malformed_reason(packets.discover(MAC, op=2)) == "not_bootrequest"


def test_bad_cookie() -> None:
    raw = packets.frame(None, MAC, raw_options=b"\x63\x82\x53\x64" + b"\x35\x01\x01\xff")
    assert malformed_reason(raw) == "bad_cookie"


@pytest.mark.parametrize(("htype", "hlen"), [(6, 6), (1, 16), (32, 20)])
def test_unsupported_hardware(htype: int, hlen: int) -> None:
    assert malformed_reason(packets.discover(MAC, htype=htype, hlen=hlen)) == "unsupported_hardware"


@pytest.mark.parametrize(
    "options",
    [
        packets.options_bytes((53, b"\x01"))[:-1] + b"\x0c\x10ab",  # runs past the end
        packets.options_bytes((53, b"\x01"))[:-1] + b"\x0c",  # no length byte
        packets.options_bytes((53, b"\x01"), (52, b"\x04")),  # overload value 4
        packets.options_bytes((53, b"\x01"), (52, b"\x01\x02")),  # overload of length 2
    ],
    ids=["past_end", "no_length", "overload_value", "overload_length"],
)
def test_bad_options(options: bytes) -> None:
    assert malformed_reason(packets.frame(None, MAC, raw_options=options)) == "bad_options"


def test_bad_options_inside_overloaded_file_field() -> None:
    raw = packets.frame(
        None,
        MAC,
        raw_options=packets.options_bytes((53, b"\x01"), (52, b"\x01")),
        file=b"\x0c\x7fshort",
    )
    assert malformed_reason(raw) == "bad_options"


def test_no_message_type() -> None:
    raw = packets.frame(None, MAC, options=[("hostname", b"x")])
    assert malformed_reason(raw) == "no_message_type"


@pytest.mark.parametrize(
    "options",
    [
        packets.options_bytes((53, b"\x02")),  # OFFER from a client
        packets.options_bytes((53, b"\x05")),  # ACK from a client
        packets.options_bytes((53, b"\x09")),  # unknown
        packets.options_bytes((53, b"")),  # empty
        packets.options_bytes((53, b"\x01"), (53, b"\x01")),  # RFC 3396: length 2
    ],
    ids=["offer", "ack", "unknown", "empty", "repeated"],
)
def test_bad_message_type(options: bytes) -> None:
    assert malformed_reason(packets.frame(None, MAC, raw_options=options)) == "bad_message_type"


def test_not_dhcp() -> None:
    to_client_port = packets.discover(MAC, dport=68)
    icmp = bytes(Ether(src=MAC) / IP(src="198.18.0.9", dst=SERVER) / ICMP())
    arp = bytes(Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=SERVER))
    for raw in (to_client_port, icmp, arp):
        assert malformed_reason(raw) == "not_dhcp"


def test_fragment() -> None:
    assert malformed_reason(packets.discover(MAC, ip_flags=1)) == "fragment"  # MF


# ---- options: overload, concatenation, limits -------------------------------------------


def test_overload_pulls_options_from_file_then_sname() -> None:
    options = packets.options_bytes((53, b"\x03"), (52, b"\x03"), (12, b"ab"))
    file_ = bytes((55, 3, 1, 3, 6, 12, 2)) + b"cd" + b"\xff"
    sname = bytes((12, 2)) + b"ef" + bytes((50, 4, 198, 18, 0, 12, 255))
    req = decode(packets.frame(None, MAC, raw_options=options, file=file_, sname=sname))
    assert req.message_type == codec.REQUEST
    assert req.param_request_list == bytes((1, 3, 6))
    # RFC 3396 order: options field, then file, then sname.
    assert req.hostname == "abcdef"
    assert req.requested_ip == "198.18.0.12"


def test_overload_file_only_ignores_sname() -> None:
    options = packets.options_bytes((53, b"\x01"), (52, b"\x01"))
    req = decode(
        packets.frame(
            None,
            MAC,
            raw_options=options,
            file=bytes((12, 3)) + b"pxe\xff",
            sname=bytes((50, 4, 198, 18, 0, 13, 255)),
        )
    )
    assert req.hostname == "pxe"
    assert req.requested_ip is None


def test_overload_sname_only_leaves_file_alone() -> None:
    options = packets.options_bytes((53, b"\x01"), (52, b"\x02"))
    raw = packets.frame(
        None,
        MAC,
        raw_options=options,
        file=b"\x0c\x7fnot options",  # would be malformed if read as options
        sname=bytes((12, 3)) + b"pxe\xff",
    )
    assert decode(raw).hostname == "pxe"


def test_overload_option_counts_only_in_the_options_field() -> None:
    """RFC 2131 §4.1: option 52 belongs in the options field; one in `file` is not obeyed."""
    options = packets.options_bytes((53, b"\x01"), (52, b"\x01"))
    file_ = bytes((52, 1, 3, 12, 3)) + b"pxe\xff"
    raw = packets.frame(
        None, MAC, raw_options=options, file=file_, sname=bytes((50, 4, 198, 18, 0, 13, 255))
    )
    req = decode(raw)
    assert req.hostname == "pxe"
    assert req.requested_ip is None
    assert req.options[52] == b"\x01\x03"  # RFC 3396: the instances concatenated


def test_without_overload_file_and_sname_are_not_options() -> None:
    req = decode(packets.discover(MAC, file=bytes((12, 3)) + b"pxe\xff"))
    assert req.hostname is None


def test_rfc3396_concatenation_of_split_options() -> None:
    long_value = bytes(range(256)) + bytes(44)  # 300 bytes: needs two instances
    agent = b"\x01\x04abcd\x02\x02xy"
    raw = packets.discover(
        MAC,
        extra=[(82, agent[:4]), (77, long_value[:255]), (82, agent[4:]), (77, long_value[255:])],
    )
    req = decode(raw)
    assert req.relay_agent_info == agent
    assert req.options[77] == long_value


@pytest.mark.parametrize(
    ("option", "expected"),
    [(None, 576), (300, 576), (576, 576), (1500, 1500), (65535, 65535)],
)
def test_max_message_size_floor(option: int | None, expected: int) -> None:
    options = [] if option is None else [("max_dhcp_size", option)]
    assert decode(packets.discover(MAC, options=options)).max_message_size == expected


def test_max_message_size_of_wrong_length_is_ignored() -> None:
    assert decode(packets.discover(MAC, extra=[(57, b"\x05\xdc\x00")])).max_message_size == 576


def test_pad_options_are_skipped() -> None:
    options = MAGIC_COOKIE + b"\x00\x00\x35\x01\x01\x00\x0c\x01z\xff\x0c\x01q"
    req = decode(packets.frame(None, MAC, raw_options=options))
    assert req.message_type == codec.DISCOVER
    assert req.hostname == "z"  # nothing after END counts


# ---- what real clients send ------------------------------------------------------------


def test_dhclient_discover() -> None:
    req = decode(packets.dhclient_discover(MAC))
    assert req.message_type == codec.DISCOVER
    assert req.xid == 0x1A2B3C4D
    assert req.mac == MAC
    assert req.param_request_list == bytes(packets.DHCLIENT_PRL)
    assert req.client_id is None
    assert req.max_message_size == 576
    assert req.hostname == "debian"
    assert not req.broadcast


def test_udhcpc_discover() -> None:
    req = decode(packets.udhcpc_discover(MAC))
    assert req.client_id == b"\x01" + codec.mac_to_bytes(MAC)
    assert req.max_message_size == 576
    assert req.param_request_list == bytes(packets.UDHCPC_PRL)
    assert req.options[60] == b"udhcp 1.35.0"


def test_dhcpcd_discover() -> None:
    req = decode(packets.dhcpcd_discover(MAC))
    client_id = req.client_id
    assert client_id is not None
    assert client_id[0] == 0xFF  # RFC 4361: IAID + DUID follow
    assert client_id[5:9] == b"\x00\x01\x00\x01"  # DUID-LLT, Ethernet
    assert client_id.endswith(codec.mac_to_bytes(MAC))
    assert req.max_message_size == 1472
    assert req.options[145] == b"\x01"


# ---- encoding -----------------------------------------------------------------------


def _reply(
    req: codec.Request,
    options: list[tuple[int, bytes]],
    message_type: int = OFFER,
    yiaddr: str = "198.18.0.10",
) -> Reply:
    """A reply with 53 and 54 first, then `options` in the given order."""
    head = [(53, bytes((message_type,))), (54, codec.ip_option(SERVER))]
    return Reply(message_type, req, yiaddr=yiaddr, options=tuple(head + options))


def test_encode_bootp_pads_to_300_and_copies_header_fields() -> None:
    req = decode(packets.discover(MAC, xid=0xDEADBEEF, giaddr=packets.RELAY_IP, hops=1))
    payload = encode_bootp(_reply(req, [(1, codec.ip_option("255.255.255.0"))]), SERVER)
    assert len(payload) == codec.BOOTP_MIN_LEN
    bootp = BOOTP(payload)
    assert bootp.op == 2
    assert bootp.xid == 0xDEADBEEF
    assert bootp.yiaddr == "198.18.0.10"
    assert bootp.siaddr == SERVER
    assert bootp.giaddr == packets.RELAY_IP
    assert bootp.hops == 0
    assert bootp.chaddr[:6] == codec.mac_to_bytes(MAC)
    assert reply_options(payload) == [
        (53, bytes((OFFER,))),
        (54, codec.ip_option(SERVER)),
        (1, codec.ip_option("255.255.255.0")),
    ]


def test_encode_bootp_writes_next_server_sname_and_file() -> None:
    req = decode(packets.discover(MAC))
    reply = replace(
        _reply(req, []), siaddr="198.18.0.69", sname=b"tftp.example", file=b"pxelinux.0"
    )
    payload = encode_bootp(reply, SERVER)
    assert payload[20:24] == bytes((198, 18, 0, 69))  # siaddr
    assert payload[44:108] == b"tftp.example" + bytes(52)  # sname
    assert payload[108:236] == b"pxelinux.0" + bytes(118)  # file
    bootp = BOOTP(payload)
    assert (bootp.siaddr, bootp.sname, bootp.file) == (
        "198.18.0.69",
        b"tftp.example".ljust(64, b"\0"),
        b"pxelinux.0".ljust(128, b"\0"),
    )
    assert reply_options(payload) == [(53, bytes((OFFER,))), (54, codec.ip_option(SERVER))]


def test_encode_bootp_nak_has_no_siaddr_sname_or_file() -> None:
    req = decode(packets.request(MAC, requested="198.18.0.10"))
    nak = replace(
        _reply(req, [], message_type=NAK, yiaddr="0.0.0.0"),
        siaddr="198.18.0.69",
        sname=b"tftp.example",
        file=b"x" * 200,  # not even checked: a NAK carries no boot fields
    )
    payload = encode_bootp(nak, SERVER)
    assert payload[20:24] == bytes(4)
    assert payload[44:236] == bytes(192)
    assert reply_options(payload)[0] == (53, bytes((NAK,)))


@pytest.mark.parametrize(
    ("fields", "fits"),
    [
        ({"sname": b"s" * 63}, True),
        ({"sname": b"s" * 64}, False),
        ({"file": b"f" * 127}, True),
        ({"file": b"f" * 128}, False),
    ],
    ids=["sname_63", "sname_64", "file_127", "file_128"],
)
def test_encode_bootp_refuses_a_boot_field_without_room_for_its_nul(
    fields: dict[str, bytes], fits: bool
) -> None:
    reply = replace(_reply(decode(packets.discover(MAC)), []), **fields)
    if fits:
        ((name, value),) = fields.items()
        at = 44 if name == "sname" else 108
        assert encode_bootp(reply, SERVER)[at : at + len(value) + 1] == value + b"\0"
    else:
        with pytest.raises(ValueError, match="holds"):
            encode_bootp(reply, SERVER)


# 576 bytes leave 576 - 28 (IP, UDP) - 236 (BOOTP) - 4 (cookie) = 308 for options. These
# take 15 bytes (53, 54, 51), 6 (1), 252 (15), 102 (119), 28 (252) and 10 (42).
LEASE = (51, codec.u32_option(3600))
MASK = (1, codec.ip_option("255.255.255.0"))
DOMAIN = (15, b"a" * 250)
SEARCH = (119, b"s" * 100)
WPAD = (252, b"http://198.18.0.1/wpad.dat")
NTP = (42, codec.ip_option("198.18.0.2", "198.18.0.3"))
HEAD = bytes((53, 1, OFFER))
SERVER_ID = bytes((54, 4)) + codec.ip_option(SERVER)
LEASE_TLV = bytes((51, 4, 0, 0, 0x0E, 0x10))
MASK_TLV = bytes((1, 4, 255, 255, 255, 0))
DOMAIN_TLV = bytes((15, 250)) + b"a" * 250
SEARCH_TLV = bytes((119, 100)) + b"s" * 100
WPAD_TLV = bytes((252, 26)) + b"http://198.18.0.1/wpad.dat"
NTP_TLV = bytes((42, 8, 198, 18, 0, 2, 198, 18, 0, 3))


def options_field(payload: bytes) -> bytes:
    """The options field of a payload up to its END (the padding to 300 bytes cut off)."""
    return payload[BOOTP_FIXED_LEN + 4 :].rstrip(b"\0")


def _encode(reply: Reply) -> tuple[bytes, list[int]]:
    dropped: list[int] = []
    payload = encode_bootp(reply, SERVER, dropped.append)
    assert len(payload) <= reply.request.max_message_size - codec.IP_UDP_HEADERS
    return payload, dropped


def test_overload_into_file_only() -> None:
    """What does not fit the options field goes to `file`; 52 = 1 follows 53."""
    req = decode(packets.discover(MAC))
    payload, dropped = _encode(_reply(req, [LEASE, MASK, DOMAIN, SEARCH]))
    assert dropped == []
    assert options_field(payload) == (
        HEAD + b"\x34\x01\x01" + SERVER_ID + LEASE_TLV + MASK_TLV + DOMAIN_TLV + b"\xff"
    )
    assert payload[108:236] == SEARCH_TLV + b"\xff" + bytes(128 - 103)
    assert payload[44:108] == bytes(64)  # sname not declared, not used


def test_overload_into_file_then_sname_keeps_wire_order() -> None:
    """252 does not fit what `file` has left, so it opens `sname`; 42 would still fit in
    `file`, but follows 252 so that the aggregate buffer keeps the wire order."""
    req = decode(packets.discover(MAC))
    payload, dropped = _encode(_reply(req, [LEASE, MASK, DOMAIN, SEARCH, WPAD, NTP]))
    assert dropped == []
    assert options_field(payload) == (
        HEAD + b"\x34\x01\x03" + SERVER_ID + LEASE_TLV + MASK_TLV + DOMAIN_TLV + b"\xff"
    )
    assert payload[108:236] == SEARCH_TLV + b"\xff" + bytes(128 - 103)
    assert payload[44:108] == WPAD_TLV + NTP_TLV + b"\xff" + bytes(64 - 39)


def test_overload_into_sname_when_the_reply_has_a_boot_file() -> None:
    req = decode(packets.discover(MAC))
    reply = replace(_reply(req, [LEASE, MASK, DOMAIN, WPAD, NTP]), file=b"ipxe.efi")
    payload, dropped = _encode(reply)
    assert dropped == []
    assert options_field(payload) == (
        HEAD
        + b"\x34\x01\x02"
        + SERVER_ID
        + LEASE_TLV
        + MASK_TLV
        + DOMAIN_TLV
        + WPAD_TLV  # 28 of the 31 bytes left
        + b"\xff"
    )
    assert payload[44:108] == NTP_TLV + b"\xff" + bytes(64 - 11)
    assert payload[108:236] == b"ipxe.efi" + bytes(120)


def test_an_option_that_fits_nowhere_is_left_out_and_counted() -> None:
    """`file` is taken and 119 is too long for `sname`: 119 is left out, the smaller
    option after it still goes in, and no overload is declared (nothing went to sname)."""
    req = decode(packets.discover(MAC))
    reply = replace(_reply(req, [LEASE, MASK, DOMAIN, SEARCH, NTP]), file=b"pxelinux.0")
    payload, dropped = _encode(reply)
    assert dropped == [119]
    assert options_field(payload) == (
        HEAD + SERVER_ID + LEASE_TLV + MASK_TLV + DOMAIN_TLV + NTP_TLV + b"\xff"
    )
    assert payload[44:108] == bytes(64)


def test_without_free_fields_the_last_options_are_left_out() -> None:
    req = decode(packets.discover(MAC))
    reply = replace(
        _reply(req, [LEASE, MASK, DOMAIN, SEARCH, WPAD]), sname=b"boot", file=b"boot.efi"
    )
    payload, dropped = _encode(reply)
    assert dropped == [119]  # 252 still fits after 15
    assert options_field(payload) == (
        HEAD + SERVER_ID + LEASE_TLV + MASK_TLV + DOMAIN_TLV + WPAD_TLV + b"\xff"
    )


def test_option_82_and_the_other_fixed_options_stay_in_the_options_field() -> None:
    """Relays strip their option 82 from the options field only: it stays there, last,
    when the options before it move to `file`."""
    agent = b"\x01" + bytes((60,)) + b"c" * 60
    dns = (6, codec.ip_option(*(f"198.18.1.{i}" for i in range(40))))  # 162 bytes
    options = [MASK, dns, SEARCH, (61, b"\x01" + bytes(6)), (82, agent)]
    payload, dropped = _encode(_reply(decode(packets.discover(MAC)), options))
    assert dropped == []
    assert reply_options(payload) == [
        (53, bytes((OFFER,))),
        (52, b"\x01"),
        (54, codec.ip_option(SERVER)),
        MASK,
        dns,
        (61, b"\x01" + bytes(6)),
        (82, agent),
    ]
    assert payload[108:236] == SEARCH_TLV + b"\xff" + bytes(128 - 103)


def test_no_overload_when_option_52_itself_does_not_fit() -> None:
    agent = b"\x01\xff" + bytes(255) + b"\x02\x22" + bytes(34)  # 293 bytes: 297 on the wire
    req = decode(packets.discover(MAC))
    payload, dropped = _encode(_reply(req, [NTP, (82, agent)]))
    assert dropped == [42]
    assert len(options_field(payload)) == 3 + 6 + 297 + 1  # 1 byte short of 308
    assert [code for code, _ in reply_options(payload)] == [53, 54, 82, 82]


def test_max_message_size_576_against_1500() -> None:
    """A 300-byte option (two RFC 3396 instances, kept together) fits 1500 bytes but
    neither the options field nor `file` of a 576-byte reply."""
    long_value = bytes(range(256)) + bytes(44)
    split = bytes((77, 255)) + long_value[:255] + bytes((77, 45)) + long_value[255:]
    options = [MASK, (77, long_value), NTP]

    small = decode(packets.discover(MAC))
    payload, dropped = _encode(_reply(small, options))
    assert dropped == [77]
    assert options_field(payload) == HEAD + SERVER_ID + MASK_TLV + NTP_TLV + b"\xff"
    assert payload[44:236] == bytes(192)

    big = decode(packets.discover(MAC, options=[("max_dhcp_size", 1500)]))
    payload, dropped = _encode(_reply(big, options))
    assert dropped == []
    assert options_field(payload) == HEAD + SERVER_ID + MASK_TLV + split + NTP_TLV + b"\xff"
    assert [len(v) for c, v in reply_options(payload) if c == 77] == [255, 45]


def test_an_overloaded_reply_reads_back_with_the_decoder() -> None:
    """The decoder's aggregate buffer (options, file, sname) gives back every option."""
    options = [LEASE, MASK, DOMAIN, SEARCH, WPAD, NTP, (61, b"\x01" + bytes(6))]
    req = decode(packets.discover(MAC))
    payload = bytearray(encode_bootp(_reply(req, options), SERVER))
    payload[0] = 1  # as a BOOTREQUEST
    payload[BOOTP_FIXED_LEN + 6] = codec.REQUEST  # 53's value
    back = codec.decode_bootp(bytes(payload))
    assert back.options == {
        53: bytes((codec.REQUEST,)),
        52: b"\x03",
        54: codec.ip_option(SERVER),
        **dict(options),
    }


@settings(max_examples=300, deadline=None, database=None)
@given(
    options=st.lists(
        st.tuples(
            st.integers(1, 254).filter(lambda c: c not in (52, 53, 54, 51, 61, 82)),
            st.binary(max_size=300),
        ),
        max_size=12,
        unique_by=lambda option: option[0],
    ),
    max_size=st.sampled_from([576, 1000, 1500]),
    boot=st.sampled_from([{}, {"file": b"boot.efi"}, {"sname": b"s", "file": b"f"}]),
)
def test_every_option_is_sent_whole_or_reported_dropped(
    options: list[tuple[int, bytes]], max_size: int, boot: dict[str, bytes]
) -> None:
    req = decode(packets.discover(MAC, options=[("max_dhcp_size", max_size)]))
    reply = replace(_reply(req, options), **boot)
    raw, dropped = _encode(reply)
    payload = bytearray(raw)
    payload[0] = 1  # read back as a BOOTREQUEST
    payload[BOOTP_FIXED_LEN + 6] = codec.REQUEST
    back = codec.decode_bootp(bytes(payload)).options
    back.pop(52, None)
    sent = {code: value for code, value in options if code not in dropped}
    assert back == {53: bytes((codec.REQUEST,)), 54: codec.ip_option(SERVER), **sent}
    assert len(set(dropped)) == len(dropped)


def test_encode_bootp_keeps_mandatory_options_when_nothing_else_fits() -> None:
    agent = b"\x01\xfd" + b"a" * 253  # a 255-byte option 82
    req = decode(packets.discover(MAC))
    payload, dropped = _encode(_reply(req, [(15, b"x" * 200), (82, agent)]))
    assert dropped == [15]  # 202 bytes: more than `file` holds
    assert [code for code, _ in reply_options(payload)] == [53, 54, 82]


def test_encode_option_splits_long_values() -> None:
    value = bytes(range(256)) * 2 + b"tail"  # 516 bytes
    encoded = encode_option(77, value)
    pairs = parse_options(encoded)
    assert [len(v) for _, v in pairs] == [255, 255, 6]
    assert all(code == 77 for code, _ in pairs)
    assert b"".join(v for _, v in pairs) == value
    assert encode_option(80, b"") == b"\x50\x00"
    assert encode_option(1, b"\xff\xff\xff\x00") == b"\x01\x04\xff\xff\xff\x00"


@pytest.mark.parametrize("extra", [b"", b"z"], ids=["even", "odd"])
def test_encode_frame_has_correct_checksums(extra: bytes) -> None:
    req = decode(packets.dhclient_discover(MAC))
    payload = encode_bootp(_reply(req, [(12, b"host" + extra)], message_type=ACK), SERVER) + extra
    raw = encode_frame(
        payload,
        src_mac="02:00:5e:ff:ff:01",
        dst_mac=MAC,
        src_ip=SERVER,
        dst_ip="198.18.0.10",
    )
    pkt = Ether(raw)
    assert pkt.src == "02:00:5e:ff:ff:01" and pkt.dst == MAC and pkt.type == 0x0800
    ip, udp = pkt[IP], pkt[UDP]
    assert (ip.version, ip.ihl, ip.ttl, ip.proto) == (4, 5, 64, 17)
    assert ip.src == SERVER and ip.dst == "198.18.0.10"
    assert ip.len == 20 + 8 + len(payload)
    assert (udp.sport, udp.dport, udp.len) == (67, 68, 8 + len(payload))
    assert bytes(udp.payload) == payload

    # Recompute both checksums with scapy and compare.
    ip_sum, udp_sum = ip.chksum, udp.chksum
    clone = Ether(raw)
    del clone[IP].chksum
    del clone[UDP].chksum
    rebuilt = Ether(bytes(clone))
    assert rebuilt[IP].chksum == ip_sum
    assert rebuilt[UDP].chksum == udp_sum
    assert udp_sum != 0

    bootp = pkt[BOOTP]
    assert bootp.op == 2 and bootp.xid == req.xid and bootp.yiaddr == "198.18.0.10"


def test_encode_frame_custom_ports() -> None:
    raw = encode_frame(
        b"x" * 300,
        src_mac="02:00:5e:ff:ff:01",
        dst_mac="ff:ff:ff:ff:ff:ff",
        src_ip=SERVER,
        dst_ip="255.255.255.255",
        src_port=67,
        dst_port=67,
    )
    udp = Ether(raw)[UDP]
    assert (udp.sport, udp.dport) == (67, 67)
    assert struct.unpack("!H", raw[14 + 20 + 6 : 14 + 20 + 8])[0] == udp.chksum


def test_round_trip_reply_decodes_with_scapy_dhcp() -> None:
    """scapy's own DHCP dissector reads what we encode (the clients' view)."""
    req = decode(packets.udhcpc_discover(MAC))
    reply = _reply(
        req,
        [
            (1, codec.ip_option("255.255.255.0")),
            (51, codec.u32_option(60)),
            (61, req.client_id or b""),
        ],
    )
    raw = encode_frame(
        encode_bootp(reply, SERVER),
        src_mac="02:00:5e:ff:ff:01",
        dst_mac=MAC,
        src_ip=SERVER,
        dst_ip="198.18.0.10",
    )
    from scapy.layers.dhcp import DHCP

    opts = {o[0]: o[1:] for o in Ether(raw)[DHCP].options if isinstance(o, tuple)}
    assert opts["message-type"] == (OFFER,)
    assert opts["server_id"] == (SERVER,)
    assert opts["subnet_mask"] == ("255.255.255.0",)
    assert opts["lease_time"] == (60,)
    assert opts["client_id"] == (req.client_id,)


@pytest.mark.parametrize(
    "text",
    [
        "198.18.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.256",
        " 1.2.3.4",
        "",
        "a.b.c.d",
        "1.2.3.4\x00",
    ],
)
def test_ip_int_reads_what_ipaddress_reads_and_refuses_the_rest(text: str) -> None:
    try:
        expected: int | None = int(ipaddress.IPv4Address(text))
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            codec.ip_int(text)
    else:
        assert codec.ip_int(text) == expected
