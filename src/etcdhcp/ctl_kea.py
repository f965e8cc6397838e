"""`etcdhcpctl import-kea`, `export-kea` and `config show|set`: a whole kea-dhcp4.conf.

A Kea configuration becomes etcdhcp's documents: its global level (`option-def`,
`option-data`, `client-classes`, the boot fields, lifetimes and timers) the global
document `global/dhcp4`, each `subnet4` and each `shared-networks` entry a document of
its own, as `scope import` writes them. Nothing in the file is dropped without a line:

- server-local keys describe one Kea process on one machine (where it listens, logs and
  keeps its leases, how it takes commands, its threads and queue); every etcdhcp server
  has a flag of its own for that job, which the line names. They are `ignored` and
  never stop an import: the shared configuration in etcd has no place for them.
- every other key etcdhcp does not take (hooks, DDNS, ...) is listed by its JSON path,
  one line each, and nothing is written unless `--skip-unsupported` leaves them out.

`reservations` (global, and each subnet's) become host records, as `etcdhcpctl host
import` writes them. Everything is checked together (globalconfig.check_change, and
the hosts against the imported scopes) before anything is written, the documents
through ctl_scopes' guarded, batched writes, then the hosts. `export-kea` writes the
stored documents and hosts back in Kea's shape, so importing what it wrote changes
nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etcdhcp.clientclasses import CLASS_KEYS
from etcdhcp.ctl_hosts import stored_hosts, write_hosts
from etcdhcp.ctl_scopes import (
    ScopeCommandError,
    config_store,
    dhcp4_map,
    named_entries,
    read_source,
    report,
    show_document,
    write_documents,
)
from etcdhcp.globalconfig import GLOBAL_DOC, GLOBAL_KEYS, assemble
from etcdhcp.hostformats import Read, read_json, to_json
from etcdhcp.hosts import HOST_KEYS, ID_TYPES, record_name
from etcdhcp.optiondefs import OPTION_DATA_KEYS, OPTION_DEF_KEYS
from etcdhcp.output import print_json
from etcdhcp.scopes import (
    NETWORK_DOC,
    NETWORK_KEYS,
    POOL_KEYS,
    SUBNET_DOC,
    SUBNET_KEYS,
    Document,
    ScopeSet,
)
from etcdhcp.store import LeaseStore

HOSTS = "reservations"  # Kea's host reservations: host records here (hosts.py)

# Kea's server-local Dhcp4 keys -> the etcdhcp flag (or mechanism) that does their job.
SERVER_LOCAL = {
    "interfaces-config": "-dhcp.server-if",
    "lease-database": "leases are kept in etcd",
    "control-socket": "etcdhcpctl and the admin API, -admin-addr",
    "loggers": "-v and -logtostderr",
    "multi-threading": "-dhcp.workers and -dhcp.processes",
    "dhcp-queue-control": "-dhcp.queue-size",
    "expired-leases-processing": "-dhcp.monitor-interval",
    "decline-probation-period": "-dhcp.decline-time",
    "sanity-checks": "etcdhcpctl check",
    "statistic-default-sample-count": "the Prometheus metrics",
    "statistic-default-sample-age": "the Prometheus metrics",
}
# Top-level objects of a Kea file that are not kea-dhcp4's (kea-dhcp4 skips them too).
OTHER_DAEMONS = {
    "Dhcp6": "kea-dhcp6's",
    "DhcpDdns": "kea-dhcp-ddns's",
    "Control-agent": "kea-ctrl-agent's",
    "Netconf": "kea-netconf's",
    "Logging": "Kea 1.x's loggers: -v and -logtostderr",
}


@dataclass(frozen=True)
class _Level:
    """The keys one level of a Kea configuration takes, and which of them hold a list of
    entries of another level (walked for their own keys)."""

    keys: frozenset[str]
    lists: Mapping[str, _Level] = field(default_factory=dict)


_OPTIONS = {"option-data": _Level(OPTION_DATA_KEYS)}
_HOSTS = {HOSTS: _Level(HOST_KEYS, _OPTIONS)}
_SUBNET = _Level(
    SUBNET_KEYS | {HOSTS}, {**_OPTIONS, **_HOSTS, "pools": _Level(POOL_KEYS, _OPTIONS)}
)
_DHCP4 = _Level(
    GLOBAL_KEYS | {SUBNET_DOC, NETWORK_DOC, HOSTS},
    {
        **_OPTIONS,
        **_HOSTS,
        "option-def": _Level(OPTION_DEF_KEYS),
        "client-classes": _Level(CLASS_KEYS, _OPTIONS),
        SUBNET_DOC: _SUBNET,
        NETWORK_DOC: _Level(NETWORK_KEYS, {**_OPTIONS, SUBNET_DOC: _SUBNET}),
    },
)


def _prune(value: Any, level: _Level, prefix: str, found: list[str]) -> Any:
    """`value` without the keys its level does not take, each one's JSON path added to
    `found`; a value of the wrong shape is left for the parsers to name."""
    if not isinstance(value, dict):
        return value
    kept = {}
    for key, item in value.items():
        where = f"{prefix}{key}"
        if key not in level.keys:
            found.append(where)
            continue
        inner = level.lists.get(key)
        if inner is not None and isinstance(item, list):
            item = [_prune(e, inner, f"{where}[{i}].", found) for i, e in enumerate(item)]
        kept[key] = item
    return kept


@dataclass
class KeaFile:
    """What a Kea configuration gives: documents by name, and the lines that say what
    was ignored, renumbered or not supported (JSON paths)."""

    documents: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    hosts: Read = field(default_factory=Read)


def _list(dhcp4: Mapping[str, Any], key: str, prefix: str) -> list[Any]:
    value = dhcp4.get(key, [])
    if not isinstance(value, list):
        raise ScopeCommandError(f"{prefix}{key}: must be a list")
    return value


def _subnet_lists(dhcp4: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, list[Any]]]:
    """(JSON path, subnet4 list) in the order Kea 2.2 numbers subnets: the shared
    networks' lists first, then the top-level one."""
    for i, network in enumerate(_list(dhcp4, NETWORK_DOC, prefix)):
        if isinstance(network, dict):
            where = f"{prefix}{NETWORK_DOC}[{i}]."
            yield f"{where}{SUBNET_DOC}", _list(network, SUBNET_DOC, where)
    yield f"{prefix}{SUBNET_DOC}", _list(dhcp4, SUBNET_DOC, prefix)


