"""One way for tests to build a LeaseStore on the shared etcd: defaults, then overrides."""

from __future__ import annotations

import ipaddress
from typing import Any

from etcdhcp.etcd import Etcd
from etcdhcp.scopes import Scope, ScopeSet, flag_scope
from etcdhcp.store import LeaseStore

SERVER_IP = "198.18.0.1"
LAB_SUBNET = ipaddress.IPv4Network("198.18.0.0/15")


def scope_of(first: str, last: str, lease_time: float = 60, subnet: str | None = None) -> Scope:
    """A flags-style scope for `first`..`last` (in the lab's /15 unless `subnet` says)."""
    return flag_scope(
        ipaddress.IPv4Network(subnet) if subnet else LAB_SUBNET,
        ipaddress.IPv4Address(first),
        ipaddress.IPv4Address(last),
        ipaddress.IPv4Address(SERVER_IP),
        [ipaddress.IPv4Address(SERVER_IP)],
        lease_time,
        "eth0",
    )


def make_store(etcd: Etcd, prefix: str, first: str, last: str, **kw: Any) -> LeaseStore:
    """A store serving one scope, `first`..`last`, under `prefix`, not yet seeded."""
    scopes = ScopeSet([scope_of(first, last, kw.pop("lease_time", 60))])
    args: dict[str, Any] = {
        "offer_hold": 5,
        "decline_time": 60,
        "server_id": SERVER_IP,
        "scopes": lambda: scopes,
    }
    args.update(kw)
    return LeaseStore(etcd, prefix=prefix, **args)
