"""``bench/run.sh``: etcdhcp against Kea under perfdhcp, in private network namespaces.

Prints a table and the headline ratios, writes ``bench-<time>.csv`` and ``.png`` (and a
py-spy profile) to the output directory. Needs root (namespaces) and the packages of
scripts/bootstrap.sh.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

from tests.integration.lab import Lab, LabError

from bench import hostdocs, report, scopedocs
from bench.netlab import MAX_RELAY_LANS, BenchLab
from bench.scenarios import SCENARIOS, SWEEP_SERVERS, Context, Settings
from bench.servers import SMALL_POOL

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RATES = "100,250,500,750,1000,1500,2000,3000"
DEFAULT_SERVERS_RATES = "250,500,750,1000,1500"
DEFAULT_ONLY = "sweep,scale,rss,servers,scopes,options,profile"
DEFAULT_SCOPES_COUNTS = "1000,10000"
DEFAULT_SCOPES_RELAYS = 10
DEFAULT_OPTIONS_RATES = "400"
DEFAULT_OPTIONS_ROUNDS = 2
DEFAULT_HOSTS_COUNT = 100_000
DEFAULT_HOSTS_RATES = "400,1000"
DEFAULT_HOSTS_ROUNDS = 2
QUICK = {
    "rates": "50",
    "seconds": 3,
    "only": "sweep",
    "sweep_servers": "etcdhcp,etcdhcp-deb,kea-memfile",
    "scopes_counts": "20",  # with --only scopes: a tiny run
    "scopes_relays": 5,
    "options_rates": "50",  # with --only options: one round at 50/s
    "options_rounds": 1,
    "hosts_count": 1000,  # with --only hosts: 1,000 hosts, one round at 50/s
    "hosts_rates": "50",
    "hosts_rounds": 1,
}


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A bad flag is one line on stderr and exit status 2."""
        sys.stderr.write(f"bench: {message} (see --help)\n")
        sys.exit(2)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive integers")
    return values


