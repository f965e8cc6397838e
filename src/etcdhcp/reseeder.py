"""Keeps the free pool whole: seeds the range, returns vacated and expired addresses.

A full pass (every --dhcp.monitor-interval) makes every range address that is in no
state free and reclaims leases past their absolute expiry. Between passes a watch
on the address keys notices leases, offers and quarantines that ended, so those
addresses are free again within about a second instead of a whole interval.

Expired leases are reclaimed as they come due: an index of when each lease may be
reclaimed (fed by a scan, then a watch on the lease records) wakes a thread at the
right moment, on every server, so an expired address is free again within a few
seconds of its absolute expiry (LeaseStore.expiry_skew, then RECLAIM_SPREAD at most).
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time

from etcdhcp import metrics
from etcdhcp.etcd import EtcdError
from etcdhcp.scopes import ScopeSet
from etcdhcp.store import ADDRESS_STATES, LeaseStore

log = logging.getLogger(__name__)

VACATED_BATCH_DELAY = 1.0  # seconds to gather vacated addresses into one check
POOL_GAUGE_PERIOD = 5.0
RECLAIM_SPREAD = 2.0  # seconds: each server waits its own random part of it past a due time
RECLAIM_RETRY = 2.0  # seconds before retrying a reclaim that etcd failed
EXPIRY_RECHECK = 5.0  # longest sleep of the reclaim thread (a stepped clock is noticed)


class ExpiryIndex:
    """When each lease may be reclaimed, soonest first: a heap of (time, address).

    A newer time for an address leaves its old entry in the heap; entries that no
    longer match are skipped when they surface, and the heap is rebuilt when they
    outnumber the live ones.
    """

    def __init__(self) -> None:
        self._when: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._when)

    def set(self, ip: str, when: float | None) -> bool:
        """`ip` may be reclaimed at `when` (None: never); True if that is now the soonest."""
        with self._lock:
            if when is None:
                self._when.pop(ip, None)
                return False
            self._when[ip] = when
            heapq.heappush(self._heap, (when, ip))
            if len(self._heap) > 2 * len(self._when) + 64:
                self._heap = [(t, a) for a, t in self._when.items()]
                heapq.heapify(self._heap)
            return self._heap[0][0] >= when

    def replace(self, when: dict[str, float]) -> None:
        """Forget everything known and start again from `when` (a fresh scan)."""
        with self._lock:
            self._when = dict(when)
            self._heap = [(t, a) for a, t in self._when.items()]
            heapq.heapify(self._heap)

    def retry(self, ips: list[str], when: float) -> None:
        """Try `ips` again at `when`, unless a newer time was set for one meanwhile."""
        with self._lock:
            for ip in ips:
                if ip not in self._when:
                    self._when[ip] = when
                    heapq.heappush(self._heap, (when, ip))

    def due(self, now: float) -> list[str]:
        """Take out every address whose time is before `now` (as LeaseStore judges it)."""
        taken = []
        with self._lock:
            while self._heap and self._heap[0][0] < now:
                when, ip = heapq.heappop(self._heap)
                if self._when.get(ip) == when:
                    del self._when[ip]
                    taken.append(ip)
        return taken

    def next_time(self) -> float | None:
        """The soonest time in the index, or None when it is empty."""
        with self._lock:
            while self._heap and self._when.get(self._heap[0][1]) != self._heap[0][0]:
                heapq.heappop(self._heap)
            return self._heap[0][0] if self._heap else None


class Reseeder:
    def __init__(self, store: LeaseStore, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._stopping = threading.Event()
        self._vacated: set[str] = set()
        self._vacated_lock = threading.Lock()
        self._cancel_watch: object = None
        self.expiry = ExpiryIndex()
        self._expiry_changed = threading.Event()
        self._cancel_expiry_watch: object = None
        # Servers racing for one reclaim is harmless (guarded), but this server's own
        # delay lets the first one's delete reach the others' watches before they try.
        self._spread = random.uniform(0.0, RECLAIM_SPREAD)
        self._scope_changes: list[tuple[ScopeSet, ScopeSet]] = []
        self._gauge_period = POOL_GAUGE_PERIOD
        self._gauge_scopes: set[str] = set()  # the scopes the pool gauges have series for
        self._threads = [
            threading.Thread(target=self._maintain, name="reseeder", daemon=True),
            threading.Thread(target=self._watch, name="reseeder-watch", daemon=True),
            threading.Thread(target=self._watch_expiries, name="expiry-watch", daemon=True),
            threading.Thread(target=self._reclaim_when_due, name="expiry", daemon=True),
        ]

    def full_pass(self) -> None:
        """Seed the range and reclaim expired leases now (also run once before serving)."""
        started = time.monotonic()
        added = self.store.seed()
        reclaimed = self.store.reclaim_expired()
        log.info(
            "pool pass: %d addresses made free, %d expired leases reclaimed (%.2fs)",
            added,
            reclaimed,
            time.monotonic() - started,
        )
        self.update_gauges()

    def update_gauges(self) -> None:
        """Set the pool gauges by scope and state; the scan's cost sets the next period."""
        started = time.monotonic()
        counts = self.store.pool_counts(self.store.scopes())
        for gone in self._gauge_scopes - counts.keys():  # a removed scope's series go with it
            for state in ADDRESS_STATES:
                metrics.POOL_ADDRESSES.remove(gone, state)
        for label, states in counts.items():  # set in place: recreating 5 series per scope
            for state, count in states.items():  # costs seconds at 10,000 scopes
                metrics.POOL_ADDRESSES.labels(label, state).set(count)
        self._gauge_scopes = set(counts)
        self._gauge_period = max(POOL_GAUGE_PERIOD, 20 * (time.monotonic() - started))

    def scopes_changed(self, old: ScopeSet, new: ScopeSet) -> None:
        """A LiveScopes listener: the maintenance thread seeds and phases out (soon)."""
        with self._vacated_lock:
            self._scope_changes.append((old, new))

    def _apply_scope_changes(self) -> None:
        """Seed the pools a change added; delete the free keys of the addresses it removed
        (leases there are kept: they end as usual and are not returned to the pool)."""
        with self._vacated_lock:
            changes, self._scope_changes = self._scope_changes, []
        if not changes:
            return
        old, new = changes[0][0], changes[-1][1]
        kept = set(new.scopes)
        gone = {
            ip
            for scope in old.scopes
            if scope not in kept
            for p in scope.pools
            for ip in p.addresses()
        }
        removed = self.store.remove_free(sorted(ip for ip in gone if not new.in_pools(ip)))
        added = self.store.seed([s for s in new.scopes if s not in set(old.scopes)])
        log.info("scopes changed: %d addresses made free, %d phased out", added, len(removed))
        self.update_gauges()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._expiry_changed.set()
        for cancel in (self._cancel_watch, self._cancel_expiry_watch):
            if callable(cancel):
                cancel()
        for thread in self._threads:
            thread.join(timeout)

    def _maintain(self) -> None:
        next_pass = time.monotonic() + self.interval
        next_gauges = time.monotonic() + POOL_GAUGE_PERIOD
        while not self._stopping.wait(VACATED_BATCH_DELAY):
            try:
                with self._vacated_lock:
                    vacated, self._vacated = self._vacated, set()
                if vacated:
                    freed = self.store.free_if_vacant(vacated)
                    if freed:
                        log.debug("returned %d vacated addresses to the pool", freed)
                self._apply_scope_changes()
                now = time.monotonic()
                if now >= next_pass:
                    next_pass = now + self.interval
                    self.full_pass()
                elif now >= next_gauges:
                    next_gauges = now + self._gauge_period
                    self.update_gauges()
            except EtcdError as exc:
                log.warning("pool maintenance postponed: %s", exc)
            except Exception:  # a bug here must not stop the pool from refilling
                log.exception("pool maintenance failed")

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                addresses, self._cancel_watch = self.store.watch_vacated()
                backoff = 1.0
                for ip in addresses:
                    with self._vacated_lock:
                        self._vacated.add(ip)
            except Exception as exc:  # the watch stream breaks in many ways; re-watch
                if self._stopping.is_set():
                    return
                log.warning("watch on address keys broke (%s); re-watching in %.0fs", exc, backoff)
            # After a break, a full check catches whatever the watch missed meanwhile.
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)
            try:
                self.store.seed()
            except EtcdError as exc:
                log.debug("seed after watch break failed: %s", exc)

    # ---- expiry: reclaim each lease as it comes due

    def _watch_expiries(self) -> None:
        """Keeps the expiry index whole: a scan, then a watch from the scan's revision."""
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                due, revision = self.store.expiries()
                self.expiry.replace({ip: when + self._spread for ip, when in due.items()})
                self._expiry_changed.set()
                changes, cancel = self.store.watch_expiries(revision)
                self._cancel_expiry_watch = cancel
                if self._stopping.is_set():  # stop() may have missed the new watch
                    cancel()
                backoff = 1.0
                for ip, when in changes:
                    if self.expiry.set(ip, None if when is None else when + self._spread):
                        self._expiry_changed.set()
            except Exception as exc:  # the watch stream breaks in many ways; scan again
                if self._stopping.is_set():
                    return
                log.warning("watch on lease records broke (%s); again in %.0fs", exc, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)

    def _reclaim_when_due(self) -> None:
        """Sleeps until the soonest lease is due, reclaims what is due, and again."""
        while not self._stopping.is_set():
            self._expiry_changed.clear()
            now = self.store.now()
            due = self.expiry.due(now)
            if due:
                try:
                    reclaimed = self.store.reclaim_due(due)
                    log.debug("%d of %d due leases reclaimed", reclaimed, len(due))
                except EtcdError as exc:
                    log.warning("reclaiming %d expired leases postponed: %s", len(due), exc)
                    self.expiry.retry(due, now + RECLAIM_RETRY)
                except Exception:  # a bug must not stop the thread; the full pass catches up
                    log.exception("reclaiming expired leases failed")
                continue
            soonest = self.expiry.next_time()
            wait = EXPIRY_RECHECK if soonest is None else min(soonest - now, EXPIRY_RECHECK)
            self._expiry_changed.wait(max(wait, 0.01))
