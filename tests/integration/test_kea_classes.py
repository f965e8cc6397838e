"""Client classes against Kea 2.2, whole replies: the same configuration, the same requests.

kea-dhcp4 serves CONFIG, then etcdhcp serves the same file loaded with `etcdhcpctl
import-kea`; a relay agent (a lab namespace with one address per client link, 198.18.16x)
sends the same scapy-built DISCOVERs, then REQUESTs for what each server offered, to
both. Every reply is compared whole: message type, every option's bytes (the set of
codes, not their order), siaddr, sname, file, and the pool yiaddr comes from (the
servers pick different addresses in a pool). CONFIG's classes are classify.json's and
classify2.json's as written where etcdhcp takes the keys, vendor-specific.json's
VENDOR_CLASS_339, and this file's own (PXE, iPXE, option 93, relay sub-options, MAC
prefixes, member(), precedence).

Adapted from ISC's examples, and why:
  * subnets and boot addresses moved into 198.18.160.0/20, selected by giaddr (or by
    option 118, or a shared network's relay address);
  * VoIP's class-level `option-def` (43 encapsulating "aastra") and VENDOR_CLASS_339's
    (43 encapsulating "339") are not taken by etcdhcp: the 339 one is global here, as
    Kea 2.2 allows too; classify2.json's `only-if-required` class and
    `require-client-classes` are left out, and its host reservations (no client here
    has one, so every client is UNKNOWN, as in Kea without reservations);
  * classify.json's second pool of 192.0.4.0/23 is open to every client; here it is
    for clients outside VoIP (class `not-voip`), so each client may use one pool.

Differences kept, and why:
  * which address and, in a shared network, which subnet: Kea's iterative allocator
    takes the first pool first, and in a shared network whose subnets have the same
    `client-class` it prefers the subnet it allocated from last (a phone relayed from
    dorm's VoIP-only pool got the open sibling after a PC had); etcdhcp takes a free
    address at random from every pool the client may use, the link's subnet first.
    Allocation order is not configuration: here every client may use one pool only;
  * with no next-server anywhere etcdhcp sets siaddr to its own address, like the
    original etcdhcp; Kea sends 0.0.0.0 (not exercised: CONFIG has a global one);
  * a UEFI HTTP boot client (option 60 `HTTPClient...`) gets `HTTPClient` back in
    option 60 from etcdhcp even when no class configures it (UEFI requires it); Kea
    only when configured, as CONFIG's `http-boot` class does.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP

from .conftest import _require_lab_host
from .daemon import SRC, EtcdhcpProcess
from .dhcpprobe import raw_options
from .kea import Kea, base_config
from .lab import Client, Lab

RELAY_IP = "198.18.0.250"  # the relay agent's leg on the server LAN
LINKS = "198.18.160.0/20"  # every client link, routed through the relay agent
BOOT = "198.18.169.9"  # boot servers: addresses nobody has (siaddr is only compared)
PREFIX = "kea-classes::"


def _tags(*names: str, first: int = 224) -> list[dict[str, Any]]:
    """Site-specific string options that show which classes a reply came from."""
    return [{"name": n, "code": first + i, "type": "string"} for i, n in enumerate(names)]


TAGS = _tags(
    "tag-discover", "tag-broken", "tag-uefi", "tag-rack", "tag-remote-id", "tag-giaddr",
    "tag-oui", "tag-voip-rack", "tag-pxe", "tag-hexstring", "tag-no-client-id", "tag-order",
    "tag-order2", "tag-vendor-order", "tag-unknown", "tag-docsis", "tag-arch",
)  # fmt: skip
PRL = [1, 2, 3, 6, 15, 26, 42, 43, 60, 66, 67, *range(224, 224 + len(TAGS))]


def _class(name: str, test: str, *options: tuple[str, str], **boot: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "test": test}
    if options:
        entry["option-data"] = [{"name": n, "data": d} for n, d in options]
    entry.update({k.replace("_", "-"): v for k, v in boot.items()})
    return entry


CLASSES: list[dict[str, Any]] = [
    # classify.json, as written
    {"name": "special_snowflake", "test": "pkt4.mac == 0x010203040506",
     "option-data": [{"name": "domain-name-servers", "data": "127.0.0.1"}]},
    {"name": "discovers", "test": "pkt4.msgtype == 1"},
    {"name": "broken", "test": "pkt4.transid == 0"},
    {"name": "VoIP", "test": "substring(option[60].hex,0,6) == 'Aastra'",
     "next-server": "198.18.169.254", "server-hostname": "hal9000",
     "boot-file-name": "/dev/null"},
    # classify2.json: KNOWN needs a host reservation, so nobody here is in it
    {"name": "VoIP_host", "test": "member('VoIP') and member('KNOWN')",
     "server-hostname": "hal9001"},
    # vendor-specific.json's class, its option 43 definition made global
    {"name": "VENDOR_CLASS_339", "option-data": [
        {"name": "vendor-encapsulated-options"},
        {"always-send": True, "data": "123", "name": "vlanid", "space": "339"},
        {"always-send": True, "data": "sdlp://198.18.169.11:18443", "name": "dls",
         "space": "339"}]},
    # network boot: iPXE first, so its second DHCP does not chainload iPXE again
    _class("ipxe", "substring(option[77].hex,0,4) == 'iPXE'",
           boot_file_name=f"http://{BOOT}/boot.ipxe"),
    _class("uefi64", "option[93].hex == 0x0007", ("tag-uefi", "uefi"),
           boot_file_name="uefi64.efi"),
    _class("bios", "option[93].hex == 0x0000", boot_file_name="bios.kpxe"),
    {"name": "http-boot", "test": "substring(option[60].hex,0,10) == 'HTTPClient'",
     "boot-file-name": f"http://{BOOT}/shim.efi",
     "option-data": [{"name": "vendor-class-identifier", "data": "HTTPClient",
                      "always-send": True}]},
    # classify.json's tests seen through options
    _class("seen-discover", "member('discovers')", ("tag-discover", "discover")),
    _class("seen-broken", "member('broken')", ("tag-broken", "xid 0")),
    _class("not-voip", "not member('VoIP')"),
    # relay agent, giaddr, MAC
    _class("rack7", "relay4[1].hex == 'rack7'", ("tag-rack", "rack7")),
    _class("remote-id", "relay4[2].exists", ("tag-remote-id", "has remote-id")),
    _class("campus-relay", "pkt4.giaddr == 198.18.166.1", ("tag-giaddr", "via 166.1")),
    _class("oui", "substring(pkt4.mac,0,3) == 0x02aabb", ("tag-oui", "02:aa:bb")),
    _class("voip-rack7", "member('VoIP') and member('rack7')", ("tag-voip-rack", "both")),
    _class("pxe", "substring(option[60].text,0,9) == 'PXEClient'", ("tag-pxe", "pxe")),
    _class("hexstring", "hexstring(substring(pkt4.mac,4,2),':') == 'dd:ee'",
           ("tag-hexstring", "dd:ee")),
    _class("no-client-id", "ifelse(option[61].exists, 'id', 'none') == 'none'",
           ("tag-no-client-id", "none")),
    _class("docsis", "vendor-class[4491].exists", ("tag-docsis", "4491")),
    _class("arch7", "split(option[60].text, ':', 3) == '00007'", ("tag-arch", "7")),
    # Kea puts every client without a host reservation in UNKNOWN (classify2.json)
    _class("unknown", "option[60].hex == 'unknown' and member('UNKNOWN')",
           ("tag-unknown", "no reservation")),
    # two classes setting one option: the first wins; a later VENDOR_CLASS_ one
    _class("order-1", "option[60].hex == 'order'", ("tag-order", "first")),
    _class("order-2", "option[60].hex == 'order'", ("tag-order", "second"),
           ("tag-order2", "second")),
    _class("vendor-early", "option[60].hex == 'vc-order'", ("tag-vendor-order", "defined")),
    {"name": "VENDOR_CLASS_vc-order",
     "option-data": [{"name": "tag-vendor-order", "data": "vendor class"}]},
    # precedence: the class level
    _class("prec", "option[60].hex == 'prec'", ("domain-name", "class.example"),
           ("ntp-servers", "198.18.169.2"), ("interface-mtu", "1300")),
]  # fmt: skip


def _subnet(sid: int, cidr: str, *pools: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"id": sid, "subnet": cidr, "pools": list(pools), **more}


def _pool(pool: str, **more: Any) -> dict[str, Any]:
    return {"pool": pool, **{k.replace("_", "-"): v for k, v in more.items()}}


SUBNETS = [
    # classify.json's three subnets
    _subnet(160, "198.18.160.0/24", _pool("198.18.160.10 - 198.18.160.20"),
            **{"client-class": "VoIP"}),
    _subnet(161, "198.18.161.0/24", _pool("198.18.161.10 - 198.18.161.60")),
    _subnet(162, "198.18.162.0/23", _pool("198.18.162.10 - 198.18.162.20", client_class="VoIP"),
            _pool("198.18.163.10 - 198.18.163.20", client_class="not-voip")),
    # precedence: pool over subnet over class over global
    _subnet(167, "198.18.167.0/24", _pool("198.18.167.10 - 198.18.167.20", option_data=[
        {"name": "domain-name", "data": "pool.example"}]), **{"option-data": [
        {"name": "domain-name", "data": "subnet.example"},
        {"name": "ntp-servers", "data": "198.18.169.3"}]}),
    # boot fields at the subnet level
    _subnet(168, "198.18.168.0/24", _pool("198.18.168.10 - 198.18.168.40"),
            **{"next-server": "198.18.169.8", "boot-file-name": "subnet.file"}),
    # classify2.json's KNOWN / UNKNOWN pools
    _subnet(170, "198.18.170.0/23",
            _pool("198.18.170.100 - 198.18.170.200", client_class="UNKNOWN"),
            _pool("198.18.171.100 - 198.18.171.200", client_class="KNOWN")),
]  # fmt: skip
CAMPUS: dict[str, Any] = {
    "name": "campus",
    "relay": {"ip-addresses": ["198.18.166.1"]},
    "server-hostname": "campus-tftp",
    "option-data": [{"name": "domain-name", "data": "campus.example"}],
    "subnet4": [
        _subnet(164, "198.18.164.0/24", _pool("198.18.164.10 - 198.18.164.20"),
                **{"client-class": "VoIP"}),
        _subnet(165, "198.18.165.0/24", _pool("198.18.165.10 - 198.18.165.20")),
    ],
}  # fmt: skip
DORM: dict[str, Any] = {  # a subnet whose only pool is for phones: everyone else gets its sibling's
    "name": "dorm",
    "subnet4": [
        _subnet(172, "198.18.172.0/24",
                _pool("198.18.172.10 - 198.18.172.20", client_class="VoIP")),
        _subnet(173, "198.18.173.0/24", _pool("198.18.173.10 - 198.18.173.20")),
    ],
}  # fmt: skip
GLOBAL: dict[str, Any] = {
    "valid-lifetime": 600,
    "renew-timer": 150,
    "rebind-timer": 450,
    "next-server": BOOT,
    "server-hostname": "global-tftp",
    "boot-file-name": "global.file",
    "option-def": [
        {"name": "vendor-encapsulated-options", "code": 43, "type": "empty",
         "encapsulate": "339"},
        {"name": "vlanid", "code": 2, "space": "339", "type": "uint32"},
        {"name": "dls", "code": 3, "space": "339", "type": "string"},
        *TAGS,
    ],
    "option-data": [
        {"name": "domain-name", "data": "global.example"},
        {"name": "ntp-servers", "data": "198.18.169.1"},
        {"name": "interface-mtu", "data": "1400"},
        {"name": "time-offset", "data": "-3600"},
    ],
    "client-classes": CLASSES,
    "subnet4": SUBNETS,
    "shared-networks": [CAMPUS, DORM],
}  # fmt: skip
POOLS = [
    pool["pool"]
    for subnet in [*SUBNETS, *CAMPUS["subnet4"], *DORM["subnet4"]]
    for pool in subnet["pools"]
]


@dataclass(frozen=True)
class Ask:
    """One client: the link it is relayed from and what its requests carry."""

    name: str
    link: int  # the third octet of its giaddr, 198.18.<link>.1
    options: dict[int, bytes] = field(default_factory=dict)
    kea: dict[str | int, Any] = field(default_factory=dict)  # what Kea 2.2 offers, pinned
    mac: str = ""
    xid: int | None = None
    agent: bytes = b"\x01\x05link0"  # option 82: circuit-id, as a relay agent sends

    @property
    def giaddr(self) -> str:
        return f"198.18.{self.link}.1"


AASTRA = {60: b"Aastra6731i"}
SUBNET_SELECTION = 118
VOIP_BOOT = {"siaddr": "198.18.169.254", "sname": b"hal9000", "file": b"/dev/null"}


def _ip(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def _pool_in(third: int) -> str:
    """CONFIG's pool in 198.18.<third>.0/24."""
    return next(p for p in POOLS if p.startswith(f"198.18.{third}."))


