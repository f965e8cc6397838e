"""The admin server's read-only JSON API, over real HTTP, on the real etcd.

The views are api.py's functions, the same ones `etcdhcpctl --json` prints, so the
tests compare the two; the daemon's own API is tested end to end in
tests/integration/test_ctl_e2e.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from etcdhcp import api
from etcdhcp.admin import AdminServer
from etcdhcp.etcd import Etcd
from etcdhcp.store import LeaseStore, ServerInfo
from stores import make_store
from test_admin import fetch
from test_ctl import Ctl
from test_etcd import dead_endpoint
from test_store import POOL

MAC1, MAC2 = "02:00:5e:00:00:01", "02:00:5e:00:00:02"


@pytest.fixture
def store(etcd: Etcd, etcd_prefix: str) -> LeaseStore:
    s = make_store(etcd, etcd_prefix, POOL[0], POOL[-1])
    s.seed()
    s.register(
        ServerInfo("198.18.0.1", "br0", POOL[0], POOL[-1], "test", 1.8e9, "host-a", 42),
        etcd.grant(60),
    )
    assert s.commit(MAC1, POOL[1], allow_free=True, hostname="pc").lease
    assert s.reserve(MAC2, POOL[3])
    return s


@pytest.fixture
def admin() -> Iterator[AdminServer]:
    server = AdminServer("127.0.0.1", 0, lambda: (True, ""))
    server.start()
    yield server
    server.stop()


def get_json(admin: AdminServer, path: str) -> tuple[int, Any]:
    status, headers, body = fetch(admin.port, path)
    assert headers["Content-Type"] == "application/json"
    return status, json.loads(body)


def test_answers_503_until_the_daemon_has_its_store(admin: AdminServer, store: LeaseStore) -> None:
    assert get_json(admin, "/api/v1/leases") == (503, {"error": "not connected to etcd yet"})
    admin.provider = store
    assert get_json(admin, "/api/v1/leases")[0] == 200


@pytest.mark.parametrize(
    "path, view",
    [
        ("/api/v1/leases", api.leases),
        ("/api/v1/pool", api.pool),
        ("/api/v1/servers", api.servers),
        ("/api/v1/reservations", api.reservations),
    ],
)
def test_views_are_the_api_functions(
    admin: AdminServer, store: LeaseStore, path: str, view: Any
) -> None:
    admin.provider = store
    status, body = get_json(admin, path)
    assert status == 200
    assert body == json.loads(json.dumps(view(store)))
    assert body  # each view has something to show here


def test_the_api_and_etcdhcpctl_json_agree(
    admin: AdminServer, store: LeaseStore, etcd_server: Any, etcd_prefix: str, capsys: Any
) -> None:
    admin.provider = store
    ctl = Ctl(etcd_server.endpoint, etcd_prefix, capsys)
    for command, path in (
        (["leases"], "leases"),
        (["lease", "show", MAC1], f"leases/{MAC1}"),
        (["pool"], "pool"),
        (["servers"], "servers"),
        (["reservations"], "reservations"),
    ):
        assert get_json(admin, f"/api/v1/{path}") == (200, ctl.json(*command)), command


def test_one_lease_by_mac_or_address(admin: AdminServer, store: LeaseStore) -> None:
    admin.provider = store
    status, by_mac = get_json(admin, f"/api/v1/leases/{MAC1}")
    assert status == 200 and by_mac["ip"] == POOL[1] and by_mac["hostname"] == "pc"
    assert get_json(admin, f"/api/v1/leases/{POOL[1]}") == (200, by_mac)
    assert get_json(admin, "/api/v1/leases/02%3A00%3A5E%3A00%3A00%3A01") == (200, by_mac)
    assert get_json(admin, f"/api/v1/leases/{MAC2}") == (404, {"error": f"no lease for {MAC2}"})
    assert get_json(admin, "/api/v1/leases/198.18.9.9") == (
        404,
        {"error": "no lease for 198.18.9.9"},
    )
    assert get_json(admin, "/api/v1/leases/nonsense") == (
        400,
        {"error": "'nonsense' is neither a MAC nor an IPv4 address"},
    )
    assert get_json(admin, "/api/v1/nothing") == (404, {"error": "not found"})


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_nothing_is_written_over_http(admin: AdminServer, store: LeaseStore, method: str) -> None:
    admin.provider = store
    for path in ("/api/v1/leases", f"/api/v1/leases/{MAC1}", "/api/v1/pool"):
        status, headers, _ = fetch(admin.port, path, method=method)
        assert status == 405 and headers["Allow"] == "GET"
    assert store.lease_by_mac(MAC1) is not None


def test_etcd_unreachable_is_a_503_with_a_reason(admin: AdminServer, etcd_prefix: str) -> None:
    down = Etcd([dead_endpoint()], timeout=0.5)
    try:
        admin.provider = LeaseStore.for_operator(down, etcd_prefix)
        status, body = get_json(admin, "/api/v1/servers")
    finally:
        down.close()
    assert status == 503
    assert body["error"].startswith("etcd: no etcd endpoint answered")


def test_the_index_lists_the_api(admin: AdminServer) -> None:
    _, _, body = fetch(admin.port, "/")
    for path in ("/api/v1/leases", "/api/v1/leases/<mac|ip>", "/api/v1/pool", "/api/v1/servers"):
        assert path in body
