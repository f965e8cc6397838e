"""pipeline: whole exchanges through every stage, against a LeaseStore on the real etcd."""

from __future__ import annotations

import ipaddress
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import packets
from conftest import Keys
from etcdhcp import codec, config, globalconfig
from etcdhcp.codec import ACK, NAK, OFFER, Reply, decode
from etcdhcp.etcd import Etcd
from etcdhcp.hosts import HostIndex, parse_host
from etcdhcp.pipeline import Exchange, Pipeline
from etcdhcp.rfc2131 import Destination, destination
from etcdhcp.scopes import Defaults, Document, Link, Scope, ScopeSet, flag_scope, parse_subnet
from etcdhcp.store import HostStore, LeaseStore
from stores import make_store

SERVER = packets.SERVER_IP
OTHER_SERVER = "198.18.0.2"
POOL = [f"198.18.0.{i}" for i in range(10, 15)]
LINK = Link("eth0", SERVER)
mac = packets.mac


def lan_scope(first: str, last: str) -> Scope:
    """The served LAN, 198.18.0.0/24: router .1, DNS .3 and .4, 60 s leases."""
    return flag_scope(
        ipaddress.IPv4Network("198.18.0.0/24"),
        ipaddress.IPv4Address(first),
        ipaddress.IPv4Address(last),
        ipaddress.IPv4Address("198.18.0.1"),
        [ipaddress.IPv4Address("198.18.0.3"), ipaddress.IPv4Address("198.18.0.4")],
        60,
        "eth0",
    )


def seeded_store(etcd: Etcd, prefix: str, first: str, last: str, **kw: Any) -> LeaseStore:
    view = ScopeSet([lan_scope(first, last)])
    store = make_store(etcd, prefix, first, last, scopes=lambda: view, **kw)
    store.seed()
    return store


@pytest.fixture
def store(etcd: Etcd, etcd_prefix: str) -> LeaseStore:
    return seeded_store(etcd, etcd_prefix, POOL[0], POOL[-1])


@pytest.fixture
def responder(store: LeaseStore) -> Pipeline:
    return Pipeline(store, store.scopes)


def opts(reply: Reply) -> dict[int, bytes]:
    return dict(reply.options)


def ask(responder: Pipeline, raw: bytes) -> Reply | None:
    return responder.respond(Exchange(decode(raw), LINK))


def offer_to(responder: Pipeline, client: str, **kw: Any) -> str:
    reply = ask(responder, packets.discover(client, **kw))
    assert reply is not None and reply.message_type == OFFER
    return reply.yiaddr


def bind(responder: Pipeline, client: str) -> str:
    """DISCOVER, then a SELECTING REQUEST: the ACKed address."""
    ip = offer_to(responder, client)
    reply = ask(responder, packets.request(client, requested=ip, server_id=SERVER))
    assert reply is not None and reply.message_type == ACK and reply.yiaddr == ip
    return ip


def test_discover_gets_an_offer_with_the_configuration(responder: Pipeline, keys: Keys) -> None:
    reply = ask(responder, packets.dhclient_discover(mac(1)))
    assert reply is not None
    assert reply.message_type == OFFER
    assert reply.yiaddr in POOL
    options = opts(reply)
    assert {1, 3, 6, 51, 54, 58, 59} <= set(options)
    assert options[1] == codec.ip_option("255.255.255.0")
    assert options[3] == codec.ip_option("198.18.0.1")
    assert options[6] == codec.ip_option("198.18.0.3", "198.18.0.4")
    assert options[51] == codec.u32_option(60)
    assert options[54] == codec.ip_option(SERVER)
    assert options[58] == codec.u32_option(30)
    assert options[59] == codec.u32_option(52)
    assert reply.options[0] == (53, bytes((OFFER,)))
    # The offer is held for the client and out of the free pool.
    assert keys.get(f"ips::offered::{reply.yiaddr}") == mac(1)
    assert keys.get(f"nics::offered::{mac(1)}") == reply.yiaddr
    assert keys.get(f"ips::free::{reply.yiaddr}") is None
    # It goes out as an encodable frame to chaddr at yiaddr.
    assert destination(reply) == Destination(reply.yiaddr, 68, mac(1))
    assert len(codec.encode_bootp(reply, SERVER)) >= 300


