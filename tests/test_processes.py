"""processes: what the main process gives its serving children, and how it reports them.

Starting, restarting and stopping real children is tested end to end, in a namespace
with a real etcd and perfdhcp (tests/integration/test_processes.py).
"""

from __future__ import annotations

import threading
from multiprocessing.connection import Pipe
from types import SimpleNamespace
from typing import Any

import pytest

from etcdhcp.config import load
from etcdhcp.processes import RECEIVE_STALE, ServingProcesses, _obey, child_config


def test_children_connect_to_the_main_process_embedded_etcd() -> None:
    embedded = load(["--config="], {}, check_interface=False)
    assert embedded.etcd_embedded
    child = child_config(embedded, ["http://127.0.0.1:2479"])
    assert not child.etcd_embedded  # one embedded etcd, the main process's
    assert child.etcd_endpoints == ("http://127.0.0.1:2479",)
    assert child.processes == embedded.processes and child.server_if == embedded.server_if


def test_children_of_a_server_with_etcd_endpoints_get_its_own_configuration() -> None:
    remote = load(["--config=", "-etcd.discovery.endpoints=198.18.0.9:2379"], {}, False)
    assert child_config(remote, ["http://198.18.0.9:2379"]) is remote


def test_children_not_serving_yet_are_named_by_health() -> None:
    config = load(["--config=", "-dhcp.processes=3"], {}, check_interface=False)
    processes = ServingProcesses(config, 2, fanout=42, stop_requested=threading.Event())
    assert processes.health() == (False, "serving process 1, 2 of 3 not serving (yet)")
    assert processes.collect() == [[], [], [], []]  # nothing to read, nothing to carry


@pytest.mark.parametrize("receiving", [True, False])
def test_a_child_answers_pings_only_while_its_receive_loop_goes_round(receiving: bool) -> None:
    main, child = Pipe()
    asked: list[float] = []

    def alive(within: float) -> bool:
        asked.append(within)
        return receiving

    serving: Any = SimpleNamespace(transport=SimpleNamespace(alive=alive))
    _obey(child, ("ping", 7), threading.Event(), serving)
    assert asked == [RECEIVE_STALE]
    assert (main.recv() if main.poll(1.0) else None) == (("pong", 7) if receiving else None)
