"""A hostile network, end to end: garbage and floods over a real veth, then real clients.

An attacker namespace on the lab bridge sends frames raw (tests/integration/flood.py)
to the running daemon: 10,000 malformed requests, then (another test) DISCOVERs from
5,000 forged MACs. The daemon must count what it drops, keep its memory, and go on
serving real clients: a DORA after the garbage, renewals during the flood.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from .conftest import Served
from .daemon import SRC, EtcdhcpProcess
from .lab import Client
from .test_clients import background, in_pool, wait_until

FLOOD = str(Path(__file__).with_name("flood.py"))
TESTS = str(Path(__file__).resolve().parents[1])
HOSTILE_FRAMES = 10_000
FORGED_CLIENTS = 5_000


def rss_kib(daemon: EtcdhcpProcess) -> int:
    """The daemon's resident set size (VmRSS) in KiB."""
    assert daemon.proc is not None
    status = Path(f"/proc/{daemon.proc.pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


def dropped(daemon: EtcdhcpProcess) -> dict[str, float]:
    """etcdhcp_packets_dropped_total by reason."""
    found = re.findall(
        r'^etcdhcp_packets_dropped_total\{reason="([^"]+)"\} (\S+)$', daemon.metrics(), re.M
    )
    return {reason: float(value) for reason, value in found}


def flood(attacker: Client, kind: str, count: int, rate: int) -> subprocess.Popen[Any]:
    """Start flood.py in the attacker's namespace; its JSON summary goes to a file."""
    out = open(attacker.dir / f"flood-{kind}.json", "wb")  # noqa: SIM115 - the child owns it
    proc = attacker.popen(
        [sys.executable, FLOOD, kind, str(count), "--rate", str(rate), "--max-seconds", "90"],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={"PYTHONPATH": f"{SRC}:{TESTS}", "PATH": "/usr/bin:/bin"},
    )
    out.close()
    return proc


def finished(attacker: Client, proc: subprocess.Popen[Any], kind: str) -> dict[str, Any]:
    assert proc.wait(timeout=150) == 0, (attacker.dir / f"flood-{kind}.json").read_text()
    return json.loads((attacker.dir / f"flood-{kind}.json").read_text())


def test_ten_thousand_malformed_frames_cost_nothing_but_their_count(served: Served) -> None:
    daemon = served.daemon
    attacker = served.lab.add_client("attacker")
    before, rss_before = dropped(daemon), rss_kib(daemon)
    summary = finished(attacker, flood(attacker, "hostile", HOSTILE_FRAMES, 2000), "hostile")
    assert summary["sent"] == HOSTILE_FRAMES
    assert len(summary["kinds"]) >= 14, summary  # every kind of defect was in the stream

    def counted() -> float:
        now = dropped(daemon)
        return sum(now.values()) - sum(before.values())

    # Every frame that reaches the daemon is dropped and counted. First fragments never
    # do: the kernel holds them for a reassembly that never comes. A few frames may be
    # lost when the socket buffer overflows.
    reaching = HOSTILE_FRAMES - summary["kinds"].get("fragment", 0)
    wait_until(lambda: counted() >= 0.98 * reaching, 60, "the drops to be counted")
    time.sleep(1)
    after = dropped(daemon)
    moved = {r: after[r] - before.get(r, 0.0) for r in after if after[r] != before.get(r, 0.0)}
    print(f"hostile frames: {summary}\ndropped by reason: {moved}")
    assert sum(moved.values()) <= reaching, moved
    assert {"truncated", "bad_options", "bad_message_type", "no_message_type"} <= set(moved)
    assert daemon.metric("etcdhcp_replies_sent_total", type="offer") == 0

    # Still serving: a real client's DORA works, and the daemon kept its memory.
    client = served.lab.add_client("after-the-storm")
    assert in_pool(client.udhcpc(tries=5)), client.last_output
    rss_after = rss_kib(daemon)
    print(f"VmRSS before {rss_before} KiB, after {rss_after} KiB")
    assert rss_after < 2 * rss_before, (rss_before, rss_after)
    assert daemon.proc is not None and daemon.proc.poll() is None


POOL_FIRST, POOL_LAST = IPv4Address("198.18.0.10"), IPv4Address("198.18.0.250")
POOL = {"issue_from": str(POOL_FIRST), "issue_to": str(POOL_LAST)}  # 241 addresses


# 20 s: busybox's udhcpc takes a shorter lease as 30 s and renews at 15 s, after a 10 s
# lease has ended and been reclaimed (3 s past its end).
@pytest.mark.etcdhcp(**POOL, lease="20s", extra=["-dhcp.offer-hold=3s"])
def test_forged_discovers_do_not_starve_real_clients(served: Served) -> None:
    daemon = served.daemon
    veteran = served.lab.add_client("veteran")
    script = str(served.lab.udhcpc_script)
    background(veteran, ["udhcpc", "-i", "eth0", "-f", "-t", "5", "-T", "2", "-s", script])
    held = wait_until(veteran.address, 20, "the veteran's first lease")
    attacker = served.lab.add_client("attacker")
    newcomer = served.lab.add_client("newcomer")
    before = dropped(daemon)

    proc = flood(attacker, "discover", FORGED_CLIENTS, 250)  # 20 s of flood
    wait_until(
        lambda: daemon.metric("etcdhcp_replies_sent_total", type="offer") >= 200,
        30,
        "the flood to take the pool",
    )
    asked = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        # A new client asks during the flood, and keeps asking (up to 50 s).
        newcomer_ip = pool.submit(newcomer.udhcpc, 25, 2)
        expiries: set[float] = set()
        free_seen: list[int] = []
        while proc.poll() is None:
            keys = served.read()
            record = keys.get(f"leases::{held}")
            if record is not None and json.loads(record)["mac"] == veteran.mac:
                expiries.add(json.loads(record)["expires"])
            free_seen.append(sum(1 for k in keys if k.startswith("ips::free::")))
            time.sleep(1)
        summary = finished(attacker, proc, "discover")
        flood_over = time.monotonic()
        got = newcomer_ip.result(timeout=120)
        waited = time.monotonic() - asked
    assert summary["sent"] == FORGED_CLIENTS, summary
    after = dropped(daemon)
    moved = {r: after[r] - before.get(r, 0.0) for r in after if after[r] != before.get(r, 0.0)}
    offers = daemon.metric("etcdhcp_replies_sent_total", type="offer")
    print(
        f"flood: {summary}; offers sent {offers:.0f}; dropped {moved}; "
        f"free addresses seen during the flood: {free_seen}; veteran renewals: "
        f"{len(expiries) - 1}; the newcomer asked {flood_over - asked:.1f}s before the "
        f"flood ended and had its lease {waited:.1f}s after asking"
    )
    # The veteran renewed during the flood (udhcpc renews at 15 s) and still holds its address: the
    # flood's DISCOVERs are shed before, and wait behind, renewals.
    assert len(expiries) >= 2, (expiries, daemon.log()[-3000:])
    assert veteran.address() == held
    assert got is not None and POOL_FIRST <= IPv4Address(got) <= POOL_LAST, newcomer.last_output
    assert served.read().get(f"nics::leased::{newcomer.mac}") == got

    # The offers made to forged clients expire, and the pool recovers in full.
    def recovered() -> bool:
        keys = served.read()
        offered = [k for k in keys if k.startswith("ips::offered::")]
        free = [k for k in keys if k.startswith("ips::free::")]
        leased = [k for k in keys if k.startswith("ips::leased::")]
        return not offered and len(free) + len(leased) == 241

    wait_until(recovered, 30, "the forged offers to expire and their addresses to be free")
    keys = served.read()
    # No forged client holds a lease; the veteran (still renewing) does. The newcomer's
    # short lease may have run out by now: udhcpc -q does not renew it.
    leased_macs = {k for k in keys if k.startswith("nics::leased::")}
    assert f"nics::leased::{veteran.mac}" in leased_macs
    assert leased_macs <= {f"nics::leased::{veteran.mac}", f"nics::leased::{newcomer.mac}"}