def _number(dhcp4: dict[str, Any], prefix: str) -> list[str]:
    """Give each subnet without an `id` the one Kea 2.2 gives it (1, 2, ... in its order;
    an explicit id it hands out too is refused later, as Kea refuses it), in place."""
    notes = []
    next_id = 1
    for path, subnets in _subnet_lists(dhcp4, prefix):
        for i, subnet in enumerate(subnets):
            if isinstance(subnet, dict) and "id" not in subnet:
                subnets[i] = {"id": next_id, **subnet}
                notes.append(
                    f"numbered: {path}[{i}] ({subnet.get('subnet')}) gets id {next_id}, as in Kea"
                )
                next_id += 1
    return notes


def read_kea(data: Any) -> KeaFile:
    """A whole Kea configuration ({"Dhcp4": ...}, or its Dhcp4 map) -> documents and notes.

    Pure: nothing is checked against etcd here, and the values are left for the parsers
    (globalconfig, scopes) to check; only the keys are sorted out."""
    dhcp4, prefix, others = dhcp4_map(data)
    found = KeaFile()
    for key in others:
        if key in OTHER_DAEMONS:
            found.notes.append(f"ignored: {key} ({OTHER_DAEMONS[key]})")
        else:
            found.unsupported.append(key)
    local = [k for k in dhcp4 if k in SERVER_LOCAL]
    found.notes += [f"ignored: {prefix}{k} (server-local: {SERVER_LOCAL[k]})" for k in local]
    dhcp4 = _prune(
        {k: v for k, v in dhcp4.items() if k not in local}, _DHCP4, prefix, found.unsupported
    )
    found.notes += _number(dhcp4, prefix)
    _drop_unidentified(dhcp4, prefix, found.unsupported)
    found.hosts = read_json(dhcp4)
    _drop_hosts(dhcp4)
    global_doc = {k: v for k, v in dhcp4.items() if k in GLOBAL_KEYS}
    if global_doc:
        found.documents[GLOBAL_DOC] = global_doc
    for kind in (SUBNET_DOC, NETWORK_DOC):
        entries = ((f"{prefix}{kind}[{i}]", e) for i, e in enumerate(_list(dhcp4, kind, prefix)))
        found.documents.update(named_entries(entries))
    return found


