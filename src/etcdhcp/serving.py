"""One serving unit: an etcd client, the live scopes, the lease store, the pipeline and
the transport.

The main process builds one; with --dhcp.processes N, each of the N-1 extra serving
processes (processes.py) builds its own, joined to the main one's fanout group.
"""

from __future__ import annotations

import logging
import threading

from etcdhcp.config import Config, discover_etcd, etcd_credentials
from etcdhcp.etcd import Etcd, EtcdAccessDenied, EtcdError
from etcdhcp.liveconfig import LiveScopes
from etcdhcp.pipeline import Pipeline
from etcdhcp.scopes import Defaults, Link
from etcdhcp.store import ConfigStore, LeaseStore
from etcdhcp.transport import Transport

log = logging.getLogger(__name__)

MAX_CONNECT_BACKOFF = 30.0
SHUTDOWN_GRACE = 5.0  # seconds in-flight requests get to finish


class Fatal(Exception):
    """A start-up problem that ends the daemon with one log line and exit status 1."""


class Stopped(Exception):
    """A stop (SIGTERM, SIGINT) arrived during start-up: a clean exit, status 0."""


class Serving:
    """Connect to etcd, open the store, then serve DHCP on the configured interface."""

    def __init__(self, config: Config, stop_requested: threading.Event, main: bool = True) -> None:
        """`main` False: an extra serving process (the main one reports refused scopes)."""
        self.config = config
        self.main = main
        self.stop_requested = stop_requested
        self.etcd: Etcd | None = None
        self.store: LeaseStore | None = None
        self.scopes: LiveScopes | None = None
        self.transport: Transport | None = None

    def connect(self, endpoints: list[str]) -> LeaseStore:
        """Wait for etcd (with backoff) and open the lease store; Fatal if it refuses us."""
        self.etcd = self._connect(endpoints)
        cfg = self.config
        flag = cfg.flag_scope()
        # Without range flags the default range is a scope only where it fits the
        # server's subnet (config.py checked it there); elsewhere etcd's scopes alone.
        fits = all(flag.contains(end) for p in flag.pools for end in (p.first, p.last))
        self.scopes = LiveScopes(
            ConfigStore(self.etcd, cfg.etcd_prefix),
            flag if cfg.range_given or fits else None,
            flag_always=cfg.range_given,
            defaults=Defaults(valid_lifetime=flag.valid_lifetime),
            reports=self.main,
        )
        self.scopes.load()
        self.scopes.start()
        self.store = LeaseStore(
            self.etcd,
            prefix=cfg.etcd_prefix,
            scopes=self.scopes,
            offer_hold=cfg.offer_hold,
            decline_time=cfg.decline_time,
            server_id=str(cfg.server_ip),
        )
        return self.store

    def _connect(self, endpoints: list[str]) -> Etcd:
        cfg = self.config
        credentials = etcd_credentials(cfg)
        # Given endpoints win over SRV discovery; discovered ones are looked up again
        # whenever all of them fail.
        rediscover = self._discover if cfg.etcd_srv and not endpoints else None
        etcd: Etcd | None = None
        backoff = 0.5
        while True:
            try:
                if etcd is None:
                    found = endpoints or self._discover()
                    etcd = Etcd(found, cfg.request_timeout, credentials, rediscover)
                etcd.status()
                etcd.check_access(cfg.etcd_prefix)
                log.info("connected to etcd at %s", ", ".join(etcd.endpoints))
                return etcd
            except EtcdAccessDenied as exc:
                # Wrong credentials or role, untrusted certificate: waiting cannot help.
                hint = "check --etcd.auth.*"
                if "permission denied" in str(exc):
                    hint = f"the etcd user's role needs readwrite on the prefix {cfg.etcd_prefix!r}"
                raise Fatal(f"etcd refuses etcdhcp: {exc} ({hint})") from exc
            except EtcdError as exc:
                log.warning("etcd not reachable yet (%s); retrying in %.1fs", exc, backoff)
            if self.stop_requested.wait(backoff):
                raise Stopped("stopped while waiting for etcd")
            backoff = min(backoff * 2, MAX_CONNECT_BACKOFF)

    def _discover(self) -> list[str]:
        """The endpoints named by the SRV records of --etcd.discovery.srv."""
        cfg = self.config
        endpoints = discover_etcd(cfg)
        log.info("SRV %s names etcd at %s", cfg.etcd_srv, ", ".join(endpoints))
        return endpoints

    def serve(self, fanout: int | None = None) -> Transport:
        """Bind the DHCP sockets and start the workers; `fanout`: the group to join."""
        cfg = self.config
        assert self.store is not None, "connect() first"
        assert self.scopes is not None
        pipeline = Pipeline(self.store, self.scopes)
        link = Link(cfg.server_if, str(cfg.server_ip))
        try:
            transport = Transport(
                cfg.server_if,
                handle=lambda frame: pipeline.handle(frame, link, transport),
                workers=cfg.workers,
                queue_size=cfg.queue_size,
                deadline=cfg.request_timeout,
                client_rate=cfg.client_rate,
                client_burst=cfg.client_burst,
                fanout=fanout,
            )
        except PermissionError as exc:
            raise Fatal(
                f"cannot open raw sockets on {cfg.server_if} (needs CAP_NET_RAW and "
                f"CAP_NET_BIND_SERVICE): {exc}"
            ) from exc
        except OSError as exc:
            raise Fatal(f"cannot serve on {cfg.server_if}: {exc}") from exc
        transport.start()
        self.transport = transport
        return transport

    def stop(self, grace: float) -> None:
        """Stop receiving; let in-flight requests finish, for at most `grace` seconds."""
        if self.transport:
            self.transport.stop(grace)

    def close(self) -> None:
        """Close the etcd connection (after everything that uses the store has stopped)."""
        if self.scopes:
            self.scopes.stop()
        if self.etcd:
            self.etcd.close()
