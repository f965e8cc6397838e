"""`etcdhcpctl scope ...`: scopes (Kea `subnet4` / `shared-networks` entries) in etcd.

Every change is checked before anything is written, the way every server checks
what it reads (globalconfig.check_change): a refused change writes nothing and says, in
one line, which document and which JSON path is at fault. Writes are guarded on
the documents read, so two operators cannot interleave changes unseen; an import
of many documents is written in batches of one transaction each.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from etcdhcp import api, keajson
from etcdhcp.globalconfig import check_change
from etcdhcp.output import print_json, table
from etcdhcp.scopes import (
    DOCUMENT_KINDS,
    LIFETIME_KEYS,
    NETWORK_DOC,
    SUBNET_DOC,
    TIMER_KEYS,
    Document,
    ScopeError,
    document_name,
    name_of,
)
from etcdhcp.store import ConfigStore, LeaseStore

IMPORT_BATCH = 50  # documents a transaction: a guard and a put each, under --max-txn-ops 128
GLOBAL_KEYS = (*LIFETIME_KEYS, *TIMER_KEYS)  # Kea's global level that scopes inherit


class ScopeCommandError(Exception):
    """One line for the operator (exit status 1)."""


def config_store(store: LeaseStore) -> ConfigStore:
    """The configuration documents next to `store`'s leases (same etcd, same prefix)."""
    return ConfigStore(store.etcd, store.prefix)


def read_source(source: str) -> Any:
    """JSON text given on the line, `-` for standard input, or a Kea file (comments allowed)."""
    try:
        if source == "-":
            return keajson.loads(sys.stdin.read(), "<stdin>")
        if source.lstrip().startswith(("{", "[")):
            return keajson.loads(source, "<argument>")
        return keajson.load(source)
    except (keajson.KeaJsonError, OSError) as exc:
        raise ScopeCommandError(str(exc)) from None


def _name(text: str) -> str:
    """A scope's id (`7`), a shared network's name, or a document name (`subnet4/7`)."""
    if "/" in text:
        return text
    return document_name(SUBNET_DOC if text.isdigit() else NETWORK_DOC, text)


def write_documents(
    store: LeaseStore,
    puts: Mapping[str, Any],
    deletes: list[str],
    *,
    must_exist: bool | None,
    dry_run: bool = False,
    skip_unchanged: bool = False,
) -> list[str]:
    """Check a change against every document, then write it (batched, guarded).

    `must_exist`: True for `set`/`remove`, False for `add`, None for `import` (either).
    `skip_unchanged`: leave out puts whose document is stored already (JSON-equal).
    Returns the names written.
    """
    config = config_store(store)
    _revision, documents = config.documents()
    current = {d.name: d for d in documents}
    if skip_unchanged:
        puts = {n: doc for n, doc in puts.items() if not _same(current.get(n), doc)}
    for name in [*puts, *deletes]:
        if must_exist is True and name not in current:
            raise ScopeCommandError(f"{name}: no such document (etcdhcpctl scope list)")
        if must_exist is False and name in current:
            raise ScopeCommandError(f"{name}: already there (use etcdhcpctl scope set)")
    texts = {name: json.dumps(doc, separators=(",", ":")) for name, doc in puts.items()}
    changed: dict[str, bytes | None] = {n: t.encode() for n, t in texts.items()}
    changed.update(dict.fromkeys(deletes))
    problems = check_change(documents, changed)
    if problems:
        # A changed document's own fault first: the others it breaks follow from it.
        first = problems[min(problems, key=lambda name: (name not in changed, name))]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ScopeCommandError(f"refused, nothing written: {first}{more}")
    if dry_run:
        return sorted(changed)
    names = sorted(changed)
    for i in range(0, len(names), IMPORT_BATCH):
        batch = names[i : i + IMPORT_BATCH]
        read = {n: (current[n].raw if n in current else None) for n in batch}
        batch_puts = {n: texts[n] for n in batch if n in texts}
        batch_deletes = [n for n in batch if n not in texts]
        if not config.write(batch_puts, batch_deletes, read):
            done = f"; {i} documents were written before it" if i else ""
            raise ScopeCommandError(
                f"a document changed while this ran ({batch[0]}…): nothing of this batch was "
                f"written{done}; run the command again"
            )
    return names