def _add_hosts(dhcp4: dict[str, Any], hosts: list[Any]) -> None:
    """Put the host records back where Kea keeps them: global `reservations`, and each
    subnet's (a host of a scope not in etcd is exported in a subnet of its id alone)."""
    found = to_json(hosts)
    if found[HOSTS]:
        dhcp4[HOSTS] = found[HOSTS]
    subnets = {
        s.get("id"): s
        for _path, entries in _subnet_lists(dhcp4, "")
        for s in entries
        if isinstance(s, dict)
    }
    for entry in found.get(SUBNET_DOC, []):
        subnet = subnets.get(entry["id"])
        if subnet is None:
            dhcp4.setdefault(SUBNET_DOC, []).append(entry)
        else:
            subnet[HOSTS] = entry[HOSTS]


def _drop_unidentified(dhcp4: dict[str, Any], prefix: str, unsupported: list[str]) -> None:
    """Leave out (in place) the reservations whose only identifier was an unsupported key
    (duid, flex-id), already listed: nothing would say who the host is."""

    def kept(hosts: Any, path: str) -> Any:
        if not isinstance(hosts, list):
            return hosts
        lost = {p[len(path) :].partition("]")[0] for p in unsupported if p.startswith(f"{path}[")}
        return [
            h
            for i, h in enumerate(hosts)
            if not (isinstance(h, dict) and f"[{i}" in lost and not set(h) & set(ID_TYPES))
        ]

    if HOSTS in dhcp4:
        dhcp4[HOSTS] = kept(dhcp4[HOSTS], f"{prefix}{HOSTS}")
    for path, subnets in _subnet_lists(dhcp4, prefix):
        for i, subnet in enumerate(subnets):
            if isinstance(subnet, dict) and HOSTS in subnet:
                subnet[HOSTS] = kept(subnet[HOSTS], f"{path}[{i}].{HOSTS}")


def _drop_hosts(dhcp4: dict[str, Any]) -> None:
    """Take the reservations out of the documents (in place): they are host records."""
    dhcp4.pop(HOSTS, None)
    for _path, subnets in _subnet_lists(dhcp4, ""):
        for subnet in subnets:
            if isinstance(subnet, dict):
                subnet.pop(HOSTS, None)


def _dhcp4(store: LeaseStore) -> dict[str, Any]:
    """The stored documents as Kea's Dhcp4 map: the global document's keys, then the
    subnets by id and the shared networks by name."""
    _revision, documents = config_store(store).documents()
    dhcp4: dict[str, Any] = {}
    lists: dict[str, list[tuple[tuple[int, str], Any]]] = {SUBNET_DOC: [], NETWORK_DOC: []}
    for doc in documents:
        kind, _, key = doc.name.partition("/")
        if doc.name != GLOBAL_DOC and kind not in lists:
            print(
                f"note: {doc.name} not exported (Kea's Dhcp4 has no place for it)", file=sys.stderr
            )
            continue
        try:
            value = json.loads(doc.raw)
        except ValueError:
            raise ScopeCommandError(
                f"{doc.name}: is not JSON, so not exportable (etcdhcpctl check)"
            ) from None
        if doc.name == GLOBAL_DOC:
            if not isinstance(value, dict):
                raise ScopeCommandError(f"{doc.name}: is not a JSON object (etcdhcpctl check)")
            dhcp4.update(value)
        else:
            order = (int(key), "") if key.isdigit() else (-1, key)  # ids by number
            lists[kind].append((order, value))
    for kind, entries in lists.items():
        dhcp4[kind] = [value for _order, value in sorted(entries, key=lambda e: e[0])]
    _add_hosts(dhcp4, stored_hosts(store))
    for name, why in assemble(documents, None, {}).problems.items():
        print(f"note: {name} is refused by the servers, exported as stored: {why}", file=sys.stderr)
    return dhcp4


# ---- commands -------------------------------------------------------------------------------


