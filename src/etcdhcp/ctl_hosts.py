"""`etcdhcpctl host ...`: host records (Kea `reservations` entries) in etcd.

Every change is checked before anything is written, as servers check what they read
(hosts.parse_host), and against the scopes (an address outside its scope's subnet, or
every served subnet, a scope that does not exist) and the reservations in etcd (an
address reserved for another client): each refused entry is named in one line, by
line number or JSON path, and nothing is written. Then the records go out in batches
of one guarded transaction each (HostStore.write), so a 100,000-host import is a few
thousand transactions, each all or nothing.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from etcdhcp import api, globalconfig
from etcdhcp.ctl_scopes import ScopeCommandError, read_source, show_document
from etcdhcp.hostformats import (
    FORMATS,
    READERS,
    Entry,
    Read,
    check,
    read_json,
    to_csv,
    to_json,
)
from etcdhcp.hosts import (
    GLOBAL,
    HW_ADDRESS,
    ID_TYPES,
    Host,
    HostKey,
    normalise_identifier,
    parse_record,
    parse_scope_id,
    record_name,
)
from etcdhcp.output import print_json, table
from etcdhcp.scopes import ScopeError, ScopeSet
from etcdhcp.store import HostPlan, HostRecord, HostStore, LeaseStore, Problem


class HostCommandError(ScopeCommandError):
    """One line for the operator (exit status 1)."""


def host_store(store: LeaseStore) -> HostStore:
    """The host records next to `store`'s leases (same etcd, same prefix)."""
    return HostStore(store.etcd, store.prefix)


def _scope(text: str) -> int:
    try:
        return parse_scope_id(text, "--scope")
    except ScopeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a scope id (0: global, else a subnet id)"
        ) from None


def parse_id(text: str) -> tuple[int | None, str, str]:
    """A host named on the command line: `[SCOPE/]TYPE=IDENTIFIER`, or a MAC (hw-address);
    the scope is None when not given."""
    scope: int | None = None
    match = re.fullmatch(r"(\d+)/(.*)", text)
    if match:
        scope, text = _scope(match.group(1)), match.group(2)
    id_type, eq, value = text.partition("=")
    if not eq:
        id_type, value = HW_ADDRESS, text
    if id_type not in ID_TYPES:
        raise argparse.ArgumentTypeError(f"{id_type!r} is not one of {', '.join(ID_TYPES)}")
    try:
        return scope, id_type, normalise_identifier(id_type, value)
    except ScopeError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("identifier: ")) from None


# ---- reading what is stored -------------------------------------------------------------------


def _stored(store: LeaseStore) -> tuple[list[HostRecord], Any]:
    """Every stored record, and the served scopes (their option definitions parse them)."""
    _revision, records = host_store(store).documents()
    return records, api.scope_assembly(store).scopes


def _parsed(record: HostRecord, defs: Any) -> tuple[Host | None, str | None]:
    """(host, None), or (None, why a server refuses the record)."""
    assert record.raw is not None
    try:
        host = parse_record(record.scope, record.id_type, record.identifier, record.raw, defs)
    except ScopeError as exc:
        return None, str(exc)
    return host, None


def _resolve(store: LeaseStore, text: tuple[int | None, str, str]) -> HostKey:
    """The stored host an ID names; with no scope given, the one scope that has it."""
    scope, id_type, identifier = text
    if scope is not None:
        if host_store(store).record((scope, id_type, identifier)) is None:
            name = record_name(scope, id_type, identifier)
            raise HostCommandError(f"{name}: no such host (etcdhcpctl host list)")
        return scope, id_type, identifier
    _revision, records = host_store(store).documents()
    scopes = [r.scope for r in records if (r.id_type, r.identifier) == (id_type, identifier)]
    if not scopes:
        raise HostCommandError(f"{id_type}={identifier}: no such host (etcdhcpctl host list)")
    if len(scopes) > 1:
        raise HostCommandError(
            f"{id_type}={identifier} is a host in scopes {', '.join(scopes)}: "
            f"name one, e.g. {scopes[0]}/{id_type}={identifier}"
        )
    return int(scopes[0]), id_type, identifier


# ---- writing ------------------------------------------------------------------------------


def _line_order(refusal: str) -> tuple[int, int]:
    match = re.match(r"line (\d+):", refusal)
    return (0, int(match.group(1))) if match else (1, 0)


def _refuse(refusals: list[str], entries: int) -> None:
    """Raise the refusal: one line for one, else every one listed on standard error first."""
    refusals.sort(key=_line_order)  # line-numbered ones by line, JSON paths as read
    if len(refusals) == 1:
        raise HostCommandError(f"refused, nothing written: {refusals[0]}")
    for line in refusals:
        print(line, file=sys.stderr)
    raise HostCommandError(
        f"refused, nothing written: {len(refusals)} problems in {entries} entries (above)"
    )


