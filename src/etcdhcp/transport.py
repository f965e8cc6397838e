"""Sockets, the work queue, the worker pool and per-client ordering.

One receive thread reads an AF_PACKET socket on the served interface (a kernel
filter passes only IPv4 UDP to port 67) and feeds a bounded queue; a pool of
workers handles frames. Two frames of one client (by chaddr) are never handled
at once: while a client is in progress its later frames are parked and handled,
in order, by the worker that holds it (Kea's client race avoidance). Replies
go out on the packet socket when the client has no address yet, and through a
UDP socket on port 67 when the kernel can route them (relay, ciaddr). That UDP
socket also stops the kernel answering unicast requests with ICMP
port-unreachable; its own filter drops everything, so nothing queues on it.

With several serving processes (--dhcp.processes), each one's packet socket joins one
AF_PACKET fanout group, and a three-instruction BPF program picks the member from the
client's hardware address: a client always lands on the same process, so the
per-client ordering and rate limit below still hold.

Floods are met in the receive thread, before any decoding: each client (chaddr) has
a token bucket (`ClientRateLimiter`), and work on existing leases (`work_class`)
has the last quarter of the queue to itself and is taken from the queue first, so
a storm of DISCOVERs from new or forged clients is shed, and waited out, before
renewals, releases and declines are. Next come REQUESTs that complete an exchange,
then new work: past capacity, the server finishes what it started.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from etcdhcp import codec, metrics

log = logging.getLogger(__name__)

ETH_P_IP = 0x0800
SO_ATTACH_FILTER = 26
SO_BINDTODEVICE = 25
PACKET_OUTGOING = 4
RECV_BUFFER = 4 * 1024 * 1024
PARKED_PER_CLIENT = 2  # a client retransmitting faster than we answer: keep the newest
RESERVED_FRACTION = 4  # 1/4 of the queue only takes work on existing leases
# How long the oldest new work may wait before the newest is taken first: the queue
# stands, so the oldest frames' clients are the likeliest to have retried or given up
# (adaptive LIFO; the old ones age out or are displaced). Below it a burst is served
# in order, each frame a little late rather than the first ones very late.
CONGESTED_AFTER = 0.2
MAX_RATE_LIMITED_CLIENTS = 65536  # token buckets kept; the least recently seen go first

# `tcpdump -dd 'ip and udp dst port 67'`: IPv4, UDP, not a later fragment, dport 67.
UDP_DPORT_67 = [
    (0x28, 0, 0, 0x0000000C),
    (0x15, 0, 8, 0x00000800),
    (0x30, 0, 0, 0x00000017),
    (0x15, 0, 6, 0x00000011),
    (0x28, 0, 0, 0x00000014),
    (0x45, 4, 0, 0x00001FFF),
    (0xB1, 0, 0, 0x0000000E),
    (0x48, 0, 0, 0x00000010),
    (0x15, 0, 1, 0x00000043),
    (0x06, 0, 0, 0x00040000),
    (0x06, 0, 0, 0x00000000),
]
DROP_ALL = [(0x06, 0, 0, 0)]

SOL_PACKET = 263
PACKET_FANOUT = 18
PACKET_FANOUT_DATA = 22
PACKET_FANOUT_CBPF = 6
PACKET_IGNORE_OUTGOING = 23
# Run on the frame from its IPv4 header: X = IP header length; A = 4 bytes at
# IP + UDP (8) + chaddr offset (28) + 2, i.e. chaddr[2:6], the bytes that differ
# between NICs; the kernel takes A modulo the number of members.
CHADDR_FANOUT = [(0xB1, 0, 0, 0), (0x40, 0, 0, 38), (0x16, 0, 0, 0)]


def _set_program(
    sock: socket.socket, level: int, option: int, program: list[tuple[int, int, int, int]]
) -> None:
    """Hand a classic BPF program (struct sock_fprog) to a socket option."""
    raw = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(raw)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))
    sock.setsockopt(level, option, fprog)


def attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    """Attach a classic BPF program to a socket as its filter."""
    _set_program(sock, socket.SOL_SOCKET, SO_ATTACH_FILTER, program)


def join_fanout(sock: socket.socket, group: int) -> None:
    """Join a bound packet socket to fanout `group` (0-65535), members chosen by chaddr.

    Every member of a group must be bound to the same interface and protocol.
    """
    sock.setsockopt(SOL_PACKET, PACKET_FANOUT, group | PACKET_FANOUT_CBPF << 16)
    _set_program(sock, SOL_PACKET, PACKET_FANOUT_DATA, CHADDR_FANOUT)


def _bootp_offset(frame: bytes) -> int:
    """Where the BOOTP message starts: after the Ethernet, IPv4 (with options) and UDP headers."""
    return 14 + (frame[14] & 0x0F) * 4 + 8 if len(frame) > 14 else len(frame)


def client_key(frame: bytes) -> bytes:
    """chaddr's first 6 bytes, read without decoding: the unit of per-client ordering."""
    if len(frame) < 15:
        return b""
    offset = _bootp_offset(frame) + 28
    return frame[offset : offset + 6]