def cmd_import_kea(store: LeaseStore, args: argparse.Namespace) -> int:
    kea = read_kea(read_source(args.file))
    for line in kea.notes:
        print(line, file=sys.stderr)
    verb = "left out" if args.skip_unsupported else "unsupported"
    for path in kea.unsupported:
        print(f"{verb}: {path}", file=sys.stderr)
    if kea.unsupported and not args.skip_unsupported:
        keys = f"{len(kea.unsupported)} key{'s' if len(kea.unsupported) > 1 else ''}"
        raise ScopeCommandError(
            f"refused, nothing written: {keys} etcdhcp does not support, listed above "
            "(--skip-unsupported leaves them out)"
        )
    hosts = kea.hosts.entries or kea.hosts.refusals
    if not kea.documents and not hosts:
        raise ScopeCommandError(
            f"{args.file}: nothing to import (no global key, subnet4, shared-networks entry "
            "or reservation)"
        )
    _revision, stored = config_store(store).documents()
    deletes: list[str] = []
    if args.replace:
        deletes = [d.name for d in stored if d.name not in kea.documents]
    if hosts:  # checked against the scopes as they will be, before anything is written
        view = _imported_view(stored, kea.documents, deletes)
        write_hosts(store, kea.hosts, must_exist=None, dry_run=True, view=view)
    names = write_documents(
        store, kea.documents, deletes, must_exist=None, dry_run=args.dry_run, skip_unchanged=True
    )
    host_plan, host_notes = (
        write_hosts(store, kea.hosts, must_exist=None, dry_run=args.dry_run, view=view)
        if hosts
        else (None, [])
    )
    for note in host_notes:
        print(f"note: {note}", file=sys.stderr)
    host_names = (
        []
        if host_plan is None
        else [record_name(*k) for batch in host_plan.batches for k in batch.hosts]
    )
    written = [n for n in names if n in kea.documents]
    removed = [n for n in names if n not in kea.documents]
    unchanged = sorted(set(kea.documents) - set(written))
    if args.json:
        shown = {n: kea.documents[n] for n in written}
        print_json(
            {
                "dry_run": args.dry_run,
                "written": shown,
                "removed": removed,
                "unchanged": unchanged,
                "hosts": host_names,
            }
        )
        return 0
    if args.dry_run:
        for name in written:
            print(f"put {name} {json.dumps(kea.documents[name])}")
        for name in removed:
            print(f"delete {name}")
    write, remove = ("would write", "would remove") if args.dry_run else ("wrote", "removed")
    print(f"{write} {len(written)}, {remove} {len(removed)}, {len(unchanged)} unchanged documents")
    if hosts:
        same = 0 if host_plan is None else len(host_plan.unchanged)
        print(f"{write} {len(host_names)} hosts, {same} unchanged")
    return 0


def _imported_view(
    stored: list[Document], documents: Mapping[str, Any], deletes: list[str]
) -> ScopeSet:
    """The scopes as they will be once `documents` are written and `deletes` deleted."""
    newest = max((d.revision for d in stored), default=0) + 1
    kept = [d for d in stored if d.name not in documents and d.name not in deletes]
    new = [Document(n, json.dumps(doc).encode(), newest) for n, doc in documents.items()]
    return assemble([*kept, *new], None, {}).scopes


def cmd_export_kea(store: LeaseStore, args: argparse.Namespace) -> int:
    text = json.dumps({"Dhcp4": _dhcp4(store)}, indent=2) + "\n"
    if args.file == "-":
        sys.stdout.write(text)
        return 0
    try:
        Path(args.file).write_text(text)
    except OSError as exc:
        raise ScopeCommandError(f"{args.file}: {exc.strerror}") from None
    return 0


def cmd_config_show(store: LeaseStore, args: argparse.Namespace) -> int:
    _revision, documents = config_store(store).documents()
    found = next((d for d in documents if d.name == GLOBAL_DOC), None)
    show_document(b"{}" if found is None else found.raw)
    return 0


def cmd_config_set(store: LeaseStore, args: argparse.Namespace) -> int:
    document = read_source(args.document)
    return report(
        args, "wrote", write_documents(store, {GLOBAL_DOC: document}, [], must_exist=None)
    )


def add_kea_commands(command: Any, commands: Any) -> None:
    """`import-kea`, `export-kea` and `config show|set`, on etcdhcpctl's parser."""
    imported = command(
        "import-kea",
        cmd_import_kea,
        "load a kea-dhcp4.conf: global level, subnets, shared networks",
    )
    imported.add_argument("file", metavar="FILE|-", help="a Kea configuration (comments allowed)")
    imported.add_argument("--dry-run", action="store_true", help="check and print, write nothing")
    imported.add_argument(
        "--replace", action="store_true", help="also remove the documents the file does not have"
    )
    imported.add_argument(
        "--skip-unsupported",
        action="store_true",
        help="leave out (and list) keys etcdhcp does not take",
    )
    exported = command(
        "export-kea", cmd_export_kea, "write the stored documents as a Kea Dhcp4 file"
    )
    exported.add_argument("file", nargs="?", default="-", metavar="FILE", help="default: stdout")
    config = commands.add_parser("config", help="the global document (global/dhcp4): show, set")
    sub = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    command("show", cmd_config_show, "print the global document", sub)
    edit = command("set", cmd_config_set, "replace the global document", sub)
    edit.add_argument("document", metavar="FILE|JSON|-", help="the Dhcp4 keys of the global level")
