"""hostformats.py: each import format read into host entries with exact refusals, the
checks a set of hosts must pass together, and the export formats read back."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from etcdhcp.hostformats import (
    Entry,
    check,
    read_csv,
    read_dnsmasq,
    read_ethers,
    read_json,
    to_csv,
    to_json,
)
from etcdhcp.hosts import GLOBAL, parse_host
from etcdhcp.scopes import ScopeSet, parse_subnet

SCOPES = ScopeSet(
    [
        parse_subnet({"id": 1, "subnet": "198.18.1.0/24"}),
        parse_subnet({"id": 2, "subnet": "198.18.2.0/24"}),
    ]
)


def docs(read: Any) -> list[tuple[str, int, dict[str, Any]]]:
    return [(e.where, e.scope_id, e.doc) for e in read.entries]


# ---- JSON ------------------------------------------------------------------------------


def test_json_reads_a_list_for_the_scope_given() -> None:
    read = read_json([{"hw-address": "02:00:5e:00:00:01"}, "x"], 2)
    assert docs(read) == [
        ("reservations[0]", 2, {"hw-address": "02:00:5e:00:00:01"}),
        ("reservations[1]", 2, "x"),  # refused by check, by this path
    ]
    assert read.refusals == []


def test_json_reads_every_level_of_a_kea_configuration() -> None:
    config = {
        "Dhcp4": {
            "reservations": [{"client-id": "01:02"}],
            "shared-networks": [
                {"name": "floor", "subnet4": [{"id": 2, "reservations": [{"client-id": "03"}]}]}
            ],
            "subnet4": [
                {"id": 1, "subnet": "198.18.1.0/24", "reservations": [{"client-id": "04"}]},
                {"id": 3, "subnet": "198.18.3.0/24"},
                {"subnet": "198.18.4.0/24", "reservations": [{"client-id": "05"}]},
            ],
            "valid-lifetime": 600,
        }
    }
    read = read_json(config)
    assert docs(read) == [
        ("Dhcp4.reservations[0]", GLOBAL, {"client-id": "01:02"}),
        ("Dhcp4.shared-networks[0].subnet4[0].reservations[0]", 2, {"client-id": "03"}),
        ("Dhcp4.subnet4[0].reservations[0]", 1, {"client-id": "04"}),
    ]
    assert read.refusals == ["Dhcp4.subnet4[2].id: None is not a subnet id (its hosts' scope)"]
    assert docs(read_json(config["Dhcp4"]))[0][0] == "reservations[0]"  # the Dhcp4 map itself


@pytest.mark.parametrize(
    ("data", "refusal"),
    [
        ("x", "a hosts file holds a JSON list of reservations or a Kea object"),
        ({"Dhcp4": []}, "Dhcp4: must be a JSON object"),
        ({"reservations": {}}, "reservations: must be a list"),
        ({"subnet4": {}}, "subnet4: must be a list"),
    ],
)
def test_json_that_is_not_kea_s_shape_is_refused(data: Any, refusal: str) -> None:
    assert read_json(data).refusals == [refusal]


# ---- CSV -------------------------------------------------------------------------------


def test_csv_with_a_header_comments_and_empty_fields() -> None:
    text = (
        "mac,ip,hostname,bootfile\n"
        "# the lab\n"
        "02:00:5e:00:00:01,198.18.1.10,pc-1,pxelinux.0\n"
        "\n"
        "02:00:5e:00:00:02, ,pc-2\n"
        '02:00:5e:00:00:03,198.18.1.12,"",\n'
        "02:00:5e:00:00:04\n"
        "02:00:5e:00:00:05,198.18.1.13,pc-5,boot,extra\n"
    )
    read = read_csv(text, 1)
    assert docs(read) == [
        (
            "line 3",
            1,
            {
                "hw-address": "02:00:5e:00:00:01",
                "ip-address": "198.18.1.10",
                "hostname": "pc-1",
                "boot-file-name": "pxelinux.0",
            },
        ),
        ("line 5", 1, {"hw-address": "02:00:5e:00:00:02", "hostname": "pc-2"}),
        ("line 6", 1, {"hw-address": "02:00:5e:00:00:03", "ip-address": "198.18.1.12"}),
    ]
    assert read.refusals == [
        "line 7: 1 fields; expected mac,ip,hostname[,bootfile]",
        "line 8: 5 fields; expected mac,ip,hostname[,bootfile]",
    ]


def test_csv_without_a_header() -> None:
    assert docs(read_csv("02:00:5e:00:00:01,198.18.1.10\n")) == [
        ("line 1", GLOBAL, {"hw-address": "02:00:5e:00:00:01", "ip-address": "198.18.1.10"})
    ]


# ---- dnsmasq ---------------------------------------------------------------------------


def test_dnsmasq_lines_in_the_common_forms() -> None:
    text = (
        "# /etc/dnsmasq.d/hosts.conf\n"
        "dhcp-host=02:00:5e:00:00:01,198.18.1.10,pc-1\n"
        "dhcp-host=02:00:5e:00:00:02,pc-2\n"
        "--dhcp-host=id:01:02:03:04,198.18.1.11\n"
        "dhcp-host=id:marjorie,198.18.1.12,marjorie\n"
        "dhcp-host=02:00:5e:00:00:03,02:00:5e:00:00:04,set:lab,shared\n"
        "02:00:5e:00:00:05,198.18.1.13\n"  # a dhcp-hostsfile line
        "dhcp-host=1-02:00:5e:00:00:06,id:*,198.18.1.14\n"
    )
    read = read_dnsmasq(text)
    assert read.refusals == []
    assert docs(read) == [
        (
            "line 2",
            0,
            {"hw-address": "02:00:5e:00:00:01", "ip-address": "198.18.1.10", "hostname": "pc-1"},
        ),
        ("line 3", 0, {"hw-address": "02:00:5e:00:00:02", "hostname": "pc-2"}),
        ("line 4", 0, {"client-id": "01:02:03:04", "ip-address": "198.18.1.11"}),
        (
            "line 5",
            0,
            {"client-id": "'marjorie'", "ip-address": "198.18.1.12", "hostname": "marjorie"},
        ),
        (
            "line 6",
            0,
            {"hw-address": "02:00:5e:00:00:03", "hostname": "shared", "client-classes": ["lab"]},
        ),
        (
            "line 6",
            0,
            {"hw-address": "02:00:5e:00:00:04", "hostname": "shared", "client-classes": ["lab"]},
        ),
        ("line 7", 0, {"hw-address": "02:00:5e:00:00:05", "ip-address": "198.18.1.13"}),
        ("line 8", 0, {"hw-address": "02:00:5e:00:00:06", "ip-address": "198.18.1.14"}),
    ]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("dhcp-range=198.18.1.10,198.18.1.20", "dhcp-range= is not a dhcp-host= line"),
        ("dhcp-host=02:00:5e:00:00:01,198.18.1.10,pc,45m", "lease time 45m is not supported"),
        ("dhcp-host=02:00:5e:00:00:01,infinite", "lease time infinite is not supported"),
        ("dhcp-host=02:00:5e:00:00:01,ignore", "'ignore' (never answer the client)"),
        ("dhcp-host=02:00:5e:00:00:01,tag:lab,pc", "tag:lab (a condition on tags)"),
        ("dhcp-host=02:00:5e:00:00:01,[fd00::1]", "IPv6 address"),
        ("dhcp-host=02:00:5e:00:00:*,pc", "wildcard MACs are not supported"),
        ("dhcp-host=6-02:00:5e:00:00:01,pc", "hardware type 6 is not Ethernet"),
        ("dhcp-host=02:00:5e:00:00:01,02:00:5e:00:00:02,198.18.1.10", "2 MACs share 198.18.1.10"),
        ("dhcp-host=02:00:5e:00:00:01,id:01:02,pc", "a MAC and an id: on one line"),
        ("dhcp-host=pc,198.18.1.10", "no MAC and no id:"),
        ("dhcp-host=02:00:5e:00:00:01,198.18.1.10,198.18.1.11", "two addresses"),
        ("dhcp-host=02:00:5e:00:00:01,a,b", "two host names (a, b)"),
    ],
)
def test_dnsmasq_forms_not_supported_are_refused_with_their_line(line: str, why: str) -> None:
    read = read_dnsmasq(f"# first\n{line}\n")
    assert read.entries == []
    [refusal] = read.refusals
    assert refusal.startswith("line 2: ") and why in refusal


# ---- /etc/ethers ----------------------------------------------------------------------


def test_ethers_takes_addresses_and_refuses_names() -> None:
    text = "8:0:20:1:2:3 198.18.1.10\n02:00:5e:00:00:02  printer  # the printer\nbad\n"
    read = read_ethers(text, 1)
    assert docs(read) == [
        ("line 1", 1, {"hw-address": "8:0:20:1:2:3", "ip-address": "198.18.1.10"})
    ]
    assert read.refusals == [
        "line 2: printer is a host name, not an address: etcdhcp does not resolve names at "
        "import; write the address",
        "line 3: 1 fields; expected MAC ADDRESS",
    ]


# ---- check ------------------------------------------------------------------------------


def entry(line: int, scope: int = GLOBAL, **doc: Any) -> Entry:
    return Entry(f"line {line}", scope, {k.replace("_", "-"): v for k, v in doc.items()})


def test_check_refuses_each_bad_entry_by_its_line_and_keeps_the_rest() -> None:
    entries = [
        entry(1, hw_address="02:00:5e:00:00:01", ip_address="198.18.1.10"),
        entry(2, hw_address="02:00:5e:00:00:0z", ip_address="198.18.1.11"),
        entry(3, hw_address="02:00:5e:00:00:01", ip_address="198.18.1.12"),
        entry(4, hw_address="02:00:5e:00:00:04", ip_address="198.18.1.10"),
        entry(5, hw_address="02:00:5e:00:00:05", ip_address="198.18.9.10"),
        entry(6, 1, hw_address="02:00:5e:00:00:06", ip_address="198.18.2.10"),
        entry(7, 9, hw_address="02:00:5e:00:00:07"),
        entry(8, 1, hw_address="02:00:5e:00:00:01", ip_address="198.18.1.13"),
        entry(9, 1, hw_address="02:00:5e:00:00:09", ip_address="198.18.1.255"),
        entry(10, 1, client_id="01:02", hostname="a b"),
        entry(11, 1, hw_address="02:00:5e:00:00:01"),  # no address: one record per scope
        Entry("reservations[0]", GLOBAL, {"client-id": "01", "x": 1}),
    ]
    checked = check(entries, SCOPES)
    assert checked.refusals == [
        "line 2: hw-address: '02:00:5e:00:00:0z' is neither hex nor 'quoted text'",
        "line 3: duplicate hw-address 02:00:5e:00:00:01 (line 1)",
        "line 4: duplicate address 198.18.1.10 (line 1)",
        "line 5: 198.18.9.10 is outside every served subnet",
        "line 6: 198.18.2.10 is outside scope 1's subnet 198.18.1.0/24",
        "line 7: scope 9 does not exist (etcdhcpctl scope list)",
        "line 8: 02:00:5e:00:00:01 has 198.18.1.10 already (line 1): a MAC holds one reserved "
        "address",
        "line 9: 198.18.1.255 is the network or broadcast address of 198.18.1.0/24",
        "line 10: hostname: 'a b' is not a host name (labels of letters, digits, '-')",
        "reservations[0].x: is not supported by etcdhcp (docs/hosts.md)",
    ]
    assert [h.name for h in checked.hosts] == [
        "0/hw-address=02:00:5e:00:00:01",
        "1/hw-address=02:00:5e:00:00:01",
    ]
    assert checked.where == {
        h.key: w for h, w in zip(checked.hosts, ["line 1", "line 11"], strict=True)
    }


def test_check_takes_the_live_servers_subnets_for_global_hosts() -> None:
    entries = [entry(1, client_id="01", ip_address="198.18.9.10")]
    assert check(entries, SCOPES).refusals
    assert not check(entries, SCOPES, [ipaddress.IPv4Network("198.18.9.0/24")]).refusals


# ---- export ---------------------------------------------------------------------------


def hosts(*docs: tuple[int, dict[str, Any]]) -> list[Any]:
    return [parse_host(doc, "h", scope) for scope, doc in docs]


def test_json_export_reads_back_as_it_was() -> None:
    exported = hosts(
        (2, {"client-id": "01:02", "option-data": [{"name": "domain-name", "data": "x"}]}),
        (GLOBAL, {"hw-address": "02:00:5e:00:00:01", "ip-address": "198.18.1.10"}),
    )
    data = to_json(exported)
    assert data == {
        "reservations": [{"hw-address": "02:00:5e:00:00:01", "ip-address": "198.18.1.10"}],
        "subnet4": [{"id": 2, "reservations": [dict(exported[0].document)]}],
    }
    again = check(read_json(json.loads(json.dumps(data))).entries, SCOPES)
    assert sorted(again.hosts, key=lambda h: h.key) == sorted(exported, key=lambda h: h.key)


def test_csv_export_reads_back_and_refuses_what_csv_cannot_hold() -> None:
    exported = hosts(
        (1, {"hw-address": "02:00:5e:00:00:01", "ip-address": "198.18.1.10", "hostname": "pc"}),
        (1, {"hw-address": "02:00:5e:00:00:02", "boot-file-name": "pxelinux.0"}),
    )
    text = to_csv(exported)
    assert text == (
        "mac,ip,hostname,bootfile\n"
        "02:00:5e:00:00:01,198.18.1.10,pc,\n"
        "02:00:5e:00:00:02,,,pxelinux.0\n"
    )
    assert check(read_csv(text, 1).entries, SCOPES).hosts == exported
    with pytest.raises(ValueError, match="1/client-id=01: CSV cannot hold its client-id"):
        to_csv(hosts((1, {"client-id": "01"})))
    with pytest.raises(ValueError, match="CSV cannot hold its option-data"):
        to_csv(hosts((1, {"hw-address": "02:00:5e:00:00:01", "option-data": []})))
    with pytest.raises(ValueError, match="hosts of scopes 1, 2: CSV holds one scope's"):
        to_csv(
            hosts(
                (1, {"hw-address": "02:00:5e:00:00:01"}), (2, {"hw-address": "02:00:5e:00:00:01"})
            )
        )