ASKS = {
    "classes": [
        Ask("plain", 161, kea={224: b"discover", 6: None}),
        Ask("snowflake", 161, mac="01:02:03:04:05:06", kea={6: _ip("127.0.0.1")}),
        Ask("broken", 161, xid=0, kea={225: b"xid 0"}),
        Ask("voip", 161, AASTRA, kea=VOIP_BOOT),
        Ask("rack7", 161, agent=b"\x01\x05rack7\x02\x01x",
            kea={227: b"rack7", 228: b"has remote-id"}),
        Ask("voip-rack7", 161, AASTRA, agent=b"\x01\x05rack7", kea={231: b"both", 228: None}),
        Ask("oui", 161, mac="02:aa:bb:cc:dd:ee", kea={230: b"02:aa:bb", 233: b"dd:ee"}),
        Ask("pxe-efi", 161, {60: b"PXEClient:Arch:00007:UNDI:003016", 93: b"\x00\x07"},
            kea={232: b"pxe", 240: b"7", "file": b"uefi64.efi"}),
        Ask("client-id", 161, {61: b"\x01\x02\x00\x5e\x10\x00\x99"}, kea={234: None}),
        Ask("docsis", 161, {124: b"\x00\x00\x11\x8b\x05\x04abcd"}, kea={239: b"4491"}),
        Ask("vendor-339", 161, {60: b"339"},
            kea={43: b"\x02\x04\x00\x00\x00\x7b\x03\x1asdlp://198.18.169.11:18443"}),
        Ask("order", 161, {60: b"order"}, kea={235: b"first", 236: b"second"}),
        Ask("vendor-order", 161, {60: b"vc-order"}, kea={237: b"vendor class"}),
        Ask("unknown", 161, {60: b"unknown"}, kea={238: b"no reservation"}),
        Ask("campus-relay", 166, kea={229: b"via 166.1"}),
        Ask("empty-agent", 161, agent=b"", kea={82: None}),
    ],
    "precedence": [  # pool > subnet > shared network > class > global, as Kea documents
        Ask("prec-pool", 167, {60: b"prec"}, kea={
            15: b"pool.example", 42: _ip("198.18.169.3"), 26: b"\x05\x14", 2: b"\xff\xff\xf1\xf0"}),
        Ask("plain-pool", 167, kea={15: b"pool.example", 26: b"\x05\x78"}),
        Ask("prec-subnet", 161, {60: b"prec"}, kea={
            15: b"class.example", 42: _ip("198.18.169.2"), 26: b"\x05\x14"}),
        Ask("prec-network", 166, {60: b"prec"}, kea={15: b"campus.example", 26: b"\x05\x14"}),
    ],
    "boot": [  # class > subnet > shared network > global
        Ask("plain-boot", 168, kea={"siaddr": "198.18.169.8", "sname": b"global-tftp",
                                    "file": b"subnet.file"}),
        Ask("uefi-boot", 168, {93: b"\x00\x07"}, kea={"siaddr": "198.18.169.8",
                                                        "file": b"uefi64.efi"}),
        Ask("bios-boot", 168, {93: b"\x00\x00"}, kea={"file": b"bios.kpxe"}),
        Ask("ipxe-boot", 168, {93: b"\x00\x00", 77: b"iPXE"},
            kea={"file": f"http://{BOOT}/boot.ipxe".encode()}),
        Ask("voip-boot", 168, {**AASTRA, 93: b"\x00\x07"}, kea=VOIP_BOOT),
        Ask("http-boot", 168, {60: b"HTTPClient:Arch:00016:UNDI:003001"},
            kea={60: b"HTTPClient", "file": f"http://{BOOT}/shim.efi".encode()}),
        Ask("campus-boot", 165, kea={"siaddr": BOOT, "sname": b"campus-tftp"}),
        Ask("voip-campus-boot", 164, AASTRA, kea=VOIP_BOOT),
    ],
    "restrictions": [
        Ask("voip-only", 160, AASTRA, kea={"pool": _pool_in(160)}),
        Ask("plain-only", 160, kea={"pool": None}),
        Ask("voip-split", 162, AASTRA, kea={"pool": _pool_in(162)}),
        Ask("plain-split", 162, kea={"pool": _pool_in(163)}),
        Ask("unknown-pool", 170, kea={"pool": _pool_in(170)}),
        Ask("voip-phones", 164, AASTRA, kea={"pool": _pool_in(164)}),
        Ask("plain-phones", 164, kea={"pool": None}),
        Ask("plain-phones-118", 161, {SUBNET_SELECTION: _ip("198.18.164.1")}, kea={"pool": None}),
        Ask("voip-phones-118", 161, {**AASTRA, SUBNET_SELECTION: _ip("198.18.164.1")},
            kea={"pool": _pool_in(164)}),
        Ask("voip-open", 165, AASTRA, kea={"pool": _pool_in(165)}),
        Ask("voip-relay", 166, AASTRA, kea={"pool": _pool_in(164)}),
        Ask("plain-relay", 166, kea={"pool": _pool_in(165)}),
        Ask("plain-dorm", 172, kea={"pool": _pool_in(173)}),
    ],
}  # fmt: skip


