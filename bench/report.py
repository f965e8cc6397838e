"""Results: one row per measurement, printed as a table, written as CSV, plotted."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Row:
    """One measurement. Rates are DORA exchanges per second; CPU is seconds per 1,000
    leases (ACKs); the backend is etcd for etcdhcp, PostgreSQL for Kea+PG, none for
    memfile. ``rss_mb`` is the server's resident memory after the run (summed over
    servers), ``backend_mb`` the backend's proportional set size."""

    scenario: str
    server: str
    label: str
    servers: int
    pool_size: int
    offered_rate: int
    seconds: float
    leases: int
    achieved_rate: float
    drops_pct: float
    naks: int
    do_avg_ms: float
    do_max_ms: float
    ra_avg_ms: float
    ra_max_ms: float
    cpu_s_per_1k: float
    backend_cpu_s_per_1k: float
    rss_mb: float
    backend_mb: float
    note: str = ""


FIELDS = [f.name for f in dataclasses.fields(Row)]
_COLUMNS = [
    ("scenario", "scenario", "{}"),
    ("server", "server", "{}"),
    ("n", "servers", "{}"),
    ("pool", "pool_size", "{}"),
    ("offered", "offered_rate", "{}"),
    ("achieved", "achieved_rate", "{:.0f}"),
    ("drop%", "drops_pct", "{:.1f}"),
    ("NAK", "naks", "{}"),
    ("DO avg/max ms", None, ""),
    ("RA avg/max ms", None, ""),
    ("CPU s/1k", "cpu_s_per_1k", "{:.2f}"),
    ("backend CPU s/1k", "backend_cpu_s_per_1k", "{:.2f}"),
    ("RSS MB", "rss_mb", "{:.0f}"),
    ("backend MB", "backend_mb", "{:.0f}"),
    ("note", "note", "{}"),
]


def _cells(row: Row) -> list[str]:
    cells = []
    for title, field, fmt in _COLUMNS:
        if title.startswith("DO"):
            cells.append(f"{row.do_avg_ms:.1f}/{row.do_max_ms:.0f}")
        elif title.startswith("RA"):
            cells.append(f"{row.ra_avg_ms:.1f}/{row.ra_max_ms:.0f}")
        else:
            cells.append(fmt.format(getattr(row, field)))
    return cells


def table(rows: Sequence[Row]) -> str:
    """A fixed-width text table of ``rows``."""
    grid = [[title for title, _, _ in _COLUMNS], *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in grid) for i in range(len(_COLUMNS))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in grid
    )


def write_csv(rows: Sequence[Row], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: round(v, 3) if isinstance(v, float) else v for k, v in vars(row).items()}
            )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot(rows: Sequence[Row], path: Path) -> bool:
    """Achieved rate and REQUEST-ACK latency against the offered rate, one line per
    server, from the sweep rows; False when there is no sweep to plot."""
    sweep = [r for r in rows if r.scenario == "sweep"]
    if not sweep:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rate_ax, latency_ax) = plt.subplots(1, 2, figsize=(12, 7))
    top = max(r.offered_rate for r in sweep)
    rate_ax.plot([0, top], [0, top], color="grey", linestyle=":", label="offered")
    for label in dict.fromkeys(r.label for r in sweep):
        mine = sorted((r for r in sweep if r.label == label), key=lambda r: r.offered_rate)
        offered = [r.offered_rate for r in mine]
        rate_ax.plot(offered, [r.achieved_rate for r in mine], marker="o", label=label)
        (avg,) = latency_ax.plot(offered, [r.ra_avg_ms for r in mine], marker="o")
        latency_ax.plot(
            offered, [r.ra_max_ms for r in mine], color=avg.get_color(), linestyle="--", alpha=0.5
        )
    rate_ax.set(xlabel="offered DORA/s", ylabel="achieved DORA/s", title="Throughput")
    latency_ax.set(
        xlabel="offered DORA/s",
        ylabel="REQUEST-ACK latency (ms)",
        title="Latency (solid: average, dashed: maximum)",
        yscale="log",
    )
    # One legend for both, under them: the labels are long, and the same colours
    # name the same server in both plots.
    fig.legend(*rate_ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize="small")
    for ax in (rate_ax, latency_ax):
        ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
