"""etcdhcpctl: the operator's tool for etcdhcp's state in etcd, without spelling keys.

It takes the daemon's etcd flags, ETCDHCP_* variables and config file (config.py's
`add_etcd_arguments`), so one config file serves both; with no endpoint it talks to
where the daemon's embedded etcd listens (127.0.0.1:2479 by default), which is where
a single-machine install keeps its data. Every read and write goes through
`LeaseStore`; `--json` prints exactly what the admin API serves (api.py), the tables
are for people. Exit status: 0 done, 1 failed (or `check` found problems), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from ipaddress import IPv4Address
from typing import Any

from etcdhcp import api, logs
from etcdhcp.config import (
    ConfigError,
    add_etcd_arguments,
    discover_etcd,
    etcd_credentials,
    etcd_fields,
    go_style_argv,
    new_parser,
    parse_duration,
    parse_flags,
    report_and_exit,
)
from etcdhcp.ctl_hosts import add_host_commands, host_problems
from etcdhcp.ctl_kea import add_kea_commands
from etcdhcp.ctl_scopes import ScopeCommandError, add_scope_commands
from etcdhcp.etcd import Etcd, EtcdError, EtcdUnavailable
from etcdhcp.output import print_json, table
from etcdhcp.store import (
    ADDRESS_STATES,
    AddressPool,
    LeaseStore,
    Problem,
    Refused,
    address_order,
)

PROG = "etcdhcpctl"
ETCD_TIMEOUT = 5.0  # seconds per etcd request, failover included
MAX_RANGE = 1 << 16  # addresses one `pool add` or `pool remove` may name
LISTED = 10  # addresses a table names before "and N more"

Command = Callable[[LeaseStore, argparse.Namespace], int]


class CtlError(Exception):
    """A failure told to the operator in one line (exit status 1)."""


# ---- argument types: bad input is a usage error (exit 2) naming the argument -----------


def _checked(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def check(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    check.__name__ = parse.__name__
    return check


def _mac_or_ip(text: str) -> str:
    return api.parse_mac_or_ip(text)[1]


def _seconds(text: str) -> float:
    """Seconds, bare (`30`, `2.5`) or as a Go duration (`30s`, `1m`)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = parse_duration(text)
    if not 0 < seconds < math.inf:
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise ValueError(f"{number} is less than 1")
    return number


MAC = _checked(api.parse_mac)
IP = _checked(api.parse_ip)
MAC_OR_IP = _checked(_mac_or_ip)
SECONDS = _checked(_seconds)
POSITIVE = _checked(_positive)


# ---- output -------------------------------------------------------------------------------


def _when(unix: Any) -> str:
    """A unix time as local time; anything else (a hand-written record) as it is."""
    if not isinstance(unix, int | float):
        return "-" if unix is None else str(unix)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(unix))


def _ranges_text(ranges: Iterable[api.ServedRange]) -> str:
    return ", ".join(
        f"{r.pool.first}-{r.pool.last} (scope {r.scope}: {', '.join(r.servers) or 'no server'})"
        for r in ranges
    )


# ---- commands -----------------------------------------------------------------------------


def cmd_leases(store: LeaseStore, args: argparse.Namespace) -> int:
    found = api.leases(store)
    if args.json:
        print_json(found)
        return 0
    table(
        ("MAC", "IP", "EXPIRES", "SERVER", "HOSTNAME", "RESERVED"),
        (
            (
                lease["mac"],
                lease["ip"],
                _when(lease["expires"]),
                lease["server"],
                lease["hostname"],
                "yes" if lease["reserved"] else "",
            )
            for lease in found
        ),
    )
    return 0


def cmd_lease_show(store: LeaseStore, args: argparse.Namespace) -> int:
    found = api.lease(store, args.address)
    if found is None:
        raise CtlError(f"no lease for {args.address}")
    if args.json:
        print_json(found)
        return 0
    shown = {
        **found,
        "expires": _when(found["expires"]),
        "granted": _when(found["granted"]),
        "reserved": "yes" if found["reserved"] else "no",
        "classes": ",".join(found["classes"] or []) or None,
    }
    table(("FIELD", "VALUE"), shown.items())
    return 0


def cmd_reservations(store: LeaseStore, args: argparse.Namespace) -> int:
    found = api.reservations(store)
    if args.json:
        print_json(found)
    else:
        table(("MAC", "IP"), ((r["mac"], r["ip"]) for r in found))
    return 0


