"""Send DHCPDISCOVERs as a client or as a relay agent would; print the first reply.

Runs inside a lab namespace (`python relayprobe.py --iface eth0 ...`), with scapy.
As a client (the default) it broadcasts from --iface like any host on that LAN (with
the broadcast flag, so a relay agent broadcasts the answer back). As a relay agent
(--giaddr G --server S) it sends from G, port 67, to S:67 with hops 1 and option 82
(circuit-id, plus sub-option 5 link selection with --link-selection, RFC 3527), and
option 118 with --subnet-selection (RFC 3011); the answer comes back to G:67.
--every T resends the DISCOVER (same xid, as a client retransmits) until an answer
or --timeout: the time of the first answer tells when a server started serving.

Prints one JSON object, {"t": epoch seconds of the answer, "sent": DISCOVERs sent,
"type", "yiaddr", "giaddr", "options": {code: hex}}, or null when nothing answered.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import socket
import sys
import time
from typing import Any

from dhcpprobe import raw_options
from scapy.all import AsyncSniffer, conf, get_if_hwaddr, send, sendp
from scapy.error import Scapy_Exception
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

conf.verb = 0
CIRCUIT_ID = b"relayprobe"


def agent_info(link_selection: str | None) -> bytes:
    """Option 82's value: circuit-id (1), and link selection (5) when given."""
    value = bytes((1, len(CIRCUIT_ID))) + CIRCUIT_ID
    if link_selection:
        value += bytes((5, 4)) + socket.inet_aton(link_selection)
    return value


def discover(args: argparse.Namespace, mac: str, xid: int) -> Any:
    options: list[Any] = [("message-type", "discover")]
    if args.subnet_selection:
        options.append(("subnet-selection", args.subnet_selection))
    if args.giaddr:
        options.append(("relay_agent_information", agent_info(args.link_selection)))
    bootp = BOOTP(
        chaddr=bytes.fromhex(mac.replace(":", "")),
        xid=xid,
        flags=0 if args.giaddr else 0x8000,
        hops=1 if args.giaddr else 0,
        giaddr=args.giaddr or "0.0.0.0",
    ) / DHCP(options=[*options, "end"])
    if args.giaddr:
        return IP(src=args.giaddr, dst=args.server) / UDP(sport=67, dport=67) / bootp
    return (
        Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / bootp
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iface", default="eth0")
    parser.add_argument("--mac", help="chaddr (default: the interface's own MAC)")
    parser.add_argument("--giaddr", help="act as a relay agent with this address")
    parser.add_argument("--server", help="the server a relay agent sends to")
    parser.add_argument("--link-selection", help="option 82 sub-option 5 (relay only)")
    parser.add_argument("--subnet-selection", help="option 118")
    parser.add_argument("--every", type=float, default=0.0, help="resend every T seconds")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.giaddr and not args.server:
        parser.error("--giaddr needs --server")
    mac = args.mac or get_if_hwaddr(args.iface)
    xid = random.getrandbits(32)
    frame = discover(args, mac, xid)
    sniffer = AsyncSniffer(
        iface=args.iface,
        filter="udp and dst port 67" if args.giaddr else "udp and port 68",
        lfilter=lambda p: p.haslayer(BOOTP) and p[BOOTP].op == 2 and p[BOOTP].xid == xid,
        count=1,
    )
    sniffer.start()
    time.sleep(0.3)  # the sniffer socket must be open before the reply can come
    deadline = time.monotonic() + args.timeout
    sent = 0
    while True:
        send(frame) if args.giaddr else sendp(frame, iface=args.iface)
        sent += 1
        wait = min(args.every or args.timeout, deadline - time.monotonic())
        sniffer.join(max(wait, 0))
        # The thread's end, not `running` (cleared before `results` is set), says it saw one.
        if not sniffer.thread.is_alive() or time.monotonic() >= deadline:
            break
    with contextlib.suppress(Scapy_Exception):  # it may finish on its own meanwhile
        sniffer.stop()
    sniffer.join()
    if not sniffer.results:
        print(json.dumps(None))
        return 0
    reply = sniffer.results[0]
    options = raw_options(bytes(reply[BOOTP]))
    found = {
        "t": float(reply.time),
        "sent": sent,
        "type": options.get(53, b"\x00")[0],
        "yiaddr": reply[BOOTP].yiaddr,
        "giaddr": reply[BOOTP].giaddr,
        "options": {str(k): v.hex() for k, v in options.items()},
    }
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