def write_hosts(
    store: LeaseStore,
    read: Read,
    *,
    must_exist: bool | None,
    deletes: Sequence[HostKey] = (),
    dry_run: bool = False,
    view: ScopeSet | None = None,
) -> tuple[HostPlan, list[str]]:
    """Check entries (and deletions) against the scopes (`view`, by default those in
    etcd) and etcd, then write them.

    `must_exist`: True for `set`, False for `add`, None for `import` (either). Returns
    the plan and the notes (allowed, but worth telling: one line each)."""
    if view is None:
        view = api.scope_assembly(store).scopes
    checked = check(read.entries, view, api.served_subnets(store), globalconfig.of(view).defs)
    refusals = [*read.refusals, *checked.refusals]
    hosts = host_store(store)
    plan = hosts.plan(checked.hosts, deletes, _scope_of(view))
    where = {**checked.where, **{k: record_name(*k) for k in deletes}}
    refusals += [f"{where[k]}: {why}" for k, why in plan.refusals.items()]
    for host in checked.hosts:
        if must_exist is False and host.key in plan.existing:
            refusals.append(f"{where[host.key]}: {host.name} is there already (host set)")
        if must_exist is True and host.key not in plan.existing:
            refusals.append(f"{where[host.key]}: {host.name}: no such host (host add)")
    if refusals:
        _refuse(refusals, len(read.entries) + len(read.refusals))
    notes = [f"{where[k]}: {note}" for k, note in plan.notes.items()]
    if dry_run:
        return plan, notes
    done = hosts.write(plan)
    if done.failed:
        why = f"etcd: {done.error}" if done.error else "a record or reservation changed meanwhile"
        raise HostCommandError(
            f"{why}: {len(done.written)} hosts written, {len(done.failed)} not (from "
            f"{where[done.failed[0]]}); run it again: what is written is skipped"
        )
    return plan, notes


def _scope_of(view: ScopeSet) -> Callable[[str], int | None]:
    """The id of the scope whose subnet holds an address (HostStore.plan's `scope_of`)."""

    def scope_of(ip: str) -> int | None:
        scope = view.containing(int(ipaddress.IPv4Address(ip)))
        return None if scope is None else scope.id

    return scope_of


def _report(args: argparse.Namespace, verb: str, plan: HostPlan, notes: list[str]) -> int:
    names = [record_name(*k) for batch in plan.batches for k in batch.hosts]
    if args.json:
        print_json(
            {verb: names, "unchanged": [record_name(*k) for k in plan.unchanged], "notes": notes}
        )
        return 0
    for note in notes:
        print(f"note: {note}")
    shown = ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:3])}, ..."
    unchanged = f"; {len(plan.unchanged)} unchanged" if plan.unchanged else ""
    print(
        f"{verb} {len(names)} host{'s' if len(names) != 1 else ''}{unchanged}"
        + (f": {shown}" if names else "")
    )
    return 0


# ---- commands -----------------------------------------------------------------------------


def _one(args: argparse.Namespace) -> Read:
    return Read([Entry("host", args.scope, read_source(args.document))])


def cmd_host_add(store: LeaseStore, args: argparse.Namespace) -> int:
    return _report(args, "added", *write_hosts(store, _one(args), must_exist=False))


def cmd_host_set(store: LeaseStore, args: argparse.Namespace) -> int:
    return _report(args, "replaced", *write_hosts(store, _one(args), must_exist=True))


def cmd_host_remove(store: LeaseStore, args: argparse.Namespace) -> int:
    keys = list(dict.fromkeys(_resolve(store, text) for text in args.ids))
    return _report(args, "removed", *write_hosts(store, Read(), must_exist=None, deletes=keys))


def host_problems(store: LeaseStore) -> list[Problem]:
    """For `etcdhcpctl check`: records the servers refuse, and hosts whose address is not
    reserved for them (a record written by hand without its `ips::reserved::` key, or
    the key changed since): servers offer such a host nothing."""
    records, view = _stored(store)
    defs = globalconfig.of(view).defs
    reserved = store.reserved_holders()
    problems = []
    for record in records:
        host, why = _parsed(record, defs)
        if host is None:
            problems.append(Problem("refused_host_record", str(why)))
        elif host.ip is not None and reserved.get(host.ip) != host.holder:
            detail = (
                f"{host.name} has {host.ip}, reserved for {reserved.get(host.ip) or 'nobody'}: "
                "it gets no offer (etcdhcpctl host set writes both)"
            )
            problems.append(Problem("host_not_reserved", detail, host.ip))
    return problems


def cmd_host_list(store: LeaseStore, args: argparse.Namespace) -> int:
    records, view = _stored(store)
    defs = globalconfig.of(view).defs
    rows = []
    for record in records:
        if args.scope is not None and record.scope != str(args.scope):
            continue
        host, problem = _parsed(record, defs)
        rows.append(
            {
                "id": record_name(record.scope, record.id_type, record.identifier),
                "ip": host.ip if host else None,
                "hostname": host.hostname if host else None,
                "boot_file": host.boot.boot_file_name.decode() if host else None,
                "classes": list(host.classes) if host else [],
                "status": "served" if host else "refused",
                "problem": problem,
            }
        )
    if args.json:
        print_json(rows)
    else:
        table(
            ("ID", "IP", "HOSTNAME", "BOOT-FILE", "CLASSES", "STATUS"),
            (
                (
                    r["id"],
                    r["ip"],
                    r["hostname"],
                    r["boot_file"],
                    ", ".join(r["classes"]),
                    r["status"] if r["problem"] is None else f"refused: {r['problem']}",
                )
                for r in rows
            ),
        )
    return 1 if any(r["problem"] for r in rows) else 0


