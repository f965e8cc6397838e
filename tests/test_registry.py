"""The server registry against the real etcd: register, keep alive, vanish, come back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from etcdhcp import metrics
from etcdhcp.etcd import Etcd
from etcdhcp.registry import ServerRegistry
from etcdhcp.store import LeaseStore, ServerInfo
from stores import make_store
from test_etcd import dead_endpoint
from waiting import wait_until

TTL = 3  # seconds: short, so expiry is observable within a test


def registry_store(etcd: Etcd, prefix: str) -> LeaseStore:
    return make_store(etcd, prefix, "10.9.0.10", "10.9.0.20", offer_hold=10, server_id="10.9.0.1")


def me(ip: str = "10.9.0.1") -> ServerInfo:
    return ServerInfo(
        server_ip=ip,
        interface="eth0",
        range_from="10.9.0.10",
        range_to="10.9.0.20",
        version="test",
        started=time.time(),
        hostname="host-a",
        pid=4242,
    )


@pytest.fixture
def etcd(etcd_server: Any) -> Iterator[Etcd]:
    client = Etcd([etcd_server.endpoint], timeout=3.0)
    yield client
    client.close()


@pytest.fixture
def store(etcd: Etcd, etcd_prefix: str) -> LeaseStore:
    return registry_store(etcd, etcd_prefix)


def registered_ips(store: LeaseStore) -> list[str]:
    return sorted(s.server_ip for s in store.servers())


def test_a_registered_server_is_listed(store: LeaseStore, etcd_client: Any) -> None:
    registry = ServerRegistry(store, me(), ttl=TTL)
    registry.start()
    try:
        assert store.servers() == [registry.me]
        assert registry.health() == (True, "registered")
        assert metrics.SERVERS_LIVE._value.get() == 1
        value, meta = etcd_client.get(f"{store.prefix}servers::10.9.0.1")
        assert ServerInfo.from_json(value).hostname == "host-a"
        assert meta.lease_id != 0  # bound to an etcd lease, so it can vanish
    finally:
        registry.stop()
    assert store.servers() == []  # a clean stop deletes the key at once


def test_keepalives_outlive_the_ttl(store: LeaseStore) -> None:
    registry = ServerRegistry(store, me(), ttl=TTL)
    registry.start()
    try:
        time.sleep(3 * TTL)
        assert registered_ips(store) == ["10.9.0.1"]
        assert registry.health()[0]
    finally:
        registry.stop()


def test_a_dead_server_vanishes_when_its_lease_runs_out(store: LeaseStore) -> None:
    registry = ServerRegistry(store, me(), ttl=TTL)
    registry.start()
    registry._stopping.set()  # the keepalives stop as if the process had died
    registry._thread.join(5)
    assert registered_ips(store) == ["10.9.0.1"]
    wait_until(lambda: not store.servers(), 3 * TTL + 2, "the dead server's key to expire")


def test_a_deleted_or_expired_registration_is_written_again(
    store: LeaseStore, etcd: Etcd, etcd_client: Any
) -> None:
    registry = ServerRegistry(store, me(), ttl=TTL)
    registry.start()
    other = ServerRegistry(store, me("10.9.0.2"), ttl=TTL)
    other.start()
    try:
        assert registered_ips(store) == ["10.9.0.1", "10.9.0.2"]
        etcd_client.delete(f"{store.prefix}servers::10.9.0.1")  # an operator's mistake
        wait_until(lambda: registered_ips(store) == ["10.9.0.1", "10.9.0.2"], 5, "re-registration")
        assert registry._lease is not None
        etcd.revoke(registry._lease)  # as if the lease had expired during an etcd outage
        wait_until(lambda: registered_ips(store) == ["10.9.0.1", "10.9.0.2"], 5, "a new lease")
        assert metrics.SERVERS_LIVE._value.get() == 2
    finally:
        registry.stop()
        other.stop()
    assert store.servers() == []


def test_not_healthy_without_etcd_and_says_why(etcd_prefix: str) -> None:
    etcd = Etcd([dead_endpoint()], timeout=0.5)
    try:
        registry = ServerRegistry(registry_store(etcd, etcd_prefix), me(), ttl=TTL)
        registry.start()
        healthy, why = registry.health()
        assert not healthy
        assert why.startswith("not registered in etcd: no etcd endpoint answered"), why
        registry.stop()
    finally:
        etcd.close()


def test_unreadable_server_records_are_skipped(store: LeaseStore, etcd_client: Any) -> None:
    etcd_client.put(f"{store.prefix}servers::10.9.0.9", "not json")
    etcd_client.put(f"{store.prefix}servers::10.9.0.8", '{"server_ip": "10.9.0.8"}')
    assert [s.server_ip for s in store.servers()] == ["10.9.0.8"]
