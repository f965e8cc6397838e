"""Many DHCP clients behind one relay agent, recording every answer they get.

Runs in a lab namespace whose address is the relay's (giaddr) and, like a relay with
one helper address per server, sends each client's DISCOVER and REQUEST to every
server. Renewals go to the server that granted the lease and, when it stays silent,
to every server (rebinding); now and then a bound client reboots and discovers again.
One JSON line per exchange goes to --out, with the time the answer came, so a test
can tell who got which address from whom and when:

    {"t": ..., "op": "dora", "mac": ..., "result": "ack", "ip": ..., "server": ...,
     "offers": {server: yiaddr, ...}}

Only the standard library: the test reads the file while this runs. Bounded by
--duration and stopped early by creating --stop-file.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import socket
import struct
import sys
import threading
import time
from pathlib import Path

MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6
NAMES = {OFFER: "offer", ACK: "ack", NAK: "nak"}
OFFER_WAIT = 2.0  # seconds for the first OFFER
OFFER_GATHER = 0.2  # then this long for the other servers' OFFERs
ANSWER_WAIT = 2.0  # seconds for an ACK or NAK
RENEW_WAIT = 1.0  # seconds for the granting server before rebinding to all of them
REBOOT_SHARE = 0.3  # of bound clients' turns: forget the server and DISCOVER again
THREADS = 24  # clients in flight at once: a few wait out a fault, the rest go on


def bootrequest(
    xid: int, mac: bytes, giaddr: str, options: list[tuple[int, bytes]], ciaddr: str = "0.0.0.0"
) -> bytes:
    """A relayed BOOTREQUEST (hops 1, giaddr set) with the given options."""
    zero = bytes(4)
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1, 1, 6, 1, xid, 0, 0,
        socket.inet_aton(ciaddr), zero, zero, socket.inet_aton(giaddr),
        mac.ljust(16, b"\0"), b"", b"",
    )  # fmt: skip
    body = b"".join(bytes((code, len(value))) + value for code, value in options)
    return header + MAGIC + body + b"\xff"


def parse_reply(data: bytes) -> dict | None:
    """xid, message type, yiaddr and server identifier of a BOOTREPLY (None if not one)."""
    if len(data) < 240 or data[0] != 2 or data[236:240] != MAGIC:
        return None
    options: dict[int, bytes] = {}
    i = 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        code, length = data[i], data[i + 1]
        options[code] = data[i + 2 : i + 2 + length]
        i += 2 + length
    if 53 not in options:
        return None
    return {
        "xid": struct.unpack("!I", data[4:8])[0],
        "type": options[53][0],
        "yiaddr": socket.inet_ntoa(data[16:20]),
        "server": socket.inet_ntoa(options[54]) if len(options.get(54, b"")) == 4 else None,
    }


class Relay:
    """One UDP socket on giaddr:67; replies are handed to the exchange waiting for the xid."""

    def __init__(self, giaddr: str) -> None:
        self.giaddr = giaddr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((giaddr, 67))
        self.sock.settimeout(0.5)
        self._waiting: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self) -> None:
        while not self.stopping.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            reply = parse_reply(data)
            if reply is None:
                continue
            with self._lock:
                waiting = self._waiting.get(reply["xid"])
            if waiting is not None:
                waiting.put((time.time(), reply))

    def exchange(
        self, packet: bytes, xid: int, servers: list[str], wait: float, gather: float = 0.0
    ) -> list[tuple[float, dict]]:
        """Send `packet` to each server; the replies within `wait` (then `gather` more)."""
        replies: queue.Queue = queue.Queue()
        with self._lock:
            self._waiting[xid] = replies
        try:
            for server in servers:
                self.sock.sendto(packet, (server, 67))
            got: list[tuple[float, dict]] = []
            deadline = time.monotonic() + wait
            while (left := deadline - time.monotonic()) > 0:
                try:
                    got.append(replies.get(timeout=left))
                except queue.Empty:
                    break
                deadline = min(deadline, time.monotonic() + gather)
            return got
        finally:
            with self._lock:
                del self._waiting[xid]


class Clients:
    """The simulated clients: their state and the exchanges they make."""

    def __init__(self, relay: Relay, servers: list[str], out: Path) -> None:
        self.relay = relay
        self.servers = servers
        self.out = open(out, "a", buffering=1)  # noqa: SIM115 - closed by main()
        self._write = threading.Lock()
        self.leases: dict[str, tuple[str, str]] = {}  # mac -> (ip, server)

    def record(self, t: float, **event: object) -> None:
        line = json.dumps({"t": round(t, 3), **event}, sort_keys=True)
        with self._write:
            self.out.write(line + "\n")

    def step(self, mac: str) -> None:
        """A bound client renews, or reboots and discovers again (and is offered its lease,
        by every server, so any of them may get its REQUEST); others discover."""
        if mac in self.leases and random.random() >= REBOOT_SHARE:
            self.renew(mac)
        else:
            self.dora(mac)

    def dora(self, mac: str) -> None:
        chaddr = bytes.fromhex(mac.replace(":", ""))
        xid = random.getrandbits(32)
        params = (55, bytes((1, 3, 6, 51)))
        discover = bootrequest(xid, chaddr, self.relay.giaddr, [(53, bytes((DISCOVER,))), params])
        answers = self.relay.exchange(discover, xid, self.servers, OFFER_WAIT, OFFER_GATHER)
        offers = {r["server"]: r["yiaddr"] for _, r in answers if r["type"] == OFFER}
        if not offers:
            self.record(time.time(), op="dora", mac=mac, result="no_offer")
            return
        server, ip = next((r["server"], r["yiaddr"]) for _, r in answers if r["type"] == OFFER)
        options = [
            (53, bytes((REQUEST,))),
            (50, socket.inet_aton(ip)),
            (54, socket.inet_aton(server)),
            params,
        ]
        request = bootrequest(xid, chaddr, self.relay.giaddr, options)
        answers = self.relay.exchange(request, xid, self.servers, ANSWER_WAIT)
        self._conclude("dora", mac, ip, answers, offers=offers, chosen=server)

    def renew(self, mac: str) -> None:
        chaddr = bytes.fromhex(mac.replace(":", ""))
        ip, server = self.leases[mac]
        xid = random.getrandbits(32)
        request = bootrequest(xid, chaddr, self.relay.giaddr, [(53, bytes((REQUEST,)))], ip)
        answers = self.relay.exchange(request, xid, [server], RENEW_WAIT)
        if not answers:  # T2 passed, in the client's terms: ask every server
            answers = self.relay.exchange(request, xid, self.servers, ANSWER_WAIT)
        self._conclude("renew", mac, ip, answers)

    def _conclude(self, op: str, mac: str, ip: str, answers: list, **extra: object) -> None:
        final = [(t, r) for t, r in answers if r["type"] in (ACK, NAK)]
        if not final:
            self.record(time.time(), op=op, mac=mac, result="timeout", ip=ip, **extra)
            return
        t, reply = final[0]
        result = NAMES[reply["type"]]
        if result == "ack":
            self.leases[mac] = (reply["yiaddr"], reply["server"])
        else:
            self.leases.pop(mac, None)
        self.record(
            t, op=op, mac=mac, result=result, ip=reply["yiaddr"], server=reply["server"], **extra
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--giaddr", required=True)
    parser.add_argument("--servers", required=True, help="comma-separated server addresses")
    parser.add_argument("--macs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=40.0, help="exchanges per second, in all")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stop-file", type=Path)
    args = parser.parse_args(argv)
    relay = Relay(args.giaddr)
    clients = Clients(relay, args.servers.split(","), args.out)
    macs = [
        f"02:4a:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}:01"
        for i in range(args.macs)
    ]
    end = time.monotonic() + args.duration

    def over() -> bool:
        stop = args.stop_file is not None and args.stop_file.exists()
        return stop or time.monotonic() >= end

    def work(mine: list[str]) -> None:
        interval = THREADS / args.rate
        due = time.monotonic()
        while not over():
            for mac in mine:
                if over():
                    return
                clients.step(mac)
                due = max(due + interval, time.monotonic() - interval)
                time.sleep(max(0.0, due - time.monotonic()))

    threads = [
        threading.Thread(target=work, args=(macs[k::THREADS],), daemon=True) for k in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.duration + 30)
    relay.stopping.set()
    clients.out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