EXISTING_LEASE, COMPLETING, NEW_WORK = 0, 1, 2  # work classes, taken in this order


def work_class(frame: bytes) -> int:
    """How urgent a frame is, read from the raw frame.

    EXISTING_LEASE: a REQUEST with ciaddr set (renewing, rebinding), a RELEASE or a
    DECLINE, what a flood of new clients must not crowd out. COMPLETING: any other
    REQUEST, the second half of an exchange whose first half was already paid for;
    under overload, finishing exchanges before starting new ones keeps the rate of
    leases up. NEW_WORK: everything else (DISCOVER, INFORM, garbage), shed first.
    The receive thread runs this for every frame, so it only scans option TLVs for 53.
    """
    bootp = _bootp_offset(frame)
    options = bootp + codec.BOOTP_FIXED_LEN + len(codec.MAGIC_COOKIE)
    if len(frame) < options or frame[bootp + codec.BOOTP_FIXED_LEN : options] != codec.MAGIC_COOKIE:
        return NEW_WORK
    i = options
    while i + 2 < len(frame) and frame[i] != 0xFF:
        if frame[i] == 0:
            i += 1
            continue
        if frame[i] == codec.OPT_MESSAGE_TYPE:
            if frame[i + 1] != 1:
                return NEW_WORK
            kind = frame[i + 2]
            if kind == codec.REQUEST:
                renewing = frame[bootp + 12 : bootp + 16] != bytes(4)  # ciaddr
                return EXISTING_LEASE if renewing else COMPLETING
            return EXISTING_LEASE if kind in (codec.RELEASE, codec.DECLINE) else NEW_WORK
        i += 2 + frame[i + 1]
    return NEW_WORK


class ClientRateLimiter:
    """A token bucket per client: `rate` requests a second, `burst` at once.

    Used by the receive thread only, so it needs no lock. Memory is bounded: past
    MAX_RATE_LIMITED_CLIENTS buckets the least recently seen quarter is forgotten
    (a forgotten client starts again with a full bucket).
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[bytes, tuple[float, float]] = {}  # key -> (tokens, when)

    def allow(self, key: bytes, now: float) -> bool:
        tokens, then = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        allowed = tokens >= 1.0
        # Re-inserted, so the dict stays ordered from least to most recently seen.
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > MAX_RATE_LIMITED_CLIENTS:
            for old in list(self._buckets)[: MAX_RATE_LIMITED_CLIENTS // 4]:
                del self._buckets[old]
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)


class ClientSerializer:
    """Tracks clients in progress; frames of a busy client wait for the worker holding it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parked: dict[bytes, collections.deque] = {}

    def claim(self, key: bytes, item: object) -> bool:
        """True: the client was idle and is now held by the caller. False: item parked."""
        with self._lock:
            parked = self._parked.get(key)
            if parked is None:
                self._parked[key] = collections.deque(maxlen=PARKED_PER_CLIENT)
                return True
            if len(parked) == parked.maxlen:
                metrics.PACKETS_DROPPED.labels(reason="client_busy").inc()
            parked.append(item)
            return False

    def next(self, key: bytes) -> object | None:
        """The client's next parked item (still held), or None and the client is released."""
        with self._lock:
            parked = self._parked[key]
            if parked:
                return parked.popleft()
            del self._parked[key]
            return None