def test_second_discover_gets_the_same_address(responder: Pipeline) -> None:
    first = offer_to(responder, mac(1))
    assert offer_to(responder, mac(1)) == first
    assert offer_to(responder, mac(2)) != first


def test_discover_with_requested_free_address_gets_it(responder: Pipeline) -> None:
    assert offer_to(responder, mac(1), requested="198.18.0.13") == "198.18.0.13"
    # Taken (offered to mac 1): someone else asking for it gets another address.
    assert offer_to(responder, mac(2), requested="198.18.0.13") != "198.18.0.13"
    # Off the subnet: ignored, any pool address.
    assert offer_to(responder, mac(3), requested="10.9.9.9") in POOL


def test_selecting_request_acks_and_writes_the_contract_keys(
    responder: Pipeline, keys: Keys
) -> None:
    ip = offer_to(responder, mac(1))
    raw = packets.request(mac(1), requested=ip, server_id=SERVER, options=[("hostname", b"pc1")])
    reply = ask(responder, raw)
    assert reply is not None and reply.message_type == ACK
    assert reply.yiaddr == ip
    assert {1, 3, 6, 51, 54, 58, 59} <= set(opts(reply))
    assert keys.get(f"ips::leased::{ip}") == mac(1)
    assert keys.get(f"nics::leased::{mac(1)}") == ip
    assert keys.get(f"ips::free::{ip}") is None
    assert keys.get(f"ips::offered::{ip}") is None
    assert keys.get(f"nics::offered::{mac(1)}") is None
    info = json.loads(keys.get(f"leases::{ip}") or "{}")
    assert info["mac"] == mac(1) and info["ip"] == ip
    assert info["hostname"] == "pc1" and info["server"] == SERVER
    assert info["expires"] == pytest.approx(info["granted"] + 60)


def test_selecting_another_server_is_silent_and_returns_the_offer(
    responder: Pipeline, keys: Keys
) -> None:
    ip = offer_to(responder, mac(1))
    other = "198.18.0.99"
    raw = packets.request(mac(1), requested=other, server_id=OTHER_SERVER)
    assert ask(responder, raw) is None
    assert keys.get(f"ips::free::{ip}") == ip
    assert keys.get(f"ips::offered::{ip}") is None
    assert keys.get(f"nics::offered::{mac(1)}") is None


def test_selecting_another_server_keeps_an_offer_for_the_requested_address(
    responder: Pipeline, keys: Keys
) -> None:
    ip = offer_to(responder, mac(1))
    assert ask(responder, packets.request(mac(1), requested=ip, server_id=OTHER_SERVER)) is None
    assert keys.get(f"ips::offered::{ip}") == mac(1)
    assert keys.get(f"ips::free::{ip}") is None


def test_init_reboot(responder: Pipeline, keys: Keys) -> None:
    ip = bind(responder, mac(1))
    # Its own address: ACK.
    reply = ask(responder, packets.request(mac(1), requested=ip))
    assert reply is not None and reply.message_type == ACK and reply.yiaddr == ip
    # Another address: NAK, broadcast, with a message, and the lease is untouched.
    wrong = next(a for a in POOL if a != ip)
    nak = ask(responder, packets.request(mac(1), requested=wrong))
    assert nak is not None and nak.message_type == NAK
    assert nak.yiaddr == "0.0.0.0"
    assert 51 not in opts(nak) and 56 in opts(nak)
    assert destination(nak).mac == "ff:ff:ff:ff:ff:ff"
    assert keys.get(f"nics::leased::{mac(1)}") == ip
    # Off the subnet: NAK.
    off = ask(responder, packets.request(mac(1), requested="10.1.2.3"))
    assert off is not None and off.message_type == NAK
    # A client we know nothing about: silence, and the address stays free.
    before = keys.all()
    assert ask(responder, packets.request(mac(2), requested=wrong)) is None
    assert keys.all() == before


