"""--dhcp.processes: several serving processes on one fanout group, end to end."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path

import pytest

from waiting import wait_until

from .conftest import Served
from .perfdhcp import relay_load

PROCESSES = 3
# Two CPUs (or the only one) for three processes: process i on CPUS[i % len(CPUS)].
CPUS = sorted(os.sched_getaffinity(0))[:2]
SERVING = {
    "issue_from": "198.18.0.10",
    "issue_to": "198.18.3.250",
    "netmask": "255.255.252.0",
    "extra": (
        f"-dhcp.processes={PROCESSES}",
        f"-dhcp.cpu-affinity={','.join(map(str, CPUS))}",
    ),
}
# glog: "I1128 16:40:00.123456   4242 pipeline.py:182] lease granted: ..."
_LEASE_LINE = re.compile(r"^I\S+ \S+ +(\d+) pipeline\.py:\d+\] lease granted", re.M)
_PINNED = re.compile(r"serving process (\d+) \(pid (\d+)\) runs on CPU (\d+)$", re.M)


def children(pid: int) -> set[int]:
    """The live processes whose parent is `pid`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def cpus_of(pid: int) -> set[str]:
    """The CPUs each thread of `pid` may run on, as /proc lists them ("1", "0-1")."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            status = (task / "status").read_text()
            found.add(re.search(r"^Cpus_allowed_list:\s*(\S+)$", status, re.M).group(1))
    return found


def assert_pinned(served: Served, pids: set[int]) -> None:
    """Each serving process said which CPU it took, the one --dhcp.cpu-affinity gives its
    index, and every one of its threads runs there, those started after the pinning too."""
    said = {
        int(pid): (int(index), int(cpu)) for index, pid, cpu in _PINNED.findall(served.daemon.log())
    }
    assert pids <= set(said)
    for pid in pids:
        index, cpu = said[pid]
        assert cpu == CPUS[index % len(CPUS)]
        assert cpus_of(pid) == {str(cpu)}


def received(served: Served) -> float:
    """Requests of every type the daemon counts as received (all processes)."""
    return sum(
        served.daemon.metric("etcdhcp_packets_received_total", type=kind)
        for kind in ("discover", "request", "release", "decline", "inform", "other")
    )


@pytest.mark.etcdhcp(**SERVING)
def test_every_process_serves_its_share_and_metrics_add_up(served: Served) -> None:
    daemon = served.daemon
    main = daemon.proc.pid
    assert len(children(main)) == PROCESSES - 1
    assert daemon.metric("etcdhcp_serving_processes") == PROCESSES
    relay = served.lab.add_client("relay", address="198.18.0.2/24")
    stats = relay_load(relay, rate=60, clients=600, seconds=10)
    ra = stats["REQUEST-ACK"]
    assert daemon.metric("etcdhcp_replies_sent_total", type="nak") == 0
    leases = served.leases()
    assert len(leases) >= 0.5 * ra["received packets"]
    # Each lease line carries the pid that granted it: all processes took clients.
    granted_by = {int(pid) for pid in _LEASE_LINE.findall(daemon.log())}
    assert granted_by == {main} | children(main)
    assert_pinned(served, granted_by)
    # /metrics adds up every process: at least one REQUEST counted per ACK perfdhcp saw.
    assert daemon.metric("etcdhcp_packets_received_total", type="request") >= ra["received packets"]
    assert daemon.metric("etcdhcp_leases_total", event="granted") >= len(leases)
    decoded = received(served)  # read first: a frame's wait is counted before it is decoded
    assert daemon.metric("etcdhcp_queue_wait_seconds_count") >= decoded > 0
    # One server in the registry, however many processes serve for it.
    assert [k for k in served.read() if k.startswith("servers::")] == ["servers::198.18.0.1"]


@pytest.mark.etcdhcp(**SERVING)
def test_a_serving_process_that_dies_is_restarted_and_nothing_is_lost(served: Served) -> None:
    daemon = served.daemon
    main = daemon.proc.pid
    relay = served.lab.add_client("relay", address="198.18.0.2/24")
    relay_load(relay, rate=40, clients=300, seconds=5)
    before = children(main)
    counted = received(served)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: daemon.metric("etcdhcp_serving_process_restarts_total") == 1, 20, "a restart"
    )
    wait_until(lambda: len(children(main)) == PROCESSES - 1, 20, "the new process")
    wait_until(lambda: daemon.metric("etcdhcp_serving_processes") == PROCESSES, 20, "it serving")
    assert daemon.ready()
    after = children(main)
    assert victim not in after and len(after - before) == 1
    assert received(served) >= counted  # the dead process's counts were kept
    assert_pinned(served, after)  # the successor took its predecessor's CPU
    assert re.search(rf"serving process \d \(pid {victim}\) exited with status -9", daemon.log())
    # Still one lease per client and no NAK, with the new process among the servers.
    relay_load(relay, rate=40, clients=300, seconds=5)
    served.leases()
    assert daemon.metric("etcdhcp_replies_sent_total", type="nak") == 0
    # SIGTERM stops them all (the fixture checks the main process's exit status).
    assert daemon.stop() == 0
    end = time.monotonic() + 5
    while time.monotonic() < end and any(Path(f"/proc/{pid}").exists() for pid in after):
        time.sleep(0.1)
    assert not [pid for pid in after if Path(f"/proc/{pid}").exists()]


@pytest.mark.etcdhcp(**SERVING)
def test_a_serving_process_that_hangs_is_killed_and_restarted(served: Served) -> None:
    daemon = served.daemon
    main = daemon.proc.pid
    before = children(main)
    victim = min(before)
    os.kill(victim, signal.SIGSTOP)  # alive, holding its share of the clients, silent
    try:
        hung = rf"serving process \d \(pid {victim}\) is hung: 3 pings unanswered; killing it"
        wait_until(lambda: re.search(hung, daemon.log()), 40, "the hung process killed")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGCONT)
    wait_until(lambda: victim not in children(main), 10, "the hung process gone")
    wait_until(lambda: daemon.metric("etcdhcp_serving_processes") == PROCESSES, 30, "a successor")
    assert daemon.metric("etcdhcp_serving_process_restarts_total") == 1
    assert len(children(main) - before) == 1
    # Every client is answered again, the ones the fanout gives the new process too.
    relay = served.lab.add_client("relay", address="198.18.0.2/24")
    relay_load(relay, rate=40, clients=300, seconds=5)
    granted_by = {int(pid) for pid in _LEASE_LINE.findall(daemon.log())}
    assert granted_by == {main} | children(main)
    assert daemon.metric("etcdhcp_replies_sent_total", type="nak") == 0
