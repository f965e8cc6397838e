"""Request frames built with scapy, the way real clients and relays put them on the wire.

Every builder returns the frame as bytes (what the transport hands to ``codec.decode``).
Options are scapy DHCP option tuples (``("hostname", b"pc")``) or ``(code, bytes)`` pairs;
``extra`` adds options after the standard ones (before ``end``). ``raw_options`` replaces
everything after the fixed BOOTP header (magic cookie included, see ``options_bytes``) for
malformed input.
"""

from __future__ import annotations

import random
from typing import Any

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from etcdhcp.codec import MAGIC_COOKIE, Request, decode, mac_to_bytes

SERVER_IP = "198.18.0.1"
RELAY_IP = "198.18.0.254"
BROADCAST = "255.255.255.255"

# What each real client asks for in option 55 (captured from Debian 12's clients).
DHCLIENT_PRL = [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]
UDHCPC_PRL = [1, 3, 6, 12, 15, 28, 42]
DHCPCD_PRL = [1, 121, 33, 3, 6, 28, 51, 58, 59, 119, 15, 12, 26, 42]


def mac(n: int) -> str:
    """A locally administered unicast MAC numbered ``n``."""
    return f"02:00:5e:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"


def frame(
    msg_type: str | int | None,
    client_mac: str,
    *,
    options: list[Any] | None = None,
    extra: list[Any] | None = None,
    raw_options: bytes | None = None,
    xid: int | None = None,
    ciaddr: str = "0.0.0.0",
    giaddr: str = "0.0.0.0",
    flags: int = 0,
    hops: int = 0,
    op: int = 1,
    htype: int = 1,
    hlen: int = 6,
    sname: bytes = b"",
    file: bytes = b"",
    src_mac: str | None = None,
    dst_mac: str = "ff:ff:ff:ff:ff:ff",
    src_ip: str | None = None,
    dst_ip: str | None = None,
    sport: int | None = None,
    dport: int = 67,
    ip_flags: int = 0,
) -> bytes:
    """One BOOTREQUEST frame. Relayed (``giaddr`` set) frames come from the relay, port 67."""
    relayed = giaddr != "0.0.0.0"
    if src_ip is None:
        src_ip = giaddr if relayed else ciaddr
    if dst_ip is None:
        dst_ip = SERVER_IP if relayed else BROADCAST
    if sport is None:
        sport = 67 if relayed else 68
    bootp = BOOTP(
        op=op,
        htype=htype,
        hlen=hlen,
        hops=hops,
        xid=random.getrandbits(32) if xid is None else xid,
        flags=flags,
        ciaddr=ciaddr,
        giaddr=giaddr,
        chaddr=mac_to_bytes(client_mac) + bytes(10),
        sname=sname,
        file=file,
    )
    if raw_options is not None:
        dhcp: Any = Raw(raw_options)
    else:
        opts = [] if msg_type is None else [("message-type", msg_type)]
        opts += (options or []) + (extra or []) + ["end"]
        dhcp = DHCP(options=opts)
    packet = (
        Ether(src=src_mac or client_mac, dst=dst_mac)
        / IP(src=src_ip, dst=dst_ip, flags=ip_flags)
        / UDP(sport=sport, dport=dport)
        / bootp
        / dhcp
    )
    return bytes(packet)


def discover(client_mac: str, *, requested: str | None = None, **kw: Any) -> bytes:
    opts = kw.pop("options", [])
    if requested:
        opts = [("requested_addr", requested), *opts]
    return frame("discover", client_mac, options=opts, **kw)


def request(
    client_mac: str,
    *,
    requested: str | None = None,
    server_id: str | None = None,
    ciaddr: str = "0.0.0.0",
    **kw: Any,
) -> bytes:
    """SELECTING (server_id + requested), INIT-REBOOT (requested) or RENEWING (ciaddr)."""
    opts: list[Any] = []
    if requested:
        opts.append(("requested_addr", requested))
    if server_id:
        opts.append(("server_id", server_id))
    opts += kw.pop("options", [])
    return frame("request", client_mac, options=opts, ciaddr=ciaddr, **kw)


def renew(client_mac: str, ip: str, **kw: Any) -> bytes:
    """RENEWING: unicast from the leased address to the server (no 50, no 54)."""
    kw.setdefault("dst_ip", SERVER_IP)
    kw.setdefault("dst_mac", "02:00:5e:ff:ff:01")
    return request(client_mac, ciaddr=ip, **kw)


def rebind(client_mac: str, ip: str, **kw: Any) -> bytes:
    """REBINDING: broadcast from the leased address."""
    return request(client_mac, ciaddr=ip, **kw)


def release(client_mac: str, ip: str, server_id: str = SERVER_IP, **kw: Any) -> bytes:
    kw.setdefault("dst_ip", server_id)
    return frame("release", client_mac, options=[("server_id", server_id)], ciaddr=ip, **kw)


def decline(client_mac: str, ip: str, server_id: str = SERVER_IP, **kw: Any) -> bytes:
    opts = [("requested_addr", ip), ("server_id", server_id)]
    return frame("decline", client_mac, options=opts, **kw)


def inform(client_mac: str, ciaddr: str, **kw: Any) -> bytes:
    return frame("inform", client_mac, ciaddr=ciaddr, **kw)


def dhclient_discover(client_mac: str, xid: int = 0x1A2B3C4D) -> bytes:
    """A DISCOVER as ISC dhclient 4.4 sends it: hostname, PRL, no client id, no option 57."""
    return discover(
        client_mac,
        xid=xid,
        options=[("hostname", b"debian"), ("param_req_list", DHCLIENT_PRL)],
    )


def udhcpc_discover(client_mac: str, xid: int = 0x0BADCAFE) -> bytes:
    """A DISCOVER as busybox udhcpc sends it: client id 01+MAC, max size 576, PRL, vendor."""
    return discover(
        client_mac,
        xid=xid,
        options=[
            ("client_id", b"\x01" + mac_to_bytes(client_mac)),
            ("max_dhcp_size", 576),
            ("vendor_class_id", b"udhcp 1.35.0"),
            ("param_req_list", UDHCPC_PRL),
        ],
    )


def dhcpcd_client_id(client_mac: str, iaid: bytes = b"\x5e\x00\x00\x01") -> bytes:
    """RFC 4361 client id: ff + IAID + DUID-LLT (type 1, hardware 1, time, MAC)."""
    return b"\xff" + iaid + b"\x00\x01\x00\x01\x2d\x3f\x10\x20" + mac_to_bytes(client_mac)


def dhcpcd_discover(client_mac: str, xid: int = 0x5EED1234) -> bytes:
    """A DISCOVER as dhcpcd 9 sends it: RFC 4361 client id, max size 1472, PRL, 145."""
    return discover(
        client_mac,
        xid=xid,
        options=[
            ("client_id", dhcpcd_client_id(client_mac)),
            ("max_dhcp_size", 1472),
            ("vendor_class_id", b"dhcpcd-9.4.1:Linux-6.1.0:x86_64:GenuineIntel"),
            ("hostname", b"debian"),
            ("param_req_list", DHCPCD_PRL),
            (145, b"\x01"),
        ],
    )


def options_bytes(*pairs: tuple[int, bytes], end: bool = True) -> bytes:
    """Raw option TLVs (code, value) for hand-made options areas, with the magic cookie."""
    body = b"".join(bytes((code, len(value))) + value for code, value in pairs)
    return MAGIC_COOKIE + body + (b"\xff" if end else b"")


def decoded(raw: bytes) -> Request:
    """``codec.decode`` of a frame, for tests that need a Request."""
    return decode(raw)
