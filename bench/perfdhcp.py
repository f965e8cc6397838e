"""Kea's perfdhcp as the load generator: command line, run, and its statistics.

perfdhcp acts as a relay (FIELD-NOTES): it sends from its namespace's own address,
port 67, with giaddr set, unicast to the server given last on its command line. It
always gets ``-r RATE`` (without it, it floods), a bound (``-p SECONDS`` or ``-n``),
``-W 500000`` (answers still in flight at the end are not drops) and runs under
``timeout``.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import Any

from tests.integration.lab import Client, LabError
from tests.integration.perfdhcp import perfdhcp_stats

EXIT_WAIT_US = 500_000


@dataclass(frozen=True)
class Exchange:
    """One half of DORA as perfdhcp saw it: DISCOVER-OFFER or REQUEST-ACK."""

    sent: int
    received: int
    avg_ms: float
    max_ms: float

    @classmethod
    def from_stats(cls, stats: dict[str, float]) -> Exchange:
        return cls(
            sent=int(stats.get("sent packets", 0)),
            received=int(stats.get("received packets", 0)),
            avg_ms=stats.get("avg delay", 0.0),
            max_ms=stats.get("max delay", 0.0),
        )


@dataclass(frozen=True)
class Result:
    """One perfdhcp run: ``seconds`` is its sending window (-p, or the measured time)."""

    offered_rate: int
    seconds: float
    do: Exchange
    ra: Exchange
    output: str

    @property
    def leases(self) -> int:
        """Completed DORA exchanges: every ACK is a lease granted or renewed."""
        return self.ra.received

    @property
    def achieved_rate(self) -> float:
        return self.leases / self.seconds if self.seconds > 0 else 0.0

    @property
    def drops_pct(self) -> float:
        """Exchanges started (DISCOVERs sent) that did not end with an ACK."""
        return 100.0 * (self.do.sent - self.ra.received) / self.do.sent if self.do.sent else 0.0


class Run:
    """A perfdhcp started in a relay namespace; ``result()`` waits for it and parses."""

    def __init__(
        self,
        relay: Client,
        server_ip: str,
        rate: int,
        clients: int,
        *,
        seconds: int | None = None,
        count: int | None = None,
        mac_base: str | None = None,
        local: str = "eth0",
        options: tuple[str, ...] = (),
    ) -> None:
        """``local``: perfdhcp's -l, the interface or the address it relays from (giaddr);
        ``options``: its -o CODE,HEX, options added to every DISCOVER and REQUEST."""
        if seconds is not None:
            bound = seconds
        elif count is not None:
            bound = int(1.5 * count / rate) + 30  # -n ends it; -p is the safety net
        else:
            raise ValueError("perfdhcp needs a bound: seconds or count")
        self.rate = rate
        self.seconds = seconds
        self.deadline = bound + 30  # timeout(1) kills it at bound + 15; we wait longer
        argv: list[str] = [
            "timeout", str(bound + 15),
            "perfdhcp", "-4", "-l", local,
            "-r", str(rate), "-R", str(clients), "-p", str(bound), "-W", str(EXIT_WAIT_US),
        ]  # fmt: skip
        if count is not None:
            argv += ["-n", str(count)]
        if mac_base:
            argv += ["-b", f"mac={mac_base}"]
        for option in options:
            argv += ["-o", option]
        argv.append(server_ip)
        self.argv = argv
        self.started = time.monotonic()
        self.proc: subprocess.Popen[Any] = relay.popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def result(self) -> Result:
        try:
            output, _ = self.proc.communicate(timeout=self.deadline)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=10)
            raise LabError(f"perfdhcp overran {self.deadline}s: {' '.join(self.argv)}") from None
        elapsed = time.monotonic() - self.started - EXIT_WAIT_US / 1e6
        stats = perfdhcp_stats(output)
        if "DISCOVER-OFFER" not in stats or "REQUEST-ACK" not in stats:
            raise LabError(
                f"perfdhcp exited {self.proc.returncode} without statistics "
                f"({' '.join(self.argv)}):\n{output[-2000:]}"
            )
        return Result(
            offered_rate=self.rate,
            seconds=float(self.seconds) if self.seconds is not None else elapsed,
            do=Exchange.from_stats(stats["DISCOVER-OFFER"]),
            ra=Exchange.from_stats(stats["REQUEST-ACK"]),
            output=output,
        )
