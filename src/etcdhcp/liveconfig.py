"""The scopes every stage serves from, kept current with etcd by a watch.

One immutable `ScopeSet` is served at a time; a change to any scope document in
etcd rebuilds it (unchanged documents are not parsed again) and swaps it in with
one assignment, so a packet being answered keeps the view it started with and no
lock is taken per packet. A document that does not validate changes nothing: the
previous version of it stays served, one log line says why, and
`etcdhcp_config_documents_rejected` counts it until it is fixed.

The global document (globalconfig.py) is read with the scopes and swapped with
them. The flags' scope (scopes.flag_scope) is served beside etcd's documents when
the range flags were given; when they were not, it is served only while etcd holds
no scope document, as the original served its default range.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from etcdhcp import metrics
from etcdhcp.follow import Follow
from etcdhcp.globalconfig import GLOBAL_DOC, assemble
from etcdhcp.scopes import DEFAULTS, Assembly, Defaults, Document, Scope, ScopeSet
from etcdhcp.store import ConfigStore

log = logging.getLogger(__name__)

Listener = Callable[[ScopeSet, ScopeSet], None]  # (old view, new view)


class LiveScopes:
    """The current `ScopeSet`; call it (`scopes()`) for the view to use now."""

    def __init__(
        self,
        store: ConfigStore,
        flag: Scope | None,
        *,
        flag_always: bool,
        defaults: Defaults = DEFAULTS,
        reports: bool = True,
    ) -> None:
        """`reports` False: another process (the main one) logs refused documents."""
        self.store = store
        self.reports = reports
        self.flag = flag
        self.flag_always = flag_always
        self.defaults = defaults
        self.current = ScopeSet([flag] if flag else [])
        self.revision = 0  # the etcd revision the view was read at (the watch goes on from it)
        # The revision of the newest change to the documents served: the same on every
        # server that saw it, whatever else etcd wrote meanwhile (etcdhcp_config_revision).
        self.changed = 0
        self.problems: dict[str, str] = {}
        self._accepted: dict = {}
        self._listeners: list[Listener] = []
        self._follow = Follow(
            "scope documents", log, store.watch, lambda: self.revision, self._changed, self.load
        )
        self._thread = threading.Thread(target=self._follow.run, name="scopes", daemon=True)

    def __call__(self) -> ScopeSet:
        return self.current

    def listen(self, listener: Listener) -> None:
        """Call `listener(old, new)` after every swap (on the watch thread)."""
        self._listeners.append(listener)

    def load(self) -> None:
        """Read every document and serve the result (start-up, and after a broken watch)."""
        revision, documents = self.store.documents()
        self._apply(revision, documents)

    def _apply(self, revision: int, documents: list[Document]) -> None:
        scoped = any(d.name != GLOBAL_DOC for d in documents)
        flag = self.flag if (self.flag_always or not scoped) else None
        built: Assembly = assemble(documents, flag, self._accepted, self.defaults)
        for name, why in built.problems.items():
            if self.problems.get(name) != why and self.reports:
                log.error("config document %s refused, its previous version kept: %s", name, why)
        for name in self.problems.keys() - built.problems.keys() if self.reports else ():
            log.info("config document %s is accepted again", name)
        old, self.current = self.current, built.scopes
        self._accepted, self.problems, self.revision = built.accepted, built.problems, revision
        metrics.SCOPES.set(len(built.scopes))
        metrics.CONFIG_REJECTED.set(len(built.problems))
        self.changed = max([self.changed, *(d.revision for d in documents)])
        metrics.CONFIG_REVISION.set(self.changed)
        if old.scopes != built.scopes.scopes:
            log.info("serving %d scopes (config revision %d)", len(built.scopes), self.changed)
        for listener in self._listeners:
            try:
                listener(old, built.scopes)
            except Exception:  # a listener's bug must not stop the view from following etcd
                log.exception("a scope listener failed")

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._follow.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _changed(self, changed: int) -> None:
        """A document changed at revision `changed`: read them all again, once per burst."""
        self.changed = max(self.changed, changed)  # a deletion has no document
        if changed <= self.revision:  # already read: one re-read covers a burst
            metrics.CONFIG_REVISION.set(self.changed)
            return
        started = time.monotonic()
        self.load()
        log.debug("scope view rebuilt in %.3fs", time.monotonic() - started)