def test_renewing_extends_the_lease(etcd: Etcd, etcd_prefix: str, keys: Keys) -> None:
    now = [1_900_000_000.0]
    store = seeded_store(etcd, etcd_prefix, POOL[0], POOL[-1], clock=lambda: now[0])
    responder = Pipeline(store, store.scopes)
    ip = bind(responder, mac(1))
    first = json.loads(keys.get(f"leases::{ip}") or "{}")
    now[0] += 20
    reply = ask(responder, packets.renew(mac(1), ip))
    assert reply is not None and reply.message_type == ACK
    assert reply.yiaddr == ip
    assert destination(reply) == Destination(ip, 68, mac(1))  # at its MAC, not the ARP cache's
    second = json.loads(keys.get(f"leases::{ip}") or "{}")
    assert second["expires"] == pytest.approx(first["expires"] + 20)
    assert keys.get(f"nics::leased::{mac(1)}") == ip
    # Rebinding (broadcast from the bound address) is answered the same way.
    now[0] += 20
    rebind = ask(responder, packets.rebind(mac(1), ip))
    assert rebind is not None and rebind.message_type == ACK
    assert json.loads(keys.get(f"leases::{ip}") or "{}")["expires"] == pytest.approx(
        first["expires"] + 40
    )


def test_renewing_an_address_leased_to_another_mac_is_naked(
    responder: Pipeline, keys: Keys
) -> None:
    ip = bind(responder, mac(1))
    reply = ask(responder, packets.renew(mac(2), ip))
    assert reply is not None and reply.message_type == NAK
    assert keys.get(f"ips::leased::{ip}") == mac(1)
    assert keys.get(f"nics::leased::{mac(2)}") is None


def test_renewing_off_subnet_is_naked(responder: Pipeline) -> None:
    reply = ask(responder, packets.renew(mac(1), "10.0.0.5"))
    assert reply is not None and reply.message_type == NAK


def test_release_frees_only_the_owners_lease(responder: Pipeline, keys: Keys) -> None:
    ip1 = bind(responder, mac(1))
    ip2 = bind(responder, mac(2))
    before = keys.all()
    # A stranger releasing mac 1's address, and an unknown MAC: nothing changes.
    assert ask(responder, packets.release(mac(2), ip1)) is None
    assert ask(responder, packets.release(mac(9), ip1)) is None
    assert ask(responder, packets.release(mac(9), "198.18.0.200")) is None
    assert keys.all() == before
    # The owner: its keys go, the address is free again, the other lease stays.
    assert ask(responder, packets.release(mac(1), ip1)) is None
    assert keys.get(f"ips::leased::{ip1}") is None
    assert keys.get(f"nics::leased::{mac(1)}") is None
    assert keys.get(f"leases::{ip1}") is None
    assert keys.get(f"ips::free::{ip1}") == ip1
    assert keys.get(f"ips::leased::{ip2}") == mac(2)


def test_decline_quarantines_the_address(responder: Pipeline, keys: Keys) -> None:
    ip = offer_to(responder, mac(1))
    assert ask(responder, packets.decline(mac(1), ip)) is None
    assert keys.get(f"ips::declined::{ip}") == mac(1)
    assert keys.get(f"ips::free::{ip}") is None
    assert keys.get(f"ips::offered::{ip}") is None
    # Every other client gets the remaining four, never the declined one.
    offered = {offer_to(responder, mac(10 + i)) for i in range(4)}
    assert ip not in offered and len(offered) == 4
    assert ask(responder, packets.discover(mac(20))) is None  # and then nothing is left
    # A DECLINE naming another server, or for an address it does not hold, changes nothing.
    before = keys.all()
    other = next(iter(offered))
    assert ask(responder, packets.decline(mac(10), other, server_id=OTHER_SERVER)) is None
    assert ask(responder, packets.decline(mac(21), other)) is None
    assert keys.all() == before


def test_decline_of_a_bound_address(responder: Pipeline, keys: Keys) -> None:
    ip = bind(responder, mac(1))
    ask(responder, packets.decline(mac(1), ip))
    assert keys.get(f"ips::declined::{ip}") == mac(1)
    assert keys.get(f"ips::leased::{ip}") is None
    assert keys.get(f"nics::leased::{mac(1)}") is None


def test_inform(responder: Pipeline, keys: Keys) -> None:
    before = keys.all()
    reply = ask(responder, packets.inform(mac(1), "198.18.0.77"))
    assert reply is not None and reply.message_type == ACK
    assert reply.yiaddr == "0.0.0.0"
    assert reply.ciaddr == "198.18.0.77"
    assert set(opts(reply)) == {53, 54, 1, 3, 6}
    assert destination(reply) == Destination("198.18.0.77", 68, mac(1))
    payload = codec.encode_bootp(reply, SERVER)
    assert len(payload) == codec.BOOTP_MIN_LEN
    assert payload[12:16] == bytes((198, 18, 0, 77)) and payload[16:20] == bytes(4)
    assert keys.all() == before  # INFORM never touches leases
    # Without ciaddr and not relayed there is nowhere to answer.
    assert ask(responder, packets.inform(mac(1), "0.0.0.0")) is None


