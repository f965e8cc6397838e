"""ISC kea-dhcp4 (Debian's 2.2) in a lab's server namespace: the reference server.

Tests that compare etcdhcp's replies with Kea's (options, classes, full replies) start
it here with a configuration dict: Kea serves the lab subnet on the lab bridge with an
in-memory lease file, logs to a file, and is stopped by PID at stop() or lab.close().
`probe()` sends a DISCOVER from a client namespace and returns the reply's raw options.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .lab import BRIDGE, Client, Lab, LabError

PROBE = str(Path(__file__).with_name("dhcpprobe.py"))
POOL = "198.18.0.100 - 198.18.0.199"


def base_config(workdir: Path) -> dict[str, Any]:
    """A minimal Dhcp4 configuration for the lab: br0, the lab subnet, memfile leases."""
    return {
        "Dhcp4": {
            "interfaces-config": {"interfaces": [BRIDGE], "dhcp-socket-type": "raw"},
            "lease-database": {"type": "memfile", "persist": False},
            "valid-lifetime": 600,
            "subnet4": [{"id": 1, "subnet": "198.18.0.0/24", "pools": [{"pool": POOL}]}],
            "loggers": [
                {
                    "name": "kea-dhcp4",
                    "output_options": [{"output": str(workdir / "kea-dhcp4.log")}],
                    "severity": "DEBUG",
                    "debuglevel": 55,
                }
            ],
        }
    }


class Kea:
    """One kea-dhcp4 process in ``lab``'s server namespace."""

    def __init__(self, lab: Lab, config: dict[str, Any], name: str = "kea") -> None:
        self.lab = lab
        self.dir = lab.workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = copy.deepcopy(config)
        self.conf_path = self.dir / "kea-dhcp4.conf"
        self.log_path = self.dir / "kea-dhcp4.log"
        self.proc: subprocess.Popen[Any] | None = None

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KEA_PIDFILE_DIR": str(self.dir), "KEA_LOCKFILE_DIR": str(self.dir)}

    def check(self) -> str:
        """``kea-dhcp4 -t`` (in the server namespace, which has br0): "" when Kea accepts
        the configuration, else its complaint."""
        self.conf_path.write_text(json.dumps(self.config, indent=2))
        argv = ["kea-dhcp4", "-t", str(self.conf_path)]
        out = self.lab.run(self.lab.server_ns, argv, timeout=30, env=self._env())
        return "" if out.returncode == 0 else (out.stdout + out.stderr).strip()

    def start(self, timeout: float = 15.0) -> Kea:
        """Write the configuration and start Kea; returns once it serves (DHCP4_STARTED)."""
        problem = self.check()
        if problem:
            raise LabError(f"kea-dhcp4 rejects the configuration: {problem}")
        with open(self.dir / "stdout.log", "wb") as out:
            self.proc = self.lab.popen(
                self.lab.server_ns,
                ["kea-dhcp4", "-c", str(self.conf_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env(),
            )
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.1) + 1):
            if "DHCP4_STARTED" in self.log():
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        raise LabError(f"kea-dhcp4 did not start:\n{self.log()[-3000:]}")

    def log(self) -> str:
        """Kea's log file and its standard output so far."""
        paths = (self.log_path, self.dir / "stdout.log")
        return "".join(p.read_text(errors="replace") for p in paths if p.exists())

    def stop(self) -> int | None:
        """SIGTERM Kea (by PID) and wait; its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=5)


def probe(client: Client, mac: str, prl: list[int], timeout: float = 5.0) -> dict[str, Any]:
    """One DISCOVER from ``client`` asking for ``prl``: {"type", "options": {code: bytes}}."""
    argv = [sys.executable, PROBE, "--mac", mac, "--prl", ",".join(map(str, prl))]
    out = client.run([*argv, "--timeout", str(timeout)], timeout=timeout + 20, check=True)
    reply = json.loads(out.stdout)
    if reply is None:
        raise LabError(f"no reply to a DISCOVER from {mac} asking for {prl}")
    reply["options"] = {int(k): bytes.fromhex(v) for k, v in reply["options"].items()}
    return reply
