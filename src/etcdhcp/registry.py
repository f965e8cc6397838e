"""The server registry: every live server keeps `P servers::<server-ip>` alive in etcd,
one key per served interface (by that interface's server identifier).

The keys are bound to an etcd lease of its own (REGISTRY_TTL seconds) that a thread
refreshes every few seconds, so it vanishes on its own about REGISTRY_TTL seconds
after the server dies, and at once when the server shuts down cleanly (the lease is
revoked). `/readyz` is not ready while our own key is not confirmed, and the same
thread sets the `etcdhcp_servers_live` gauge from what it reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from etcdhcp import metrics
from etcdhcp.etcd import EtcdError
from etcdhcp.store import LeaseStore, ServerInfo

log = logging.getLogger(__name__)

REGISTRY_TTL = 10  # seconds a dead server's key outlives its last keepalive


class ServerRegistry:
    """Registers one server and keeps the registration alive from a daemon thread."""

    def __init__(
        self,
        store: LeaseStore,
        me: ServerInfo,
        ttl: int = REGISTRY_TTL,
        also: Sequence[ServerInfo] = (),
    ) -> None:
        """`also`: the records of the server's other interfaces, kept on the same lease."""
        self.store = store
        self.me = me
        self.records = (me, *also)
        self.ttl = ttl
        self.period = ttl / 4  # a keepalive may fail twice before the lease runs out
        self._lease: int | None = None
        self._confirmed: float | None = None  # monotonic time our key was last seen alive
        self._problem = "not registered yet"
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="registry", daemon=True)

    def start(self) -> None:
        """Register now (errors are retried by the thread) and keep the key alive."""
        self._beat_logged()
        self._thread.start()

    def health(self) -> tuple[bool, str]:
        """(registered, why not): our key was confirmed within the last TTL."""
        confirmed = self._confirmed
        if confirmed is None:
            return False, f"not registered in etcd: {self._problem}"
        age = time.monotonic() - confirmed
        if age > self.ttl:
            return False, f"registration in etcd not confirmed for {age:.0f}s: {self._problem}"
        return True, "registered"

    def stop(self) -> None:
        """Stop the keepalives and delete our key (by revoking its lease), best effort."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(self.period + 5)
        lease, self._lease = self._lease, None
        if lease is None:
            return
        try:
            self.store.etcd.revoke(lease)
            log.info("unregistered %s from etcd", self._names())
        except EtcdError as exc:
            log.warning("could not unregister (the key expires within %ds): %s", self.ttl, exc)

    def _run(self) -> None:
        while not self._stopping.wait(self.period):
            self._beat_logged()

    def _beat_logged(self) -> None:
        try:
            self._beat()
        except EtcdError as exc:
            self._problem = str(exc)  # etcd.py logs the outage itself, rate-limited
        except Exception:  # a bug must not end the keepalives
            log.exception("registry keepalive failed")

    def _names(self, records: Sequence[ServerInfo] | None = None) -> str:
        return ", ".join(r.server_ip for r in records or self.records)

    def _beat(self) -> None:
        """Refresh our lease (a new one if it ran out), make sure our keys are there, count."""
        if self._lease is not None and self.store.etcd.keepalive(self._lease) <= 0:
            log.warning("registry lease of %s ran out; registering again", self._names())
            self._lease = None
        if self._lease is None:
            self._lease = self.store.etcd.grant(self.ttl)
            for record in self.records:
                self.store.register(record, self._lease)
            log.info("registered %s in etcd (lease TTL %ds)", self._names(), self.ttl)
        servers = self.store.servers()
        present = {s.server_ip for s in servers}
        missing = [r for r in self.records if r.server_ip not in present]
        if missing:
            # Deleted by hand, or overwritten and then lost by a server with our address.
            log.warning("registry key of %s was gone; writing it again", self._names(missing))
            for record in missing:
                self.store.register(record, self._lease)
            servers = self.store.servers()
        # A server with several interfaces has a key for each: count servers, not keys
        # (a record written by hand, without a pid, counts alone).
        metrics.SERVERS_LIVE.set(
            len({(s.hostname, s.pid, s.started) if s.pid else s.server_ip for s in servers})
        )
        self._confirmed = time.monotonic()
