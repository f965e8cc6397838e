"""The daemon as systemd runs it: sd_notify states on a real socket, SIGHUP reloads.

The real daemon runs in a lab's server namespace; the notify socket is a path-bound
AF_UNIX datagram socket, which works across network namespaces (abstract ones don't).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .daemon import EtcdhcpProcess
from .lab import Lab
from .test_clients import wait_until


@pytest.fixture
def notify_socket() -> Iterator[socket.socket]:
    """A bound datagram socket standing in for systemd's $NOTIFY_SOCKET; like systemd,
    it asks the kernel for each sender's PID (SO_PASSCRED)."""
    # AF_UNIX paths hold at most 108 bytes; pytest's tmp_path can be longer.
    directory = tempfile.mkdtemp(prefix="sdn")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.bind(str(Path(directory) / "notify"))
    try:
        yield sock
    finally:
        sock.close()
        shutil.rmtree(directory)


def receive_one(sock: socket.socket, timeout: float) -> tuple[int, str] | None:
    """(sender PID, state) of the next datagram, None if none came within `timeout`."""
    sock.settimeout(timeout)
    try:
        data, ancillary, _flags, _address = sock.recvmsg(4096, socket.CMSG_SPACE(12))
    except TimeoutError:
        return None
    pid = next(
        struct.unpack("i", cmsg[:4])[0]
        for level, kind, cmsg in ancillary
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
    )
    return pid, data.decode()


def receive(sock: socket.socket, timeout: float) -> list[tuple[int, str]]:
    """Every (sender PID, state) received within `timeout` seconds, in order."""
    received: list[tuple[int, str]] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        one = receive_one(sock, left)
        if one is None:
            break
        received.append(one)
    return received


def receive_until(sock: socket.socket, state: str, timeout: float) -> list[tuple[int, str]]:
    """What was received up to and including the first `state`; fails after `timeout`."""
    received: list[tuple[int, str]] = []
    deadline = time.monotonic() + timeout
    while state not in [s for _pid, s in received]:
        left = deadline - time.monotonic()
        assert left > 0, f"no {state} within {timeout}s; got {received}"
        one = receive_one(sock, left)
        if one is not None:
            received.append(one)
    return received


@pytest.mark.parametrize(
    ("watchdog", "embedded_etcd"),
    [(True, False), (False, True)],
    ids=["watchdog-lab-etcd", "no-watchdog-embedded-etcd-2-processes"],
)
def test_notifies_ready_watchdog_and_stopping(
    lab: Lab, notify_socket: socket.socket, watchdog: bool, embedded_etcd: bool
) -> None:
    env = {"NOTIFY_SOCKET": notify_socket.getsockname()}
    if watchdog:
        env["WATCHDOG_USEC"] = "1000000"  # systemd's WatchdogSec=1s: a ping every 0.5 s
    # No endpoint: the daemon starts its own etcd, a child that must not notify (etcd
    # would send READY=1 itself, which systemd refuses from anyone but the main PID);
    # nor must the second serving process, which connects to that etcd.
    extra = ["-etcd.discovery.endpoints", "", "--state-dir", str(lab.workdir / "state")]
    extra += ["-dhcp.processes=2"]
    daemon = EtcdhcpProcess(
        lab,
        lab.etcd().client_url,
        env=env,
        extra=extra if embedded_etcd else ["-dhcp.processes=1"],  # the single process too
    ).start()
    assert ("starting embedded etcd" in daemon.log()) == embedded_etcd
    assert ("serving process 1 (pid" in daemon.log()) == embedded_etcd
    pid = daemon.proc.pid

    assert receive_until(notify_socket, "READY=1", timeout=10) == [(pid, "READY=1")], (
        "READY=1 must come first, once the socket is bound, and only from the daemon"
    )
    later = receive(notify_socket, timeout=3)
    assert set(later) <= {(pid, "WATCHDOG=1")}, later
    assert len(later) >= 2 if watchdog else later == []

    daemon.proc.send_signal(signal.SIGTERM)
    stopping = receive_until(notify_socket, "STOPPING=1", timeout=15)
    assert set(stopping) <= {(pid, "WATCHDOG=1"), (pid, "STOPPING=1")}, stopping
    assert daemon.stop() == 0, daemon.log()
    assert receive(notify_socket, timeout=0.5) == []
    assert "Traceback" not in daemon.log()


def _debug_lines(log: str) -> list[str]:
    """glog DEBUG lines (shown from -v=2 on); the admin server logs each request so."""
    return re.findall(r"^D\d{4} .*admin\.py:\d+\] .*GET /readyz.*$", log, re.M)


def test_sighup_applies_new_verbosity_and_reports_the_rest(lab: Lab) -> None:
    conf = lab.workdir / "etcdhcp.conf"
    conf.write_text("v = 0\n")
    # Pinned: the flags read again must be checked against the CPUs the daemon started
    # with, not the one CPU its main thread now runs on.
    cpus = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    daemon = EtcdhcpProcess(
        lab,
        lab.etcd().client_url,
        verbosity=None,
        extra=["--config", str(conf), "-dhcp.processes=2", f"-dhcp.cpu-affinity={cpus}"],
    ).start()
    assert "serving process 0 (pid" in daemon.log()
    assert daemon.ready() and _debug_lines(daemon.log()) == []

    conf.write_text("v = 2\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: (
            "SIGHUP: configuration re-read; applied -v=2 (was 0); nothing else changed"
            in daemon.log()
        ),
        10,
        "the reload log line",
    )
    wait_until(lambda: daemon.ready() and _debug_lines(daemon.log()), 10, "DEBUG lines")
    # The second serving process got the new -v from the main one.
    applied = re.compile(r"^I\S+ \S+ +\d+ processes\.py:\d+\] -v=2 applied", re.M)
    wait_until(lambda: applied.search(daemon.log()), 10, "-v=2 in the second process")

    conf.write_text("v = 0\ndhcp.offer-hold = 20s\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: "applied -v=0 (was 2); changed but needing a restart: offer_hold" in daemon.log(),
        10,
        "the second reload log line",
    )
    quiet = len(_debug_lines(daemon.log()))
    assert daemon.ready() and daemon.ready()
    assert len(_debug_lines(daemon.log())) == quiet, "-v=0 must silence DEBUG again"

    conf.write_text("not a key value line\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: (
            "SIGHUP: configuration not reloaded, keeping the running one: --config: "
            f"{conf} line 1: expected 'key = value'" in daemon.log()
        ),
        10,
        "the refused reload",
    )
    assert daemon.proc.poll() is None and daemon.ready()
    assert daemon.stop() == 0, daemon.log()
    assert "Traceback" not in daemon.log()
