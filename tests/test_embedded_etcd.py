"""EtcdProcess against Debian's real etcd binary: start, data, stop, and failures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import EtcdServer
from etcdhcp.embedded_etcd import COMPACTION_ARGS, EtcdProcess, EtcdStartError
from integration.lab import free_port


def _etcdctl(endpoint: str, *args: str, netns: str | None = None) -> str:
    """Run etcdctl (v3 API) against ``endpoint`` and return stdout; fail loudly."""
    argv = ["etcdctl", "--endpoints", endpoint, "--dial-timeout", "3s", *args]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    env = {**os.environ, "ETCDCTL_API": "3"}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=20, env=env, check=False)
    assert out.returncode == 0, f"{argv}: {out.stderr}"
    return out.stdout


def _gone(pid: int) -> bool:
    """True when no process (not even a zombie) has ``pid``."""
    return not os.path.exists(f"/proc/{pid}")


def _new(tmp_path: Path, **kw: object) -> EtcdProcess:
    return EtcdProcess(
        data_dir=str(tmp_path / "etcd"),
        client_urls=[f"http://127.0.0.1:{free_port()}"],
        peer_url=f"http://127.0.0.1:{free_port()}",
        **kw,  # type: ignore[arg-type]
    )


def test_start_put_get_stop(tmp_path: Path) -> None:
    etcd = _new(tmp_path)
    etcd.start()
    try:
        assert etcd.running
        pid = etcd.pid
        assert pid is not None
        assert etcd.health()[0]
        _etcdctl(etcd.client_url, "put", "greeting", "hello")
        assert _etcdctl(etcd.client_url, "get", "greeting", "--print-value-only").strip() == (
            "hello"
        )
    finally:
        etcd.stop()
    assert not etcd.running
    assert etcd.pid is None
    assert _gone(pid)
    assert etcd.stop() is None  # idempotent


def test_argv_always_has_compaction_and_own_cluster(tmp_path: Path) -> None:
    etcd = _new(tmp_path, name="node-a", extra_args=["--quota-backend-bytes", "1000000"])
    argv = etcd.argv()
    joined = " ".join(argv)
    assert " ".join(COMPACTION_ARGS) in joined
    assert f"--initial-cluster node-a={etcd.peer_url}" in joined
    assert argv[-2:] == ["--quota-backend-bytes", "1000000"]
    assert etcd.log_path == str(tmp_path / "etcd") + ".log"
    assert _new(tmp_path, netns="ns1").argv()[:4] == ["ip", "netns", "exec", "ns1"]


def test_context_manager_and_restart_keep_data(tmp_path: Path) -> None:
    etcd = _new(tmp_path)
    with etcd as running:
        assert running is etcd
        _etcdctl(etcd.client_url, "put", "k", "v1")
        pid = etcd.pid
    assert pid is not None and _gone(pid)
    # Same data dir again: the daemon restarts on its state dir and must find its leases.
    with etcd:
        assert _etcdctl(etcd.client_url, "get", "k", "--print-value-only").strip() == "v1"
    assert not etcd.running


def test_port_in_use_gives_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        etcd = EtcdProcess(
            data_dir=str(tmp_path / "etcd"),
            client_urls=[f"http://127.0.0.1:{port}"],
            peer_url=f"http://127.0.0.1:{free_port()}",
        )
        started = time.monotonic()
        with pytest.raises(EtcdStartError) as info:
            etcd.start(timeout=20)
    assert time.monotonic() - started < 10
    first_line = str(info.value).splitlines()[0]
    assert "exited" in first_line
    assert "address already in use" in first_line
    assert not etcd.running


def test_missing_binary_gives_clear_error(tmp_path: Path) -> None:
    etcd = _new(tmp_path, binary=str(tmp_path / "no-such-etcd"))
    with pytest.raises(EtcdStartError, match="no-such-etcd"):
        etcd.start()


def test_never_healthy_times_out_with_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "fake-etcd"
    fake.write_text("#!/bin/sh\necho 'fake etcd is thinking' >&2\nexec sleep 60\n")
    fake.chmod(0o755)
    etcd = _new(tmp_path, binary=str(fake))
    started = time.monotonic()
    with pytest.raises(EtcdStartError) as info:
        etcd.start(timeout=1.5)
    assert time.monotonic() - started < 8
    message = str(info.value)
    assert "did not become healthy" in message
    assert "fake etcd is thinking" in message
    assert not etcd.running  # start() killed what it started


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    etcd = _new(tmp_path)
    etcd.start()
    pid = etcd.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # a stopped etcd cannot act on SIGTERM
    started = time.monotonic()
    assert etcd.stop(timeout=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 5
    assert _gone(pid)


def test_session_fixture_and_client(
    etcd_server: EtcdServer, etcd_client: object, etcd_prefix: str
) -> None:
    assert etcd_server.endpoint == f"http://{etcd_server.host}:{etcd_server.port}"
    assert etcd_prefix.startswith("t-") and etcd_prefix.endswith("::")
    etcd_client.put(etcd_prefix + "a", b"1")  # type: ignore[attr-defined]
    value, _meta = etcd_client.get(etcd_prefix + "a")  # type: ignore[attr-defined]
    assert value == b"1"
    got = _etcdctl(etcd_server.endpoint, "get", etcd_prefix + "a", "--print-value-only")
    assert got.strip() == "1"


def test_prefixes_are_unique_per_test(etcd_prefix: str, etcd_client: object) -> None:
    # Nothing another test wrote is visible under this test's prefix.
    assert list(etcd_client.get_prefix(etcd_prefix)) == []  # type: ignore[attr-defined]


@pytest.mark.netns
def test_runs_inside_a_network_namespace(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test creates a network namespace and must run as root")
    ns = f"ehe-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=10)
        # 127.0.0.1 inside the namespace is not the host's: only the in-namespace probe
        # can see this etcd, which is what makes the netns health check necessary.
        etcd = EtcdProcess(
            data_dir=str(tmp_path / "etcd"),
            client_urls=["http://127.0.0.1:2379"],
            peer_url="http://127.0.0.1:2380",
            netns=ns,
        )
        with etcd:
            _etcdctl(etcd.client_url, "put", "where", "netns", netns=ns)
            got = _etcdctl(etcd.client_url, "get", "where", "--print-value-only", netns=ns)
            assert got.strip() == "netns"
            pid = etcd.pid
            assert pid is not None
            assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert _gone(pid)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)
