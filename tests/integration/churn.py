"""A stream of DORAs, RELEASEs and DECLINEs from many MACs, run in a lab client namespace.

    PYTHONPATH=src:tests python churn.py --seconds 60 [--macs 100] [--seed N]

Each round picks a MAC, does DISCOVER/OFFER/REQUEST/ACK (broadcast flag set, so
replies reach this socket whatever MAC it poses as), then RELEASEs the address
(40%), DECLINEs it (15%) or keeps it. Replies that never come (the server is down
or restarting) just end the round. Bounded by --seconds and --rounds; prints one
JSON object of counts.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import signal
import socket
import sys
import threading
import time

import packets
from etcdhcp import codec
from fuzz import hostile

IFACE = "eth0"
REPLY_TIMEOUT = 0.5


def wait_reply(sock: socket.socket, xid: int, timeout: float) -> tuple[int, str] | None:
    """(message type, yiaddr) of the first reply with our xid, or None."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            frame = sock.recv(2048)
        except TimeoutError:
            return None
        bootp = frame[hostile.BOOTP_AT :]
        if frame[36:38] != b"\x00\x44" or len(bootp) < 244 or bootp[0] != 2:
            continue  # not a reply to port 68
        if int.from_bytes(bootp[4:8], "big") != xid:
            continue
        for code, value in codec.parse_options(bootp[hostile.OPTIONS_AT :]):
            if code == codec.OPT_MESSAGE_TYPE and len(value) == 1:
                return value[0], socket.inet_ntoa(bootp[16:20])
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--rounds", type=int, default=100_000)
    parser.add_argument("--macs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    macs = [hostile.random_mac(rng) for _ in range(args.macs)]
    counts: collections.Counter[str] = collections.Counter()
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sock.bind((IFACE, 0))
    flags = codec.BROADCAST_FLAG
    ends = time.monotonic() + args.seconds
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # finish the round, print counts
    for _ in range(args.rounds):
        if time.monotonic() > ends or stop.is_set():
            break
        mac, xid = rng.choice(macs), rng.getrandbits(32)
        sock.send(packets.discover(mac, xid=xid, flags=flags))
        offer = wait_reply(sock, xid, REPLY_TIMEOUT)
        if offer is None or offer[0] != codec.OFFER:
            counts["no_offer"] += 1
            continue
        ip = offer[1]
        request = packets.request(
            mac, requested=ip, server_id=packets.SERVER_IP, xid=xid, flags=flags
        )
        sock.send(request)
        answer = wait_reply(sock, xid, REPLY_TIMEOUT)
        if answer is None or answer[0] != codec.ACK:
            counts["no_ack" if answer is None else "nak"] += 1
            continue
        counts["ack"] += 1
        roll = rng.random()
        if roll < 0.40:
            sock.send(packets.release(mac, ip, xid=xid))
            counts["release"] += 1
        elif roll < 0.55:
            sock.send(packets.decline(mac, ip, xid=xid))
            counts["decline"] += 1
    print(json.dumps(dict(counts)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
