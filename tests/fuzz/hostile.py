"""Frames a hostile network sends: malformed requests, and DISCOVERs from forged MACs.

Shared by the property tests (tests/test_fuzz.py), the atheris harness (its seed
corpus) and the end-to-end senders (tests/integration/flood.py), so all three throw
the same kinds of trouble at the server. Frames start from real-client requests built
by ``packets`` (scapy, once per process) and are then changed as bytes, which is fast
enough for tens of thousands of frames: each defect rewrites the BOOTP payload and
``codec.encode_frame`` wraps it again, so IP and UDP lengths always match the payload
and the defect is the only thing wrong.
"""

from __future__ import annotations

import functools
import random
import struct
from collections.abc import Callable, Iterator

import packets
from etcdhcp import codec

BOOTP_AT = 42  # Ethernet (14) + IPv4 without options (20) + UDP (8)
OPTIONS_AT = codec.BOOTP_FIXED_LEN + len(codec.MAGIC_COOKIE)  # 240, in the BOOTP payload
CHADDR_AT = 28
XID_AT = 4
BROADCAST_IP = "255.255.255.255"


@functools.cache
def base_payloads() -> tuple[bytes, ...]:
    """BOOTP payloads of valid requests as real clients and relays send them."""
    mac = packets.mac(1)
    frames = [
        packets.dhclient_discover(mac),
        packets.udhcpc_discover(mac),
        packets.dhcpcd_discover(mac),
        packets.request(mac, requested="198.18.0.20", server_id=packets.SERVER_IP),
        packets.request(mac, requested="198.18.0.21"),
        packets.renew(mac, "198.18.0.22"),
        packets.rebind(mac, "198.18.0.23"),
        packets.release(mac, "198.18.0.24"),
        packets.decline(mac, "198.18.0.25"),
        packets.inform(mac, "198.18.0.26"),
        packets.discover(mac, giaddr="198.18.0.254", extra=[(82, b"\x01\x04port")]),
    ]
    return tuple(frame[BOOTP_AT:] for frame in frames)


def random_mac(rng: random.Random) -> str:
    """A random locally administered unicast MAC, as a forging client makes up."""
    first = (rng.getrandbits(8) & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in (first, *rng.randbytes(5)))


def wrap(payload: bytes, mac: str) -> bytes:
    """A client's broadcast frame to port 67 around a BOOTP payload."""
    return codec.encode_frame(
        payload,
        src_mac=mac,
        dst_mac=codec.BROADCAST_MAC,
        src_ip=codec.ZERO_IP,
        dst_ip=BROADCAST_IP,
        src_port=codec.CLIENT_PORT,
        dst_port=codec.SERVER_PORT,
    )


def with_client(payload: bytes, mac: str, xid: int) -> bytes:
    """`payload` as sent by client `mac` in transaction `xid` (when the header is there)."""
    out = bytearray(payload)
    if len(out) >= CHADDR_AT + 6:
        out[XID_AT : XID_AT + 4] = struct.pack("!I", xid)
        out[CHADDR_AT : CHADDR_AT + 6] = codec.mac_to_bytes(mac)
    return bytes(out)


def _tlv(code: int, value: bytes) -> bytes:
    return bytes((code, len(value))) + value


def _header(payload: bytes) -> bytes:
    """The fixed header and magic cookie, without options."""
    return payload[:OPTIONS_AT]


# ---- defects: each takes a valid payload and returns a payload decode must reject


def truncated_header(rng: random.Random, payload: bytes) -> bytes:
    return payload[: rng.randrange(0, OPTIONS_AT)]


def option_past_end(rng: random.Random, payload: bytes) -> bytes:
    code = rng.choice((12, 55, 61, 82, rng.randrange(1, 255)))
    length = rng.randrange(2, 256)
    return _header(payload) + _tlv(53, b"\x01") + bytes((code, length)) + rng.randbytes(length - 1)


def option_without_length(rng: random.Random, payload: bytes) -> bytes:
    return _header(payload) + _tlv(53, b"\x01") + bytes((rng.randrange(1, 255),))


def no_message_type(rng: random.Random, payload: bytes) -> bytes:
    options = _tlv(12, b"host") + _tlv(55, bytes(range(1, 30))) + _tlv(50, rng.randbytes(4))
    return _header(payload) + options + b"\xff"


