"""A secured etcd: TLS with client certificates, users and a least-privilege role.

The etcd here requires a client certificate signed by the test CA
(--client-cert-auth) and has authentication on, with a user `etcdhcp` whose role
grants readwrite on the prefix `etcdhcp::` only. The daemon must serve through it
with either client library (the venv's pyetcd, Debian's python3-etcd3), keep its
password out of ps, logs and metrics, authenticate again when etcd forgets its token
(--auth-token-ttl, an etcd restart), and refuse to start, with one clear log line and
exit status 1, when the CA, the password or the role is wrong.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from etcdhcp.embedded_etcd import EtcdProcess
from etcdhcp.etcd import Credentials, Etcd

from .daemon import SRC, EtcdhcpProcess
from .lab import Lab, free_port
from .pki import Pki, make_pki
from .test_clients import in_pool

PREFIX = "etcdhcp::"
PASSWORD = "Tr0ub4dor&3-not-in-ps"
TOKEN_TTL = 5  # seconds: etcd forgets a token unused for this long
DEBIAN_PYTHON = "/usr/bin/python3"


@dataclass
class SecureEtcd:
    process: EtcdProcess
    url: str  # https, on the lab uplink: what the daemon uses
    pki: Pki
    password_file: Path

    def etcdctl(self, *args: str) -> str:
        """etcdctl over the plain loopback listener (for setting up users and roles)."""
        out = subprocess.run(
            ["etcdctl", "--endpoints", self.process.client_url, *args],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "ETCDCTL_API": "3"},
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def credentials(self, **changes: str | None) -> Credentials:
        fields = {
            "username": "etcdhcp",
            "password": PASSWORD,
            "ca": str(self.pki.ca),
            "cert": str(self.pki.client_cert),
            "key": str(self.pki.client_key),
            **changes,
        }
        return Credentials(**fields)

    def flags(self, *, user: str = "etcdhcp", ca: Path | None = None) -> list[str]:
        tls = [
            "-etcd.auth.cert",
            str(self.pki.client_cert),
            "-etcd.auth.key",
            str(self.pki.client_key),
        ]
        if ca is not None:
            tls += ["-etcd.auth.ca", str(ca)]
        auth = ["-etcd.auth.username", user, "-etcd.auth.password-file", str(self.password_file)]
        return [*tls, *auth]


@pytest.fixture
def secure_etcd(lab: Lab, tmp_path: Path) -> Iterator[SecureEtcd]:
    """etcd with TLS (client certificates required), auth on, a least-privilege user."""
    pki = make_pki(tmp_path / "pki", ["127.0.0.1", lab.uplink_host_ip])
    https = f"https://{lab.uplink_host_ip}:{free_port(lab.uplink_host_ip)}"
    process = EtcdProcess(
        data_dir=str(tmp_path / "secure-etcd"),
        # The first URL is plain loopback: health checks and set-up use it.
        client_urls=[f"http://127.0.0.1:{free_port()}", https],
        peer_url=f"http://127.0.0.1:{free_port()}",
        extra_args=[
            "--cert-file", str(pki.server_cert), "--key-file", str(pki.server_key),
            "--trusted-ca-file", str(pki.ca), "--client-cert-auth",
            "--auth-token-ttl", str(TOKEN_TTL),
        ],
    )  # fmt: skip
    process.start(timeout=30)
    password_file = tmp_path / "etcd-password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    etcd = SecureEtcd(process, https, pki, password_file)
    try:
        for args in (
            ("user", "add", "root:root-pw"),
            ("user", "grant-role", "root", "root"),
            ("user", "add", f"etcdhcp:{PASSWORD}"),
            ("role", "add", "etcdhcp"),
            ("role", "grant-permission", "etcdhcp", "readwrite", "--prefix=true", PREFIX),
            ("user", "grant-role", "etcdhcp", "etcdhcp"),
            ("user", "add", f"outsider:{PASSWORD}"),
            ("role", "add", "outsider"),
            ("role", "grant-permission", "outsider", "readwrite", "--prefix=true", "other::"),
            ("user", "grant-role", "outsider", "outsider"),
            ("auth", "enable"),
        ):
            etcd.etcdctl(*args)
        yield etcd
    finally:
        process.stop()


def _one_error_line(log: str) -> str:
    errors = [line for line in log.splitlines() if line.startswith(("E", "F"))]
    assert len(errors) == 1, log
    assert "Traceback" not in log, log
    return errors[0]


def _no_secret_anywhere(daemon: EtcdhcpProcess) -> None:
    assert daemon.proc is not None
    cmdline = Path(f"/proc/{daemon.proc.pid}/cmdline").read_bytes()
    assert PASSWORD.encode() not in cmdline
    assert "password-file" in cmdline.decode(errors="replace")  # the flag, not the secret
    assert PASSWORD not in daemon.log()
    assert PASSWORD not in daemon.metrics()


@pytest.mark.parametrize("python", [sys.executable, DEBIAN_PYTHON], ids=["venv", "debian"])
def test_tls_and_auth_serve_a_real_client_and_outlive_etcd_restarts(
    lab: Lab, secure_etcd: SecureEtcd, python: str
) -> None:
    # Both runtimes: Debian's grpcio reconnects through its backup poller (etcd.py).
    daemon = EtcdhcpProcess(
        lab, secure_etcd.url, extra=secure_etcd.flags(ca=secure_etcd.pki.ca), python=python
    )
    daemon.start()
    try:
        assert in_pool(lab.add_client("first").udhcpc()), daemon.log()
        _no_secret_anywhere(daemon)
        assert "WARNING" not in daemon.log() and not re.search(r"^W\d", daemon.log(), re.M)
        # A restarted etcd knows no token: the daemon authenticates again and serves.
        secure_etcd.process.stop()
        secure_etcd.process.start(timeout=30)
        assert in_pool(lab.add_client("second").udhcpc(tries=6)), daemon.log()
        keys = secure_etcd.etcdctl(
            "--user", "root:root-pw", "get", "--prefix", "--keys-only", PREFIX
        )
        assert f"{PREFIX}ips::leased::" in keys
        _no_secret_anywhere(daemon)
    finally:
        assert daemon.stop() == 0, daemon.log()


def test_debian_python_with_a_client_certificate_and_the_system_trust_store(
    lab: Lab, secure_etcd: SecureEtcd
) -> None:
    # No --etcd.auth.ca: TLS all the same, the server checked against the system's
    # trusted CAs, which GRPC_DEFAULT_SSL_ROOTS_FILE_PATH points at our CA here.
    daemon = EtcdhcpProcess(
        lab,
        secure_etcd.url,
        extra=secure_etcd.flags(),
        python=DEBIAN_PYTHON,
        env={"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(secure_etcd.pki.ca)},
    )
    daemon.start()
    try:
        assert in_pool(lab.add_client("debian").udhcpc()), daemon.log()
        _no_secret_anywhere(daemon)
    finally:
        assert daemon.stop() == 0, daemon.log()


_TOKEN_SCRIPT = """
import sys, time
from etcdhcp.etcd import Credentials, Etcd
ca, cert, key, url, password, idle = sys.argv[1:]
etcd = Etcd([url], 5.0, Credentials("etcdhcp", password, ca, cert, key))
etcd.range("etcdhcp::probe")
time.sleep(float(idle))
etcd.range("etcdhcp::probe")  # the token expired meanwhile
print("ok")
"""


def test_both_client_libraries_authenticate_again_when_the_token_expires(
    secure_etcd: SecureEtcd,
) -> None:
    pki = secure_etcd.pki
    idle = str(TOKEN_TTL + 3)
    argv: Sequence[str] = [
        DEBIAN_PYTHON, "-c", _TOKEN_SCRIPT,
        str(pki.ca), str(pki.client_cert), str(pki.client_key), secure_etcd.url, PASSWORD, idle,
    ]  # fmt: skip
    debian = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={"PYTHONPATH": SRC}
    )
    etcd = Etcd([secure_etcd.url], 5.0, secure_etcd.credentials())
    try:
        etcd.range(f"{PREFIX}probe")
        time.sleep(TOKEN_TTL + 3)
        assert etcd.range(f"{PREFIX}probe").count == 0
    finally:
        etcd.close()
    out, _ = debian.communicate(timeout=60)
    assert debian.returncode == 0 and out.strip().endswith("ok"), out


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong_ca", r"TLS certificate is not trusted \(check --etcd\.auth\.ca\)"),
        ("wrong_password", r"authentication failed, invalid user ID or password"),
        ("role_without_the_prefix", r"permission denied .*readwrite on the prefix 'etcdhcp::'"),
    ],
)
def test_a_refusal_stops_the_daemon_at_start_with_one_line(
    lab: Lab, secure_etcd: SecureEtcd, tmp_path: Path, case: str, expected: str
) -> None:
    flags = secure_etcd.flags(ca=secure_etcd.pki.ca)
    if case == "wrong_ca":
        flags = secure_etcd.flags(ca=secure_etcd.pki.other_ca)
    elif case == "wrong_password":
        wrong = tmp_path / "wrong-password"
        wrong.write_text("not-the-password\n")
        wrong.chmod(0o600)
        flags[flags.index(str(secure_etcd.password_file))] = str(wrong)
    else:
        flags = secure_etcd.flags(user="outsider", ca=secure_etcd.pki.ca)
    daemon = EtcdhcpProcess(lab, secure_etcd.url, extra=flags, name=f"etcdhcp-{case}")
    with pytest.raises(RuntimeError, match="exited with 1"):
        daemon.start()
    line = _one_error_line(daemon.log())
    assert re.search(expected, line), line
    assert "etcd refuses etcdhcp" in line
    assert PASSWORD not in daemon.log()
