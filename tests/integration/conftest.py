"""Fixtures for end-to-end tests in network namespaces.

Nothing here skips: these tests need root, CI runs as root, and a namespace test that
silently skips hides a broken server. Without root (or the tools) they fail loudly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from etcdhcp.embedded_etcd import EtcdProcess

from .daemon import EtcdhcpProcess
from .lab import Lab

_HERE = Path(__file__).resolve().parent
_TOOLS = ("ip", "unshare", "etcd", "etcdctl", "dhclient", "udhcpc", "dhcpcd", "busybox")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/integration is a netns test (select with -m netns)."""
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.netns)


def _require_lab_host() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "namespace tests need root (ip netns, veth, bridges); run pytest as root. "
            "They never skip: CI runs as root and a skipped netns test is a defect.",
            pytrace=False,
        )
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"namespace tests need {', '.join(missing)}: run scripts/bootstrap.sh",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def _stale_labs_reaped() -> None:
    """Once per session: remove labs left by test runs that were killed."""
    if os.geteuid() == 0:
        Lab.reap_stale()


@pytest.fixture
def lab(tmp_path: Path, _stale_labs_reaped: None) -> Iterator[Lab]:
    """A fresh namespace lab, torn down after the test whether it passed or not.

    Its files (client logs, leases, etcd data) stay in the test's tmp_path for debugging.
    """
    _require_lab_host()
    with Lab(workdir=tmp_path) as the_lab:
        yield the_lab


@dataclass
class Served:
    """A lab with its own etcd and a running etcdhcp; `read()` reads the store raw."""

    lab: Lab
    etcd: EtcdProcess
    daemon: EtcdhcpProcess

    def start(self, **kw: Any) -> EtcdhcpProcess:
        """Start (another) etcdhcp on this lab's etcd, e.g. with other flags."""
        self.daemon = EtcdhcpProcess(self.lab, self.etcd.client_url, **kw).start()
        return self.daemon

    def read(self) -> dict[str, str]:
        """Every key under the daemon's prefix, without the prefix."""
        prefix = self.daemon.prefix
        out = self.lab.run(
            None,
            ["etcdctl", "--endpoints", self.etcd.client_url, "get", "--prefix", prefix],
            env={**os.environ, "ETCDCTL_API": "3"},
            check=True,
        ).stdout.splitlines()
        return {k[len(prefix) :]: v for k, v in zip(out[0::2], out[1::2], strict=True)}

    def leases(self) -> dict[str, str]:
        """MAC -> leased address, checked to be one address per MAC and back."""
        keys = self.read()
        leased = {k.split("::")[-1]: v for k, v in keys.items() if k.startswith("ips::leased::")}
        nics = {k.split("::")[-1]: v for k, v in keys.items() if k.startswith("nics::leased::")}
        assert {mac: ip for ip, mac in leased.items()} == nics
        return nics

    def put(self, key: str, value: str) -> None:
        self.etcdctl("put", self.daemon.prefix + key, value)

    def delete(self, key: str) -> None:
        self.etcdctl("del", self.daemon.prefix + key)

    def etcdctl(self, *args: str) -> str:
        return self.lab.run(
            None,
            ["etcdctl", "--endpoints", self.etcd.client_url, *args],
            env={**os.environ, "ETCDCTL_API": "3"},
            check=True,
        ).stdout


@pytest.fixture
def served(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Served]:
    """A lab whose server namespace runs etcdhcp (flags from @pytest.mark.etcdhcp(...))."""
    marker = request.node.get_closest_marker("etcdhcp")
    kw = dict(marker.kwargs) if marker else {}
    etcd = lab.etcd()
    daemon = EtcdhcpProcess(lab, etcd.client_url, **kw).start()
    yield Served(lab, etcd, daemon)
    status = daemon.stop()
    assert status == 0, f"etcdhcp did not exit cleanly ({status}):\n{daemon.log()}"
    assert "Traceback" not in daemon.log(), daemon.log()
