"""The server registry: every live server keeps `P servers::<server-ip>` alive in etcd.

The key is bound to an etcd lease of its own (REGISTRY_TTL seconds) that a thread
refreshes every few seconds, so it vanishes on its own about REGISTRY_TTL seconds
after the server dies, and at once when the server shuts down cleanly (the lease is
revoked). `/readyz` is not ready while our own key is not confirmed, and the same
thread sets the `etcdhcp_servers_live` gauge from what it reads.
"""

from __future__ import annotations

import logging
import threading
import time

from etcdhcp import metrics
from etcdhcp.etcd import EtcdError
from etcdhcp.store import LeaseStore, ServerInfo

log = logging.getLogger(__name__)

REGISTRY_TTL = 10  # seconds a dead server's key outlives its last keepalive


class ServerRegistry:
    """Registers one server and keeps the registration alive from a daemon thread."""

    def __init__(self, store: LeaseStore, me: ServerInfo, ttl: int = REGISTRY_TTL) -> None:
        self.store = store
        self.me = me
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
            log.info("unregistered %s from etcd", self.me.server_ip)
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

    def _beat(self) -> None:
        """Refresh our lease (a new one if it ran out), make sure our key is there, count."""
        if self._lease is not None and self.store.etcd.keepalive(self._lease) <= 0:
            log.warning("registry lease of %s ran out; registering again", self.me.server_ip)
            self._lease = None
        if self._lease is None:
            self._lease = self.store.etcd.grant(self.ttl)
            self.store.register(self.me, self._lease)
            log.info("registered %s in etcd (lease TTL %ds)", self.me.server_ip, self.ttl)
        servers = self.store.servers()
        if not any(s.server_ip == self.me.server_ip for s in servers):
            # Deleted by hand, or overwritten and then lost by a server with our address.
            log.warning("registry key of %s was gone; writing it again", self.me.server_ip)
            self.store.register(self.me, self._lease)
            servers = self.store.servers()
        metrics.SERVERS_LIVE.set(len(servers))
        self._confirmed = time.monotonic()
