"""One serving unit: an etcd client, the live scopes and host records, the lease store,
the pipeline and one transport per served interface.

The main process builds one; with --dhcp.processes N, each of the N-1 extra serving
processes (processes.py) builds its own, each transport joined to the main one's fanout
group of its interface. A frame is handled with the `Link` of the interface it came in
on (its name and server identifier), and its reply leaves by that interface.
"""

from __future__ import annotations

import logging
import threading

from etcdhcp.config import Config, ServedInterface, discover_etcd, etcd_credentials
from etcdhcp.etcd import Etcd, EtcdAccessDenied, EtcdError
from etcdhcp.liveconfig import LiveScopes
from etcdhcp.livehosts import LiveHosts
from etcdhcp.pipeline import Pipeline
from etcdhcp.scopes import Defaults, Link
from etcdhcp.store import ConfigStore, HostStore, LeaseStore
from etcdhcp.transport import Transport

log = logging.getLogger(__name__)

MAX_CONNECT_BACKOFF = 30.0
SHUTDOWN_GRACE = 5.0  # seconds in-flight requests get to finish


class Fatal(Exception):
    """A start-up problem that ends the daemon with one log line and exit status 1."""


class Stopped(Exception):
    """A stop (SIGTERM, SIGINT) arrived during start-up: a clean exit, status 0."""


class Serving:
    """Connect to etcd, open the store, then serve DHCP on the configured interfaces."""

    def __init__(self, config: Config, stop_requested: threading.Event, main: bool = True) -> None:
        """`main` False: an extra serving process (the main one reports refused scopes)."""
        self.config = config
        self.main = main
        self.stop_requested = stop_requested
        self.etcd: Etcd | None = None
        self.store: LeaseStore | None = None
        self.scopes: LiveScopes | None = None
        self.hosts: LiveHosts | None = None
        self.transports: list[Transport] = []  # one per interface, once all are bound

    def connect(self, endpoints: list[str]) -> LeaseStore:
        """Wait for etcd (with backoff) and open the lease store; Fatal if it refuses us."""
        self.etcd = self._connect(endpoints)
        cfg = self.config
        self.scopes = LiveScopes(
            ConfigStore(self.etcd, cfg.etcd_prefix),
            cfg.flag_scope(),
            flag_always=cfg.range_given,
            # config.py keeps the lease time within what option 51 can say.
            defaults=Defaults(valid_lifetime=int(cfg.lease_time), options=cfg.global_options),
            reports=self.main,
        )
        self.scopes.load()
        self.hosts = LiveHosts(
            HostStore(self.etcd, cfg.etcd_prefix), self.scopes, reports=self.main
        )
        self.hosts.load()
        self.scopes.listen(self.hosts.scopes_changed)
        self.scopes.start()
        self.hosts.start()
        self.store = LeaseStore(
            self.etcd,
            prefix=cfg.etcd_prefix,
            scopes=self.scopes,
            offer_hold=cfg.offer_hold,
            decline_time=cfg.decline_time,
            server_id=str(cfg.interfaces[0].server_ip),
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

    def serve(self, fanout: int | None = None) -> list[Transport]:
        """Bind every interface's DHCP sockets, then start their workers; `fanout`: the
        group of the first interface, the i-th joining `fanout + i` (a fanout group
        spans one interface)."""
        assert self.store is not None, "connect() first"
        assert self.scopes is not None and self.hosts is not None
        pipeline = Pipeline(self.store, self.scopes, self.hosts)
        transports: list[Transport] = []
        try:
            for index, served in enumerate(self.config.interfaces):
                group = None if fanout is None else (fanout + index) & 0xFFFF
                transports.append(self._bind(pipeline, served, group))
        except Fatal:
            for transport in transports:
                transport.stop(0.0)
            raise
        for transport in transports:
            transport.start()
        self.transports = transports
        return transports

    def _bind(self, pipeline: Pipeline, served: ServedInterface, fanout: int | None) -> Transport:
        cfg = self.config
        link = Link(served.name, str(served.server_ip))
        try:
            transport = Transport(
                served.name,
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
                f"cannot open raw sockets on {served.name} (needs CAP_NET_RAW and "
                f"CAP_NET_BIND_SERVICE): {exc}"
            ) from exc
        except OSError as exc:
            raise Fatal(f"cannot serve on {served.name}: {exc}") from exc
        return transport

    def alive(self, within: float) -> bool:
        """True when every interface's receive loop went round in the last `within` s."""
        return bool(self.transports) and all(t.alive(within) for t in self.transports)

    def stop(self, grace: float) -> None:
        """Stop receiving; let in-flight requests finish, for at most `grace` seconds."""
        stopping = [
            threading.Thread(target=transport.stop, args=(grace,)) for transport in self.transports
        ]
        for thread in stopping:  # every interface's in-flight requests finish at once
            thread.start()
        for thread in stopping:
            thread.join()

    def close(self) -> None:
        """Close the etcd connection (after everything that uses the store has stopped)."""
        if self.hosts:
            self.hosts.stop()
        if self.scopes:
            self.scopes.stop()
        if self.etcd:
            self.etcd.close()
