"""One way for tests to build a LeaseStore on the shared etcd: defaults, then overrides."""

from __future__ import annotations

import ipaddress
from typing import Any

from etcdhcp.etcd import Etcd
from etcdhcp.store import AddressPool, LeaseStore

SERVER_IP = "198.18.0.1"


def make_store(etcd: Etcd, prefix: str, first: str, last: str, **kw: Any) -> LeaseStore:
    """A store for addresses `first`..`last` under `prefix`, not yet seeded."""
    args: dict[str, Any] = {
        "lease_time": 60,
        "offer_hold": 5,
        "decline_time": 60,
        "server_id": SERVER_IP,
    }
    args.update(kw)
    return LeaseStore(
        etcd,
        prefix=prefix,
        pool=AddressPool(ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)),
        **args,
    )