def _all_asks() -> list[tuple[int, Ask]]:
    """Every ask with its xid (its own, or its position), each with a MAC of its own."""
    found = []
    for i, ask in enumerate(a for group in ASKS.values() for a in group):
        mac = ask.mac or f"02:00:5e:10:00:{i:02x}"
        found.append((i + 1 if ask.xid is None else ask.xid, dataclasses.replace(ask, mac=mac)))
    return found


def _request(xid: int, ask: Ask, offer: Reply | None = None) -> bytes:
    """A relayed DISCOVER (or the REQUEST for `offer`), as the relay agent forwards it."""
    head: list[Any] = [("message-type", "request" if offer else "discover")]
    if offer is not None:
        head += [("requested_addr", offer.yiaddr), (54, offer.options[54])]
    options = [*head, ("param_req_list", PRL), *ask.options.items(), (82, ask.agent), "end"]
    chaddr = bytes.fromhex(ask.mac.replace(":", ""))
    return bytes(BOOTP(xid=xid, hops=1, giaddr=ask.giaddr, chaddr=chaddr) / DHCP(options=options))


@dataclass(frozen=True)
class Reply:
    """What a server sent: the fixed fields compared, and the options by code."""

    type: int
    yiaddr: str
    siaddr: str
    sname: bytes
    file: bytes
    options: dict[int, bytes]

    @classmethod
    def parse(cls, bootp: bytes) -> Reply:
        options = raw_options(bootp)
        return cls(
            type=options.get(53, b"\0")[0],
            yiaddr=str(ipaddress.IPv4Address(bootp[16:20])),
            siaddr=str(ipaddress.IPv4Address(bootp[20:24])),
            sname=bootp[44:108].rstrip(b"\0"),
            file=bootp[108:236].rstrip(b"\0"),
            options=options,
        )

    @property
    def pool(self) -> str | None:
        """The pool (as CONFIG writes it) yiaddr is in."""
        ip = ipaddress.IPv4Address(self.yiaddr)
        for pool in POOLS:
            low, high = (ipaddress.IPv4Address(p.strip()) for p in pool.split("-"))
            if low <= ip <= high:
                return pool
        return None


