"""Relayed traffic end to end: Kea's perfdhcp acts as a relay agent (FIELD-NOTES)."""

from __future__ import annotations

import re

import pytest

from .conftest import Served

POOL = {"issue_from": "198.18.0.10", "issue_to": "198.18.3.250", "netmask": "255.255.252.0"}


def perfdhcp_stats(output: str) -> dict[str, dict[str, float]]:
    """perfdhcp's per-exchange statistics: {'DISCOVER-OFFER': {'sent packets': 999, ...}}."""
    stats: dict[str, dict[str, float]] = {}
    sections = re.split(r"\*\*\*Statistics for: ([\w-]+)\*\*\*", output)
    for name, body in zip(sections[1::2], sections[2::2], strict=True):
        stats[name] = {
            key: float(value) for key, value in re.findall(r"^([a-z ]+): ([\d.]+)", body, re.M)
        }
    return stats


@pytest.mark.etcdhcp(**POOL)
def test_perfdhcp_relay_load_gets_distinct_leases_and_no_nak(served: Served) -> None:
    relay = served.lab.add_client("relay", address="198.18.0.2/24")
    argv = [
        "timeout",
        "60",
        "perfdhcp",
        "-4",
        "-l",
        "eth0",
        "-r",
        "50",
        "-R",
        "1000",
        "-p",
        "20",
        "-W",
        "500000",
    ]
    out = relay.run(argv, timeout=90)
    print(out.stdout)
    stats = perfdhcp_stats(out.stdout)
    do, ra = stats["DISCOVER-OFFER"], stats["REQUEST-ACK"]
    assert do["sent packets"] >= 500, out.stdout  # 50/s for 20 s, bounded by perfdhcp
    for exchange in (do, ra):
        assert exchange["drops"] <= 0.01 * exchange["sent packets"], out.stdout
        assert exchange["non unique addresses"] == 0
        assert exchange["rejected leases"] == 0
    assert served.daemon.metric("etcdhcp_replies_sent_total", type="nak") == 0
    keys = served.read()
    leased = {k.split("::")[-1]: v for k, v in keys.items() if k.startswith("ips::leased::")}
    nics = {k.split("::")[-1]: v for k, v in keys.items() if k.startswith("nics::leased::")}
    # -R 1000 draws ~1000 exchanges from 1000 MACs: about 63% of them are distinct.
    assert len(leased) >= 0.5 * ra["received packets"]
    assert {mac: ip for ip, mac in leased.items()} == nics  # one address per MAC and back
    assert (
        served.daemon.metric("etcdhcp_packets_received_total", type="request") >= ra["sent packets"]
    )
