"""The benchmark harness end to end, in its quick mode: etcdhcp on the venv's and on
Debian's packages, and Kea, measured; a CSV out.

No speed thresholds: the machine is shared, so only "it ran and served" is asserted.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

from bench import scenarios, servers

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


def test_the_profile_says_where_a_requests_time_went() -> None:
    def metrics(queued: float, discovers: int) -> str:
        return "\n".join(
            [
                "# HELP etcdhcp_queue_wait_seconds Time a received frame waited for a worker.",
                'etcdhcp_queue_wait_seconds_bucket{le="0.001"} 3.0',
                f"etcdhcp_queue_wait_seconds_sum {queued}",
                "etcdhcp_queue_wait_seconds_count 4.0",
                f'etcdhcp_request_duration_seconds_sum{{type="discover"}} {discovers * 0.008}',
                f'etcdhcp_request_duration_seconds_count{{type="discover"}} {discovers}',
                "etcdhcp_etcd_batch_size_sum 30.0",
                "etcdhcp_etcd_batch_size_count 20.0",
                'etcdhcp_leases_total{event="granted"} 9.0',
            ]
        )

    before = servers.stage_totals(metrics(0.5, 10))
    after = servers.stage_totals(metrics(0.5, 110))
    assert scenarios.stage_summary(before, after) == (
        '  etcdhcp_request_duration_seconds{type="discover"}: 8.00 ms average of 100'
    )  # only what moved during the run
    assert scenarios.stage_summary({}, after).splitlines() == [
        "  etcdhcp_etcd_batch_size: 1.50 average of 20",
        "  etcdhcp_queue_wait_seconds: 125.00 ms average of 4",
        '  etcdhcp_request_duration_seconds{type="discover"}: 8.00 ms average of 110',
    ]
