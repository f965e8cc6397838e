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

from prometheus_client.metrics_core import Metric

from etcdhcp import __version__, logs, metrics, sdnotify
from etcdhcp.admin import AdminServer
from etcdhcp.config import Config, ConfigError, load, load_or_exit
from etcdhcp.embedded_etcd import EtcdProcess, EtcdStartError
from etcdhcp.etcd import EtcdError
from etcdhcp.processes import ServingProcesses, child_config, pin_serving_process
from etcdhcp.registry import ServerRegistry
from etcdhcp.reseeder import Reseeder
from etcdhcp.scopes import FLAG_SCOPE_ID
from etcdhcp.serving import SHUTDOWN_GRACE, Fatal, Serving, Stopped
from etcdhcp.store import LeaseStore, ServerInfo

log = logging.getLogger("etcdhcp.daemon")


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop_requested = threading.Event()
        self.embedded: EtcdProcess | None = None
        self.serving = Serving(config, self.stop_requested)
        self.processes: ServingProcesses | None = None
        self.reseeder: Reseeder | None = None
        self.registry: ServerRegistry | None = None
        self.admin: AdminServer | None = None

    # ---- readiness, for /readyz

    def readiness(self) -> tuple[bool, str]:
        if not self.serving.transports:
            names = ", ".join(i.name for i in self.config.interfaces)
            return False, f"not serving yet: the DHCP sockets on {names} are not bound"
        etcd = self.serving.etcd
        reason = etcd.unavailable_reason if etcd else None
        if reason is not None:
            return False, f"etcd unavailable, failing closed: {reason}"
        if self.processes is not None:
            serving, why = self.processes.health()
            if not serving:
                return False, why
        if self.registry is not None:
            registered, why = self.registry.health()
            if not registered:
                return False, why
        return True, "ready"

    # ---- start-up steps

    def _start_admin(self) -> None:
        cfg = self.config
        registry = (
            metrics.REGISTRY if cfg.processes == 1 else metrics.MergedRegistry(self._children)
        )
        self.admin = AdminServer(
            cfg.admin_host, cfg.admin_port, self.readiness, registry, debug=cfg.admin_debug
        )
        try:
            self.admin.start()
        except OSError as exc:
            raise Fatal(
                f"admin server cannot listen on {cfg.admin_host}:{cfg.admin_port}: {exc}"
            ) from exc

    def _children(self) -> list[list[Metric]]:
        """The serving children's metric families (none until they run)."""
        return self.processes.collect() if self.processes else []

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

    def _serve(self, endpoints: list[str]) -> None:
        """Serve from this process and, with --dhcp.processes, from the children too."""
        cfg = self.config
        # Before the children start: they inherit the main thread's CPU, then pin their own.
        pin_serving_process(0, cfg.cpus)
        if cfg.processes == 1:
            self.serving.serve()
            metrics.SERVING_PROCESSES.set(1)
            return
        fanout = os.getpid() & 0xFFFF  # one group per daemon on the first interface
        self.serving.serve(fanout)
        self.processes = ServingProcesses(
            child_config(cfg, endpoints), cfg.processes - 1, fanout, self.stop_requested
        )
        self.processes.start()

    def _register(self, store: LeaseStore) -> None:
        """One registry key per interface (by its server identifier), on one etcd lease;
        the flags' range on the record of the interface that serves it."""
        cfg = self.config
        assert self.serving.scopes is not None
        flags_served = FLAG_SCOPE_ID in self.serving.scopes().by_id
        started = time.time()
        records = []
        for served in cfg.interfaces:
            flags_here = flags_served and served.name == cfg.flag_interface
            records.append(
                ServerInfo(
                    server_ip=str(served.server_ip),
                    interface=served.name,
                    range_from=str(cfg.issue_from) if flags_here else None,
                    range_to=str(cfg.issue_to) if flags_here else None,
                    subnet=str(cfg.network) if flags_here else None,
                    version=__version__,
                    started=started,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                )
            )
        self.registry = ServerRegistry(store, records[0], also=records[1:])
        self.registry.start()

    def run(self) -> int:
        cfg = self.config
        log.info(
            "etcdhcp %s starting on %s, range %s-%s",
            __version__,
            ", ".join(f"{i.name} as {i.server_ip}" for i in cfg.interfaces),
            cfg.issue_from,
            cfg.issue_to,
        )
        try:
            self._start_admin()
            endpoints = list(cfg.etcd_endpoints)
            if cfg.etcd_embedded:
                endpoints = self._start_embedded_etcd()
            store = self.serving.connect(endpoints)
            self.admin.provider = store  # /api/v1/ answers from now on
            self.reseeder = Reseeder(store, cfg.monitor_interval)
            assert self.serving.scopes is not None
            self.serving.scopes.listen(self.reseeder.scopes_changed)
            self.reseeder.full_pass()
            self.reseeder.start()
            self._serve(endpoints)
            self._register(store)
            log.info(
                "serving DHCP on %s from %d process%s; admin on %s:%d",
                ", ".join(f"{t.interface} ({t.mac})" for t in self.serving.transports),
                cfg.processes,
                "" if cfg.processes == 1 else "es",
                cfg.admin_host or "*",
                self.admin.port,
            )
            sdnotify.notify("READY=1")
            self._wait_for_stop()
            return 0
        except Stopped as exc:
            log.info("%s", exc)
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
            if interval and self.serving.alive(2 * period + 1):
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
        if self.processes is not None:
            self.processes.set_verbosity(fresh.verbosity)
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
        stopping = threading.Thread(target=self.serving.stop, args=(SHUTDOWN_GRACE,))
        stopping.start()  # this process's workers finish while the children's do
        if self.processes:
            self.processes.stop(SHUTDOWN_GRACE)
        stopping.join()
        if self.registry:
            self.registry.stop()
        if self.reseeder:
            self.reseeder.stop()
        if self.admin:
            self.admin.stop()
        self.serving.close()
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