def cmd_reserve(store: LeaseStore, args: argparse.Namespace) -> int:
    if api.outside_every_subnet(store, [args.ip]):
        raise CtlError(
            f"{args.ip} is in no served scope's subnet: a client given it could not reach "
            "its router (etcdhcpctl scope list, etcdhcpctl servers)"
        )
    created = store.reserve(args.mac, args.ip)
    if args.json:
        print_json({"mac": args.mac, "ip": args.ip, "created": created})
    elif created:
        print(f"reserved {args.ip} for {args.mac}")
    else:
        print(f"{args.ip} was already reserved for {args.mac}")
    return 0


def cmd_unreserve(store: LeaseStore, args: argparse.Namespace) -> int:
    ip = store.unreserve(args.mac)
    if ip is None:
        raise CtlError(f"{args.mac} has no reservation")
    if args.json:
        print_json({"mac": args.mac, "ip": ip})
    else:
        print(f"{args.mac} no longer has {ip} reserved")
    return 0


def cmd_release(store: LeaseStore, args: argparse.Namespace) -> int:
    found = api.lease(store, args.address)
    if found is None:
        raise CtlError(f"no lease for {args.address}")
    mac, ip = found["mac"], found["ip"]
    to_pool = args.to_pool or any(ip in r.pool for r in api.served_ranges(store))
    if not store.release(mac, ip, to_pool=to_pool):
        raise CtlError(f"the lease of {ip} changed meanwhile; look again with 'lease show'")
    now = "reserved" if found["reserved"] else "free" if to_pool else "unassigned"
    if args.json:
        print_json({"mac": mac, "ip": ip, "now": now})
        return 0
    explained = {
        "reserved": f"it stays reserved for {mac}",
        "free": "it is free again",
        "unassigned": "it is outside every live server's range, so it is not made free "
        "(--to-pool does)",
    }
    print(f"released {ip} from {mac}: {explained[now]}")
    return 0


def cmd_pool(store: LeaseStore, args: argparse.Namespace) -> int:
    summary = api.pool(store)
    if args.json:
        print_json(summary)
        return 0
    rows = [
        (
            r["scope"],
            f"{r['from']}-{r['to']}",
            r["size"],
            *(r[s] for s in ADDRESS_STATES),
            ", ".join(r["servers"]),
        )
        for r in summary["ranges"]
    ]
    outside = summary["outside"]
    rows.append(("-", "outside every pool", "", *(outside[s] for s in ADDRESS_STATES), ""))
    table(("SCOPE", "POOL", "SIZE", *(s.upper() for s in ADDRESS_STATES), "SERVERS"), rows)
    return 0


def _named_range(args: argparse.Namespace) -> AddressPool:
    first, last = IPv4Address(args.first), IPv4Address(args.last)
    if first > last:
        raise CtlError(f"{last} comes before {first}")
    pool = AddressPool(first, last)
    if len(pool) > MAX_RANGE:
        raise CtlError(f"{len(pool)} addresses: at most {MAX_RANGE} at once")
    return pool


def cmd_pool_add(store: LeaseStore, args: argparse.Namespace) -> int:
    pool = _named_range(args)
    added = store.add_free(pool)
    ranges = api.served_ranges(store)
    outside = sum(1 for ip in pool if not any(ip in r.pool for r in ranges))
    if args.json:
        print_json(
            {"from": args.first, "to": args.last, "added": added, "skipped": len(pool) - added}
        )
        return 0
    print(f"added {added} free addresses; {len(pool) - added} were already free or in use")
    if outside:
        print(
            f"note: {outside} of them are outside every served pool: they are handed out "
            "in the scope whose subnet holds them, and phased out once released"
        )
    return 0


def cmd_pool_remove(store: LeaseStore, args: argparse.Namespace) -> int:
    pool = _named_range(args)
    snap = store.snapshot()
    removed = store.remove_free(ip for ip in sorted(snap.free, key=address_order) if ip in pool)
    held = {
        "leased": snap.leased,
        "offered": snap.offered,
        "reserved": snap.reserved,
        "quarantined": snap.declined,
    }
    kept = {
        state: [
            {"ip": ip, "mac": holders[ip]}
            for ip in sorted(holders, key=address_order)
            if ip in pool
        ]
        for state, holders in held.items()
    }
    seeding = [
        r
        for r in api.served_ranges(store)
        if r.pool.first <= pool.last and pool.first <= r.pool.last
    ]
    if args.json:
        print_json(
            {
                "from": args.first,
                "to": args.last,
                "removed": len(removed),
                "kept": kept,
                "seeded_by": [ip for r in seeding for ip in r.servers],
            }
        )
        return 0
    print(f"removed {len(removed)} free addresses")
    for state, entries in kept.items():
        if entries:
            listed = ", ".join(f"{e['ip']} ({e['mac']})" for e in entries[:LISTED])
            more = f" and {len(entries) - LISTED} more" if len(entries) > LISTED else ""
            print(f"kept {len(entries)} {state}: {listed}{more}")
    if seeding:
        print(
            f"note: {_ranges_text(seeding)} are served pools: servers make these addresses "
            "free again; shrink the scope's pools (etcdhcpctl scope set) or the servers' "
            "-dhcp.issue-from/-dhcp.issue-to instead"
        )
    return 0


