"""HTTP admin server: Prometheus metrics, health probes and a read-only JSON API.

The original exposed metrics and pprof on ``:9842``; this one keeps the address
and ``/metrics`` and adds probes for orchestrators and ``/api/v1/`` (the views of
``etcdhcpctl --json``, from api.py). Debugging endpoints (``/debug/threads``) exist
only with ``--admin.debug``. Nothing here
writes: changes are etcdhcpctl's, which needs etcd credentials, not network reach.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from etcdhcp import __version__, api, metrics
from etcdhcp.etcd import EtcdError

if TYPE_CHECKING:
    from etcdhcp.store import LeaseStore

log = logging.getLogger(__name__)

Readiness = Callable[[], tuple[bool, str]]
Exposed = CollectorRegistry | metrics.MergedRegistry  # what /metrics shows
API_PREFIX = "/api/v1/"

_INDEX = """etcdhcp admin
/metrics  Prometheus metrics
/healthz  liveness: 200 while the process serves HTTP
/readyz   readiness: 200 when requests can be served, else 503 and the reason
/api/v1/leases            every lease (JSON, as etcdhcpctl leases --json)
/api/v1/leases/<mac|ip>   one lease, 404 when there is none
/api/v1/reservations      every reservation
/api/v1/pool              addresses per state in each live server's range
/api/v1/servers           the live servers
"""


def thread_dump() -> str:
    """Every thread's name and current stack, innermost call last (for --admin.debug)."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        stack = "".join(traceback.format_stack(frame))
        parts.append(f"thread {names.get(ident, '?')} ({ident}):\n{stack}")
    return "\n".join(parts)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = f"etcdhcp/{__version__}"
    sys_version = ""
    timeout = 10  # a stalled client must not pin a thread forever

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._reply(HTTPStatus.OK, encoder(self.server.registry), content_type)
        elif path == "/healthz":
            self._text(HTTPStatus.OK, "ok")
        elif path == "/readyz":
            try:
                ready, reason = self.server.readiness()
            except Exception as exc:  # a broken check means "not ready", not a dead thread
                log.exception("readiness check failed")
                ready, reason = False, f"readiness check failed: {exc}"
            if ready:
                self._text(HTTPStatus.OK, "ready")
            else:
                self._text(HTTPStatus.SERVICE_UNAVAILABLE, reason or "not ready")
        elif path.startswith(API_PREFIX):
            self._api(unquote(path[len(API_PREFIX) :]))
        elif path == "/debug/threads" and self.server.debug:
            self._text(HTTPStatus.OK, thread_dump())
        elif path == "/":
            self._reply(HTTPStatus.OK, _INDEX.encode(), "text/plain; charset=utf-8")
        else:
            self._text(HTTPStatus.NOT_FOUND, "not found")

    def _api(self, route: str) -> None:
        store = self.server.provider()
        if store is None:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "not connected to etcd yet"})
            return
        views: dict[str, Callable[[LeaseStore], Any]] = {
            "leases": api.leases,
            "reservations": api.reservations,
            "pool": api.pool,
            "servers": api.servers,
        }
        try:
            if route in views:
                self._json(HTTPStatus.OK, views[route](store))
            elif route.startswith("leases/"):
                address = route[len("leases/") :]
                found = api.lease(store, address)
                if found is None:
                    self._json(HTTPStatus.NOT_FOUND, {"error": f"no lease for {address}"})
                else:
                    self._json(HTTPStatus.OK, found)
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        except ValueError as exc:  # not a MAC or an address
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except EtcdError as exc:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": " ".join(f"etcd: {exc}".split())})

    def _json(self, status: HTTPStatus, body: Any) -> None:
        self._reply(status, (json.dumps(body) + "\n").encode(), "application/json")

    def _not_allowed(self) -> None:
        self._text(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed", [("Allow", "GET")])

    # Known methods get 405; unknown ones keep http.server's 501.
    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = _not_allowed

    def _text(self, status: HTTPStatus, text: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        self._reply(status, (text + "\n").encode(), "text/plain; charset=utf-8", headers)

    def _reply(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    debug = False  # serve /debug/ (--admin.debug)

    def __init__(
        self,
        family: socket.AddressFamily,
        address: tuple,
        registry: Exposed,
        readiness: Readiness,
        provider: Callable[[], LeaseStore | None],
    ) -> None:
        self.address_family = family
        self.registry = registry
        self.readiness = readiness
        self.provider = provider
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # Go's ":port" listens on IPv6 and IPv4 alike.
        if self.address_family == socket.AF_INET6 and self.server_address[0] == "::":
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # HTTPServer.server_bind would resolve our own name (socket.getfqdn), which
        # can stall start-up for seconds on a host with broken DNS.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # Instead of a traceback on stderr: clients hanging up are routine, bugs are not.
        level = logging.DEBUG if isinstance(sys.exc_info()[1], ConnectionError) else logging.ERROR
        log.log(level, "admin request from %s failed", client_address[0], exc_info=True)


class AdminServer:
    """The daemon's HTTP admin endpoint (``-admin-addr``), served from a thread."""

    def __init__(
        self,
        host: str,
        port: int,
        readiness: Readiness,
        registry: Exposed = metrics.REGISTRY,
        debug: bool = False,
    ) -> None:
        """``host`` "" means every interface (IPv6 and IPv4); ``port`` 0 picks a free
        port. ``readiness`` returns (ready, reason) and is called per ``/readyz``.
        ``debug`` adds ``/debug/threads`` (otherwise 404)."""
        self._debug = debug
        self._host = host.strip("[]")
        self._port = port
        self._readiness = readiness
        self._registry = registry
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.provider: LeaseStore | None = None
        """What /api/v1/ reads; set once the daemon has its store (503 until then)."""

    @property
    def port(self) -> int:
        """The bound port once started (useful when 0 was asked for)."""
        return self._server.server_address[1] if self._server else self._port

    def start(self) -> None:
        """Bind and serve in a daemon thread; a bind failure raises OSError here."""
        self._server = self._bind()
        self._server.debug = self._debug
        # serve_forever notices stop() only between polls: keep shutdown snappy.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="admin-http", daemon=True
        )
        self._thread.start()
        log.info("admin server listening on %s port %d", self._server.server_address[0], self.port)

    def stop(self) -> None:
        """Stop serving and close the listening socket; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def _bind(self) -> _Server:
        def server(family: socket.AddressFamily, address: tuple) -> _Server:
            return _Server(family, address, self._registry, self._readiness, lambda: self.provider)

        if not self._host:
            try:
                return server(socket.AF_INET6, ("::", self._port))
            except OSError as exc:
                if exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                    raise
                log.debug("no IPv6 (%s); admin server listens on IPv4 only", exc)
                return server(socket.AF_INET, ("0.0.0.0", self._port))
        family, _, _, _, sockaddr = socket.getaddrinfo(
            self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        return server(family, sockaddr)
