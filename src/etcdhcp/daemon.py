"""Wiring, signals and shutdown: `etcdhcp` and `python -m etcdhcp` start here."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
import time

from etcdhcp import __version__, logs, sdnotify
from etcdhcp.admin import AdminServer
from etcdhcp.config import Config, ConfigError, load, load_or_exit
from etcdhcp.embedded_etcd import EtcdProcess, EtcdStartError
from etcdhcp.etcd import Credentials, Etcd, EtcdAccessDenied, EtcdError, srv_endpoints
from etcdhcp.registry import ServerRegistry
from etcdhcp.reseeder import Reseeder
from etcdhcp.rfc2131 import Network, Responder
from etcdhcp.server import DhcpServer
from etcdhcp.store import AddressPool, LeaseStore, ServerInfo
from etcdhcp.transport import Transport

log = logging.getLogger("etcdhcp.daemon")

SHUTDOWN_GRACE = 5.0  # seconds in-flight requests get to finish
MAX_CONNECT_BACKOFF = 30.0


class Fatal(Exception):
    """A start-up problem that ends the daemon with one log line and exit status 1."""


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop_requested = threading.Event()
        self.embedded: EtcdProcess | None = None
        self.etcd: Etcd | None = None
        self.transport: Transport | None = None
        self.reseeder: Reseeder | None = None
        self.registry: ServerRegistry | None = None
        self.admin: AdminServer | None = None

    # ---- readiness, for /readyz

    def readiness(self) -> tuple[bool, str]:
        if self.transport is None:
            return False, "not serving yet: the DHCP socket is not bound"
        reason = self.etcd.unavailable_reason if self.etcd else None
        if reason is not None:
            return False, f"etcd unavailable, failing closed: {reason}"
        if self.registry is not None:
            registered, why = self.registry.health()
            if not registered:
                return False, why
        return True, "ready"

    # ---- start-up steps

    def _start_embedded_etcd(self) -> list[str]:
        cfg = self.config
        host, port = cfg.embedded_listen_host, cfg.embedded_listen_port
        os.makedirs(cfg.state_dir, exist_ok=True)
        self.embedded = EtcdProcess(
            data_dir=os.path.join(cfg.state_dir, "etcd"),
            client_urls=[f"http://{host}:{port}"],
            peer_url=f"http://{host}:{port + 1}",
            binary=cfg.embedded_binary,
        )
        log.info(
            "starting embedded etcd on %s (data in %s)",
            self.embedded.client_url,
            self.embedded.data_dir,
        )
        try:
            self.embedded.start()
        except (EtcdStartError, OSError) as exc:
            raise Fatal(f"embedded etcd did not start: {exc}") from exc
        return [self.embedded.client_url]

    def _connect(self, endpoints: list[str]) -> Etcd:
        cfg = self.config
        credentials = Credentials(
            cfg.etcd_username, cfg.etcd_password, cfg.etcd_ca, cfg.etcd_cert, cfg.etcd_key
        )
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
                raise Fatal("stopped while waiting for etcd")
            backoff = min(backoff * 2, MAX_CONNECT_BACKOFF)

    def _discover(self) -> list[str]:
        """The endpoints named by the SRV records of --etcd.discovery.srv."""
        cfg = self.config
        tls = bool(cfg.etcd_ca or cfg.etcd_cert or cfg.etcd_key)
        endpoints = srv_endpoints(cfg.etcd_srv or "", "https" if tls else "http")
        log.info("SRV %s names etcd at %s", cfg.etcd_srv, ", ".join(endpoints))
        return endpoints

    def _register(self, store: LeaseStore) -> None:
        cfg = self.config
        me = ServerInfo(
            server_ip=str(cfg.server_ip),
            interface=cfg.server_if,
            range_from=str(cfg.issue_from),
            range_to=str(cfg.issue_to),
            version=__version__,
            started=time.time(),
            hostname=socket.gethostname(),
            pid=os.getpid(),
        )
        self.registry = ServerRegistry(store, me)
        self.registry.start()

    def _serve(self, store: LeaseStore) -> None:
        cfg = self.config
        network = Network(
            server_ip=str(cfg.server_ip),
            subnet=cfg.network,
            router=str(cfg.router),
            dns=tuple(str(d) for d in cfg.dns),
            lease_time=int(cfg.lease_time),
        )
        server = DhcpServer(Responder(network, store), str(cfg.server_ip))
        try:
            transport = Transport(
                cfg.server_if,
                handle=server.handle,
                workers=cfg.workers,
                queue_size=cfg.queue_size,
                deadline=cfg.request_timeout,
                client_rate=cfg.client_rate,
                client_burst=cfg.client_burst,
            )
        except PermissionError as exc:
            raise Fatal(
                f"cannot open raw sockets on {cfg.server_if} (needs CAP_NET_RAW and "
                f"CAP_NET_BIND_SERVICE): {exc}"
            ) from exc
        except OSError as exc:
            raise Fatal(f"cannot serve on {cfg.server_if}: {exc}") from exc
        server.link = transport
        transport.start()
        self.transport = transport

    def run(self) -> int:
        cfg = self.config
        log.info(
            "etcdhcp %s starting on %s as %s, range %s-%s",
            __version__,
            cfg.server_if,
            cfg.server_ip,
            cfg.issue_from,
            cfg.issue_to,
        )
        try:
            self.admin = AdminServer(
                cfg.admin_host, cfg.admin_port, self.readiness, debug=cfg.admin_debug
            )
            try:
                self.admin.start()
            except OSError as exc:
                raise Fatal(
                    f"admin server cannot listen on {cfg.admin_host}:{cfg.admin_port}: {exc}"
                ) from exc
            endpoints = list(cfg.etcd_endpoints)
            if cfg.etcd_embedded:
                endpoints = self._start_embedded_etcd()
            self.etcd = self._connect(endpoints)
            store = LeaseStore(
                self.etcd,
                prefix=cfg.etcd_prefix,
                pool=AddressPool(cfg.issue_from, cfg.issue_to),
                lease_time=cfg.lease_time,
                offer_hold=cfg.offer_hold,
                decline_time=cfg.decline_time,
                server_id=str(cfg.server_ip),
            )
            self.admin.provider = store  # /api/v1/ answers from now on
            self.reseeder = Reseeder(store, cfg.monitor_interval)
            self.reseeder.full_pass()
            self.reseeder.start()
            self._serve(store)
            self._register(store)
            log.info(
                "serving DHCP on %s (%s); admin on %s:%d",
                cfg.server_if,
                self.transport.mac,
                cfg.admin_host or "*",
                self.admin.port,
            )
            sdnotify.notify("READY=1")
            self._wait_for_stop()
            return 0
        except Fatal as exc:
            log.error("%s", exc)
            return 1
        except EtcdError as exc:
            log.error("etcd failed during start-up: %s", exc)
            return 1
        finally:
            self._shutdown()

    def _wait_for_stop(self) -> None:
        """Sleep until a signal; ping the systemd watchdog, when systemd asked for pings
        (WatchdogSec=), while the receive loop is alive."""
        interval = sdnotify.watchdog_interval()
        period = interval or 1.0
        while not self.stop_requested.wait(period):
            transport = self.transport
            if (
                interval
                and transport
                and time.monotonic() - transport.last_receive_loop < 2 * period + 1
            ):
                sdnotify.notify("WATCHDOG=1")

    def reload(self, argv: list[str] | None) -> None:
        """SIGHUP: re-read flags, environment and config file and apply what is safe live.

        Only the log verbosity is: everything else is wired into sockets, threads and
        etcd state at start-up, so a change to it is reported as needing a restart.
        A configuration that no longer loads is refused and the running one kept.
        """
        try:
            fresh = load(argv)
        except ConfigError as exc:
            log.error("SIGHUP: configuration not reloaded, keeping the running one: %s", exc)
            return
        old = self.config
        pending = [
            f.name
            for f in dataclasses.fields(Config)
            if f.name != "verbosity" and getattr(fresh, f.name) != getattr(old, f.name)
        ]
        logs.set_verbosity(fresh.verbosity)
        self.config = dataclasses.replace(old, verbosity=fresh.verbosity)
        log.info(
            "SIGHUP: configuration re-read; applied -v=%d (was %d); %s",
            fresh.verbosity,
            old.verbosity,
            f"changed but needing a restart: {', '.join(pending)}"
            if pending
            else "nothing else changed (other settings need a restart)",
        )

    def _shutdown(self) -> None:
        sdnotify.notify("STOPPING=1")
        if self.transport:
            self.transport.stop(SHUTDOWN_GRACE)
        if self.registry:
            self.registry.stop()
        if self.reseeder:
            self.reseeder.stop()
        if self.admin:
            self.admin.stop()
        if self.etcd:
            self.etcd.close()
        if self.embedded:
            self.embedded.stop()
        log.info("etcdhcp stopped")


def main(argv: list[str] | None = None) -> int:
    config = load_or_exit(argv)
    logs.setup(config.verbosity)
    for warning in config.warnings:
        log.warning("%s", warning)
    daemon = Daemon(config)

    def request_stop(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        daemon.stop_requested.set()

    def reload_config(_signum: int, _frame: object) -> None:
        daemon.reload(argv)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGHUP, reload_config)
    try:
        return daemon.run()
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