class WorkQueue:
    """The bounded queue between the receive thread and the workers, by work class.

    Classes are taken in order (EXISTING_LEASE, COMPLETING, NEW_WORK). Work on
    existing leases may use the whole queue; the other classes only the first
    1 - 1/RESERVED_FRACTION of it. Each class is first in, first out, except new work
    once its oldest frame has waited `congested_after` seconds: then the newest goes
    first, and a new frame that finds no room takes the place of the oldest one.
    Under overload that answers clients while they still listen, instead of every
    client a second late (measured at 1,000/s offered: 1.1-1.5 times the leases a
    second of a plain FIFO; bench/README.md).
    Items wait in deques; a C `SimpleQueue` carries one wake-up token per item, so a
    worker sleeps in C and neither side runs a Python Condition (the PriorityQueue
    this replaces cost a tenth of the server's CPU in lock hand-offs). One thread
    puts; any number get.
    """

    def __init__(
        self,
        size: int,
        congested_after: float = CONGESTED_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self._congested_after = congested_after
        self._clock = clock
        self._limits = (size, *[size - size // RESERVED_FRACTION] * 2)  # by work class
        self._classes: tuple[collections.deque[object], ...] = tuple(
            collections.deque() for _ in self._limits
        )
        self._stop_markers: collections.deque[object] = collections.deque()
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()

    def __len__(self) -> int:
        return sum(len(items) for items in self._classes)

    def put(self, item: object, work: int) -> object | None:
        """Queue `item` of work class `work`; returns what was left out, if anything:
        `item` itself, or for new work the oldest new work it displaced."""
        entry = (self._clock(), item)
        if len(self) < self._limits[work]:
            self._classes[work].append(entry)
            self._tokens.put(None)
            return None
        if work != NEW_WORK:
            return item
        # In first, then the oldest out, with no token: the count of items stays that of
        # tokens, and the class is never empty while a worker holds a token for it.
        waiting = self._classes[NEW_WORK]
        waiting.append(entry)
        return waiting.popleft()[1]

    def put_last(self, item: object) -> None:
        """Queue `item` behind everything, whatever the bound (the stop markers)."""
        self._stop_markers.append(item)
        self._tokens.put(None)

    def get(self) -> object:
        """The next item, the most urgent class first; blocks while there is none."""
        self._tokens.get()
        # Every token stands for one queued item, but another worker may empty a class
        # between a check and a pop, so pop and move on.
        for work, items in enumerate(self._classes):
            try:
                if work == NEW_WORK and self._clock() - items[0][0] > self._congested_after:
                    return items.pop()[1]
                return items.popleft()[1]
            except IndexError:
                continue
        try:
            return self._stop_markers.popleft()
        except IndexError:
            raise AssertionError("a wake-up token without an item") from None  # pragma: no cover


@dataclass(frozen=True)
class _Frame:
    received: float
    data: bytes


class Transport:
    """The served interface: receive loop, bounded queue, workers, and the two send paths."""

    def __init__(
        self,
        interface: str,
        *,
        handle: Callable[[bytes], None],
        workers: int,
        queue_size: int,
        deadline: float,
        client_rate: float = 0.0,
        client_burst: int = 1,
        fanout: int | None = None,
    ) -> None:
        """`client_rate` requests/s per client (0: unlimited) after a burst of `client_burst`;
        `fanout`: the fanout group shared with the other serving processes, if any."""
        self.interface = interface
        self._handle = handle
        self._deadline = deadline
        # (client key, frame) entries; None, queued last, stops a worker.
        self._queue = WorkQueue(queue_size)
        self._limiter = ClientRateLimiter(client_rate, client_burst) if client_rate > 0 else None
        self._serializer = ClientSerializer()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._workers = workers
        self.last_receive_loop = time.monotonic()

        # Protocol 0 receives nothing until bound: the filter is in place before any frame.
        self._packet = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self._packet.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        # Our own replies to relays go to port 67 too: without this (Linux 4.20+), the
        # kernel would copy each one back to us, to be skipped in the receive loop.
        with contextlib.suppress(OSError):
            self._packet.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        if fanout is None:
            attach_filter(self._packet, UDP_DPORT_67)
            self._packet.bind((interface, ETH_P_IP))
        else:
            # Only a bound socket can join a group; until it has, it sees every frame,
            # which another member is handling: it drops them all meanwhile.
            attach_filter(self._packet, DROP_ALL)
            self._packet.bind((interface, ETH_P_IP))
            join_fanout(self._packet, fanout)
            attach_filter(self._packet, UDP_DPORT_67)
        self._packet.settimeout(0.5)
        self.mac = self._packet.getsockname()[4].hex(":")

        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        attach_filter(self._udp, DROP_ALL)
        self._udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._udp.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self._udp.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, interface.encode())
        self._udp.bind(("0.0.0.0", 67))

    def start(self) -> None:
        receiver = threading.Thread(target=self._receive_loop, name="receive", daemon=True)
        self._threads.append(receiver)
        for i in range(self._workers):
            self._threads.append(
                threading.Thread(target=self._work_loop, name=f"worker-{i}", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop(self, grace: float = 5.0) -> None:
        """Stop receiving, let queued and in-flight frames finish (bounded), close sockets."""
        self._stopping.set()
        for _ in range(self._workers):
            self._queue.put_last(None)
        end = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        self._packet.close()
        self._udp.close()

    def alive(self, within: float) -> bool:
        """True when the receive loop went round in the last `within` seconds (a working
        one does at least every half second: its socket's timeout)."""
        return time.monotonic() - self.last_receive_loop < within

    # ---- sending

    def send_frame(self, frame: bytes) -> None:
        self._packet.send(frame)

    def send_datagram(self, payload: bytes, ip: str, port: int) -> None:
        self._udp.sendto(payload, (ip, port))

    # ---- threads

    def _receive_loop(self) -> None:
        while not self._stopping.is_set():
            self.last_receive_loop = time.monotonic()
            try:
                data, address = self._packet.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                log.exception("receive failed")
                time.sleep(0.1)
                continue
            if address[2] == PACKET_OUTGOING:
                continue  # our own replies, seen by the packet socket
            self._dispatch(_Frame(time.monotonic(), data))

    def _dispatch(self, frame: _Frame) -> None:
        key = client_key(frame.data)
        if self._limiter is not None and not self._limiter.allow(key, frame.received):
            metrics.PACKETS_DROPPED.labels(reason="rate_limited").inc()
            return
        if not self._serializer.claim(key, frame):
            return
        left_out = self._queue.put((key, frame), work_class(frame.data))
        if left_out is None:
            metrics.QUEUE_DEPTH.inc()  # inc and dec, not set(len): no stale value from a race
        else:
            # No room (the rest is kept for existing leases), or displaced by newer work:
            # that client's frames go, and the client is free again.
            dropped_key = left_out[0]  # type: ignore[index]
            metrics.PACKETS_DROPPED.labels(reason="queue_full").inc()
            while self._serializer.next(dropped_key) is not None:
                metrics.PACKETS_DROPPED.labels(reason="queue_full").inc()

    def _work_loop(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            metrics.QUEUE_DEPTH.dec()  # taken: an idle server shows 0
            key, frame = entry  # type: ignore[misc]
            item: object | None = frame
            while isinstance(item, _Frame):
                self._run(item)
                item = self._serializer.next(key)

    def _run(self, frame: _Frame) -> None:
        waited = time.monotonic() - frame.received
        metrics.QUEUE_WAIT.observe(waited)
        if waited > self._deadline:
            metrics.PACKETS_DROPPED.labels(reason="deadline").inc()
            return
        try:
            self._handle(frame.data)
        except Exception:  # a bug must cost one packet, never a worker
            metrics.PACKETS_DROPPED.labels(reason="internal_error").inc()
            log.exception("handling a frame failed")
