import logging
import socket
import threading
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from etcdhcp import metrics
from etcdhcp.admin import AdminServer


class Readiness:
    def __init__(self):
        self.state = (True, "")
        self.error = None

    def __call__(self):
        if self.error:
            raise self.error
        return self.state


@pytest.fixture
def readiness():
    return Readiness()


@pytest.fixture
def server(readiness):
    srv = AdminServer("127.0.0.1", 0, readiness)
    srv.start()
    yield srv
    srv.stop()


def fetch(port, path, method="GET", headers=None, host="127.0.0.1"):
    """(status, headers, body) of one request; HTTP errors are results, not exceptions."""
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, err.read().decode()


def test_port_zero_gets_a_real_port(server):
    assert server.port > 0
    assert fetch(server.port, "/healthz")[0] == 200


def test_metrics_exposes_daemon_registry(server):
    metrics.PACKETS_RECEIVED.labels(type="inform").inc()
    status, headers, body = fetch(server.port, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'etcdhcp_packets_received_total{type="inform"}' in body
    assert "# TYPE etcdhcp_request_duration_seconds histogram" in body
    assert "etcdhcp_build_info{" in body
    assert "process_cpu_seconds_total" in body


def test_metrics_negotiates_openmetrics(server):
    status, headers, body = fetch(
        server.port, "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")
    assert "etcdhcp_etcd_up" in body


def test_metrics_uses_given_registry(readiness):
    registry = CollectorRegistry()
    Counter("only_here_total", "test counter", registry=registry).inc(3)
    srv = AdminServer("127.0.0.1", 0, readiness, registry=registry)
    srv.start()
    try:
        _, _, body = fetch(srv.port, "/metrics")
    finally:
        srv.stop()
    assert "only_here_total 3.0" in body
    assert "etcdhcp_" not in body


def test_healthz(server, readiness):
    readiness.state = (False, "etcd unreachable")
    status, headers, body = fetch(server.port, "/healthz")
    assert (status, body) == (200, "ok\n")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"


def test_readyz_ready(server):
    assert fetch(server.port, "/readyz")[::2] == (200, "ready\n")


def test_readyz_not_ready_gives_reason(server, readiness):
    readiness.state = (False, "etcd unreachable: connection refused")
    status, _, body = fetch(server.port, "/readyz")
    assert status == 503
    assert body == "etcd unreachable: connection refused\n"
    readiness.state = (True, "")
    assert fetch(server.port, "/readyz")[0] == 200


def test_readyz_check_raising_means_not_ready(server, readiness, caplog):
    readiness.error = RuntimeError("store not wired")
    with caplog.at_level(logging.ERROR, logger="etcdhcp.admin"):
        status, _, body = fetch(server.port, "/readyz")
    assert status == 503
    assert "store not wired" in body
    assert any("readiness check failed" in r.getMessage() for r in caplog.records)


def test_index_lists_endpoints(server):
    status, _, body = fetch(server.port, "/")
    assert status == 200
    for path in ("/metrics", "/healthz", "/readyz"):
        assert path in body


@pytest.mark.parametrize("path", ["/nope", "/debug/pprof/", "/metrics/extra", "/healthz/"])
def test_unknown_paths_404(server, path):
    assert fetch(server.port, path)[0] == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_non_get_methods_405(server, method):
    status, headers, _ = fetch(server.port, "/metrics", method=method)
    assert status == 405
    assert headers["Allow"] == "GET"


def test_query_string_ignored(server):
    assert fetch(server.port, "/healthz?verbose=1")[0] == 200


def test_access_log_goes_to_debug_logger_not_stderr(server, caplog, capfd):
    with caplog.at_level(logging.DEBUG, logger="etcdhcp.admin"):
        fetch(server.port, "/healthz")
        fetch(server.port, "/missing")
    access = [r for r in caplog.records if r.name == "etcdhcp.admin" and "GET" in r.getMessage()]
    assert {r.levelno for r in access} == {logging.DEBUG}
    assert any("/healthz" in r.getMessage() and "200" in r.getMessage() for r in access)
    assert any("/missing" in r.getMessage() and "404" in r.getMessage() for r in access)
    assert "GET /" not in capfd.readouterr().err


def test_bind_error_raises_oserror(server, readiness):
    other = AdminServer("127.0.0.1", server.port, readiness)
    with pytest.raises(OSError):
        other.start()
    other.stop()  # nothing started: a no-op
    assert fetch(server.port, "/healthz")[0] == 200


def test_stop_closes_the_port(readiness):
    srv = AdminServer("127.0.0.1", 0, readiness)
    srv.start()
    port = srv.port
    srv.stop()
    srv.stop()  # twice is harmless
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # The port is free again immediately (restart after stop).
    again = AdminServer("127.0.0.1", port, readiness)
    again.start()
    try:
        assert fetch(port, "/healthz")[0] == 200
    finally:
        again.stop()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_empty_host_listens_on_all_interfaces(readiness):
    srv = AdminServer("", 0, readiness)
    srv.start()
    try:
        assert fetch(srv.port, "/healthz")[0] == 200
        if _ipv6_loopback():
            assert fetch(srv.port, "/healthz", host="::1")[0] == 200
    finally:
        srv.stop()


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_literal_host(readiness):
    srv = AdminServer("[::1]", 0, readiness)
    srv.start()
    try:
        assert fetch(srv.port, "/readyz", host="::1")[0] == 200
    finally:
        srv.stop()


def test_debug_endpoints_exist_only_with_admin_debug(server, readiness):
    assert fetch(server.port, "/debug/threads")[0] == 404  # the default
    debug = AdminServer("127.0.0.1", 0, readiness, debug=True)
    debug.start()
    try:
        parked = threading.Event()
        waiter = threading.Thread(target=parked.wait, name="parked-for-the-dump", daemon=True)
        waiter.start()
        status, headers, body = fetch(debug.port, "/debug/threads")
        parked.set()
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert "thread MainThread" in body and "thread admin-http" in body
        assert "thread parked-for-the-dump" in body and "in wait" in body
        assert fetch(debug.port, "/debug/threads", method="POST")[0] == 405  # read-only
        assert fetch(debug.port, "/debug/pprof")[0] == 404
    finally:
        debug.stop()
