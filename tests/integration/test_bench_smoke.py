"""The benchmark harness end to end, in its quick mode: etcdhcp on the venv's and on
Debian's packages, and Kea, measured; a CSV out.

No speed thresholds: the machine is shared, so only "it ran and served" is asserted.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_bench_measures_etcdhcp_and_kea(tmp_path: Path) -> None:
    argv = ["bash", str(REPO / "bench" / "run.sh"), "--quick", "--out", str(tmp_path)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    (csv_path,) = tmp_path.glob("bench-*.csv")
    with open(csv_path, newline="") as f:
        rows = {row["server"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"etcdhcp", "etcdhcp-deb", "kea-memfile"}, report
    for row in rows.values():
        assert row["scenario"] == "sweep"
        assert float(row["achieved_rate"]) > 0, report
        assert int(row["leases"]) > 0, report
    assert list(tmp_path.glob("bench-*.png")), report
    assert "HEADLINE etcdhcp + etcd / Kea memfile" in out.stdout, report
    assert "HEADLINE etcdhcp + etcd, Debian's Python packages / Kea memfile" in out.stdout
