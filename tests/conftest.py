"""Shared fixtures: one real etcd per test session, isolated per test by key prefix.

A real etcd (Debian's binary, started through etcdhcp.embedded_etcd so the fixture and
the daemon's ``--etcd.embedded`` share one implementation) catches what a fake would not:
transaction limits, revisions, lease semantics.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from etcdhcp.embedded_etcd import EtcdProcess
from etcdhcp.etcd import Etcd
from integration.lab import free_port


@dataclass(frozen=True)
class EtcdServer:
    """Where the session's etcd listens; ``process`` is the EtcdProcess behind it."""

    host: str
    port: int
    endpoint: str
    process: EtcdProcess


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """A real single-node etcd on 127.0.0.1 for the whole session, always stopped."""
    base = tmp_path_factory.mktemp("etcd-server")
    host = "127.0.0.1"
    # Free ports can be taken between probing and etcd's bind: retry a few times.
    last: Exception | None = None
    for _attempt in range(3):
        port = free_port(host)
        proc = EtcdProcess(
            data_dir=str(base / f"data-{port}"),
            client_urls=[f"http://{host}:{port}"],
            peer_url=f"http://{host}:{free_port(host)}",
            name="etcdhcp-test",
        )
        try:
            proc.start(timeout=30.0)
        except Exception as e:
            last = e
            continue
        try:
            yield EtcdServer(host=host, port=port, endpoint=proc.client_url, process=proc)
        finally:
            proc.stop()
        return
    raise RuntimeError(f"could not start the test etcd: {last}")


@pytest.fixture
def etcd_prefix() -> str:
    """A key prefix unique to this test, so tests sharing one etcd never collide."""
    return f"t-{uuid.uuid4().hex[:12]}::"


@pytest.fixture
def etcd_client(etcd_server: EtcdServer) -> Iterator[Any]:
    """A python etcd client (pyetcd in the venv, etcd3 under Debian) for etcd_server."""
    try:
        import pyetcd as etcd3
    except ImportError:
        import etcd3
    client = etcd3.client(etcd_server.host, etcd_server.port)
    try:
        yield client
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()


@pytest.fixture
def etcd(etcd_server: EtcdServer) -> Iterator[Etcd]:
    """etcdhcp's own etcd connection to the session's etcd (closed after the test)."""
    client = Etcd([etcd_server.endpoint], timeout=5.0)
    yield client
    client.close()


class Keys:
    """The test's keys, read and written with the independent client (as etcdctl would)."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def get(self, suffix: str) -> str | None:
        value, _ = self.client.get(self.prefix + suffix)
        return None if value is None else value.decode()

    def lease_id(self, suffix: str) -> int:
        _, meta = self.client.get(self.prefix + suffix)
        return meta.lease_id

    def all(self) -> dict[str, bytes]:
        return {
            meta.key.decode()[len(self.prefix) :]: value
            for value, meta in self.client.get_prefix(self.prefix)
        }

    def put(self, suffix: str, value: str) -> None:
        self.client.put(self.prefix + suffix, value)

    def delete(self, suffix: str) -> None:
        self.client.delete(self.prefix + suffix)


@pytest.fixture
def keys(etcd_client: Any, etcd_prefix: str) -> Keys:
    return Keys(etcd_client, etcd_prefix)