# Sends every request from the relay agent's address for its link (port 67, as a relay
# agent does) and collects the replies by xid; resends what is unanswered after a second.
SENDER = r"""
import json, select, socket, sys, time
job = json.load(sys.stdin)
socks, frames, got = {}, {}, {}
for r in job["requests"]:
    if r["giaddr"] not in socks:
        s = socks[r["giaddr"]] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((r["giaddr"], 67))
    frames[r["xid"]] = (socks[r["giaddr"]], bytes.fromhex(r["frame"]))
start = time.monotonic()
for resend in (False, True):
    for xid, (s, frame) in frames.items():
        if xid not in got:
            s.sendto(frame, (job["server"], 67))
    until = start + (1.0 if not resend else job["wait"])
    while len(got) < len(frames) and time.monotonic() < until:
        ready, _, _ = select.select(list(socks.values()), [], [], until - time.monotonic())
        for s in ready:
            data = s.recv(4096)
            xid = int.from_bytes(data[4:8], "big")
            if data[0] == 2 and xid in frames:
                got.setdefault(xid, data.hex())
print(json.dumps(got))
"""


def _exchange(relay: Client, requests: dict[int, tuple[str, bytes]]) -> dict[int, Reply]:
    """Send `requests` (xid -> giaddr, frame) from the relay agent: the replies by xid."""
    job = {
        "server": "198.18.0.1",
        "wait": 2.5,
        "requests": [{"xid": x, "giaddr": g, "frame": f.hex()} for x, (g, f) in requests.items()],
    }
    out = relay.run([sys.executable, "-c", SENDER], input=json.dumps(job), stdin=None, check=True)
    return {int(x): Reply.parse(bytes.fromhex(h)) for x, h in json.loads(out.stdout).items()}


