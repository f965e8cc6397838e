"""Relayed traffic end to end: Kea's perfdhcp acts as a relay agent (FIELD-NOTES)."""

from __future__ import annotations

import pytest

from .conftest import Served
from .perfdhcp import relay_load

POOL = {"issue_from": "198.18.0.10", "issue_to": "198.18.3.250", "netmask": "255.255.252.0"}


@pytest.mark.etcdhcp(**POOL)
def test_perfdhcp_relay_load_gets_distinct_leases_and_no_nak(served: Served) -> None:
    relay = served.lab.add_client("relay", address="198.18.0.2/24")
    stats = relay_load(relay, rate=50, clients=1000, seconds=20)
    ra = stats["REQUEST-ACK"]
    assert served.daemon.metric("etcdhcp_replies_sent_total", type="nak") == 0
    # -R 1000 draws ~1000 exchanges from 1000 MACs: about 63% of them are distinct.
    assert len(served.leases()) >= 0.5 * ra["received packets"]
    assert (
        served.daemon.metric("etcdhcp_packets_received_total", type="request") >= ra["sent packets"]
    )
