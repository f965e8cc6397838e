"""A scriptable DHCP client for messages the real clients do not send on demand.

Runs inside a lab client namespace (`python rawclient.py COMMAND ...`) and prints one
JSON object: the replies it saw. Used for DECLINE, INFORM, a RELEASE from an unknown
MAC, and a DORA whose offered address the test wants to decline.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

from dhcpprobe import IFACE, first_reply
from scapy.all import conf, sendp
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

conf.verb = 0
conf.checkIPaddr = False
TYPES = {2: "offer", 5: "ack", 6: "nak"}


def _frame(
    mac: str, xid: int, options: list, ciaddr: str = "0.0.0.0", dst: str = "255.255.255.255"
):
    chaddr = bytes.fromhex(mac.replace(":", ""))
    return (
        Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
        / IP(src=ciaddr, dst=dst)
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=chaddr, xid=xid, ciaddr=ciaddr)
        / DHCP(options=[*options, "end"])
    )


def _exchange(frame, xid: int, timeout: float) -> dict | None:
    """Send a frame and return the first reply with our xid (None if silence)."""
    reply = first_reply(frame, xid, timeout, "udp and (port 68 or port 67)")
    if reply is None:
        return None
    options = {}
    for opt in reply[DHCP].options:
        if isinstance(opt, tuple):
            key, *values = opt
            options[str(key)] = [v.hex() if isinstance(v, bytes) else v for v in values]
    msg_type = dict(o for o in reply[DHCP].options if isinstance(o, tuple)).get("message-type")
    return {
        "type": TYPES.get(msg_type, str(msg_type)),
        "yiaddr": reply[BOOTP].yiaddr,
        "ciaddr": reply[BOOTP].ciaddr,
        "ip_dst": reply[IP].dst,
        "options": options,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["dora", "release", "decline", "inform"])
    parser.add_argument("--mac", required=True)
    parser.add_argument("--ip")
    parser.add_argument("--server", default="198.18.0.1")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    xid = random.getrandbits(32)
    result: dict = {}
    if args.command == "dora":
        offer = _exchange(_frame(args.mac, xid, [("message-type", "discover")]), xid, args.timeout)
        result["offer"] = offer
        if offer and offer["type"] == "offer":
            request = _frame(
                args.mac,
                xid,
                [
                    ("message-type", "request"),
                    ("requested_addr", offer["yiaddr"]),
                    ("server_id", args.server),
                ],
            )
            result["ack"] = _exchange(request, xid, args.timeout)
    elif args.command == "release":
        frame = _frame(
            args.mac,
            xid,
            [("message-type", "release"), ("server_id", args.server)],
            ciaddr=args.ip,
            dst=args.server,
        )
        sendp(frame, iface=IFACE)
    elif args.command == "decline":
        options = [
            ("message-type", "decline"),
            ("requested_addr", args.ip),
            ("server_id", args.server),
        ]
        sendp(_frame(args.mac, xid, options), iface=IFACE)
    elif args.command == "inform":
        options = [("message-type", "inform"), ("param_req_list", [1, 3, 6, 51])]
        frame = _frame(args.mac, xid, options, ciaddr=args.ip, dst=args.server)
        result["reply"] = _exchange(frame, xid, args.timeout)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
