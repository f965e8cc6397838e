"""Both install paths serve: the venv (PyPI libraries, etcd-sdk-python) and Debian's
/usr/bin/python3 with python3-etcd3, python3-scapy, ... (what the .deb runs)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .daemon import SRC, EtcdhcpProcess
from .lab import Lab

DEBIAN_PYTHON = "/usr/bin/python3"


def etcd_library(python: str) -> str:
    probe = "import etcdhcp.etcd as e; print(e.etcd3.__name__, e.etcd3.__file__)"
    out = subprocess.run(
        [python, "-c", probe],
        env={"PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.parametrize(
    ("python", "library"),
    [(sys.executable, "pyetcd"), (DEBIAN_PYTHON, "etcd3 /usr/lib/python3/dist-packages/")],
    ids=["venv", "debian-python3"],
)
def test_dhclient_gets_a_lease_with_either_install(lab: Lab, python: str, library: str) -> None:
    assert etcd_library(python).startswith(library)
    etcd = lab.etcd()
    daemon = EtcdhcpProcess(lab, etcd.client_url, python=python).start()
    client = lab.add_client("either")
    ip = client.dhclient()
    assert ip is not None and ip.startswith("198.18.0."), client.last_output
    assert daemon.metric("etcdhcp_replies_sent_total", type="ack") == 1
    assert daemon.stop() == 0, daemon.log()
    assert "Traceback" not in daemon.log()
