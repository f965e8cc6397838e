"""Extra serving processes (--dhcp.processes): the main process's side and the child's.

Python runs one thread at a time, so one process tops out near one core. With
--dhcp.processes N, the main process serves and N-1 children serve beside it, each
with its own etcd client, store and transports, each interface's joined to one
AF_PACKET fanout group that gives every client (by chaddr) to one process
(transport.py; a group spans one interface, so each served interface has its own). What is done
once per server stays in the main process: the admin server, the reseeder, the
registry, the embedded etcd. The main process starts the children, restarts one that
dies, kills (and so restarts) one that hangs, passes -v on to them at SIGHUP, stops
them, and merges their metrics into its /metrics (`ServingProcesses.collect`).

A child is a fresh interpreter, `python -P -m etcdhcp.processes FD` (forking a process
that runs gRPC threads is unsafe), talking to the main process over a socket pair:
main -> child: ("start", config, index, first fanout group), ("collect", n), ("ping", n),
("verbosity", v), ("stop",); child -> main: ("ready",) or ("failed", why),
("metrics", n, families), ("pong", n). A child answers a ping only while every receive
loop (one per interface) goes round: a child that misses HUNG_AFTER pings in a row is
hung (deadlocked, stopped, a receive thread gone) and is killed, since its share of the
clients, which the fanout groups keep sending it, would get no answer.
A child stops when told, on SIGTERM or SIGINT, or when the main process is gone.

Each serving process, the main one included, may pin itself to one CPU
(--dhcp.cpu-affinity, `pin_serving_process`): only one of its threads runs Python at
a time anyway, and threads that pass the interpreter lock on one CPU do not wake each
other across CPUs, which costs a virtual machine dearly (bench/README.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection

from prometheus_client.metrics_core import Metric

from etcdhcp import logs, metrics
from etcdhcp.config import Config
from etcdhcp.etcd import EtcdError
from etcdhcp.serving import SHUTDOWN_GRACE, Fatal, Serving, Stopped

log = logging.getLogger("etcdhcp.processes")  # also when run as __main__ (a child)

READY_TIMEOUT = 60.0  # for a child to connect to etcd and bind its sockets
COLLECT_TIMEOUT = 2.0  # for a child's metrics, per scrape
FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 60.0  # a child that ran this long starts over at the first delay
PING_EVERY = 5.0
PING_TIMEOUT = 2.0
HUNG_AFTER = 3  # pings missed in a row
RECEIVE_STALE = 3.0  # a receive loop that has not gone round for this long is stuck
PIN_PASSES = 10  # at most; a thread left unpinned after them is slower, not wrong
# systemd accepts notifications from the main process only; the children must not try.
_NOT_FOR_CHILDREN = ("NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC")


def pin_serving_process(index: int, cpus: tuple[int, ...]) -> int | None:
    """Run every thread of this process, and those it starts, on CPU cpus[index % len]
    (nothing when `cpus` is empty). Returns that CPU, or None if unpinned or the kernel
    refused (e.g. a CPU taken offline since start-up): then the process runs where the
    kernel puts it, which is slower, not wrong."""
    if not cpus:
        return None
    cpu = cpus[index % len(cpus)]
    try:
        _pin_every_thread(cpu)
    except OSError as exc:
        log.warning("serving process %d stays unpinned: CPU %d: %s", index, cpu, exc.strerror)
        return None
    log.info("serving process %d (pid %d) runs on CPU %d", index, os.getpid(), cpu)
    return cpu


def _pin_every_thread(cpu: int) -> None:
    """Affinity is per thread and a thread inherits its creator's when it starts, so those
    already running (gRPC's, the admin server's) are pinned one by one, in passes until one
    finds nothing left to pin: a thread that an unpinned one started while a pass was
    listing (gRPC grows its pools on its own) is caught by the next pass."""
    target = {cpu}
    for _ in range(PIN_PASSES):
        pinned_any = False
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(ProcessLookupError):  # a thread that just ended
                if os.sched_getaffinity(int(task)) != target:
                    os.sched_setaffinity(int(task), target)
                    pinned_any = True
        if not pinned_any:
            return


@dataclass(eq=False)
class _Child:
    """One extra serving process, as the main process sees it."""

    index: int
    popen: subprocess.Popen[bytes] | None = None
    conn: Connection | None = None
    ready: bool = False
    started: float = 0.0
    next_start: float = 0.0
    delay: float = FIRST_RESTART_DELAY
    asked: int = 0  # sequence number of the last question (metrics or ping)
    pinged: float = 0.0
    missed: int = 0  # pings not answered in a row
    last: list[Metric] = field(default_factory=list)  # its metrics at the last scrape
    carried: list[Metric] = field(default_factory=list)  # counters of its dead predecessors
    lock: threading.Lock = field(default_factory=threading.Lock)

    def back_off(self) -> float:
        """Schedule the next start; returns the wait, which doubles each time (bounded)."""
        wait = self.delay
        self.next_start = time.monotonic() + wait
        self.delay = min(wait * 2, MAX_RESTART_DELAY)
        return wait


class ServingProcesses:
    """The main process's side: start, watch, restart, stop, and read the children."""

    def __init__(
        self, config: Config, count: int, fanout: int, stop_requested: threading.Event
    ) -> None:
        """`count` children (processes besides the main one) join fanout group `fanout`."""
        self._config = config
        self._fanout = fanout
        self._stop_requested = stop_requested
        self._children = [_Child(index) for index in range(1, count + 1)]
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="processes", daemon=True)

    def start(self) -> None:
        """Start every child and wait until each serves; Fatal if one cannot."""
        for child in self._children:
            with child.lock:
                self._start(child)
        self._count_serving()
        self._watcher.start()

    def stop(self, grace: float) -> None:
        """Tell every child to stop, wait for them (bounded), kill what is left."""
        self._stopping.set()
        if self._watcher.is_alive():
            self._watcher.join()
        for child in self._children:
            with child.lock:
                self._send(child, ("stop",))
        end = time.monotonic() + grace + 1.0
        for child in self._children:
            with child.lock:
                self._end(child, max(0.0, end - time.monotonic()))

    def health(self) -> tuple[bool, str]:
        """(True, "") when every child serves, else (False, which ones do not)."""
        down = [str(child.index) for child in self._children if not child.ready]
        if down:
            total = len(self._children) + 1
            return False, f"serving process {', '.join(down)} of {total} not serving (yet)"
        return True, ""

    def set_verbosity(self, verbosity: int) -> None:
        for child in self._children:
            with child.lock:
                self._send(child, ("verbosity", verbosity))

    def collect(self) -> list[list[Metric]]:
        """Every child's metric families, for `metrics.merge_families`. A child that does
        not answer in time (or missed its last ping: no scrape waits for a hung one)
        counts with its last answer, and a dead child's counters are carried over to
        its successor, so the merged counters never go backwards."""
        sources = []
        for child in self._children:
            with child.lock:
                answer = None if child.missed else self._ask(child, "collect", COLLECT_TIMEOUT)
                if answer is not None:
                    child.last = answer[0]
                sources += [child.carried, child.last]
        return sources

    # ---- inside, with child.lock held

    def _start(self, child: _Child) -> None:
        theirs, ours = socket.socketpair()
        env = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_CHILDREN}
        try:
            child.popen = subprocess.Popen(
                [sys.executable, "-P", "-m", __name__, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            ours.close()
            raise Fatal(f"cannot start serving process {child.index}: {exc}") from exc
        finally:
            theirs.close()
        child.conn = Connection(ours.detach())
        child.started = child.pinged = time.monotonic()
        child.missed = 0
        child.conn.send(("start", self._config, child.index, self._fanout))
        end = child.started + READY_TIMEOUT
        while time.monotonic() < end and not self._stop_requested.is_set():
            if not child.conn.poll(0.2):
                continue
            try:
                answer = child.conn.recv()
            except (EOFError, OSError):
                break
            if answer[0] == "ready":
                child.ready = True
                log.info("serving process %d (pid %d) serves", child.index, child.popen.pid)
                return
            self._end(child, 1.0)
            raise Fatal(f"serving process {child.index}: {answer[1]}")
        self._end(child, 1.0)
        raise Fatal(f"serving process {child.index} did not start serving")

    def _end(self, child: _Child, wait: float) -> None:
        """Reap the child (killing it after `wait` seconds), keep its counters."""
        if child.popen is not None:
            try:
                child.popen.wait(wait)
            except subprocess.TimeoutExpired:
                child.popen.kill()
                child.popen.wait()
        if child.conn is not None:
            child.conn.close()
        child.carried = metrics.merge_families([child.carried, metrics.counters_only(child.last)])
        child.last = []
        child.popen = child.conn = None
        child.ready = False

    def _send(self, child: _Child, message: tuple) -> None:
        if child.conn is None:
            return
        with contextlib.suppress(OSError):  # it died; the watcher restarts it
            child.conn.send(message)

    def _ask(self, child: _Child, question: str, timeout: float) -> tuple | None:
        """Send (question, n); the payload of the answer numbered n, or None in time."""
        if child.conn is None or not child.ready:
            return None
        child.asked += 1
        try:
            child.conn.send((question, child.asked))
            end = time.monotonic() + timeout
            while child.conn.poll(max(0.0, end - time.monotonic())):
                answer = child.conn.recv()
                if answer[1] == child.asked:  # not a late answer to an earlier question
                    return answer[2:]
        except (EOFError, OSError):
            pass
        return None

    # ---- the watcher thread

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for child in self._children:
                with child.lock:
                    self._check(child)
            self._count_serving()

    def _check(self, child: _Child) -> None:
        if child.popen is not None:
            status = child.popen.poll()
            if status is None:
                self._ping(child)
                return
            lived = time.monotonic() - child.started
            if lived > STABLE_AFTER:
                child.delay = FIRST_RESTART_DELAY
            log.error(
                "serving process %d (pid %d) exited with status %d; restarting it in %.0fs",
                child.index,
                child.popen.pid,
                status,
                child.back_off(),
            )
            self._end(child, 0.0)
            return
        if time.monotonic() < child.next_start or self._stopping.is_set():
            return
        metrics.SERVING_PROCESS_RESTARTS.inc()
        try:
            self._start(child)
        except Fatal as exc:
            log.error("%s; trying again in %.0fs", exc, child.back_off())

    def _ping(self, child: _Child) -> None:
        """Every PING_EVERY seconds; kill the child at its HUNG_AFTER-th missed ping (the
        next check sees it exit, and restarts it)."""
        now = time.monotonic()
        if not child.ready or now - child.pinged < PING_EVERY:
            return
        child.pinged = now
        if self._ask(child, "ping", PING_TIMEOUT) is not None:
            child.missed = 0
            return
        child.missed += 1
        if child.missed >= HUNG_AFTER and child.popen is not None:
            log.error(
                "serving process %d (pid %d) is hung: %d pings unanswered; killing it",
                child.index,
                child.popen.pid,
                child.missed,
            )
            child.popen.kill()

    def _count_serving(self) -> None:
        metrics.SERVING_PROCESSES.set(1 + sum(child.ready for child in self._children))


def child_config(config: Config, endpoints: list[str]) -> Config:
    """What a child runs with: the main process's, but an embedded etcd is the main
    process's to run, so children connect to it like to any other."""
    if not config.etcd_embedded:
        return config
    return replace(config, etcd_embedded=False, etcd_endpoints=tuple(endpoints))


# ---- the child's side


def child_main(fd: int) -> int:
    """Serve as one extra process until told to stop; the exit status says how it went."""
    conn = Connection(fd)
    _, config, index, fanout = conn.recv()
    logs.setup(config.verbosity)
    pin_serving_process(index, config.cpus)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the main process passes -v on
    serving = Serving(config, stop, main=False)
    try:
        serving.connect(list(config.etcd_endpoints))
        serving.serve(fanout)
    except Stopped:
        serving.close()
        return 0
    except (Fatal, EtcdError) as exc:
        conn.send(("failed", str(exc)))
        serving.close()
        return 1
    conn.send(("ready",))
    try:
        while not stop.is_set():
            if conn.poll(0.5):
                _obey(conn, conn.recv(), stop, serving)
    except (EOFError, OSError):
        log.warning("serving process %d: the main process is gone; stopping", index)
    serving.stop(SHUTDOWN_GRACE)
    serving.close()
    return 0


def _obey(conn: Connection, message: tuple, stop: threading.Event, serving: Serving) -> None:
    if message[0] == "collect":
        conn.send(("metrics", message[1], list(metrics.REGISTRY.collect())))
    elif message[0] == "ping":
        if serving.alive(RECEIVE_STALE):
            conn.send(("pong", message[1]))
    elif message[0] == "verbosity":
        logs.set_verbosity(message[1])
        log.info("-v=%d applied, as the main process asked", message[1])
    elif message[0] == "stop":
        stop.set()


if __name__ == "__main__":
    sys.exit(child_main(int(sys.argv[1])))
