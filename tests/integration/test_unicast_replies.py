"""Replies to a client on our link reach the MAC that asked, not the kernel's guess.

Issue 17, item 2: address X was leased to A, released, then leased to B; B's unicast
RENEW was answered but B received nothing, because the reply went through the kernel,
which sent it to the MAC its neighbour table still held for X: A's. B knew the server's
MAC already (from its other address), so it sent no ARP request that would have
corrected the server's table; the kernel only finds out after its own probes, 5 s on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from .conftest import Served

X = "198.18.0.10"  # the whole pool
B_STATIC = "198.18.0.200/24"
RENEW_WITHIN = 3.0  # seconds; the kernel's own repair takes 5 s or more

# B keeps its static address: add the lease's address beside it, record each event.
_B_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew) ip addr replace "$ip/${mask:-24}" dev "$interface" ;;
esac
echo "$1 $ip" >> "$EVENTS"
exit 0
"""


def _events(path: str) -> list[str]:
    return open(path).read().splitlines() if os.path.exists(path) else []


def _wait_for(path: str, line: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.05) + 1):
        if line in _events(path):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return False


@pytest.mark.etcdhcp(issue_from=X, issue_to=X, lease="2m")
def test_renew_ack_reaches_the_second_holder_of_an_address(served: Served) -> None:
    lab = served.lab
    b = lab.add_client("b", address=B_STATIC)
    assert b.ping(lab.server_ip)  # B now knows the server's MAC
    a = lab.add_client("a")
    # A takes X and talks to the server from it: the server's kernel learns X -> A's MAC
    # (from A's ARP request). Then A releases X.
    assert a.dhclient() == X
    assert a.ping(lab.server_ip)
    assert a.dhclient_release() == 0
    assert a.address() is None and served.leases() == {}

    script = b.dir / "b.script"
    script.write_text(_B_SCRIPT)
    script.chmod(0o755)
    events = str(b.dir / "b.events")
    argv = ["udhcpc", "-i", "eth0", "-f", "-t", "3", "-T", "2", "-s", str(script)]
    with open(b.dir / "udhcpc-b.log", "wb") as log:
        udhcpc = b.popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "EVENTS": events}
        )
    try:
        assert _wait_for(events, f"bound {X}", 15.0), _events(events)
        assert served.leases() == {b.mac: X}
        udhcpc.send_signal(signal.SIGUSR1)  # renew now: a unicast REQUEST from X
        renewed = _wait_for(events, f"renew {X}", RENEW_WITHIN)
        assert renewed, (
            f"B's unicast renew got no ACK within {RENEW_WITHIN}s; events {_events(events)}; "
            f"server neighbours: {lab.run(lab.server_ns, ['ip', 'neigh']).stdout}"
        )
    finally:
        udhcpc.terminate()
        udhcpc.wait(10)
