"""hosts.py: host records parsed and refused by JSON path, identifiers in one spelling,
the immutable index, and Kea's lookup order (scope first, then global)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from etcdhcp import optiondefs
from etcdhcp.hosts import (
    CIRCUIT_ID,
    CLIENT_ID,
    DEFAULT_IDENTIFIERS,
    EMPTY_BOOT,
    EMPTY_OPTIONS,
    GLOBAL,
    HW_ADDRESS,
    HostIndex,
    find,
    normalise_identifier,
    parse_host,
    parse_identifier_order,
    parse_record,
    parse_scope_id,
)
from etcdhcp.scopes import Boot, ScopeError
from packets import RELAY_IP, decoded, discover, mac

PC = {
    "hw-address": "02:00:5E:00:00:01",
    "ip-address": "198.18.0.50",
    "hostname": "pc-1",
    "option-data": [{"name": "domain-name", "data": "lab.example"}],
    "next-server": "198.18.0.2",
    "server-hostname": "boot",
    "boot-file-name": "pxelinux.0",
    "client-classes": ["printers"],
    "user-context": {"rack": 3},
    "comment": "the first PC",
}


def test_a_full_record_parses_into_every_field() -> None:
    host = parse_host(PC, "reservations[0]", 7)
    assert (host.scope_id, host.id_type, host.identifier) == (7, HW_ADDRESS, "02:00:5e:00:00:01")
    assert (host.ip, host.hostname, host.classes) == ("198.18.0.50", "pc-1", ("printers",))
    assert host.options.options == ((15, b"lab.example"),)
    assert host.boot == Boot("198.18.0.2", b"boot", b"pxelinux.0")
    assert host.name == "7/hw-address=02:00:5e:00:00:01"
    assert host.key == (7, HW_ADDRESS, "02:00:5e:00:00:01")
    assert host.holder == "02:00:5e:00:00:01"
    # The stored document is the record with its identifier written the one way.
    assert host.document == {**PC, "hw-address": "02:00:5e:00:00:01"}


def test_a_bare_record_shares_the_empty_options_and_boot() -> None:
    host = parse_host({"client-id": "01:02:03"}, "r")
    assert (host.ip, host.hostname, host.classes) == (None, None, ())
    assert host.options is EMPTY_OPTIONS and host.boot is EMPTY_BOOT
    assert host.holder == "client-id=01:02:03"


@pytest.mark.parametrize(
    ("id_type", "written", "stored"),
    [
        (HW_ADDRESS, "02:00:5E:00:00:01", "02:00:5e:00:00:01"),
        (HW_ADDRESS, "2:0:5e:0:0:1", "02:00:5e:00:00:01"),  # Kea and ethers: 1-digit octets
        (HW_ADDRESS, "02-00-5e-00-00-01", "02:00:5e:00:00:01"),
        (HW_ADDRESS, "02005e000001", "02:00:5e:00:00:01"),
        (HW_ADDRESS, "0x02005e000001", "02:00:5e:00:00:01"),
        (HW_ADDRESS, "02 00 5e 00 00 01", "02:00:5e:00:00:01"),
        (CLIENT_ID, "01:02:03:04", "01:02:03:04"),
        (CLIENT_ID, "102", "01:02"),  # an odd number of digits: a leading zero, as Kea
        (CLIENT_ID, "'pc-1'", "70:63:2d:31"),  # quoted text: its bytes
        (CIRCUIT_ID, "'eth0/1'", "65:74:68:30:2f:31"),
        (CIRCUIT_ID, "AB", "ab"),
    ],
)
def test_identifiers_are_stored_in_one_spelling(id_type: str, written: str, stored: str) -> None:
    assert normalise_identifier(id_type, written) == stored


@pytest.mark.parametrize(
    ("id_type", "written", "why"),
    [
        (HW_ADDRESS, "02:00:5e:00:01", "not a MAC address (6 octets"),
        (HW_ADDRESS, "02:00:5e:00:00:0g", "neither hex nor 'quoted text'"),
        (HW_ADDRESS, "'pc-1'", "a hw-address is hex, not quoted text"),
        (HW_ADDRESS, "02:00-5e:00:00:01", "neither hex"),  # separators mixed
        (HW_ADDRESS, "02::5e:00:00:01", "neither hex"),
        (CLIENT_ID, "''", "1 to 128 octets"),
        (CLIENT_ID, "ab" * 129, "1 to 128 octets"),
        (CLIENT_ID, 7, "is not an identifier"),
        (CLIENT_ID, "", "is not an identifier"),
    ],
)
def test_bad_identifiers_are_refused_by_path(id_type: str, written: Any, why: str) -> None:
    with pytest.raises(ScopeError) as refused:
        parse_host({id_type: written}, "r")
    assert refused.value.path == f"r.{id_type}" and why in str(refused.value)


@pytest.mark.parametrize(
    ("doc", "path", "why"),
    [
        ([], "r", "must be a JSON object"),
        ({"ip-address": "198.18.0.5"}, "r", "exactly one of hw-address, client-id, circuit-id"),
        ({"hw-address": "02:00:5e:00:00:01", "client-id": "01"}, "r", "found 2"),
        ({"flex-id": "'x'"}, "r.flex-id", "flex_id hook library"),
        ({"duid": "01:02"}, "r.duid", "use client-id"),
        ({"client-id": "01", "subnet-id": 1}, "r.subnet-id", "not supported"),
        ({"client-id": "01", "ip-address": "198.18.0"}, "r.ip-address", "not an IPv4"),
        ({"client-id": "01", "ip-address": "0.0.0.0"}, "r.ip-address", "cannot be a client"),
        ({"client-id": "01", "ip-address": "224.0.0.1"}, "r.ip-address", "cannot be a client"),
        ({"client-id": "01", "ip-address": "255.255.255.255"}, "r.ip-address", "cannot be"),
        ({"client-id": "01", "hostname": "a b"}, "r.hostname", "not a host name"),
        ({"client-id": "01", "hostname": "-a"}, "r.hostname", "not a host name"),
        ({"client-id": "01", "hostname": "a" * 64}, "r.hostname", "not a host name"),
        ({"client-id": "01", "hostname": 5}, "r.hostname", "not a string"),
        ({"client-id": "01", "client-classes": "x"}, "r.client-classes", "must be a list"),
        ({"client-id": "01", "client-classes": ["x", ""]}, "r.client-classes[1]", "class name"),
        ({"client-id": "01", "option-data": [{"name": "nope"}]}, "r.option-data[0]", ""),
        ({"client-id": "01", "next-server": "x"}, "r.next-server", "not an IPv4"),
        ({"client-id": "01", "boot-file-name": "f" * 128}, "r.boot-file-name", "at most 127"),
        ({"client-id": "01", "user-context": []}, "r.user-context", "must be a JSON object"),
        ({"client-id": "01", "comment": 1}, "r.comment", "must be a string"),
    ],
)
def test_bad_records_are_refused_by_json_path(doc: Any, path: str, why: str) -> None:
    with pytest.raises(ScopeError) as refused:
        parse_host(doc, "r")
    assert refused.value.path == path
    assert why in str(refused.value)


def test_an_empty_hostname_is_none_and_a_trailing_dot_is_kept() -> None:
    assert parse_host({"client-id": "01", "hostname": ""}, "r").hostname is None
    assert parse_host({"client-id": "01", "hostname": "pc.lab."}, "r").hostname == "pc.lab."


def test_option_data_is_encoded_with_the_definitions_given() -> None:
    doc = {"client-id": "01", "option-data": [{"name": "site-id", "data": "7"}]}
    with pytest.raises(ScopeError, match=r"r\.option-data"):
        parse_host(doc, "r")
    defs = optiondefs.load_option_defs([{"name": "site-id", "code": 224, "type": "uint16"}])
    assert parse_host(doc, "r", GLOBAL, defs).options.options == ((224, b"\x00\x07"),)


def test_a_stored_record_must_match_its_key() -> None:
    raw = json.dumps({"hw-address": "02-00-5e-00-00-01"}).encode()
    host = parse_record("3", HW_ADDRESS, "02:00:5e:00:00:01", raw, optiondefs.OptionDefs())
    assert host.key == (3, HW_ADDRESS, "02:00:5e:00:00:01")
    with pytest.raises(ScopeError, match=r"^3/hw-address=02:00:5e:00:00:02: the record says"):
        parse_record("3", HW_ADDRESS, "02:00:5e:00:00:02", raw, optiondefs.OptionDefs())
    with pytest.raises(ScopeError, match="'03' is not a scope id"):
        parse_record("03", HW_ADDRESS, "02:00:5e:00:00:01", raw, optiondefs.OptionDefs())
    with pytest.raises(ScopeError, match="is not JSON"):
        parse_record("3", HW_ADDRESS, "02:00:5e:00:00:01", b"{", optiondefs.OptionDefs())


@pytest.mark.parametrize("text", ["0", "1", "4294967295"])
def test_scope_ids(text: str) -> None:
    assert parse_scope_id(text, "s") == int(text)


@pytest.mark.parametrize("text", ["", "-1", "01", "x", "4294967296", "\u0661"])
def test_bad_scope_ids(text: str) -> None:
    with pytest.raises(ScopeError, match="is not a scope id"):
        parse_scope_id(text, "s")


def test_identifier_order_is_kea_s_list() -> None:
    assert parse_identifier_order(["client-id", "hw-address"], "o") == (CLIENT_ID, HW_ADDRESS)
    assert parse_identifier_order(list(DEFAULT_IDENTIFIERS), "o") == DEFAULT_IDENTIFIERS
    # Kea's examples list flex-id: accepted, and it finds nothing (no such records here).
    assert parse_identifier_order(["flex-id", "hw-address"], "o") == ("flex-id", HW_ADDRESS)
    for bad, path, why in (
        ([], "o", "non-empty list"),
        (["hw-address", "mac"], "o[1]", "is not one of"),
        (["hw-address", "hw-address"], "o", "twice"),
    ):
        with pytest.raises(ScopeError, match=why) as refused:
            parse_identifier_order(bad, "o")
        assert refused.value.path == path


# ---- the index and the lookup -------------------------------------------------------------


def host(scope: int, id_type: str, identifier: str, ip: str | None = None) -> Any:
    doc: dict[str, Any] = {id_type: identifier}
    if ip:
        doc["ip-address"] = ip
    return parse_host(doc, "h", scope)


def test_the_index_finds_by_key_and_address_and_new_versions_leave_old_ones_alone() -> None:
    a = host(1, HW_ADDRESS, mac(1), "198.18.1.10")
    b = host(GLOBAL, CLIENT_ID, "01:aa", "198.18.1.11")
    first = HostIndex([a, b])
    assert len(first) == 2 and set(first) == {a, b}
    assert first.lookup(1, HW_ADDRESS, mac(1)) is a
    assert first.lookup(GLOBAL, HW_ADDRESS, mac(1)) is None
    assert first.by_ip("198.18.1.11") is b
    moved = host(1, HW_ADDRESS, mac(1), "198.18.1.20")
    second = first.changed(added=[moved], removed=[b])
    assert second.lookup(1, HW_ADDRESS, mac(1)) is moved and len(second) == 1
    assert second.by_ip("198.18.1.20") is moved
    assert second.by_ip("198.18.1.10") is None and second.by_ip("198.18.1.11") is None
    assert not second.uses(CLIENT_ID) and second.uses(HW_ADDRESS)
    # The version a packet started with is untouched.
    assert first.lookup(1, HW_ADDRESS, mac(1)) is a and first.by_ip("198.18.1.11") is b
    # Removing a version that was already replaced removes nothing.
    assert second.changed(removed=[a]).lookup(1, HW_ADDRESS, mac(1)) is moved


def relayed(client: str, circuit: bytes | None = None, client_id: bytes | None = None) -> Any:
    options: list[Any] = []
    if client_id is not None:
        options.append(("client_id", client_id))
    if circuit is not None:
        options.append(("relay_agent_information", bytes([1, len(circuit)]) + circuit))
    return decoded(discover(client, giaddr=RELAY_IP, options=options))


def test_find_tries_the_scope_then_the_global_hosts_in_kea_s_order() -> None:
    by_mac = host(GLOBAL, HW_ADDRESS, mac(1))
    by_circuit = host(5, CIRCUIT_ID, "'port-7'")
    by_client_id = host(5, CLIENT_ID, "01:02")
    index = HostIndex([by_mac, by_circuit, by_client_id])
    request = relayed(mac(1), circuit=b"port-7", client_id=b"\x01\x02")
    # In scope 5 the circuit-id comes before the client-id (Kea's default order), and
    # the scope's hosts before the global one although hw-address is first in the order.
    assert find(index, request, (5,)) is by_circuit
    assert find(index, request, (5,), (CLIENT_ID, CIRCUIT_ID)) is by_client_id
    # Elsewhere only the global host matches.
    assert find(index, request, (6,)) is by_mac
    assert find(index, request, (GLOBAL,)) is by_mac
    assert find(index, relayed(mac(2), client_id=b"\x01\x02"), (5,)) is by_client_id
    # A shared network's siblings are looked in after the client's own scope.
    assert find(index, relayed(mac(2), client_id=b"\x01\x02"), (6, 5)) is by_client_id
    assert find(index, relayed(mac(2)), (5,)) is None
    # An identifier type left out of the order is never looked up.
    assert find(index, request, (6,), (CLIENT_ID,)) is None
    assert find(HostIndex(), request, (5,)) is None
