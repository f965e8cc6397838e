"""The host records every stage looks hosts up in, kept current with etcd by a watch.

One immutable `HostIndex` is served at a time (call the LiveHosts for it), so a packet
keeps the version it started with and no lock is taken per packet, as for the scopes
(liveconfig.py). Finding a packet's host costs no etcd round trip: the index is read
once at start and then follows a watch on `P hosts::`, which delivers every change in
revision order. A change is applied to a copy of the index (dicts copied at C speed,
a few milliseconds for 100,000 hosts), and the changes that arrive together are applied
together: a bulk import of thousands of transactions makes tens of copies, not
thousands. A record that does not validate changes nothing: its previous version
stays served, one log line says why, and `etcdhcp_host_records_rejected` counts it
until it is fixed or removed.

Two threads: one reads the watch and queues what it sees, one applies the queue. When
the watch breaks, everything is read again and served as one version.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from etcdhcp import globalconfig, metrics
from etcdhcp.follow import Follow
from etcdhcp.hosts import Host, HostIndex, HostKey, parse_record, parse_scope_id, record_name
from etcdhcp.optiondefs import OptionDefs
from etcdhcp.scopes import STANDARD_DEFS, ScopeError, ScopeSet
from etcdhcp.store import HostRecord, HostStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Reload:
    """Everything read again at `revision` (start, or after the watch broke)."""

    revision: int
    records: list[HostRecord]


_REPARSE = object()  # the option definitions changed: parse every record again
_STOP = object()


class LiveHosts:
    """The current `HostIndex`; call it (`hosts()`) for the version to use now.

    `scopes` is the served scope view (a LiveScopes): records are parsed with its
    global option definitions; `scopes_changed` (a LiveScopes listener) parses them
    again when those change.
    """

    def __init__(
        self,
        store: HostStore,
        scopes: Callable[[], ScopeSet] | None = None,
        *,
        reports: bool = True,
    ) -> None:
        """`reports` False: another process (the main one) logs refused records."""
        self.store = store
        self.reports = reports
        self._scopes = scopes
        self.current = HostIndex()
        self.revision = 0  # the etcd revision the served version has seen
        self.problems: dict[str, str] = {}  # record name -> why it is refused
        self._refused: dict[str, HostRecord] = {}  # parsed again when the definitions change
        self._option_defs: Any = None  # the global document's option-def the records used
        self._watched = 0  # the revision the watch goes on from
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._follow = Follow(
            "host records", log, store.watch, lambda: self._watched, self._queued, self._reread
        )
        self._threads = [
            threading.Thread(target=self._follow.run, name="hosts-watch", daemon=True),
            threading.Thread(target=self._apply_queue, name="hosts", daemon=True),
        ]

    def __call__(self) -> HostIndex:
        return self.current

    def _defs(self) -> OptionDefs:
        if self._scopes is None:
            return STANDARD_DEFS
        return globalconfig.of(self._scopes()).defs

    def _defs_document(self) -> Any:
        """The global document's `option-def`, as written: what `_defs` was built from."""
        return (
            None
            if self._scopes is None
            else globalconfig.of(self._scopes()).document.get("option-def")
        )

    def load(self) -> None:
        """Read every record and serve them (start-up; before `start`)."""
        revision, records = self.store.documents()
        self._option_defs = self._defs_document()
        self._apply([_Reload(revision, records)])
        self._watched = revision

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._follow.stop()
        self._queue.put(_STOP)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def scopes_changed(self, old: ScopeSet, new: ScopeSet) -> None:
        """A LiveScopes listener: parse every record again when the option definitions
        changed (a record may use one, or have been refused for want of it)."""
        if globalconfig.of(new).document.get("option-def") != self._option_defs:
            self._queue.put(_REPARSE)

    # ---- the watch thread

    def _queued(self, record: HostRecord) -> None:
        self._queue.put(record)
        self._watched = record.revision

    def _reread(self) -> None:
        """Everything read again (the watch broke), served as one version."""
        revision, records = self.store.documents()
        self._queue.put(_Reload(revision, records))
        self._watched = revision

    # ---- the applying thread

    def _apply_queue(self) -> None:
        while True:
            items = [self._queue.get()]
            while True:  # whatever else is there already goes into the same version
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if any(item is _STOP for item in items):
                return
            try:
                self._apply(items)
            except Exception:  # a bug here must not stop the index from following etcd
                log.exception("applying host record changes failed")

    def _apply(self, items: Iterable[Any]) -> None:
        """Serve the changes in `items` as one new version of the index.

        `changes` holds this version's hosts by key (None: removed) until they are
        applied to a copy of the index, once; a refused record changes nothing, so the
        version served before stays."""
        base, changes = self.current, {}
        for item in items:
            if isinstance(item, _Reload):
                present = {_name(record) for record in item.records}
                for name in [*self.problems]:
                    if name not in present:
                        self._forget(name)
                fresh: dict[HostKey, Host] = {}
                for record in item.records:
                    key, host = _key(record), self._parse(record)
                    kept = _current(base, changes, key) if host is None else host
                    if key is not None and kept is not None:
                        fresh[key] = kept
                base, changes = HostIndex(fresh.values()), {}
                self.revision = item.revision
            elif item is _REPARSE:
                self._option_defs = self._defs_document()
                base, changes = _applied(base, changes), {}
                again = [
                    HostRecord(str(h.scope_id), h.id_type, h.identifier, _raw(h)) for h in base
                ]
                for record in [*again, *self._refused.values()]:
                    host = self._parse(record)
                    if host is not None:
                        changes[host.key] = host
            else:
                key = _key(item)
                if item.raw is None:
                    self._forget(_name(item))
                    if key is not None:
                        changes[key] = None
                elif (host := self._parse(item)) is not None:
                    changes[host.key] = host
                self.revision = max(self.revision, item.revision)
        self.current = _applied(base, changes)
        metrics.HOSTS.set(len(self.current))
        metrics.HOST_RECORDS_REJECTED.set(len(self.problems))

    def _forget(self, name: str) -> None:
        self._refused.pop(name, None)
        self.problems.pop(name, None)

    def _parse(self, record: HostRecord) -> Host | None:
        """The host of a stored record, or None when it is refused (a reason logged once;
        the record kept, to be parsed again when the option definitions change)."""
        assert record.raw is not None
        name = _name(record)
        try:
            host = parse_record(
                record.scope, record.id_type, record.identifier, record.raw, self._defs()
            )
        except ScopeError as exc:
            why = str(exc)
            if self.reports and self.problems.get(name) != why:
                log.error("host record %s refused (a previous version stays served): %s", name, why)
            self.problems[name] = why
            self._refused[name] = record
            return None
        self._refused.pop(name, None)
        if self.problems.pop(name, None) is not None and self.reports:
            log.info("host record %s is accepted again", name)
        return host


def _name(record: HostRecord) -> str:
    return record_name(record.scope, record.id_type, record.identifier)


def _key(record: HostRecord) -> HostKey | None:
    """The index key of a record's key; None for a key no host can have."""
    try:
        scope = parse_scope_id(record.scope, "")
    except ScopeError:
        return None
    return scope, record.id_type, record.identifier


def _current(
    base: HostIndex, changes: dict[HostKey, Host | None], key: HostKey | None
) -> Host | None:
    """The host served for `key` once `changes` are applied to `base`."""
    if key is None:
        return None
    return changes[key] if key in changes else base.lookup(*key)


def _applied(base: HostIndex, changes: dict[HostKey, Host | None]) -> HostIndex:
    if not changes:
        return base
    removed = [old for key, host in changes.items() if host is None and (old := base.lookup(*key))]
    return base.changed([host for host in changes.values() if host is not None], removed)


def _raw(host: Host) -> bytes:
    """A served host's record again (its document is the stored record, normalised)."""
    return json.dumps(host.document).encode()