def repeated_message_type(rng: random.Random, payload: bytes) -> bytes:
    first, second = rng.choice((1, 3, 7)), rng.choice((1, 3, 4, 7, 8))
    return _header(payload) + _tlv(53, bytes((first,))) + _tlv(53, bytes((second,))) + b"\xff"


def unknown_message_type(rng: random.Random, payload: bytes) -> bytes:
    kind = rng.choice((0, codec.OFFER, codec.ACK, codec.NAK, rng.randrange(9, 256)))
    return _header(payload) + _tlv(53, bytes((kind,))) + b"\xff"


def zero_length_message_type(rng: random.Random, payload: bytes) -> bytes:
    empties = b"".join(_tlv(code, b"") for code in rng.sample((12, 50, 55, 61, 81), 3))
    return _header(payload) + empties + _tlv(53, b"") + b"\xff"


def wrong_cookie(rng: random.Random, payload: bytes) -> bytes:
    cookie = rng.randbytes(4)
    if cookie == codec.MAGIC_COOKIE:
        cookie = b"\x00\x00\x00\x00"
    return payload[:236] + cookie + payload[OPTIONS_AT:]


def long_hardware_address(rng: random.Random, payload: bytes) -> bytes:
    return payload[:2] + bytes((rng.randrange(17, 256),)) + payload[3:]


def reply_from_a_client(rng: random.Random, payload: bytes) -> bytes:
    return bytes((rng.choice((0, 2, 3, 255)),)) + payload[1:]


def non_ethernet_hardware(rng: random.Random, payload: bytes) -> bytes:
    return payload[:1] + bytes((rng.choice((0, 6, 7, 15, 32, 255)),)) + payload[2:]


def giant_parameter_list(rng: random.Random, payload: bytes) -> bytes:
    giant = b"".join(_tlv(55, rng.randbytes(255)) for _ in range(rng.randrange(2, 5)))
    return _header(payload) + giant + b"\xff"  # and no option 53


def bad_overload(rng: random.Random, payload: bytes) -> bytes:
    if rng.random() < 0.5:  # a value that means nothing
        return _header(payload) + _tlv(53, b"\x01") + _tlv(52, bytes((rng.choice((0, 4, 9)),)))
    # 'file' holds the options, and one runs past the end of the field
    header = bytearray(_header(payload))
    header[108:236] = b"\x0c\x7f" + rng.randbytes(126)
    return bytes(header) + _tlv(53, b"\x01") + _tlv(52, b"\x01") + b"\xff"


def garbage(rng: random.Random, payload: bytes) -> bytes:
    return rng.randbytes(rng.randrange(0, 600))


DEFECTS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    f.__name__: f
    for f in (
        truncated_header,
        option_past_end,
        option_without_length,
        no_message_type,
        repeated_message_type,
        unknown_message_type,
        zero_length_message_type,
        wrong_cookie,
        long_hardware_address,
        reply_from_a_client,
        non_ethernet_hardware,
        giant_parameter_list,
        bad_overload,
        garbage,
    )
}


def first_fragment(frame: bytes) -> bytes:
    """The frame as the first fragment of a larger datagram (IP 'more fragments' set)."""
    out = bytearray(frame)
    out[20:22] = struct.pack("!H", 0x2000)
    return bytes(out)


def hostile_frame(rng: random.Random) -> tuple[str, bytes]:
    """(defect name, frame) for one random defect applied to one random valid request."""
    mac = random_mac(rng)
    payload = with_client(rng.choice(base_payloads()), mac, rng.getrandbits(32))
    if rng.random() < 0.05:
        return "fragment", first_fragment(wrap(payload, mac))
    name = rng.choice(list(DEFECTS))
    return name, wrap(DEFECTS[name](rng, payload), mac)


def hostile_frames(count: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """`count` hostile frames, each one that codec.decode rejects (checked here)."""
    rng = random.Random(seed)
    made = 0
    while made < count:
        name, frame = hostile_frame(rng)
        try:
            codec.decode(frame)
        except codec.Malformed:
            made += 1
            yield name, frame


def forged_discovers(count: int, seed: int = 0) -> Iterator[bytes]:
    """`count` valid DISCOVERs, each from its own random MAC (a starvation attack)."""
    rng = random.Random(seed)
    base = base_payloads()[0]
    for _ in range(count):
        mac = random_mac(rng)
        yield wrap(with_client(base, mac, rng.getrandbits(32)), mac)
