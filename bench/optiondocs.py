"""The options scenario's configurations, as Kea writes them, and their writing into the
bench etcd (etcdctl put of each document: the bench does not depend on etcdhcpctl).

Both serve what the flags' scope serves (198.18.0.0/16, the bench's pool, 1 h leases):

* `scope`: one `subnet4` document with the flags' router and DNS server, nothing else
  (the cost of serving from a document rather than from the flags);
* `options`: the same scope with 20 `option-data` entries spread over every level, five
  client classes whose tests perfdhcp's clients partly match, a custom option
  definition and the boot fields:

  global: 15 domain-name, 2 time-offset, 42 ntp-servers, 119 domain-search and 224
    site-id (an option-def); next-server. Every client.
  class `pxe` (option 60 starts with `PXEClient`): 66, 67; boot-file-name and
    server-hostname. Every client (perfdhcp -o 60).
  class `uefi` (option 93 is 7): 67, 26; boot-file-name. None (perfdhcp sends no 93).
  class `relay-a` (giaddr 198.18.0.2): 44, 46. Every client (all come through relay-0).
  class `mac-low` (the 5th MAC byte is 0): 26, 121. 256 of perfdhcp's 3,000 MACs.
  class `odd` (member of relay-a, last MAC digit odd): 69, and 15 over the global
    one. Half of them.
  scope: 3 routers, 6 domain-name-servers, 28 broadcast-address. pool: 23
    default-ip-ttl, 37 default-tcp-ttl. Every client.

  perfdhcp asks for 1, 28, 2, 3, 15, 6 and 12 (its parameter request list): every
  other option is `always-send`, so each reply carries the 14-17 that apply to its
  client (21-24 options with the lease's and the echo of perfdhcp's client-id: a
  388-412-byte message, within the 576 of a client that sends no option 57; the plain
  reply is 300 bytes with 9 options).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.netlab import BenchLab
from bench.servers import LEASE_SECONDS, SMALL_POOL, SUBNET

SERVER_IP = "198.18.0.1"
RELAY_IP = "198.18.0.2"  # relay-0, where perfdhcp runs
PREFIX = "etcdhcp::"  # -etcd.prefix's default
CONFIGS = ("scope", "options")
OPTION_60 = b"PXEClient:Arch:00000:UNDI:002001"  # a BIOS PXE ROM's vendor class
PERFDHCP_OPTIONS = (f"60,{OPTION_60.hex()}",)  # perfdhcp -o: sent in DISCOVER and REQUEST
_ODD = " or ".join(f"substring(hexstring(pkt4.mac, ''), 11, 1) == '{d}'" for d in "13579bdf")


def _always(name: str, data: str) -> dict[str, Any]:
    return {"name": name, "data": data, "always-send": True}


def _classes() -> list[dict[str, Any]]:
    return [
        {
            "name": "pxe",
            "test": "substring(option[60].text, 0, 9) == 'PXEClient'",
            "option-data": [
                _always("tftp-server-name", SERVER_IP),
                _always("boot-file-name", "pxelinux.0"),
            ],
            "boot-file-name": "pxelinux.0",
            "server-hostname": "boot",
        },
        {
            "name": "uefi",
            "test": "option[93].hex == 0x0007",
            "option-data": [
                _always("boot-file-name", "ipxe.efi"),
                _always("interface-mtu", "1500"),
            ],
            "boot-file-name": "ipxe.efi",
        },
        {
            "name": "relay-a",
            "test": f"pkt4.giaddr == {RELAY_IP}",
            "option-data": [
                _always("netbios-name-servers", SERVER_IP),
                _always("netbios-node-type", "8"),
            ],
        },
        {
            "name": "mac-low",
            "test": "substring(pkt4.mac, 4, 1) == 0x00",
            "option-data": [
                _always("interface-mtu", "9000"),
                _always("classless-static-route", f"198.18.64.0/18 - {SERVER_IP}"),
            ],
        },
        {
            "name": "odd",
            "test": f"member('relay-a') and ({_ODD})",
            "option-data": [
                _always("smtp-server", SERVER_IP),
                {"name": "domain-name", "data": "odd.bench.example"},
            ],
        },
    ]


def _subnet(options: bool) -> dict[str, Any]:
    pool: dict[str, Any] = {"pool": f"{SMALL_POOL.first} - {SMALL_POOL.last}"}
    scope_options = [
        {"name": "routers", "data": SERVER_IP},
        {"name": "domain-name-servers", "data": SERVER_IP},
    ]
    if options:
        scope_options.append({"name": "broadcast-address", "data": str(SUBNET[-1])})
        pool["option-data"] = [_always("default-ip-ttl", "64"), _always("default-tcp-ttl", "64")]
    return {
        "id": 1,
        "subnet": str(SUBNET),
        "pools": [pool],
        "valid-lifetime": LEASE_SECONDS,
        "option-data": scope_options,
    }


def kea_config(name: str) -> dict[str, Any]:
    """Configuration `name` (one of CONFIGS) as a kea-dhcp4.conf's `Dhcp4` object."""
    if name not in CONFIGS:
        raise ValueError(f"{name!r} is not one of {', '.join(CONFIGS)}")
    dhcp4: dict[str, Any] = {"subnet4": [_subnet(name == "options")]}
    if name == "options":
        dhcp4 |= {
            "option-def": [{"name": "site-id", "code": 224, "type": "string"}],
            "option-data": [
                {"name": "domain-name", "data": "bench.example"},
                {"name": "time-offset", "data": "3600"},
                _always("ntp-servers", SERVER_IP),
                _always("domain-search", "bench.example"),
                _always("site-id", "hq"),
            ],
            "client-classes": _classes(),
            "next-server": SERVER_IP,
        }
    return {"Dhcp4": dhcp4}


def documents(config: dict[str, Any]) -> dict[str, str]:
    """The etcdhcp documents of a Kea configuration: each subnet4 entry, and the global
    document from the rest (when there is a rest), by document name."""
    dhcp4 = dict(config["Dhcp4"])
    docs = {f"subnet4/{entry['id']}": json.dumps(entry) for entry in dhcp4.pop("subnet4")}
    if dhcp4:
        docs["global/dhcp4"] = json.dumps(dhcp4)
    return docs


def option_data_count(config: dict[str, Any]) -> int:
    """`option-data` entries at every level (global, classes, scopes, pools)."""
    dhcp4 = config["Dhcp4"]
    levels = [dhcp4, *dhcp4.get("client-classes", [])]
    for entry in dhcp4["subnet4"]:
        levels += [entry, *entry["pools"]]
    return sum(len(level.get("option-data", [])) for level in levels)


def write(bench: BenchLab, name: str, out: Path) -> None:
    """Put configuration `name` into the (emptied) bench etcd, one key per document, and
    leave the Kea file in `out` as options-<name>.json (what `etcdhcpctl import-kea`
    would take): the lab's directory goes at the end of the run."""
    config = kea_config(name)
    (out / f"options-{name}.json").write_text(json.dumps(config, indent=2) + "\n")
    for doc, text in documents(config).items():
        kind, _, key = doc.partition("/")
        bench.etcdctl("put", f"{PREFIX}config::{kind}::{key}", text)
