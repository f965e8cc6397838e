"""Run the real etcdhcp daemon inside a lab's server namespace."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .lab import Lab

ADMIN_PORT = 9842
SRC = str(Path(__file__).resolve().parents[2] / "src")


class EtcdhcpProcess:
    """One `python -m etcdhcp` in the lab's server namespace, serving br0.

    `python` picks the interpreter: the venv's by default, or Debian's
    /usr/bin/python3 with its python3-* libraries (the .deb's code path).
    """

    def __init__(
        self,
        lab: Lab,
        etcd_endpoint: str,
        *,
        prefix: str = "etcdhcp::",
        issue_from: str | None = "198.18.0.10",
        issue_to: str | None = "198.18.0.50",
        netmask: str = "255.255.255.0",
        lease: str = "1h",
        extra: Sequence[str] = (),
        python: str = sys.executable,
        name: str = "etcdhcp",
        verbosity: int | None = 2,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`verbosity` None leaves -v to the environment or a --config file in `extra`;
        `env` adds variables (NOTIFY_SOCKET, WATCHDOG_USEC, ETCDHCP_*) to the child's;
        `issue_from` None gives no range flags: the server serves etcd's scopes."""
        self.lab = lab
        self.env = dict(env or {})
        self.prefix = prefix
        self.python = python
        self.admin = f"http://{lab.uplink_server_ip}:{ADMIN_PORT}"
        self.log_path = lab.workdir / f"{name}.log"
        self.argv = [
            python, "-m", "etcdhcp", "--config=",
            "-dhcp.server-if", lab.bridge,
            "-dhcp.server-ip", lab.server_ip,
            "-dhcp.subnet-mask", netmask,
            "-dhcp.router", lab.server_ip,
            "-dhcp.dns", lab.server_ip,
            *(["-dhcp.issue-from", issue_from, "-dhcp.issue-to", issue_to] if issue_from else []),
            "-dhcp.lease", lease,
            "-etcd.discovery.endpoints", etcd_endpoint,
            "-etcd.prefix", prefix,
            "-admin-addr", f"{lab.uplink_server_ip}:{ADMIN_PORT}",
            *([f"-v={verbosity}"] if verbosity is not None else []),
            *extra,
        ]  # fmt: skip
        self.proc: subprocess.Popen[Any] | None = None

    def start(self, timeout: float = 30.0) -> EtcdhcpProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        env = {"PYTHONPATH": SRC, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **self.env}
        self.proc = self.lab.popen(
            self.lab.server_ns, self.argv, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcdhcp exited with {self.proc.returncode}:\n{self.log()}")
            if self.ready():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"etcdhcp not ready after {timeout}s:\n{self.log()}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.admin}/readyz", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.admin}/metrics", timeout=3) as response:
            return response.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample in /metrics (0.0 when absent)."""
        want = name + (
            "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
        )
        for line in self.metrics().splitlines():
            if line.startswith(want + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait for a clean exit (SIGKILL if it hangs); returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return None
