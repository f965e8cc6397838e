import os
import shutil
import socket
import tempfile
import uuid

import pytest

from etcdhcp import sdnotify


@pytest.fixture
def short_dir():
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="sdn")
    yield path
    shutil.rmtree(path)


@pytest.fixture
def receiver():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(2)
    yield sock
    sock.close()


def test_sends_state_to_socket_path(monkeypatch, short_dir, receiver):
    path = os.path.join(short_dir, "notify")
    receiver.bind(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sdnotify.notify("READY=1") is True
    assert receiver.recv(4096) == b"READY=1"
    assert sdnotify.notify("STATUS=serving 10.0.0.10-10.0.0.100\nWATCHDOG=1") is True
    assert receiver.recv(4096) == b"STATUS=serving 10.0.0.10-10.0.0.100\nWATCHDOG=1"


def test_sends_state_to_abstract_socket(monkeypatch, receiver):
    name = f"etcdhcp-test-{uuid.uuid4().hex}"
    receiver.bind("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    assert sdnotify.notify("STOPPING=1") is True
    assert receiver.recv(4096) == b"STOPPING=1"


def test_not_under_systemd(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert sdnotify.notify("READY=1") is False


def test_unsupported_address_is_ignored(monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert sdnotify.notify("READY=1") is False


def test_missing_or_closed_socket_does_not_raise(monkeypatch, short_dir, caplog):
    path = os.path.join(short_dir, "gone")
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    with caplog.at_level("DEBUG", logger="etcdhcp.sdnotify"):
        assert sdnotify.notify("WATCHDOG=1") is False
    assert any("WATCHDOG=1" in r.getMessage() for r in caplog.records)

    # A socket file whose listener has gone away (systemd restarted): still no exception.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.close()
    assert os.path.exists(path)
    assert sdnotify.notify("WATCHDOG=1") is False


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 15.0),
        ("30000000", "self", 15.0),
        ("500000", None, 0.25),
        ("30000000", "1", None),  # meant for another process (pid 1 is never us here)
        (None, None, None),
        ("", None, None),
        ("0", None, None),
        ("-5", None, None),
        ("soon", None, None),
        ("30000000", "x", None),
    ],
)
def test_watchdog_interval(monkeypatch, usec, pid, expected):
    for name, val in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if val is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(os.getpid()) if val == "self" else val)
    assert sdnotify.watchdog_interval() == expected
