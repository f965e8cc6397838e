"""transport: per-client ordering, the kernel filter and Transport on a real veth pair.

The veth pair lives in a private network namespace; the test thread enters it with
setns(2) only while it creates sockets (a socket stays in the namespace it was made in).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import ICMP, IP, UDP, IPOption_NOP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

import packets
from etcdhcp import codec, metrics, transport
from etcdhcp.etcd import Etcd
from etcdhcp.pipeline import Pipeline
from etcdhcp.scopes import Link, ScopeSet
from etcdhcp.transport import (
    COMPLETING,
    DROP_ALL,
    EXISTING_LEASE,
    NEW_WORK,
    ClientRateLimiter,
    ClientSerializer,
    Transport,
    attach_filter,
    client_key,
    work_class,
)
from stores import make_store, scope_of

CLONE_NEWNET = 0x40000000
SERVER_MAC = "02:00:5e:c8:00:01"
CLIENT_MAC = "02:00:5e:c8:00:02"
SERVER_IP = "198.18.200.1"
_libc = ctypes.CDLL(None, use_errno=True)


def dropped(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value("etcdhcp_packets_dropped_total", {"reason": reason})
    return value or 0.0


# ---- pure parts ----------------------------------------------------------------------------


def test_client_key_reads_chaddr_from_a_real_frame() -> None:
    mac = packets.mac(0x1234)
    raw = packets.discover(mac)
    assert client_key(raw) == codec.mac_to_bytes(mac)
    assert client_key(raw) == codec.decode(raw).chaddr[:6]
    # With IP options the BOOTP header starts later; the key still is chaddr.
    with_options = bytes(
        Ether(src=mac)
        / IP(src="0.0.0.0", dst="255.255.255.255", options=[IPOption_NOP()] * 4)
        / UDP(sport=68, dport=67)
        / Raw(raw[14 + 20 + 8 :])
    )
    assert Ether(with_options)[IP].ihl == 6
    assert client_key(with_options) == codec.mac_to_bytes(mac)
    assert client_key(b"\x00" * 10) == b""


def test_client_serializer_parks_in_order_and_drops_the_oldest() -> None:
    s = ClientSerializer()
    busy = dropped("client_busy")
    assert s.claim(b"A", 1) is True
    assert s.claim(b"B", 10) is True  # another client is independent
    assert s.claim(b"A", 2) is False
    assert s.claim(b"A", 3) is False
    assert dropped("client_busy") == busy
    assert s.claim(b"A", 4) is False  # parking holds two: 2 is dropped
    assert dropped("client_busy") == busy + 1
    assert s.next(b"A") == 3
    assert s.claim(b"A", 5) is False  # still held by the worker
    assert s.next(b"A") == 4
    assert s.next(b"A") == 5
    assert s.next(b"A") is None  # released
    assert s.claim(b"A", 6) is True
    assert s.next(b"B") is None
    assert s.next(b"A") is None


def test_drop_all_filter_keeps_a_udp_socket_empty() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as filtered,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as open_,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        attach_filter(filtered, DROP_ALL)
        for s in (filtered, open_):
            s.bind(("127.0.0.1", 0))
            s.settimeout(0.3)
            sender.sendto(b"hello", s.getsockname())
        assert open_.recv(100) == b"hello"
        with pytest.raises(TimeoutError):
            filtered.recv(100)


# ---- a veth pair in a namespace -----------------------------------------------------------


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the calling thread inside network namespace `name` for the block."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the test namespace failed")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back failed")
    finally:
        os.close(own)
        os.close(target)


@pytest.fixture
def netns() -> Iterator[str]:
    """A namespace with veth srv0 (198.18.200.1/24) <-> cli0, IPv6 off, removed afterwards."""
    if os.geteuid() != 0:
        pytest.fail("the transport tests need root (network namespaces, packet sockets)")
    name = f"etx-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", name)
    try:
        ipv6_off = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
        _ip("netns", "exec", name, "sysctl", "-qw", *ipv6_off)
        veth = ["srv0", "address", SERVER_MAC, "type", "veth"]
        _ip("-n", name, "link", "add", *veth, "peer", "name", "cli0", "address", CLIENT_MAC)
        _ip("-n", name, "addr", "add", f"{SERVER_IP}/24", "dev", "srv0")
        for dev in ("lo", "srv0", "cli0"):
            _ip("-n", name, "link", "set", "dev", dev, "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


@dataclass
class Recorder:
    """A frame handler that records what it saw, when, and can be slowed down."""

    delay: float = 0.0
    seen: list[tuple[int, bytes, float, float]] = field(default_factory=list)  # xid, key, t0, t1
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: threading.Event = field(default_factory=threading.Event)

    def __call__(self, frame: bytes) -> None:
        t0 = time.monotonic()
        self.started.set()
        if self.delay:
            time.sleep(self.delay)
        request = codec.decode(frame)
        with self.lock:
            self.seen.append((request.xid, client_key(frame), t0, time.monotonic()))

    def xids(self) -> list[int]:
        with self.lock:
            return [xid for xid, *_ in self.seen]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[int]:
        end = time.monotonic() + timeout
        while time.monotonic() < end and len(self.xids()) < count:
            time.sleep(0.01)
        return self.xids()


@pytest.fixture
def lab(netns: str) -> Iterator[Callable[..., tuple[Transport, Callable[[bytes], None]]]]:
    """Builds a started Transport on srv0 and a sender on cli0; stops them afterwards."""
    made: list[Transport] = []
    senders: list[socket.socket] = []

    def build(
        handler: Callable[[bytes], None],
        *,
        workers: int = 1,
        queue_size: int = 64,
        deadline: float = 5.0,
        **limits: Any,
    ) -> tuple[Transport, Callable[[bytes], None]]:
        with in_netns(netns):
            t = Transport(
                "srv0",
                handle=handler,
                workers=workers,
                queue_size=queue_size,
                deadline=deadline,
                **limits,
            )
            made.append(t)
            sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            senders.append(sender)
            sender.bind(("cli0", 0))
        t.start()
        return t, sender.send

    yield build
    for t in made:
        t.stop(grace=2.0)
    for s in senders:
        s.close()


def client_frame(n: int, xid: int) -> bytes:
    """A broadcast DISCOVER from client `n`."""
    return packets.discover(packets.mac(n), xid=xid)


def test_only_udp_to_port_67_reaches_the_handler_in_order(lab: Callable[..., tuple]) -> None:
    recorder = Recorder()
    t, send = lab(recorder)
    assert t.mac == SERVER_MAC
    # The kernel does not copy our own replies back to us (relays are on port 67 too).
    assert t._packet.getsockopt(transport.SOL_PACKET, transport.PACKET_IGNORE_OUTGOING) == 1
    noise = [
        packets.discover(packets.mac(99), xid=900, dport=68),  # to the client port
        bytes(
            Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src="198.18.200.2", dst=SERVER_IP) / ICMP()
        ),
        bytes(Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=SERVER_IP)),
        bytes(
            Ether(src=CLIENT_MAC, dst=SERVER_MAC)
            / IP(src="198.18.200.2", dst=SERVER_IP)
            / UDP(sport=5353, dport=53)
            / Raw(b"x" * 40)
        ),
        # A later fragment whose bytes happen to look like port 67: the filter drops it.
        bytes(
            Ether(src=CLIENT_MAC, dst=SERVER_MAC)
            / IP(src="198.18.200.2", dst=SERVER_IP, proto=17, frag=100)
            / Raw(b"\x00\x44\x00\x43" + b"\x00" * 300)
        ),
    ]
    expected = []
    for i in range(12):
        xid = 100 + i
        send(client_frame(i, xid))
        expected.append(xid)
        send(noise[i % len(noise)])
    # Unicast (a renewal or a relay) to our MAC and address is captured too.
    send(
        packets.renew(
            packets.mac(50), "198.18.200.50", xid=150, dst_mac=SERVER_MAC, dst_ip=SERVER_IP
        )
    )
    seen = recorder.wait_for(len(expected) + 1)
    # A renewal may overtake DISCOVERs still queued (work on existing leases goes first).
    assert [x for x in seen if x != 150] == expected and 150 in seen
    expected = seen
    # Our own outgoing frames are seen by the packet socket but never handled.
    t.send_frame(client_frame(60, 160))
    send(client_frame(61, 161))
    assert recorder.wait_for(len(expected) + 1) == [*expected, 161]
    time.sleep(0.2)
    assert recorder.xids() == [*expected, 161]


def test_frames_of_one_client_are_never_handled_concurrently(lab: Callable[..., tuple]) -> None:
    recorder = Recorder(delay=0.1)
    _t, send = lab(recorder, workers=4)
    clients = (1, 2, 3)
    for round_ in range(3):  # A1 B1 C1 A2 B2 C2 A3 B3 C3
        for n in clients:
            send(client_frame(n, n * 100 + round_))
    recorder.wait_for(9)
    with recorder.lock:
        seen = list(recorder.seen)
    assert len(seen) == 9
    by_client: dict[bytes, list[tuple[int, float, float]]] = {}
    for xid, key, t0, t1 in seen:
        by_client.setdefault(key, []).append((xid, t0, t1))
    assert len(by_client) == 3
    for key, runs in by_client.items():
        n = clients[[codec.mac_to_bytes(packets.mac(c)) for c in clients].index(key)]
        runs.sort(key=lambda r: r[1])
        assert [xid for xid, _, _ in runs] == [n * 100, n * 100 + 1, n * 100 + 2]  # in order
        for (_, _, end), (_, start, _) in itertools.pairwise(runs):
            assert start >= end  # one after the other
    # Different clients did run at the same time (four workers).
    firsts = [runs[0] for runs in by_client.values()]
    assert max(t0 for _, t0, _ in firsts) < min(t1 for _, _, t1 in firsts)


def test_a_fanout_group_gives_each_client_to_one_member(lab: Callable[..., tuple]) -> None:
    """Three transports in one group, as three serving processes: every frame is handled
    once, all frames of a client by the same member, and every member gets clients."""
    members = [Recorder() for _ in range(3)]
    send = None
    for recorder in members:
        _t, send = lab(recorder, workers=2, fanout=4242)
    assert send is not None
    clients = range(1, 31)
    for round_ in range(2):
        for n in clients:
            send(client_frame(n, n * 100 + round_))
    end = time.monotonic() + 5.0
    while time.monotonic() < end and sum(len(r.xids()) for r in members) < 60:
        time.sleep(0.01)
    time.sleep(0.2)  # a frame handled twice would show up by now
    handled = [sorted(r.xids()) for r in members]
    assert sorted(itertools.chain(*handled)) == sorted(
        n * 100 + round_ for n in clients for round_ in range(2)
    )
    for xids in handled:
        assert len(xids) >= 6  # 30 clients over 3 members: nobody is left out
        for xid in xids:
            assert xid // 100 * 100 + (1 - xid % 100) in xids  # the client's other frame


def test_a_busy_client_keeps_only_its_newest_retransmissions(lab: Callable[..., tuple]) -> None:
    recorder = Recorder(delay=0.3)
    _t, send = lab(recorder, workers=2)
    busy = dropped("client_busy")
    for xid in range(1, 6):
        send(client_frame(7, xid))
    assert recorder.wait_for(3) == [1, 4, 5]
    assert dropped("client_busy") == busy + 2


def test_full_queue_sheds_the_oldest_new_work_and_releases_its_client(
    lab: Callable[..., tuple],
) -> None:
    recorder = Recorder(delay=0.3)
    _t, send = lab(recorder, workers=1, queue_size=1)
    full = dropped("queue_full")
    send(client_frame(1, 1))
    assert recorder.started.wait(2.0)  # the worker holds frame 1; the queue is empty
    send(client_frame(2, 2))  # queued
    send(client_frame(3, 3))  # queue full: takes the place of 2
    send(client_frame(4, 4))  # takes the place of 3
    assert recorder.wait_for(2) == [1, 4]
    assert dropped("queue_full") == full + 2
    send(client_frame(2, 22))  # clients 2 and 3 were released, not stuck
    assert recorder.wait_for(3) == [1, 4, 22]
    send(client_frame(3, 33))
    assert recorder.wait_for(4) == [1, 4, 22, 33]


def queue_depth() -> float:
    return metrics.REGISTRY.get_sample_value("etcdhcp_queue_depth") or 0.0


def test_queue_depth_falls_as_workers_take_frames_and_is_zero_when_idle(
    lab: Callable[..., tuple],
) -> None:
    recorder = Recorder(delay=0.3)
    depths: list[float] = []  # as each frame's handling starts

    def handler(frame: bytes) -> None:
        depths.append(queue_depth())
        recorder(frame)

    _t, send = lab(handler, workers=1)
    idle = queue_depth()
    for n in range(1, 4):
        send(client_frame(n, n))
    assert recorder.started.wait(2.0)
    time.sleep(0.1)  # frame 1 is with the worker, 2 and 3 wait
    assert queue_depth() == idle + 2
    assert sorted(recorder.wait_for(3)) == [1, 2, 3]
    assert [d - idle for d in depths[1:]] == [1, 0]  # taking a frame lowers it
    assert queue_depth() == idle == 0  # not the 2 left by the last frame queued


def queue_waits(le: str | None = None) -> float:
    """etcdhcp_queue_wait_seconds: how many frames were taken, or how many within `le` s."""
    if le is None:
        return metrics.REGISTRY.get_sample_value("etcdhcp_queue_wait_seconds_count") or 0.0
    found = metrics.REGISTRY.get_sample_value("etcdhcp_queue_wait_seconds_bucket", {"le": le})
    return found or 0.0


def test_frames_past_the_deadline_are_dropped_and_every_wait_is_measured(
    lab: Callable[..., tuple],
) -> None:
    recorder = Recorder(delay=0.3)
    _t, send = lab(recorder, workers=1, deadline=0.1)
    late, taken, quick = dropped("deadline"), queue_waits(), queue_waits(le="0.25")
    for n in range(1, 4):
        send(client_frame(n, n))
    time.sleep(1.0)
    assert recorder.xids() == [1]  # the others waited 0.3 s in the queue
    assert dropped("deadline") == late + 2
    assert queue_waits() == taken + 3  # the dropped ones' waits too
    assert queue_waits(le="0.25") == quick + 1  # only the first went straight to a worker


def test_handler_errors_cost_one_frame_not_the_worker(lab: Callable[..., tuple]) -> None:
    recorder = Recorder()
    calls = []

    def flaky(frame: bytes) -> None:
        calls.append(frame)
        if len(calls) == 1:
            raise RuntimeError("boom")
        recorder(frame)

    errors = dropped("internal_error")
    _t, send = lab(flaky, workers=1)
    send(client_frame(1, 1))
    send(client_frame(2, 2))
    assert recorder.wait_for(1) == [2]
    assert dropped("internal_error") == errors + 1


# ---- the reply path: Transport + Pipeline + the real etcd ---------------------------------


def _receive_replies(sock: socket.socket, count: int, timeout: float = 3.0) -> list[bytes]:
    """Frames to UDP port 68 arriving on the client end (our own sends skipped)."""
    replies: list[bytes] = []
    end = time.monotonic() + timeout
    while len(replies) < count and time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            data, address = sock.recvfrom(65535)
        except TimeoutError:
            break
        if address[2] == transport.PACKET_OUTGOING:
            continue
        pkt = Ether(data)
        if pkt.haslayer(UDP) and pkt[UDP].dport == 68:
            replies.append(data)
    return replies


def _checksums_ok(raw: bytes) -> bool:
    clone = Ether(raw)
    del clone[IP].chksum
    del clone[UDP].chksum
    rebuilt = Ether(bytes(clone))
    pkt = Ether(raw)
    return (rebuilt[IP].chksum, rebuilt[UDP].chksum) == (pkt[IP].chksum, pkt[UDP].chksum)


def dhcp_options(pkt: Ether) -> dict[str, Any]:
    """scapy's reading of a reply's options (the client's view)."""
    return {o[0]: o[1] for o in pkt[DHCP].options if isinstance(o, tuple)}


def test_replies_reach_the_client_as_correct_frames(
    lab: Callable[..., tuple[Transport, Callable[[bytes], None]]],
    netns: str,
    etcd_server: Any,
    etcd_prefix: str,
) -> None:
    etcd = Etcd([etcd_server.endpoint], timeout=5.0)
    view = ScopeSet([scope_of("198.18.200.10", "198.18.200.14", subnet="198.18.200.0/24")])
    store = make_store(
        etcd,
        etcd_prefix,
        "198.18.200.10",
        "198.18.200.14",
        server_id=SERVER_IP,
        scopes=lambda: view,
    )
    store.seed()
    pipeline = Pipeline(store, store.scopes)
    link = Link("srv0", SERVER_IP)
    ports: list[Transport] = []
    with in_netns(netns):
        listener = socket.socket(
            socket.AF_PACKET, socket.SOCK_RAW, socket.htons(transport.ETH_P_IP)
        )
        listener.bind(("cli0", transport.ETH_P_IP))
    try:
        t, send = lab(lambda frame: pipeline.handle(frame, link, ports[0]), workers=2)
        ports.append(t)
        client = packets.mac(0xC8)
        send(packets.dhclient_discover(client, xid=0x11))
        (offer_raw,) = _receive_replies(listener, 1)
        offer = Ether(offer_raw)
        assert offer.src == SERVER_MAC and offer.dst == client
        assert offer[IP].src == SERVER_IP and view.in_pools(offer[IP].dst)
        assert (offer[UDP].sport, offer[UDP].dport) == (67, 68)
        assert _checksums_ok(offer_raw)
        assert offer[BOOTP].op == 2 and offer[BOOTP].xid == 0x11
        assert dhcp_options(offer)["message-type"] == codec.OFFER
        assert dhcp_options(offer)["server_id"] == SERVER_IP
        yiaddr = offer[BOOTP].yiaddr
        assert yiaddr == offer[IP].dst

        request = packets.request(
            client,
            requested=yiaddr,
            server_id=SERVER_IP,
            xid=0x12,
            flags=codec.BROADCAST_FLAG,
        )
        send(request)
        (ack_raw,) = _receive_replies(listener, 1)
        ack = Ether(ack_raw)
        assert ack.dst == "ff:ff:ff:ff:ff:ff" and ack[IP].dst == "255.255.255.255"
        assert _checksums_ok(ack_raw)
        assert ack[BOOTP].xid == 0x12 and ack[BOOTP].yiaddr == yiaddr
        assert dhcp_options(ack)["message-type"] == codec.ACK
        assert dhcp_options(ack)["lease_time"] == 60
        assert store.lease_by_mac(client) is not None
    finally:
        listener.close()
        etcd.close()


# ---- floods: per-client rate limit, the queue kept for existing leases ---------------------


@pytest.mark.parametrize(
    ("raw", "work"),
    [
        (packets.dhclient_discover(packets.mac(1)), NEW_WORK),
        (packets.request(packets.mac(1), requested="198.18.0.9", server_id=SERVER_IP), COMPLETING),
        (packets.request(packets.mac(1), requested="198.18.0.9"), COMPLETING),  # INIT-REBOOT
        (packets.renew(packets.mac(1), "198.18.0.9"), EXISTING_LEASE),
        (packets.rebind(packets.mac(1), "198.18.0.9"), EXISTING_LEASE),
        (packets.release(packets.mac(1), "198.18.0.9"), EXISTING_LEASE),
        (packets.decline(packets.mac(1), "198.18.0.9"), EXISTING_LEASE),
        (packets.inform(packets.mac(1), "198.18.0.9"), NEW_WORK),
        # 53 after pads and other options, and in a relayed frame
        (packets.renew(packets.mac(1), "198.18.0.9", options=[("pad",)] * 3), EXISTING_LEASE),
        (packets.release(packets.mac(1), "198.18.0.9", giaddr="198.18.0.254"), EXISTING_LEASE),
        # garbage: never given the reserved part of the queue
        (packets.renew(packets.mac(1), "198.18.0.9")[:100], NEW_WORK),
        (packets.frame(None, packets.mac(1), ciaddr="198.18.0.9", raw_options=b"junk"), NEW_WORK),
        (packets.frame(None, packets.mac(1), ciaddr="198.18.0.9", raw_options=b""), NEW_WORK),
        (b"", NEW_WORK),
    ],
)
def test_work_class_classifies_raw_frames(raw: bytes, work: int) -> None:
    assert work_class(raw) == work


def test_work_class_survives_any_truncation() -> None:
    raw = packets.release(packets.mac(1), "198.18.0.9", extra=[(12, b"x" * 40)])
    classes = [work_class(raw[:cut]) for cut in range(len(raw) + 1)]  # no IndexError
    # A RELEASE until option 53's value is cut off; new work (shed first) from then on.
    whole = classes.index(EXISTING_LEASE)
    assert raw[whole - 3 : whole] == bytes((53, 1, 7))
    assert set(classes[:whole]) == {NEW_WORK} and set(classes[whole:]) == {EXISTING_LEASE}


def test_rate_limiter_allows_a_burst_then_the_rate() -> None:
    limiter = ClientRateLimiter(rate=10.0, burst=20)
    now = 1000.0
    assert all(limiter.allow(b"A", now) for _ in range(20))
    assert not limiter.allow(b"A", now)
    assert limiter.allow(b"B", now)  # another client has its own bucket
    assert limiter.allow(b"A", now + 0.1)  # 0.1 s at 10/s earns one request
    assert not limiter.allow(b"A", now + 0.1)
    assert sum(limiter.allow(b"A", now + 100.0) for _ in range(30)) == 20  # never above burst


def test_rate_limiter_forgets_the_least_recently_seen_clients() -> None:
    limiter = ClientRateLimiter(rate=1.0, burst=1)
    assert limiter.allow(b"first", 0.0) and not limiter.allow(b"first", 0.0)
    for n in range(transport.MAX_RATE_LIMITED_CLIENTS):
        limiter.allow(n.to_bytes(4, "big"), 0.0)
    assert len(limiter) <= transport.MAX_RATE_LIMITED_CLIENTS
    assert limiter.allow(b"first", 0.0)  # forgotten: a fresh bucket


def test_a_client_over_its_rate_is_dropped_and_counted(lab: Callable[..., tuple]) -> None:
    recorder = Recorder()
    _t, send = lab(recorder, workers=2, client_rate=1.0, client_burst=3)
    limited = dropped("rate_limited")
    for xid in range(1, 9):
        send(client_frame(5, xid))
    send(client_frame(6, 100))  # another client is not affected
    recorder.wait_for(4)
    time.sleep(0.3)
    seen = recorder.xids()
    assert sorted(seen) == [1, 2, 3, 100], seen  # the burst of 3 (none waited: 1 worker free)
    assert dropped("rate_limited") == limited + 5


def test_a_busy_queue_sheds_and_delays_new_clients_before_renewals(
    lab: Callable[..., tuple],
) -> None:
    recorder = Recorder(delay=0.5)  # past CONGESTED_AFTER: waiting new work goes newest first
    _t, send = lab(recorder, workers=1, queue_size=4)  # 3 slots for new work, 1 kept
    full = dropped("queue_full")
    send(client_frame(1, 1))
    assert recorder.started.wait(2.0)  # the worker is busy; the queue is empty
    for n in range(2, 8):
        send(client_frame(n, n))  # DISCOVERs 2, 3, 4 queued; 5, 6, 7 take their places
    send(packets.renew(packets.mac(50), "198.18.200.50", xid=50))  # takes the kept slot
    send(packets.release(packets.mac(51), "198.18.200.51", xid=51))  # queue full: dropped
    # The renewal arrived last but is handled first; the new clients wait, and once
    # they have waited long, the newest is answered first.
    assert recorder.wait_for(5, timeout=10) == [1, 50, 7, 6, 5]
    time.sleep(0.3)
    assert recorder.xids() == [1, 50, 7, 6, 5]
    assert dropped("queue_full") == full + 4


# ---- WorkQueue -------------------------------------------------------------------------


def test_work_queue_takes_the_most_urgent_class_first_each_in_order() -> None:
    work = transport.WorkQueue(8)
    for item, kind in [
        ("new1", NEW_WORK),
        ("select1", COMPLETING),
        ("renew1", EXISTING_LEASE),
        ("new2", NEW_WORK),
        ("renew2", EXISTING_LEASE),
        ("select2", COMPLETING),
    ]:
        assert work.put(item, kind) is None
    work.put_last(None)
    expected = ["renew1", "renew2", "select1", "select2", "new1", "new2", None]
    assert [work.get() for _ in range(7)] == expected
    assert len(work) == 0


def test_work_queue_keeps_the_last_quarter_for_existing_leases() -> None:
    work = transport.WorkQueue(8)
    assert all(work.put(f"new{i}", NEW_WORK) is None for i in range(3))
    assert all(work.put(f"select{i}", COMPLETING) is None for i in range(3))
    # 6 of 8 used: only existing leases now; new work displaces the oldest new work
    assert work.put("new6", NEW_WORK) == "new0"
    assert work.put("select6", COMPLETING) == "select6"
    assert work.put("renew0", EXISTING_LEASE) is None
    assert work.put("renew1", EXISTING_LEASE) is None
    assert work.put("renew2", EXISTING_LEASE) == "renew2"  # full
    assert len(work) == 8
    work.put_last(None)  # stop markers go in whatever the bound, and come out last
    expected = ["renew0", "renew1", "select0", "select1", "select2", "new1", "new2", "new6"]
    assert [work.get() for _ in range(9)] == [*expected, None]


def test_work_queue_takes_the_newest_new_work_first_once_the_oldest_waited_too_long() -> None:
    now = [0.0]
    work = transport.WorkQueue(16, congested_after=0.2, clock=lambda: now[0])
    for i in range(3):
        assert work.put(f"new{i}", NEW_WORK) is None
    now[0] = 0.1
    assert work.put("new3", NEW_WORK) is None
    assert work.get() == "new0"  # the oldest waited 0.1 s: in order
    now[0] = 0.35
    assert work.put("new4", NEW_WORK) is None
    assert work.put("select0", COMPLETING) is None
    work.put_last(None)
    # The oldest (new1) has waited 0.35 s: newest first, whatever waits behind.
    expected = ["select0", "new4", "new3", "new2", "new1", None]
    assert [work.get() for _ in range(6)] == expected


def test_new_work_with_no_room_among_other_work_is_left_out_itself() -> None:
    work = transport.WorkQueue(4)  # 3 slots for new work
    assert all(work.put(f"select{i}", COMPLETING) is None for i in range(3))
    assert work.put("new0", NEW_WORK) == "new0"  # no new work to displace
    assert len(work) == 3


def test_work_queue_hands_every_item_to_exactly_one_worker() -> None:
    work = transport.WorkQueue(100_000)
    taken: list[object] = []

    def worker() -> None:
        while (item := work.get()) is not None:
            taken.append(item)

    workers = [threading.Thread(target=worker) for _ in range(8)]
    for thread in workers:
        thread.start()
    for i in range(20_000):
        assert work.put(i, i % 3) is None
    for _ in workers:
        work.put_last(None)
    for thread in workers:
        thread.join(30)
    assert sorted(taken) == list(range(20_000))


def test_every_item_is_taken_or_left_out_once_while_new_work_displaces_old() -> None:
    work = transport.WorkQueue(40, congested_after=0.001)
    taken: list[object] = []
    left_out: list[object] = []

    def worker() -> None:
        while (item := work.get()) is not None:
            taken.append(item)
            time.sleep(0.0001)  # slower than the putter: the queue overflows

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    for i in range(20_000):
        out = work.put(i, COMPLETING if i % 4 == 0 else NEW_WORK)
        if out is not None:
            left_out.append(out)
    for _ in workers:
        work.put_last(None)
    for thread in workers:
        thread.join(30)
    assert left_out
    assert sorted(taken + left_out) == list(range(20_000))