def _same(stored: Document | None, doc: Any) -> bool:
    """Whether a stored document already says `doc` (as JSON: key order aside)."""
    try:
        return stored is not None and json.loads(stored.raw) == doc
    except ValueError:  # written by hand, not JSON
        return False


def dhcp4_map(data: Any) -> tuple[dict[str, Any], str, list[str]]:
    """(the Dhcp4 map, the JSON path prefix of its keys, the file's other top-level keys) of
    a whole Kea configuration ({"Dhcp4": ...}) or of its Dhcp4 map itself."""
    if not isinstance(data, dict):
        raise ScopeCommandError("a Kea file holds a JSON object")
    if "Dhcp4" not in data:
        return data, "", []
    if not isinstance(data["Dhcp4"], dict):
        raise ScopeCommandError("Dhcp4: must be a JSON object")
    return data["Dhcp4"], "Dhcp4.", [k for k in data if k != "Dhcp4"]


def named_entries(entries: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """{document name: entry} of (JSON path, subnet4 or shared-networks entry) pairs."""
    named: dict[str, Any] = {}
    for path, entry in entries:
        try:
            name = name_of(entry, path)
        except ScopeError as exc:
            raise ScopeCommandError(str(exc)) from None
        if name in named:
            raise ScopeCommandError(f"{path}: {name} is in the file twice")
        named[name] = entry
    return named


def _entries(data: Any, skip_unsupported: bool) -> Iterator[tuple[str, Any]]:
    """(JSON path, entry) for every subnet4 and shared-networks entry of a Kea file:
    a whole configuration ({"Dhcp4": ...}), its Dhcp4 map, or a list of subnet4 entries."""
    if isinstance(data, list):
        data = {"subnet4": data}
    if not isinstance(data, dict):
        raise ScopeCommandError("a Kea file holds a JSON object or a list of subnet4 entries")
    data, root, others = dhcp4_map(data)
    _unsupported(others, "", skip_unsupported)
    inherited = {k: data[k] for k in GLOBAL_KEYS if k in data}
    ignored = [k for k in data if k not in ("subnet4", "shared-networks", *GLOBAL_KEYS)]
    _unsupported(ignored, root, skip_unsupported)
    for kind in (SUBNET_DOC, NETWORK_DOC):
        entries = data.get(kind, [])
        if not isinstance(entries, list):
            raise ScopeCommandError(f"{root}{kind}: must be a list")
        for i, entry in enumerate(entries):
            yield f"{root}{kind}[{i}]", _with_globals(entry, inherited)


def _with_globals(entry: Any, inherited: Mapping[str, Any]) -> Any:
    """Kea's global lifetimes and timers, written into the entry that inherits them (a
    shared network passes them on to its subnets)."""
    if not isinstance(entry, dict) or not inherited:
        return entry
    return {**inherited, **entry}


def _unsupported(keys: list[str], root: str, skip: bool) -> None:
    if not keys:
        return
    listed = ", ".join(f"{root}{k}" for k in keys)
    if not skip:
        raise ScopeCommandError(
            f"not imported by 'scope import': {listed} (--skip-unsupported leaves them out)"
        )
    print(f"left out: {listed}", file=sys.stderr)


# ---- commands -------------------------------------------------------------------------------


def cmd_scope_list(store: LeaseStore, args: argparse.Namespace) -> int:
    rows = api.scopes(store)
    if args.json:
        print_json(rows)
        return 0
    table(
        ("ID", "SUBNET", "POOLS", "SHARED-NETWORK", "RELAY", "LIFETIME", "DOCUMENT", "STATUS"),
        (
            (
                r.get("id"),
                r.get("subnet"),
                ", ".join(r.get("pools", [])),
                r.get("shared_network"),
                ", ".join(r.get("relay", [])),
                r.get("valid_lifetime"),
                r["document"],
                r["status"] if r["status"] == "served" else f"refused: {r['problem']}",
            )
            for r in rows
        ),
    )
    return 1 if any(r["status"] != "served" for r in rows) else 0


def cmd_scope_show(store: LeaseStore, args: argparse.Namespace) -> int:
    name = _name(args.scope)
    _revision, documents = config_store(store).documents()
    found = next((d for d in documents if d.name == name), None)
    if found is None:
        raise ScopeCommandError(f"{name}: no such document (etcdhcpctl scope list)")
    show_document(found.raw)
    return 0


def show_document(raw: bytes) -> None:
    """Print a stored document, indented; as it is when it is not JSON (written by hand)."""
    try:
        print(json.dumps(json.loads(raw), indent=2))
    except ValueError:
        print(raw.decode(errors="replace"))


def _one_entry(args: argparse.Namespace) -> dict[str, Any]:
    entry = read_source(args.document)
    try:
        return {name_of(entry, "document"): entry}
    except ScopeError as exc:
        raise ScopeCommandError(str(exc)) from None


def report(args: argparse.Namespace, verb: str, names: list[str]) -> int:
    """`<verb> N documents: names` (or {verb: names} with --json); exit status 0."""
    if args.json:
        print_json({verb: names})
    else:
        print(f"{verb} {len(names)} document{'s' if len(names) != 1 else ''}: {', '.join(names)}")
    return 0


def cmd_scope_add(store: LeaseStore, args: argparse.Namespace) -> int:
    return report(args, "added", write_documents(store, _one_entry(args), [], must_exist=False))


def cmd_scope_set(store: LeaseStore, args: argparse.Namespace) -> int:
    names = write_documents(store, _one_entry(args), [], must_exist=True)
    return report(args, "replaced", names)


def cmd_scope_remove(store: LeaseStore, args: argparse.Namespace) -> int:
    names = write_documents(store, {}, [_name(s) for s in args.scopes], must_exist=True)
    return report(args, "removed", names)


def cmd_scope_import(store: LeaseStore, args: argparse.Namespace) -> int:
    puts = named_entries(_entries(read_source(args.file), args.skip_unsupported))
    if not puts:
        raise ScopeCommandError(f"{args.file}: no subnet4 or shared-networks entry to import")
    deletes: list[str] = []
    if args.replace:
        _revision, documents = config_store(store).documents()
        scopes = (d.name for d in documents if d.name.partition("/")[0] in DOCUMENT_KINDS)
        deletes = [name for name in scopes if name not in puts]  # the global document stays
    names = write_documents(store, puts, deletes, must_exist=None, dry_run=args.dry_run)
    return report(args, "would write" if args.dry_run else "imported", names)


def add_scope_commands(command: Any, commands: Any) -> None:
    """`scope` and its subcommands, on etcdhcpctl's parser (`command` adds one)."""
    scope = commands.add_parser(
        "scope", help="scopes (subnets) in etcd: list, show, add, set, remove, import"
    )
    sub = scope.add_subparsers(dest="scope_command", required=True, metavar="COMMAND")
    command("list", cmd_scope_list, "every scope, and whether servers serve or refuse it", sub)
    show = command("show", cmd_scope_show, "print one scope document", sub)
    show.add_argument("scope", metavar="ID|NAME", help="a scope id or shared network name")
    for name, run, summary in (
        ("add", cmd_scope_add, "add a subnet4 or shared-networks entry (refused if present)"),
        ("set", cmd_scope_set, "replace a subnet4 or shared-networks entry"),
    ):
        edit = command(name, run, summary, sub)
        edit.add_argument("document", metavar="FILE|JSON|-", help="the entry (Kea's JSON)")
    remove = command("remove", cmd_scope_remove, "remove scopes (their leases run out)", sub)
    remove.add_argument("scopes", nargs="+", metavar="ID|NAME")
    imported = command(
        "import", cmd_scope_import, "add or replace the subnet4/shared-networks of a file", sub
    )
    imported.add_argument("file", metavar="FILE|-", help="a Kea configuration (comments allowed)")
    imported.add_argument("--dry-run", action="store_true", help="check and list, write nothing")
    imported.add_argument(
        "--replace", action="store_true", help="also remove the documents the file does not have"
    )
    imported.add_argument(
        "--skip-unsupported", action="store_true", help="leave out keys scopes do not take"
    )
