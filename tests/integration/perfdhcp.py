"""Kea's perfdhcp as a relay agent in a lab client namespace (FIELD-NOTES), bounded."""

from __future__ import annotations

import re

from .lab import Client


def perfdhcp_stats(output: str) -> dict[str, dict[str, float]]:
    """perfdhcp's per-exchange statistics: {'DISCOVER-OFFER': {'sent packets': 999, ...}}.

    Delays keep perfdhcp's unit, milliseconds ('avg delay', 'max delay'). The benchmark
    parses perfdhcp's output with this too.
    """
    stats: dict[str, dict[str, float]] = {}
    sections = re.split(r"\*\*\*Statistics for: ([\w-]+)\*\*\*", output)
    for name, body in zip(sections[1::2], sections[2::2], strict=True):
        stats[name] = {
            key: float(value) for key, value in re.findall(r"^([a-z ]+): ([\d.]+)", body, re.M)
        }
    return stats


def relay_load(relay: Client, rate: int, clients: int, seconds: int) -> dict[str, dict[str, float]]:
    """`rate` DORA/s from `clients` MACs for `seconds`, through `relay`; checks that
    perfdhcp saw no duplicate address, no rejected lease and under 1% drops."""
    argv = ["timeout", str(seconds + 40), "perfdhcp", "-4", "-l", "eth0"]
    argv += ["-r", str(rate), "-R", str(clients), "-p", str(seconds), "-W", "500000"]
    out = relay.run(argv, timeout=seconds + 60)
    print(out.stdout)
    stats = perfdhcp_stats(out.stdout)
    do, ra = stats["DISCOVER-OFFER"], stats["REQUEST-ACK"]
    assert do["sent packets"] >= rate * seconds / 2, out.stdout  # bounded by perfdhcp
    for exchange in (do, ra):
        assert exchange["drops"] <= 0.01 * exchange["sent packets"], out.stdout
        assert exchange["non unique addresses"] == 0
        assert exchange["rejected leases"] == 0
    return stats