def cmd_servers(store: LeaseStore, args: argparse.Namespace) -> int:
    found = api.servers(store)
    if args.json:
        print_json(found)
        return 0
    table(
        ("SERVER", "INTERFACE", "RANGE", "VERSION", "HOSTNAME", "PID", "STARTED"),
        (
            (
                s["server_ip"],
                s["interface"],
                f"{s['range_from']}-{s['range_to']}",
                s["version"],
                s["hostname"],
                s["pid"],
                _when(s["started"]),
            )
            for s in found
        ),
    )
    return 0


def cmd_watch(store: LeaseStore, args: argparse.Namespace) -> int:
    connections, cancel = store.watch_connections(args.from_revision)
    timer = threading.Timer(args.timeout, cancel) if args.timeout else None
    if timer:
        timer.daemon = True
        timer.start()
    previous = {
        sig: signal.signal(sig, lambda *_: cancel()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    seen = 0
    try:
        if not args.json:
            print(f"{'REVISION':<10}  {'EVENT':<10}  {'MAC':<17}  IP", flush=True)
        for event in connections:
            if args.json:
                print(json.dumps(asdict(event)), flush=True)
            else:
                print(
                    f"{event.revision:<10}  {event.event:<10}  {event.mac:<17}  {event.ip}",
                    flush=True,
                )
            seen += 1
            if args.count and seen >= args.count:
                break
    finally:
        cancel()
        if timer:
            timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def cmd_check(store: LeaseStore, args: argparse.Namespace) -> int:
    problems = store.check(repair=args.repair)
    problems += [
        Problem("refused_scope_document", why)
        for why in api.scope_assembly(store).problems.values()
    ]
    stray = api.outside_every_subnet(store, [r.ip for r in store.reservations()])
    problems += [
        Problem("reservation_outside_scopes", f"{ip} is reserved but in no served subnet", ip)
        for ip in stray
    ]
    problems += host_problems(store)
    left = [p for p in problems if not p.repaired]
    if args.json:
        print_json({"consistent": not problems, "problems": [asdict(p) for p in problems]})
    elif not problems:
        print("consistent: no problems found")
    else:
        fixed = sum(1 for p in problems if p.repaired)
        print(f"{len(problems)} problems found" + (f", {fixed} repaired" if args.repair else ""))
        column = "REPAIRED" if args.repair else "REPAIRABLE"
        done = (lambda p: p.repaired) if args.repair else (lambda p: p.repairable)
        table(
            ("KIND", column, "DETAIL"),
            ((p.kind, "yes" if done(p) else "no", p.detail) for p in problems),
        )
    return 1 if left else 0


# ---- the parser --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The daemon's etcd flags, `--json`, and one subcommand per operator task."""
    parser = new_parser(
        PROG,
        "etcdhcpctl: read and change etcdhcp's leases, reservations and pool in etcd. "
        "The etcd flags go anywhere on the line; --json prints what the admin API serves.",
    )
    add_etcd_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    # In a subcommand --json must not reset a --json given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    add_etcd_arguments(common, echo=True)
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", title="commands"
    )

    def command(
        name: str, run: Command, summary: str, parent: Any = commands
    ) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=summary, description=summary, parents=[common])
        sub.set_defaults(run=run)
        return sub

    command("leases", cmd_leases, "list every lease: MAC, address, expiry, server, hostname")
    lease = commands.add_parser("lease", help="one lease (lease show MAC|IP)")
    lease_commands = lease.add_subparsers(dest="lease_command", required=True, metavar="COMMAND")
    show = command("show", cmd_lease_show, "show the lease of a MAC or an address", lease_commands)
    show.add_argument("address", type=MAC_OR_IP, metavar="MAC|IP")

    command("reservations", cmd_reservations, "list every reservation")
    reserve = command(
        "reserve", cmd_reserve, "reserve an address for a MAC: every server offers it only that"
    )
    reserve.add_argument("mac", type=MAC, metavar="MAC")
    reserve.add_argument("ip", type=IP, metavar="IP")
    unreserve = command("unreserve", cmd_unreserve, "drop a MAC's reservation")
    unreserve.add_argument("mac", type=MAC, metavar="MAC")
    release = command(
        "release",
        cmd_release,
        "end a lease now; the address becomes free if a live server's range holds it",
    )
    release.add_argument("address", type=MAC_OR_IP, metavar="MAC|IP")
    release.add_argument(
        "--to-pool", action="store_true", help="make the address free even outside every range"
    )

    pool = command("pool", cmd_pool, "addresses per state in each live server's range")
    pool_commands = pool.add_subparsers(dest="pool_command", metavar="COMMAND")
    for name, run, summary in (
        ("add", cmd_pool_add, "make FROM..TO free (those in no state)"),
        ("remove", cmd_pool_remove, "delete the free keys of FROM..TO; leases are kept"),
    ):
        sub = command(name, run, summary, pool_commands)
        sub.add_argument("first", type=IP, metavar="FROM")
        sub.add_argument("last", type=IP, metavar="TO")

    add_scope_commands(command, commands)
    add_kea_commands(command, commands)
    add_host_commands(command, commands)
    command("servers", cmd_servers, "list the live servers")
    watch = command("watch", cmd_watch, "print devices connecting and disconnecting (not renewals)")
    watch.add_argument(
        "--from-revision", type=POSITIVE, default=0, metavar="N", help="replay from revision N"
    )
    watch.add_argument("--count", type=POSITIVE, metavar="N", help="stop after N events")
    watch.add_argument("--timeout", type=SECONDS, metavar="S", help="stop after S seconds")
    check = command(
        "check", cmd_check, "check the store's invariants; exit status 1 when some do not hold"
    )
    check.add_argument(
        "--repair",
        action="store_true",
        help="fix what is safe: orphan halves of pairs, free keys of addresses in use",
    )
    return parser


