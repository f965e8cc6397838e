"""py-spy on a running etcdhcp: record collapsed stacks, then rank functions.

py-spy comes from PyPI into the project's venv (``.venv/bin/pip install py-spy``);
the benchmark installs it there on first use.
"""

from __future__ import annotations

import collections
import re
import subprocess
from pathlib import Path

from tests.integration.lab import LabError

REPO = Path(__file__).resolve().parents[1]
PY_SPY = REPO / ".venv" / "bin" / "py-spy"
_LINE = re.compile(r":\d+\)$")
# The frames at the bottom of every thread: they would top every "total" ranking.
_EVERY_THREAD = {
    f"{name} (threading.py)"
    for name in ("Thread._bootstrap", "Thread._bootstrap_inner", "Thread.run")
}


def ensure_py_spy() -> Path:
    """The venv's py-spy, installed with the venv's pip if it is missing."""
    if not PY_SPY.exists():
        pip = [str(REPO / ".venv" / "bin" / "pip"), "install", "-q", "py-spy"]
        out = subprocess.run(pip, capture_output=True, text=True, timeout=600, check=False)
        if out.returncode != 0 or not PY_SPY.exists():
            raise LabError(f"cannot install py-spy: {out.stderr.strip()[-500:]}")
    return PY_SPY


def record(pid: int, seconds: int, output: Path) -> None:
    """Sample whichever thread of ``pid`` holds the GIL (the resource a Python server
    runs out of first) for ``seconds`` into ``output``, without pausing the process."""
    argv = [
        str(ensure_py_spy()), "record", "--pid", str(pid), "--duration", str(seconds),
        "--rate", "100", "--format", "raw", "--output", str(output),
        "--gil", "--nonblocking",
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if out.returncode != 0 or not output.exists():
        raise LabError(f"py-spy record failed ({out.returncode}): {out.stderr.strip()[-800:]}")


def _function(frame: str) -> str:
    """'handle (etcdhcp/pipeline.py:42)' -> 'handle (etcdhcp/pipeline.py)': one row per function."""
    return _LINE.sub(")", frame.strip())


def summary(raw: Path, top: int = 15) -> str:
    """Functions ranked by samples on CPU in them (self) and under them (total)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_function(f) for f in stack.split(";") if f.strip()]
        n = int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames) - _EVERY_THREAD:
            total[frame] += n
    if not samples:
        return "no samples (was the server idle?)"
    lines = [
        f"{samples} samples of the thread holding the GIL; self% = in the function itself, "
        "total% = in it or in what it calls"
    ]
    for title, counter in (("self", own), ("total", total)):
        lines.append(f"top {top} by {title}:")
        for frame, n in counter.most_common(top):
            lines.append(f"  {100 * n / samples:5.1f}%  {frame}")
    return "\n".join(lines)
