"""A throwaway PKI for TLS tests, made with the openssl command line tool.

One CA signs a server certificate (for the given IP addresses) and a client
certificate; a second, unrelated CA stands for "the wrong CA". Keys are EC P-256
and everything is valid for two days.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed none of the above


def _openssl(directory: Path, *args: str) -> None:
    out = subprocess.run(
        ["openssl", *args], cwd=directory, capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {out.stderr.strip()}")


def _make_ca(directory: Path, name: str) -> None:
    _openssl(
        directory,
        "req", "-x509", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.pem",
        "-days", "2", "-subj", f"/CN=etcdhcp test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip


def _make_signed(directory: Path, name: str, subject: str, extensions: str) -> None:
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        directory,
        "req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
    )  # fmt: skip
    _openssl(
        directory,
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
    )  # fmt: skip
    (directory / f"{name}.key").chmod(0o600)


def make_pki(directory: Path, server_ips: Sequence[str]) -> Pki:
    """Write the CA, server and client certificates into `directory` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    _make_ca(directory, "ca")
    _make_ca(directory, "other-ca")
    san = ",".join(f"IP:{ip}" for ip in server_ips)
    _make_signed(
        directory,
        "server",
        "/CN=etcd",
        f"subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    _make_signed(directory, "client", "/CN=etcdhcp-client", "extendedKeyUsage=clientAuth\n")
    return Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        other_ca=directory / "other-ca.pem",
    )