def cmd_host_show(store: LeaseStore, args: argparse.Namespace) -> int:
    key = _resolve(store, args.id)
    raw = host_store(store).record(key)
    if raw is None:  # removed between the two reads
        raise HostCommandError(f"{record_name(*key)}: no such host (etcdhcpctl host list)")
    show_document(raw)
    return 0


def _format(args: argparse.Namespace) -> str:
    """--format, else the file's name says (.csv, .json, ethers, .conf / dnsmasq), else json."""
    if args.format:
        return str(args.format)
    name = Path(args.file).name.lower()
    for fmt, hint in (("csv", ".csv"), ("ethers", "ethers"), ("dnsmasq", "dnsmasq")):
        if hint in name:
            return fmt
    return "dnsmasq" if name.endswith(".conf") else "json"


def _read_file(args: argparse.Namespace, fmt: str) -> Read:
    if fmt == "json":
        data = read_source(args.file)
        if args.scope is not None and not isinstance(data, list):
            raise HostCommandError(
                f"--scope: {args.file} is a Kea configuration, which says each host's scope"
            )
        return read_json(data, GLOBAL if args.scope is None else args.scope)
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise HostCommandError(f"{args.file}: {exc}") from None
    return READERS[fmt](text, GLOBAL if args.scope is None else args.scope)


def cmd_host_import(store: LeaseStore, args: argparse.Namespace) -> int:
    read = _read_file(args, _format(args))
    if not read.entries and not read.refusals:
        raise HostCommandError(f"{args.file}: no host to import")
    plan, notes = write_hosts(store, read, must_exist=None, dry_run=args.dry_run)
    return _report(args, "would write" if args.dry_run else "imported", plan, notes)


def stored_hosts(store: LeaseStore, scope: int | None = None) -> list[Host]:
    """Every stored host (of `scope`), parsed; HostCommandError when one does not parse
    (an export would lose it)."""
    records, view = _stored(store)
    defs = globalconfig.of(view).defs
    hosts, left_out = [], []
    for record in records:
        if scope is not None and record.scope != str(scope):
            continue
        host, problem = _parsed(record, defs)
        if host is None:
            left_out.append(problem)
        else:
            hosts.append(host)
    if left_out:
        raise HostCommandError(
            f"{len(left_out)} records do not parse, nothing exported: {left_out[0]} (host list)"
        )
    return hosts


def cmd_host_export(store: LeaseStore, args: argparse.Namespace) -> int:
    hosts = stored_hosts(store, args.scope)
    if args.format == "csv":
        try:
            sys.stdout.write(to_csv(hosts))
        except ValueError as exc:
            raise HostCommandError(str(exc)) from None
    else:
        print(json.dumps(to_json(hosts), indent=2))
    return 0


def add_host_commands(command: Any, commands: Any) -> None:
    """`host` and its subcommands, on etcdhcpctl's parser (`command` adds one)."""
    host = commands.add_parser(
        "host", help="host records: list, show, add, set, remove, import, export"
    )
    sub = host.add_subparsers(dest="host_command", required=True, metavar="COMMAND")
    scope_help = "the hosts' scope: a subnet id, or 0 (global, the default)"
    listed = command("list", cmd_host_list, "every host record, and whether servers refuse it", sub)
    listed.add_argument("--scope", type=_scope, metavar="N", help="only the hosts of scope N")
    show = command("show", cmd_host_show, "print one host record", sub)
    show.add_argument("id", type=parse_id, metavar="ID", help="[SCOPE/]TYPE=IDENTIFIER, or a MAC")
    for name, run, summary in (
        ("add", cmd_host_add, "add a host record (a Kea reservations entry)"),
        ("set", cmd_host_set, "replace the host record of the same identifier"),
    ):
        edit = command(name, run, summary, sub)
        edit.add_argument("document", metavar="FILE|JSON|-", help="the entry (Kea's JSON)")
        edit.add_argument("--scope", type=_scope, default=GLOBAL, metavar="N", help=scope_help)
    remove = command("remove", cmd_host_remove, "remove host records and their reservations", sub)
    remove.add_argument("ids", nargs="+", type=parse_id, metavar="ID")
    imported = command(
        "import", cmd_host_import, "add or replace the hosts of a file, in batches", sub
    )
    imported.add_argument("file", metavar="FILE|-", help="the hosts")
    imported.add_argument(
        "--format", choices=FORMATS, metavar="F", help=f"{'|'.join(FORMATS)} (default: by name)"
    )
    imported.add_argument("--scope", type=_scope, metavar="N", help=scope_help)
    imported.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    exported = command("export", cmd_host_export, "print every host record as JSON or CSV", sub)
    exported.add_argument("--format", choices=("json", "csv"), default="json", metavar="F")
    exported.add_argument("--scope", type=_scope, metavar="N", help="only the hosts of scope N")
