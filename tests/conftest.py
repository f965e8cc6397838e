"""Shared fixtures: one real etcd per test session, isolated per test by key prefix.

A real etcd (Debian's binary, started through etcdhcp.embedded_etcd so the fixture and
the daemon's ``--etcd.embedded`` share one implementation) catches what a fake would not:
transaction limits, revisions, lease semantics.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from etcdhcp import ctl
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


def documents(keys: Keys) -> dict[str, Any]:
    """The configuration documents in etcd: key under `config::` -> parsed value."""
    return {
        k.removeprefix("config::"): json.loads(v)
        for k, v in keys.all().items()
        if k.startswith("config::")
    }


class Ctl:
    """Runs `etcdhcpctl --config= <etcd flags> ARGS` in-process; checks the exit status."""

    def __init__(self, endpoint: str, prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.flags = ["--config=", "--etcd.discovery.endpoints", endpoint, "--etcd.prefix", prefix]
        self.capsys = capsys

    def run(self, *args: str, flags: bool = True) -> tuple[int, str, str]:
        logger = logging.getLogger("etcdhcp")
        level, handlers = logger.level, list(logger.handlers)
        try:
            code = ctl.main([*(self.flags if flags else ["--config="]), *args])
        except SystemExit as exit:  # usage errors exit 2 from the config parser
            code = int(exit.code or 0)
        finally:  # main() sets the logger up for a whole process: not for the next test
            logger.setLevel(level)
            logger.handlers[:] = handlers
        out, err = self.capsys.readouterr()
        return code, out, err

    def __call__(self, *args: str) -> str:
        code, out, err = self.run(*args)
        assert code == 0, err
        assert err == ""
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))

    def fails(self, *args: str, code: int = 1) -> str:
        got, out, err = self.run(*args)
        assert got == code, (out, err)
        assert err.count("\n") == 1 and err.startswith("etcdhcpctl: "), err
        return err.strip()


@pytest.fixture
def run(etcd_server: EtcdServer, etcd_prefix: str, capsys: pytest.CaptureFixture[str]) -> Ctl:
    """etcdhcpctl on the test's prefix (test_ctl*.py)."""
    return Ctl(etcd_server.endpoint, etcd_prefix, capsys)