def _global_flags_first(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """Move the etcd flags in front of the command, so they work after it as well."""
    args = go_style_argv(argv, parser)
    takes_value = {
        option: action.nargs is None
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option not in ("--help", "--version")
    }
    front: list[str] = []
    rest: list[str] = []
    remaining = iter(args)
    for arg in remaining:
        if arg == "--":
            rest += [arg, *remaining]
            break
        name, eq, _ = arg.partition("=")
        if name not in takes_value:
            rest.append(arg)
            continue
        front.append(arg)
        if takes_value[name] and not eq:
            value = next(remaining, None)
            if value is not None:
                front.append(value)
    return front + rest


def _endpoints(settings: dict[str, Any]) -> list[str]:
    """As the daemon finds etcd: the given endpoints, else the SRV records, else the
    embedded etcd's client address."""
    if settings["etcd_endpoints"]:
        return list(settings["etcd_endpoints"])
    if settings["etcd_srv"]:
        return discover_etcd(settings)
    return [f"http://{settings['embedded_listen_host']}:{settings['embedded_listen_port']}"]


def _fail(message: str) -> int:
    print(f"{PROG}: {' '.join(message.split())}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        flags = parse_flags(
            parser, _global_flags_first(sys.argv[1:] if argv is None else argv, parser)
        )
        settings = etcd_fields(flags)
    except ConfigError as exc:
        report_and_exit(exc, PROG)
    args = flags.namespace
    if settings["verbosity"]:
        logs.setup(settings["verbosity"])
    else:  # failover warnings would add lines to the one that explains a failure
        logging.getLogger("etcdhcp").setLevel(logging.ERROR)
    try:
        endpoints = _endpoints(settings)
    except EtcdError as exc:  # the SRV look-up failed
        return _fail(str(exc))
    etcd = Etcd(endpoints, ETCD_TIMEOUT, etcd_credentials(settings))
    try:
        return args.run(LeaseStore.for_operator(etcd, settings["etcd_prefix"]), args)
    except (CtlError, Refused, ScopeCommandError) as exc:
        return _fail(str(exc))
    except EtcdUnavailable as exc:
        return _fail(f"etcd unreachable at {', '.join(endpoints)}: {exc}")
    except EtcdError as exc:
        return _fail(f"etcd: {exc}")
    except BrokenPipeError:  # `etcdhcpctl leases | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        etcd.close()


if __name__ == "__main__":
    sys.exit(main())
