"""Starting and stopping: no abort at start, and a stop at any moment exits 0.

Issue 17, item 4: about 1 start in 100-250 died of SIGABRT in the crash tests. The
process that died was the fork of a process with a busy gRPC channel (the test's, there;
the daemon's for an embedded etcd) before its exec: gRPC's fork handlers restarted its
threads in the child, which then closed their descriptors under them. etcd.py turns those
handlers off (GRPC_ENABLE_FORK_SUPPORT=0): every fork here is followed by an exec.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from etcdhcp.etcd import Etcd

from .daemon import EtcdhcpProcess
from .lab import Lab

STARTS = 40
FORKS = 4000  # ~4 aborts expected with gRPC's fork handlers on (1 in 1,000 measured)
BOUND = 240.0  # seconds for each loop, whatever the machine's load
ABORTED = re.compile(r"abort|SIGABRT|Fatal", re.IGNORECASE)
DAEMON_ENV = {"GRPC_VERBOSITY": "ERROR", "PYTHONFAULTHANDLER": "1"}


@contextmanager
def busy_grpc(endpoint: str) -> Iterator[None]:
    """Keep a gRPC channel to etcd busy from two threads of this process, as the crash
    test's store checks did while it started daemons."""
    etcd = Etcd([endpoint], timeout=5.0)
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            etcd.status()

    threads = [threading.Thread(target=ask, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        etcd.close()


def test_many_starts_and_stops_never_abort(lab: Lab) -> None:
    etcd = lab.etcd()
    statuses: Counter[int | None] = Counter()
    end = time.monotonic() + BOUND
    with busy_grpc(etcd.client_url):
        for n in range(STARTS):
            assert time.monotonic() < end, f"{n} starts in {BOUND}s: {statuses}"
            daemon = EtcdhcpProcess(lab, etcd.client_url, name=f"start-{n}", env=DAEMON_ENV)
            daemon.start()  # RuntimeError (with the log) if it dies or never gets ready
            statuses[daemon.stop()] += 1
            log = daemon.log()
            assert not ABORTED.search(log), f"start {n}:\n{log}"
    assert statuses == {0: STARTS}


def _set_parent_death_signal() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def _forks(statuses: Counter[int]) -> None:
    for _ in range(FORKS):
        child = subprocess.Popen(
            ["true"], stdin=subprocess.DEVNULL, preexec_fn=_set_parent_death_signal
        )
        statuses[child.wait(10)] += 1


def _kill_unexeced_forks() -> list[int]:
    """Our children still running this interpreter: forks stuck before their exec."""
    me = os.path.realpath(sys.executable)
    stuck = []
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            for pid in Path(f"/proc/self/task/{task}/children").read_text().split():
                with contextlib.suppress(OSError):
                    if os.path.realpath(f"/proc/{pid}/exe") == me:
                        os.kill(int(pid), signal.SIGKILL)
                        stuck.append(int(pid))
    return stuck


def test_forks_beside_a_busy_grpc_channel_never_abort(lab: Lab) -> None:
    """The abort itself, many times faster than through whole daemons: fork+exec with a
    preexec_fn (as embedded_etcd.py and the lab do) while gRPC is busy. With gRPC's fork
    handlers on, a fork also hung now and then before its exec (and Popen with it)."""
    etcd = lab.etcd()
    statuses: Counter[int] = Counter()
    with busy_grpc(etcd.client_url):
        forking = threading.Thread(target=_forks, args=(statuses,), daemon=True)
        forking.start()
        forking.join(BOUND)
        hung = _kill_unexeced_forks() if forking.is_alive() else []
        forking.join(10)
    assert not hung and statuses == {0: FORKS}, f"hung forks {hung}; statuses {statuses}"


def test_a_stop_while_waiting_for_etcd_exits_0(lab: Lab) -> None:
    """README: a stop exits 0, also before etcd ever answered (issue 17, item 8)."""
    nobody = f"http://{lab.uplink_host_ip}:9"  # discard: nothing listens there
    daemon = EtcdhcpProcess(lab, nobody, env=DAEMON_ENV)
    with pytest.raises(RuntimeError, match="not ready"):
        daemon.start(timeout=3.0)
    assert "etcd not reachable yet" in daemon.log()
    assert daemon.stop() == 0, daemon.log()
    assert "stopped while waiting for etcd" in daemon.log()
