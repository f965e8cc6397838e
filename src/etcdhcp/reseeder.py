"""Keeps the free pool whole: seeds the range, returns vacated and expired addresses.

A full pass (every --dhcp.monitor-interval) makes every range address that is in no
state free and reclaims leases past their absolute expiry. Between passes a watch
on the address keys notices leases, offers and quarantines that ended, so those
addresses are free again within about a second instead of a whole interval.
"""

from __future__ import annotations

import logging
import threading
import time

from etcdhcp import metrics
from etcdhcp.etcd import EtcdError
from etcdhcp.store import LeaseStore

log = logging.getLogger(__name__)

VACATED_BATCH_DELAY = 1.0  # seconds to gather vacated addresses into one check
POOL_GAUGE_PERIOD = 5.0


class Reseeder:
    def __init__(self, store: LeaseStore, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._stopping = threading.Event()
        self._vacated: set[str] = set()
        self._vacated_lock = threading.Lock()
        self._cancel_watch: object = None
        self._threads = [
            threading.Thread(target=self._maintain, name="reseeder", daemon=True),
            threading.Thread(target=self._watch, name="reseeder-watch", daemon=True),
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
        for state, count in self.store.counts().items():
            metrics.POOL_ADDRESSES.labels(state=state).set(count)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        cancel = self._cancel_watch
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
                now = time.monotonic()
                if now >= next_pass:
                    next_pass = now + self.interval
                    self.full_pass()
                elif now >= next_gauges:
                    next_gauges = now + POOL_GAUGE_PERIOD
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