def _dora(relay: Client) -> dict[str, tuple[Reply | None, Reply | None]]:
    """Every ask's OFFER and the ACK (or NAK) to its REQUEST; None: no answer."""
    asks = _all_asks()
    offers = _exchange(relay, {x: (a.giaddr, _request(x, a)) for x, a in asks})
    requests = {x: (a.giaddr, _request(x, a, offers[x])) for x, a in asks if x in offers}
    acks = _exchange(relay, requests)
    return {a.name: (offers.get(x), acks.get(x)) for x, a in asks}


@dataclass
class Results:
    """Each server's (OFFER, ACK) per ask name."""

    kea: dict[str, tuple[Reply | None, Reply | None]]
    ours: dict[str, tuple[Reply | None, Reply | None]]


def _ctl(lab: Lab, endpoint: str, *args: str) -> str:
    argv = [sys.executable, "-m", "etcdhcp.ctl", "--config=",
            "-etcd.discovery.endpoints", endpoint, "-etcd.prefix", PREFIX, *args]  # fmt: skip
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}
    out = lab.run(None, argv, timeout=60, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory, _stale_labs_reaped: None
) -> Iterator[Results]:
    """Kea's answers, then etcdhcp's, to the same requests under the same configuration."""
    _require_lab_host()
    with Lab(workdir=tmp_path_factory.mktemp("kea-classes")) as lab:
        relay = lab.add_client("relay", address=f"{RELAY_IP}/24")
        for link in {ask.link for group in ASKS.values() for ask in group}:
            relay.run(["ip", "addr", "add", f"198.18.{link}.1/24", "dev", "eth0"], check=True)
        lab.run(lab.server_ns, ["ip", "route", "add", LINKS, "via", RELAY_IP], check=True)

        config = base_config(lab.workdir / "kea")
        config["Dhcp4"].pop("subnet4")
        config["Dhcp4"].update(GLOBAL)
        kea = Kea(lab, config).start()
        kea_replies = _dora(relay)
        assert kea.stop() == 0, kea.log()[-3000:]

        etcd = lab.etcd()
        _ctl(lab, etcd.client_url, "import-kea", str(kea.conf_path))
        daemon = EtcdhcpProcess(lab, etcd.client_url, prefix=PREFIX, issue_from=None).start()
        try:
            yield Results(kea_replies, _dora(relay))
        finally:
            status = daemon.stop()
        assert status == 0, daemon.log()[-3000:]
        assert "Traceback" not in daemon.log(), daemon.log()[-3000:]


