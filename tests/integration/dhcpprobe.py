"""Send one DHCPDISCOVER and print the reply's raw options, for byte-for-byte comparisons.

Runs inside a lab client namespace (`python dhcpprobe.py --mac M --prl 1,3,6`) and prints
one JSON object: {"type": reply message type, "options": {code: hex}} (null when nothing
answered). The options are cut from the reply's bytes here, not from scapy's decoding,
so what is compared is exactly what the server sent; several instances of one code are
concatenated (RFC 3396).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

from scapy.all import AsyncSniffer, conf, sendp
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet

conf.verb = 0
IFACE = "eth0"
COOKIE = b"\x63\x82\x53\x63"


def raw_options(bootp: bytes) -> dict[int, bytes]:
    """The options field of a BOOTP message (236 fixed bytes, the cookie, then TLVs)."""
    if bootp[236:240] != COOKIE:
        raise ValueError("no DHCP magic cookie")
    out: dict[int, bytes] = {}
    i = 240
    while i < len(bootp) and bootp[i] != 255:
        if bootp[i] == 0:
            i += 1
            continue
        code, length = bootp[i], bootp[i + 1]
        out[code] = out.get(code, b"") + bootp[i + 2 : i + 2 + length]
        i += 2 + length
    return out


def first_reply(
    frame: Packet, xid: int, timeout: float, capture: str = "udp and port 68"
) -> Packet | None:
    """Send `frame` from IFACE; the first BOOTREPLY with `xid` that `capture` (a BPF
    filter) lets through within `timeout` seconds, or None. Shared with rawclient.py."""
    sniffer = AsyncSniffer(
        iface=IFACE,
        filter=capture,
        lfilter=lambda p: p.haslayer(BOOTP) and p[BOOTP].op == 2 and p[BOOTP].xid == xid,
        count=1,
    )
    sniffer.start()
    time.sleep(0.3)  # the sniffer socket must be open before the reply can come
    sendp(frame, iface=IFACE)
    sniffer.join(timeout)
    if sniffer.running:
        sniffer.stop()
    return sniffer.results[0] if sniffer.results else None


def discover(mac: str, prl: list[int], timeout: float) -> dict | None:
    xid = random.getrandbits(32)
    frame = (
        Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")), xid=xid, flags=0x8000)
        / DHCP(options=[("message-type", "discover"), ("param_req_list", prl), "end"])
    )
    reply = first_reply(frame, xid, timeout)
    if reply is None:
        return None
    options = raw_options(bytes(reply[BOOTP]))
    return {
        "type": options.get(53, b"\x00")[0],
        "options": {str(k): v.hex() for k, v in options.items()},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mac", required=True)
    parser.add_argument("--prl", required=True, help="comma-separated option codes")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    prl = [int(c) for c in args.prl.split(",") if c]
    print(json.dumps(discover(args.mac, prl, args.timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
