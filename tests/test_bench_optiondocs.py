"""The options scenario's configurations: valid documents etcdhcp accepts, 20 options over
every level, classes that perfdhcp's clients partly match, replies that fit."""

from __future__ import annotations

import dataclasses
import json

import pytest
from bench import optiondocs
from bench.servers import SMALL_POOL
from tests import packets

from etcdhcp import codec, globalconfig, options, scopes

PERFDHCP_PRL = [1, 28, 2, 3, 15, 6, 12]  # what perfdhcp 2.2 asks for
PERFDHCP_CLIENTS = 3000  # the bench's --clients: MACs 02:00:00:00:00:00 + 0..2999


def _view(name: str) -> scopes.ScopeSet:
    docs = [
        scopes.Document(doc, text.encode(), i + 1)
        for i, (doc, text) in enumerate(optiondocs.documents(optiondocs.kea_config(name)).items())
    ]
    built = globalconfig.assemble(docs, None, {})
    assert built.problems == {}
    return built.scopes


def _perfdhcp_discover() -> codec.Request:
    option_60 = bytes.fromhex(optiondocs.PERFDHCP_OPTIONS[0].partition(",")[2])
    return packets.decoded(
        packets.discover(
            "02:00:00:00:00:00",
            giaddr=optiondocs.RELAY_IP,
            options=[
                ("param_req_list", PERFDHCP_PRL),
                (60, option_60),
                ("client_id", b"\x01" + bytes(6)),  # perfdhcp's: type 1 and the MAC
            ],
        )
    )


def test_both_configurations_serve_the_bench_pool_from_one_scope() -> None:
    for name in optiondocs.CONFIGS:
        (scope,) = _view(name).scopes
        assert scope.size() == SMALL_POOL.size
    assert set(optiondocs.documents(optiondocs.kea_config("scope"))) == {"subnet4/1"}
    with pytest.raises(ValueError, match="not one of"):
        optiondocs.kea_config("plain")


def test_twenty_options_over_every_level_and_five_classes() -> None:
    config = optiondocs.kea_config("options")
    assert optiondocs.option_data_count(config) == 20
    dhcp4 = config["Dhcp4"]
    assert len(dhcp4["client-classes"]) == 5
    assert all(c["option-data"] for c in dhcp4["client-classes"])
    assert dhcp4["option-data"] and dhcp4["subnet4"][0]["pools"][0]["option-data"]
    assert json.loads(optiondocs.documents(config)["global/dhcp4"])["next-server"]


def test_perfdhcps_clients_match_the_classes_in_part_and_every_reply_fits() -> None:
    view = _view("options")
    level = globalconfig.of(view)
    (scope,) = view.scopes
    discover = _perfdhcp_discover()
    members: dict[str, int] = {}
    combos = set()
    for r in range(PERFDHCP_CLIENTS):
        chaddr = bytes.fromhex("020000000000") + bytes(10)
        chaddr = chaddr[:4] + r.to_bytes(2, "big") + chaddr[6:]
        names = level.classes.classify(dataclasses.replace(discover, chaddr=chaddr))
        combos.add(names)
        for name in names:
            members[name] = members.get(name, 0) + 1
    assert members == {
        "ALL": 3000,
        "VENDOR_CLASS_PXEClient:Arch:00000:UNDI:002001": 3000,
        "pxe": 3000,
        "relay-a": 3000,
        "mac-low": 256,
        "odd": 1500,
    }
    for names in combos:
        defined = level.classes.of(names)
        sent = options.assemble(
            discover, codec.ACK, "198.18.0.1", scope, SMALL_POOL.first, 3600, None, level, defined
        )
        dropped: list[int] = []
        reply = codec.Reply(codec.ACK, discover, yiaddr=SMALL_POOL.first, options=sent)
        codec.encode_bootp(reply, "198.18.0.1", dropped.append)
        assert dropped == []
        codes = {code for code, _ in sent}
        assert {15, 2, 42, 119, 224, 66, 67, 44, 46, 3, 6, 28, 23, 37} <= codes
        assert (26 in codes) == ("mac-low" in names) and (69 in codes) == ("odd" in names)