def _differences(name: str, kea: Reply | None, ours: Reply | None) -> list[str]:
    """Every way our reply differs from Kea's, one line each."""
    if kea is None or ours is None:
        return [] if kea is ours else [f"{name}: kea {kea and kea.type} ours {ours and ours.type}"]
    fields = ("type", "pool", "siaddr", "sname", "file")
    found = [
        f"{name}: {f}: kea {getattr(kea, f)!r} ours {getattr(ours, f)!r}"
        for f in fields
        if getattr(kea, f) != getattr(ours, f)
    ]
    for code in sorted(set(kea.options) | set(ours.options)):
        theirs, mine = kea.options.get(code), ours.options.get(code)
        if theirs != mine:
            found.append(f"{name}: option {code}: kea {theirs!r} ours {mine!r}")
    return found


def _pinned(ask: Ask, offer: Reply | None) -> list[str]:
    """Where Kea's OFFER is not what `ask.kea` says it is (the test's own premise)."""
    if offer is None:
        return [] if ask.kea == {"pool": None} else [f"{ask.name}: Kea did not answer"]
    found = []
    for key, want in ask.kea.items():
        got = offer.options.get(key) if isinstance(key, int) else getattr(offer, key)
        if got != want:
            found.append(f"{ask.name}: Kea's {key} is {got!r}, not {want!r}")
    return found


def _compare(results: Results, group: str) -> None:
    premise = [line for ask in ASKS[group] for line in _pinned(ask, results.kea[ask.name][0])]
    assert not premise, "Kea 2.2 does not answer as this test assumes:\n" + "\n".join(premise)
    diffs = [
        line
        for ask in ASKS[group]
        for phase, kea, ours in zip(
            ("OFFER", "ACK"), results.kea[ask.name], results.ours[ask.name], strict=True
        )
        for line in _differences(f"{ask.name} {phase}", kea, ours)
    ]
    assert not diffs, "etcdhcp differs from Kea 2.2:\n" + "\n".join(diffs)


def test_class_selection_matches_kea(results: Results) -> None:
    _compare(results, "classes")


def test_option_precedence_matches_kea(results: Results) -> None:
    _compare(results, "precedence")


def test_boot_fields_match_kea(results: Results) -> None:
    _compare(results, "boot")


def test_client_class_restrictions_match_kea(results: Results) -> None:
    _compare(results, "restrictions")
