"""CPU time and memory of process trees, read straight from /proc."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3 is index 0)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def tree(root: int) -> list[int]:
    """``root`` and every live descendant (a PostgreSQL postmaster and its backends)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(roots: Iterable[int]) -> float:
    """utime + stime of every process in the trees under ``roots``, reaped children included."""
    ticks = 0
    for root in roots:
        for pid in tree(root):
            fields = _stat(pid)
            if fields is not None:
                ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / CLOCK_TICKS


def _status_kb(pid: int, field: str, name: str = "status") -> int:
    """One ``Field:  N kB`` line of /proc/PID/status (or smaps_rollup); 0 if absent."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(roots: Iterable[int]) -> float:
    """Resident set size of whole trees (etcdhcp's serving processes), in MiB."""
    return sum(_status_kb(p, "VmRSS") for r in roots for p in tree(r)) / 1024


def pss_mb(roots: Iterable[int]) -> float:
    """Proportional set size of whole trees in MiB: shared memory (PostgreSQL's shared
    buffers) is counted once, not once per backend."""
    return sum(_status_kb(p, "Pss", "smaps_rollup") for r in roots for p in tree(r)) / 1024
