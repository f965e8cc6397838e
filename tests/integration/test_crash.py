"""Crash consistency: SIGKILL the daemon at random moments under load, 50 times.

perfdhcp (as a relay) and churn.py (DORA, RELEASE, DECLINE from 100 MACs) keep
requests coming the whole time; each round starts the daemon, lets it serve for a
random moment, kills it with SIGKILL and checks the store with `LeaseStore.check`
(the invariants `etcdhcpctl check` reports): lease and offer keys in matching pairs,
no address both free and in another state, no MAC with two addresses. Every change
is one etcd transaction, so no moment of death can leave half of one behind.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from etcdhcp.etcd import Etcd
from etcdhcp.store import LeaseStore

from .daemon import SRC, EtcdhcpProcess
from .lab import Lab

ROUNDS = 50
LOAD_SECONDS = 400  # a bound on the load generators, well past the rounds' end
CHURN = str(Path(__file__).with_name("churn.py"))
TESTS = str(Path(__file__).resolve().parents[1])
FIRST, LAST = IPv4Address("198.18.0.10"), IPv4Address("198.18.0.250")
DAEMON_FLAGS = {
    "issue_from": str(FIRST),
    "issue_to": str(LAST),
    "lease": "30s",
    "extra": ["-dhcp.decline-time=5s", "-dhcp.offer-hold=3s"],
    "verbosity": 0,
    # Should the daemon die of anything but our SIGKILL, gRPC and Python say why.
    "env": {"GRPC_VERBOSITY": "ERROR", "PYTHONFAULTHANDLER": "1"},
}


def start_load(lab: Lab) -> list[tuple[subprocess.Popen[Any], Path]]:
    relay = lab.add_client("relay", address="198.18.0.2/24")
    churner = lab.add_client("churner")
    perfdhcp = [
        "timeout", str(LOAD_SECONDS + 30), "perfdhcp", "-4", "-l", "eth0",
        "-r", "40", "-R", "120", "-p", str(LOAD_SECONDS), "-W", "500000",
    ]  # fmt: skip
    churn = [sys.executable, CHURN, "--seconds", str(LOAD_SECONDS), "--macs", "100"]
    started = []
    for client, argv, env in (
        (relay, perfdhcp, None),
        (churner, churn, {"PYTHONPATH": f"{SRC}:{TESTS}", "PATH": "/usr/bin:/bin"}),
    ):
        out = client.dir / "load.log"
        with open(out, "wb") as log:
            started.append((client.popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env), out))
    return started


def test_sigkill_under_load_never_breaks_the_store(lab: Lab) -> None:
    etcd_process = lab.etcd()
    etcd = Etcd([etcd_process.client_url], timeout=5.0)
    store = LeaseStore.for_operator(etcd, "etcdhcp::")
    load = start_load(lab)
    rng = random.Random(2024)
    died_by_themselves: list[tuple[int, int]] = []  # (round, signal)
    try:
        for round_ in range(ROUNDS):
            daemon = EtcdhcpProcess(lab, etcd_process.client_url, **DAEMON_FLAGS)
            try:
                daemon.start()
            except RuntimeError:
                # Only death by a signal is a crash to check the store after; a start-up
                # error (exit status >= 0) is a failure of its own.
                assert daemon.proc is not None and (daemon.proc.returncode or 0) < 0, daemon.log()
            else:
                time.sleep(rng.uniform(0.2, 2.0))
                assert daemon.proc is not None
                daemon.proc.send_signal(signal.SIGKILL)
                daemon.proc.wait(10)
            if daemon.proc.returncode != -signal.SIGKILL:
                died_by_themselves.append((round_, -daemon.proc.returncode))
            problems = store.check()
            assert problems == [], f"round {round_}: {problems}"
        counts = store.counts()
    finally:
        etcd.close()
        for proc, _ in load:
            proc.terminate()
    for proc, _ in load:
        proc.wait(30)
    churn = json.loads(load[1][1].read_text().strip().splitlines()[-1])
    print(
        f"{ROUNDS} rounds; store now {counts}; churn.py {churn}; "
        f"daemons that died before our SIGKILL (round, signal): {died_by_themselves}"
    )
    # Seen on this machine: a rare SIGABRT within 2 s of start, with no message from
    # Python or gRPC (about 1 in 100 starts, under load). The store must hold then too
    # (checked above), but it must stay rare.
    assert len(died_by_themselves) < ROUNDS // 10, died_by_themselves
    assert churn.get("ack", 0) >= ROUNDS and churn.get("release", 0) and churn.get("decline", 0)
    # Whatever the last kill interrupted, a new daemon serves from that store.
    daemon = EtcdhcpProcess(lab, etcd_process.client_url, **DAEMON_FLAGS).start()
    ip = lab.add_client("afterwards").udhcpc(tries=5)
    assert ip is not None and FIRST <= IPv4Address(ip) <= LAST
    assert daemon.stop() == 0
