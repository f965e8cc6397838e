"""processes: what the main process gives its serving children, and how it reports them.

Starting, restarting and stopping real children is tested end to end, in a namespace
with a real etcd and perfdhcp (tests/integration/test_processes.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from multiprocessing.connection import Pipe
from types import SimpleNamespace

import pytest

from etcdhcp.config import load
from etcdhcp.processes import RECEIVE_STALE, ServingProcesses, _obey, child_config
from etcdhcp.serving import Serving


def test_children_connect_to_the_main_process_embedded_etcd() -> None:
    embedded = load(["--config="], {}, check_interface=False)
    assert embedded.etcd_embedded
    child = child_config(embedded, ["http://127.0.0.1:2479"])
    assert not child.etcd_embedded  # one embedded etcd, the main process's
    assert child.etcd_endpoints == ("http://127.0.0.1:2479",)
    assert child.processes == embedded.processes and child.interfaces == embedded.interfaces


def test_children_of_a_server_with_etcd_endpoints_get_its_own_configuration() -> None:
    remote = load(["--config=", "-etcd.discovery.endpoints=198.18.0.9:2379"], {}, False)
    assert child_config(remote, ["http://198.18.0.9:2379"]) is remote


def test_children_not_serving_yet_are_named_by_health() -> None:
    config = load(["--config=", "-dhcp.processes=3"], {}, check_interface=False)
    processes = ServingProcesses(config, 2, fanout=42, stop_requested=threading.Event())
    assert processes.health() == (False, "serving process 1, 2 of 3 not serving (yet)")
    assert processes.collect() == [[], [], [], []]  # nothing to read, nothing to carry


@pytest.mark.parametrize("receiving", [(True, True), (True, False), (False, True), ()])
def test_a_child_answers_pings_only_while_every_receive_loop_goes_round(
    receiving: tuple[bool, ...],
) -> None:
    """One receive loop per served interface: one stuck, and that interface's clients
    would go unanswered; none yet (not serving), and neither would anyone."""
    main, child = Pipe()
    asked: list[float] = []

    def loop(going: bool) -> SimpleNamespace:
        def alive(within: float) -> bool:
            asked.append(within)
            return going

        return SimpleNamespace(alive=alive)

    serving = Serving(load(["--config="], {}, check_interface=False), threading.Event(), False)
    serving.transports = [loop(going) for going in receiving]
    _obey(child, ("ping", 7), threading.Event(), serving)
    assert set(asked) <= {RECEIVE_STALE}
    pong = ("pong", 7) if receiving and all(receiving) else None
    assert (main.recv() if main.poll(1.0) else None) == pong


_PIN = """
import json, os, sys, threading
from etcdhcp.processes import pin_serving_process

def cpus():
    tasks = os.listdir("/proc/self/task")
    return sorted({frozenset(os.sched_getaffinity(int(t))) for t in tasks}, key=sorted)

def spawn():
    # An unpinned thread starting threads while the pinning lists them, as gRPC's pools do.
    for _ in range(300):
        if pinning_done.is_set():
            return
        threading.Thread(target=before.wait, daemon=True).start()

before, pinning_done = threading.Event(), threading.Event()
threading.Thread(target=before.wait, daemon=True).start()  # started before the pinning
spawner = threading.Thread(target=spawn, daemon=True)
spawner.start()
took = pin_serving_process(int(sys.argv[1]), tuple(json.loads(sys.argv[2])))
pinning_done.set()
spawner.join()
after = threading.Event()
threading.Thread(target=after.wait, daemon=True).start()  # and after it
print(json.dumps([took, [sorted(s) for s in cpus()]]))
"""


def pinned(index: int, cpus: list[int]) -> tuple[int | None, list[list[int]], str]:
    """(the CPU pin_serving_process took, every thread's CPUs, its log) in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", _PIN, str(index), json.dumps(cpus)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    took, threads = json.loads(out.stdout)
    return took, threads, out.stderr


def test_a_serving_process_pins_every_thread_to_the_cpu_of_its_index() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    cpus = [allowed[-1], allowed[0]]  # the order given is the order used
    assert pinned(0, cpus)[:2] == (allowed[-1], [[allowed[-1]]])
    assert pinned(3, cpus)[:2] == (allowed[0], [[allowed[0]]])  # round-robin: 3 % 2


def test_an_unpinned_or_refused_serving_process_keeps_the_cpus_it_had() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    assert pinned(0, [])[:2] == (None, [allowed])
    took, threads, log = pinned(1, [4095])  # no such CPU: the kernel says EINVAL
    assert (took, threads) == (None, [allowed])
    assert "serving process 1 stays unpinned: CPU 4095: Invalid argument" in log