def test_relayed_discover(responder: Pipeline) -> None:
    agent = b"\x01\x08port-7/1\x02\x06\x02\x00\x5e\x00\x00\x99"
    raw = packets.discover(mac(1), giaddr=packets.RELAY_IP, hops=1, extra=[(82, agent)])
    reply = ask(responder, raw)
    assert reply is not None and reply.message_type == OFFER
    assert reply.options[-1] == (82, agent)
    assert destination(reply) == Destination(packets.RELAY_IP, 67, None)
    payload = codec.encode_bootp(reply, SERVER)
    assert payload[24:28] == bytes((198, 18, 0, 254))  # giaddr kept
    # A relay on a network we do not serve: dropped, nothing offered.
    foreign = packets.discover(mac(2), giaddr="198.19.7.1", hops=1, extra=[(82, agent)])
    assert ask(responder, foreign) is None


def test_relayed_nak_sets_the_broadcast_flag(responder: Pipeline) -> None:
    raw = packets.request(mac(1), ciaddr="10.0.0.5", giaddr=packets.RELAY_IP)
    reply = ask(responder, raw)
    assert reply is not None and reply.message_type == NAK
    assert reply.flags & codec.BROADCAST_FLAG


def test_pinned_device(responder: Pipeline, keys: Keys) -> None:
    pinned = "198.18.0.12"
    keys.put(f"nics::leased::{mac(7)}", pinned)
    keys.put(f"ips::leased::{pinned}", mac(7))
    keys.delete(f"ips::free::{pinned}")
    assert offer_to(responder, mac(7)) == pinned
    reply = ask(responder, packets.request(mac(7), requested=pinned, server_id=SERVER))
    assert reply is not None and reply.message_type == ACK and reply.yiaddr == pinned
    # Nobody else is offered the pinned address.
    others = {offer_to(responder, mac(20 + i)) for i in range(4)}
    assert pinned not in others


def test_concurrent_discovers_get_distinct_addresses(
    etcd: Etcd, etcd_prefix: str, keys: Keys
) -> None:
    store = seeded_store(etcd, etcd_prefix, "198.18.0.10", "198.18.0.29")  # 20 addresses
    responder = Pipeline(store, store.scopes)
    barrier = threading.Barrier(20)

    def one(n: int) -> Reply | None:
        req = decode(packets.discover(mac(100 + n)))
        barrier.wait()
        return responder.respond(Exchange(req, LINK))

    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(one, range(20)))
    addresses = [r.yiaddr for r in replies if r is not None]
    assert len(addresses) == 20
    assert len(set(addresses)) == 20
    for n, ip in enumerate(addresses):
        assert keys.get(f"ips::offered::{ip}") == mac(100 + n)
    assert store.counts()["free"] == 0
    # The pool is exhausted: the 21st client hears nothing.
    assert ask(responder, packets.discover(mac(200))) is None


# ---- host records ---------------------------------------------------------------------------


def with_hosts(store: LeaseStore, etcd: Etcd, prefix: str, *docs: dict[str, Any]) -> Pipeline:
    """A responder serving `docs` as global host records, written as etcdhcpctl does."""
    records = [parse_host(doc, f"host[{i}]") for i, doc in enumerate(docs)]
    written = HostStore(etcd, prefix).write(HostStore(etcd, prefix).plan(records))
    assert len(written.written) == len(records)
    index = HostIndex(records)
    return Pipeline(store, store.scopes, lambda: index)