def _names(allowed: tuple[str, ...] | list[str]) -> type:
    def parse(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"{text!r}: choose from {','.join(allowed)}")
        return names

    return parse  # type: ignore[return-value]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="bench/run.sh", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--only",
        type=_names(list(SCENARIOS)),
        default=None,
        help=f"scenarios to run (default {DEFAULT_ONLY})",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: etcdhcp and Kea memfile at 50/s for 3 s (about 10 s)",
    )
    p.add_argument(
        "--long",
        action="store_true",
        help="rss: also 200k exchanges (190k more / --rss-rate: ~13 min at 250/s)",
    )
    p.add_argument(
        "--rates",
        type=_int_list,
        default=None,
        help=f"sweep rates, DORA/s (default {DEFAULT_RATES})",
    )
    p.add_argument(
        "--seconds",
        type=_positive,
        default=None,
        help="length of each perfdhcp run (-p), default 10",
    )
    p.add_argument(
        "--clients",
        type=_positive,
        default=3000,
        help=f"distinct MACs (-R), fewer than the {SMALL_POOL.size}-address pool",
    )
    p.add_argument(
        "--sweep-servers",
        type=_names(SWEEP_SERVERS),
        default=None,
        help=f"servers in the sweep (default {','.join(SWEEP_SERVERS)}; -pin: one process "
        "on one CPU; -deb: etcdhcp on Debian's python3 and its packages, as the .deb runs it)",
    )
    p.add_argument(
        "--scale-rate",
        type=_positive,
        default=300,
        help="offered rate for the pool-size comparison (default 300)",
    )
    p.add_argument(
        "--rss-rate",
        type=_positive,
        default=250,
        help="offered rate for the memory runs (default 250)",
    )
    p.add_argument(
        "--servers-rates",
        type=_int_list,
        default=_int_list(DEFAULT_SERVERS_RATES),
        help="total rates offered to 1, 2, 3 etcdhcp servers, split evenly "
        f"(default {DEFAULT_SERVERS_RATES})",
    )
    p.add_argument(
        "--profile-rate",
        type=_positive,
        default=500,
        help="offered rate while py-spy samples etcdhcp (default 500)",
    )
    p.add_argument("--profile-seconds", type=_positive, default=20)
    p.add_argument(
        "--scopes-counts",
        type=_int_list,
        default=None,
        help=f"scopes: numbers of scopes measured against one (default {DEFAULT_SCOPES_COUNTS})",
    )
    p.add_argument(
        "--scopes-relays",
        type=_positive,
        default=None,
        help="scopes: relay addresses (one perfdhcp each), each its own scope (default 10: "
        "each perfdhcp polls its socket ~12,000 times a second, 8-18%% of a core whatever "
        "its rate, so 50 of them swamp two cores)",
    )
    p.add_argument(
        "--scopes-rate",
        type=_positive,
        default=400,
        help="scopes: total offered rate, split over the relays (default 400)",
    )
    p.add_argument(
        "--options-rates",
        type=_int_list,
        default=None,
        help="options: offered rates, each with the plain scope, the scope as a document and "
        f"20 options with 5 classes, one after the other (default {DEFAULT_OPTIONS_RATES})",
    )
    p.add_argument(
        "--options-rounds",
        type=_positive,
        default=None,
        help="options: rounds of the three at each rate, every other one in reverse order "
        f"(default {DEFAULT_OPTIONS_ROUNDS})",
    )
    p.add_argument(
        "--hosts-count",
        type=_positive,
        default=None,
        help=f"hosts: host records measured against none (default {DEFAULT_HOSTS_COUNT}, "
        f"at most {hostdocs.MAX_HOSTS})",
    )
    p.add_argument(
        "--hosts-rates",
        type=_int_list,
        default=None,
        help="hosts: offered rates, each with etcdhcp and Kea memfile without and with the "
        f"hosts, one after the other (default {DEFAULT_HOSTS_RATES})",
    )
    p.add_argument(
        "--hosts-rounds",
        type=_positive,
        default=None,
        help="hosts: rounds of the four at each rate, every other one in reverse order "
        f"(default {DEFAULT_HOSTS_ROUNDS})",
    )
    p.add_argument(
        "--etcdhcp-flag",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra etcdhcp flag, e.g. --etcdhcp-flag=-dhcp.workers=64 (repeatable)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "out",
        help="output directory (default bench/out)",
    )
    args = p.parse_args(argv)  # fmt: skip
    if args.quick:
        args.rates = args.rates or _int_list(QUICK["rates"])
        args.seconds = args.seconds or QUICK["seconds"]
        args.only = args.only or [QUICK["only"]]
        args.sweep_servers = args.sweep_servers or QUICK["sweep_servers"].split(",")
        args.scopes_counts = args.scopes_counts or _int_list(QUICK["scopes_counts"])
        args.scopes_relays = args.scopes_relays or QUICK["scopes_relays"]
        args.options_rates = args.options_rates or _int_list(QUICK["options_rates"])
        args.options_rounds = args.options_rounds or QUICK["options_rounds"]
        args.hosts_count = args.hosts_count or QUICK["hosts_count"]
        args.hosts_rates = args.hosts_rates or _int_list(QUICK["hosts_rates"])
        args.hosts_rounds = args.hosts_rounds or QUICK["hosts_rounds"]
    args.rates = sorted(args.rates or _int_list(DEFAULT_RATES))
    args.seconds = args.seconds or 10
    args.only = args.only or DEFAULT_ONLY.split(",")
    args.sweep_servers = args.sweep_servers or list(SWEEP_SERVERS)
    if args.clients >= SMALL_POOL.size:
        p.error(f"--clients must be below the pool size, {SMALL_POOL.size}")
    args.scopes_counts = args.scopes_counts or _int_list(DEFAULT_SCOPES_COUNTS)
    args.scopes_relays = args.scopes_relays or DEFAULT_SCOPES_RELAYS
    args.options_rates = args.options_rates or _int_list(DEFAULT_OPTIONS_RATES)
    args.options_rounds = args.options_rounds or DEFAULT_OPTIONS_ROUNDS
    args.hosts_count = args.hosts_count or DEFAULT_HOSTS_COUNT
    args.hosts_rates = args.hosts_rates or _int_list(DEFAULT_HOSTS_RATES)
    args.hosts_rounds = args.hosts_rounds or DEFAULT_HOSTS_ROUNDS
    if args.hosts_count > hostdocs.MAX_HOSTS:
        p.error(f"--hosts-count must be at most {hostdocs.MAX_HOSTS}")
    if args.scopes_relays > MAX_RELAY_LANS:
        p.error(f"--scopes-relays must be at most {MAX_RELAY_LANS}")
    for count in args.scopes_counts:
        try:
            scopedocs.idle_block(count, args.scopes_relays)
        except ValueError as exc:
            p.error(f"--scopes-counts: {exc}")
    return args


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.stderr.write("bench: needs root (network namespaces, veth, bridges)\n")
        return 1
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    settings = Settings(
        rates=args.rates,
        seconds=args.seconds,
        clients=args.clients,
        sweep_servers=args.sweep_servers,
        scale_rate=args.scale_rate,
        rss_rate=args.rss_rate,
        long=args.long,
        servers_rates=sorted(args.servers_rates),
        profile_rate=args.profile_rate,
        profile_seconds=args.profile_seconds,
        scopes_counts=args.scopes_counts,
        scopes_relays=args.scopes_relays,
        scopes_rate=args.scopes_rate,
        options_rates=args.options_rates,
        options_rounds=args.options_rounds,
        hosts_count=args.hosts_count,
        hosts_rates=args.hosts_rates,
        hosts_rounds=args.hosts_rounds,
        etcdhcp_flags=tuple(args.etcdhcp_flag),
        out=args.out,
        stamp=stamp,
    )
    started = time.monotonic()
    commit, source = etcdhcp_source()
    print(f"etcdhcp source: commit {commit}, src/etcdhcp sha256 {source}", flush=True)
    summaries: list[str] = []
    Lab.reap_stale()
    try:
        with BenchLab() as bench:
            ctx = Context(bench, settings, say=lambda line: print(line, flush=True))
            try:
                for name in args.only:
                    print(f"== {name}", flush=True)
                    summaries += SCENARIOS[name](ctx)
            finally:
                ctx.close()
                _write(ctx.rows, args.out, stamp)
    except LabError as exc:
        sys.stderr.write(f"bench: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("bench: interrupted; namespaces and processes cleaned up\n")
        return 130
    print(
        f"\nload average at the end: {os.getloadavg()[0]:.2f} (2 shared cores: numbers are noisy)"
    )
    print("\n".join(summaries))
    if etcdhcp_source()[1] != source:
        print("WARNING: src/etcdhcp changed during the run: etcdhcp runs are not comparable")
    print(f"total time {time.monotonic() - started:.0f}s")
    return 0


def etcdhcp_source() -> tuple[str, str]:
    """The commit and a digest of src/etcdhcp's files: runs are comparable only on an
    equal digest (the work tree may hold uncommitted changes)."""
    src = REPO / "src" / "etcdhcp"
    digest = hashlib.sha256()
    for path in sorted(src.rglob("*.py")):
        digest.update(path.relative_to(src).as_posix().encode() + b"\0" + path.read_bytes())
    git = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%h"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return git.stdout.strip() or "unknown", digest.hexdigest()[:12]


def _write(rows: list[report.Row], out: Path, stamp: str) -> None:
    if not rows:
        return
    print("\n" + report.table(rows))
    csv_path = out / f"bench-{stamp}.csv"
    report.write_csv(rows, csv_path)
    print(f"\nCSV: {csv_path}")
    png = out / f"bench-{stamp}.png"
    if report.plot(rows, png):
        print(f"plot: {png}")


if __name__ == "__main__":
    sys.exit(main())
