"""The hosts scenario's records: what etcdhcpctl's checks accept whole, the same hosts in
the CSV files and in Kea's reservations, a tenth of perfdhcp's clients finding theirs on
their link, every address in the lab's range."""

from __future__ import annotations

import dataclasses
import ipaddress
import json

import pytest
from bench import hostdocs
from bench.servers import SMALL_POOL
from tests import packets

from etcdhcp import globalconfig, hostformats, hosts, scopes

LAB = ipaddress.IPv4Network("198.18.0.0/15")
PERFDHCP_CLIENTS = 3000  # the bench's --clients: MACs 02:00:00:00:00:00 + 0..2999
RELAY_IP = "198.18.0.2"  # relay-0, the giaddr of every perfdhcp exchange
COUNT = 100_000


def _view() -> scopes.ScopeSet:
    docs = [
        scopes.Document(f"subnet4/{e['id']}", json.dumps(e).encode(), i + 1)
        for i, e in enumerate(hostdocs.subnets())
    ]
    built = globalconfig.assemble(docs, None, {})
    assert built.problems == {}
    return built.scopes


def _checked(read: hostformats.Read) -> list[hosts.Host]:
    assert read.refusals == []
    checked = hostformats.check(read.entries, _view())
    assert checked.refusals == []
    return checked.hosts


@pytest.fixture(scope="module")
def records() -> list[hostdocs.Host]:
    return hostdocs.records(COUNT, PERFDHCP_CLIENTS)


@pytest.fixture(scope="module")
def imported(records: list[hostdocs.Host]) -> list[hosts.Host]:
    """What `etcdhcpctl host import` of each scope's CSV would write, checked together."""
    entries = []
    for scope in (1, 2):
        read = hostformats.read_csv(hostdocs.csv_text(records, scope), scope)
        assert read.refusals == []
        entries += read.entries
    return _checked(hostformats.Read(entries=entries))


def test_the_csv_files_hold_every_host_and_kea_the_same_ones(
    records: list[hostdocs.Host], imported: list[hosts.Host]
) -> None:
    assert len(imported) == COUNT
    config = {"Dhcp4": {"subnet4": hostdocs.kea_subnets(records)}}
    from_kea = _checked(hostformats.read_json(config))
    assert len(from_kea) == COUNT
    assert {(h.scope_id, h.identifier, h.ip, h.hostname) for h in from_kea} == {
        (h.scope_id, h.identifier, h.ip, h.hostname) for h in imported
    }
    assert sum(h.scope_id == 2 for h in imported) == COUNT - hostdocs.SCOPE_1_HOSTS


def test_a_tenth_of_perfdhcps_clients_find_their_host_outside_the_pool(
    imported: list[hosts.Host],
) -> None:
    view = _view()
    scope = view.containing(int(ipaddress.IPv4Address(RELAY_IP)))
    assert scope is not None and scope.id == 1 and scope.size() == SMALL_POOL.size
    index = hosts.HostIndex(imported)
    discover = packets.decoded(packets.discover("02:00:00:00:00:00", giaddr=RELAY_IP))
    found = []
    for r in range(PERFDHCP_CLIENTS):  # perfdhcp adds r to the base MAC's last octets
        chaddr = bytes.fromhex("02000000") + r.to_bytes(2, "big") + bytes(10)
        host = hosts.find(index, dataclasses.replace(discover, chaddr=chaddr), [scope.id])
        if host is not None:
            found.append(host)
            assert host.scope_id == 1 and r % hostdocs.MATCH_EVERY == 0
            assert not scope.in_pools(int(ipaddress.IPv4Address(host.ip)))
    assert len(found) == PERFDHCP_CLIENTS // 10


def test_every_address_is_in_the_lab_and_its_scope() -> None:
    view = _view()
    served, idle = view.scopes
    assert served.subnet.prefixlen == idle.subnet.prefixlen == 16
    assert idle.pools == ()
    widest = hostdocs.records(hostdocs.MAX_HOSTS, PERFDHCP_CLIENTS)
    for host in (widest[0], widest[hostdocs.SCOPE_1_HOSTS - 1], widest[-1]):
        ip = ipaddress.IPv4Address(host.ip)
        assert ip in LAB and ip in view.scopes[host.scope - 1].subnet
    assert widest[-1].ip == "198.19.255.254"
    assert hostdocs.leased_hosts([widest[0].ip, SMALL_POOL.first], widest) == 1


def test_more_hosts_than_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="fit in the two scopes"):
        hostdocs.records(hostdocs.MAX_HOSTS + 1, PERFDHCP_CLIENTS)
    assert [h.mac for h in hostdocs.records(2, 5)] == ["02:00:00:00:00:00", "02:01:00:00:00:00"]


def test_idle_hosts_are_no_clients() -> None:
    clients = {hostdocs.perfdhcp_mac(r) for r in range(PERFDHCP_CLIENTS)}
    idle = hostdocs.records(COUNT, 0)
    assert len(idle) == COUNT and not clients & {h.mac for h in idle}