def test_a_host_gets_its_address_name_options_and_boot_file(
    store: LeaseStore, etcd: Etcd, etcd_prefix: str, keys: Keys
) -> None:
    host = {
        "hw-address": mac(1),
        "ip-address": "198.18.0.50",  # outside the pool, inside the subnet
        "hostname": "Build-7",
        "option-data": [{"name": "domain-name-servers", "data": "198.18.0.9"}],
        "boot-file-name": "ipxe.efi",
    }
    responder = with_hosts(store, etcd, etcd_prefix, host)
    reply = ask(responder, packets.dhclient_discover(mac(1)))
    assert reply is not None and reply.message_type == OFFER
    assert reply.yiaddr == "198.18.0.50"
    assert opts(reply)[12] == b"build-7"  # asked for in the PRL; lower-cased, as Kea
    assert opts(reply)[6] == codec.ip_option("198.18.0.9")  # the host's over the scope's
    assert reply.file == b"ipxe.efi"
    reply = ask(responder, packets.request(mac(1), requested="198.18.0.50", server_id=SERVER))
    assert reply is not None and reply.message_type == ACK and reply.yiaddr == "198.18.0.50"
    lease = store.lease_by_ip("198.18.0.50")
    assert lease is not None and lease.mac == mac(1)
    assert (lease.hostname, lease.host) == ("build-7", f"0/hw-address={mac(1)}")
    assert lease.classes == ["KNOWN"]
    # Nobody else gets it, and a client without a host gets the scope's options.
    reply = ask(responder, packets.dhclient_discover(mac(2)))
    assert reply is not None and reply.yiaddr in POOL and 12 not in opts(reply)
    assert opts(reply)[6] == codec.ip_option("198.18.0.3", "198.18.0.4")


def test_a_client_id_host_is_leased_its_address_under_its_identifier(
    store: LeaseStore, etcd: Etcd, etcd_prefix: str, keys: Keys
) -> None:
    client_id = b"\x00cam-7"
    responder = with_hosts(
        store, etcd, etcd_prefix, {"client-id": client_id.hex(), "ip-address": "198.18.0.60"}
    )
    assert keys.get("ips::reserved::198.18.0.60") == f"client-id={client_id.hex(':')}"
    with_id = [("client_id", client_id)]
    assert offer_to(responder, mac(3), options=with_id) == "198.18.0.60"
    reply = ask(
        responder,
        packets.request(mac(3), requested="198.18.0.60", server_id=SERVER, options=with_id),
    )
    assert reply is not None and reply.message_type == ACK
    assert keys.get("ips::leased::198.18.0.60") == mac(3)
    # It renews it; the same MAC without the client id is another client.
    reply = ask(responder, packets.renew(mac(3), "198.18.0.60", options=with_id))
    assert reply is not None and reply.message_type == ACK
    reply = ask(responder, packets.renew(mac(3), "198.18.0.60"))
    assert reply is not None and reply.message_type == NAK


def test_a_client_moves_to_its_reserved_address_and_others_lose_it_at_renewal(
    store: LeaseStore, etcd: Etcd, etcd_prefix: str, keys: Keys
) -> None:
    plain = Pipeline(store, store.scopes)
    old = bind(plain, mac(4))  # leased from the pool before its host existed
    squatter = bind(plain, mac(5))
    responder = with_hosts(
        store, etcd, etcd_prefix, {"hw-address": mac(4), "ip-address": "198.18.0.70"}
    )
    # Renewing the pool address: NAKed, so that it comes back for its own.
    reply = ask(responder, packets.renew(mac(4), old))
    assert reply is not None and reply.message_type == NAK
    assert offer_to(responder, mac(4)) == "198.18.0.70"
    assert keys.get(f"ips::leased::{old}") is None and keys.get(f"ips::free::{old}") == old
    # An address reserved for another client is NAKed at its holder's renewal.
    responder = with_hosts(store, etcd, etcd_prefix, {"hw-address": mac(6), "ip-address": squatter})
    reply = ask(responder, packets.renew(mac(5), squatter))
    assert reply is not None and reply.message_type == NAK
    assert b"reserved for another client" in opts(reply)[56]


def test_known_and_unknown_clients_take_their_own_pools(etcd: Etcd, etcd_prefix: str) -> None:
    doc = {
        "id": 1,
        "subnet": "198.18.0.0/24",
        "interface": "eth0",
        "pools": [
            {"pool": "198.18.0.10 - 198.18.0.14", "client-class": "KNOWN"},
            {"pool": "198.18.0.20 - 198.18.0.24", "client-class": "UNKNOWN"},
        ],
    }
    view = ScopeSet([parse_subnet(doc)])
    store = make_store(etcd, etcd_prefix, "198.18.0.10", "198.18.0.24", scopes=lambda: view)
    store.seed()
    responder = with_hosts(store, etcd, etcd_prefix, {"hw-address": mac(7), "hostname": "k"})
    known = offer_to(responder, mac(7))
    unknown = offer_to(responder, mac(8))
    assert ipaddress.IPv4Address(known) <= ipaddress.IPv4Address("198.18.0.14")
    assert ipaddress.IPv4Address(unknown) >= ipaddress.IPv4Address("198.18.0.20")
    # An unknown client may not take a KNOWN pool's address.
    reply = ask(responder, packets.request(mac(8), requested="198.18.0.13", server_id=SERVER))
    assert reply is not None and reply.message_type == NAK


def test_a_host_s_name_answers_a_client_fqdn_option(
    store: LeaseStore, etcd: Etcd, etcd_prefix: str
) -> None:
    responder = with_hosts(store, etcd, etcd_prefix, {"hw-address": mac(9), "hostname": "cam"})
    # Client flags S|E: it asks the server to update DNS, in wire format.
    fqdn = [("client_FQDN", b"\x05\x00\x00\x03old\x00")]
    reply = ask(responder, packets.discover(mac(9), options=fqdn))
    assert reply is not None
    # N (no updates here), O (the client's S overridden), E kept; the name is partial.
    assert opts(reply)[81] == b"\x0e\xff\xff\x03cam"
    assert 12 not in opts(reply)
    reply = ask(responder, packets.discover(mac(9), options=[("client_FQDN", b"\x00\x00\x00x")]))
    assert reply is not None and opts(reply)[81] == b"\x08\xff\xffcam"


def test_a_client_without_a_host_gets_its_own_fqdn_back_and_recorded(
    responder: Pipeline, store: LeaseStore
) -> None:
    # Flags S|E, the client's name in wire format, fully qualified.
    fqdn = [("client_FQDN", b"\x05\x00\x00\x03pc1\x03lab\x00")]
    ip = offer_to(responder, mac(11), options=fqdn)
    reply = ask(responder, packets.request(mac(11), requested=ip, server_id=SERVER, options=fqdn))
    assert reply is not None and opts(reply)[81] == b"\x0e\xff\xff\x03pc1\x03lab\x00"
    lease = store.lease_by_ip(ip)
    assert lease is not None and lease.hostname == "pc1.lab."
    # A malformed name (a label longer than what follows) and an empty one: no option 81.
    malformed = packets.discover(mac(12), options=[("client_FQDN", b"\x04\x00\x00\x09x")])
    assert decode(malformed).fqdn is None
    reply = ask(responder, malformed)
    assert reply is not None and 81 not in opts(reply)
    reply = ask(responder, packets.discover(mac(13), options=[("client_FQDN", b"\x00\x00\x00")]))
    assert reply is not None and 81 not in opts(reply)


def test_flag_options_reach_a_reply_under_the_global_document(etcd: Etcd, etcd_prefix: str) -> None:
    flags = ["domain-name=flags.example", "ntp-servers=198.18.0.123", "routers=198.18.0.99"]
    argv = [arg for option in flags for arg in ("-dhcp.option", option)]
    cfg = config.load(argv, {"ETCDHCP_CONFIG": ""}, check_interface=False)
    defaults = Defaults(options=cfg.global_options)  # as serving.py gives LiveScopes

    def view(*documents: Document) -> ScopeSet:
        return globalconfig.assemble(documents, lan_scope(POOL[0], POOL[-1]), {}, defaults).scopes

    current = view()
    store = make_store(etcd, etcd_prefix, POOL[0], POOL[-1], scopes=lambda: current)
    store.seed()
    responder = Pipeline(store, store.scopes)
    reply = ask(responder, packets.dhclient_discover(mac(20)))
    assert reply is not None
    assert opts(reply)[15] == b"flags.example"
    assert opts(reply)[42] == codec.ip_option("198.18.0.123")
    assert opts(reply)[3] == codec.ip_option("198.18.0.1")  # the flags' scope is a scope: above
    stored = {"option-data": [{"name": "domain-name", "data": "doc.example"}]}
    current = view(Document(globalconfig.GLOBAL_DOC, json.dumps(stored).encode(), 1))
    reply = ask(responder, packets.dhclient_discover(mac(20)))
    assert reply is not None
    assert opts(reply)[15] == b"doc.example"  # the global document wins, code by code
    assert opts(reply)[42] == codec.ip_option("198.18.0.123")
