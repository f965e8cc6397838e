"""rfc2131: the pure decisions (no etcd, no socket): intents, conclusions, destinations."""

from __future__ import annotations

import pytest

import packets
from etcdhcp import codec
from etcdhcp.codec import ACK, NAK, OFFER, Reply, decode
from etcdhcp.hosts import Host, HostIndex, parse_host
from etcdhcp.rfc2131 import (
    Commit,
    Decline,
    Destination,
    Drop,
    Ignore,
    Inform,
    Nak,
    Offer,
    Release,
    Reserved,
    Withdraw,
    conclude,
    decide,
    destination,
    request_state,
)
from etcdhcp.scopes import Scope, ScopeSet, parse_shared_network, parse_subnet
from etcdhcp.store import Commit as StoreCommit
from etcdhcp.store import Lease

SERVER = packets.SERVER_IP
OTHER_SERVER = "198.18.0.2"
mac = packets.mac

LAN = parse_subnet(
    {
        "id": 1,
        "subnet": "198.18.0.0/24",
        "pools": [{"pool": "198.18.0.10 - 198.18.0.14"}],
        "valid-lifetime": 600,
        "min-valid-lifetime": 60,
        "max-valid-lifetime": 3600,
    }
)
SHARED = parse_shared_network(
    {
        "name": "floor-2",
        "subnet4": [
            {"id": 2, "subnet": "198.18.2.0/24", "pools": [{"pool": "198.18.2.10 - 198.18.2.20"}]},
            {"id": 3, "subnet": "198.18.3.0/24", "pools": [{"pool": "198.18.3.10 - 198.18.3.20"}]},
        ],
    }
)
VIEW = ScopeSet([LAN, *SHARED])


def decided(raw: bytes, scope: Scope = LAN) -> object:
    return decide(decode(raw), scope, VIEW, SERVER)


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        (packets.request(mac(1), requested="198.18.0.10", server_id=SERVER), "selecting"),
        (packets.request(mac(1), requested="198.18.0.10"), "init-reboot"),
        (packets.request(mac(1)), "invalid"),
        (packets.renew(mac(1), "198.18.0.10"), "renewing"),
        (
            packets.request(mac(1), ciaddr="198.18.0.10", giaddr=packets.RELAY_IP),
            "renewing",
        ),
        (packets.rebind(mac(1), "198.18.0.10"), "rebinding"),
    ],
    ids=["selecting", "init-reboot", "invalid", "renewing", "renewing-relayed", "rebinding"],
)
def test_request_state(raw: bytes, state: str) -> None:
    assert request_state(decode(raw)) == state


def test_discover_offers_from_the_scope_and_its_shared_network() -> None:
    assert decided(packets.discover(mac(1))) == Offer((LAN,), None)
    assert decided(packets.discover(mac(1)), SHARED[1]) == Offer((SHARED[1], SHARED[0]), None)


def test_discover_keeps_a_requested_address_only_on_its_link() -> None:
    assert decided(packets.discover(mac(1), requested="198.18.0.12")).requested == "198.18.0.12"
    assert decided(packets.discover(mac(1), requested="198.18.2.12")).requested is None
    shared = decided(packets.discover(mac(1), requested="198.18.3.12"), SHARED[0])
    assert shared.requested == "198.18.3.12"  # a sibling subnet of the same link


def test_selecting_request_commits_the_requested_address() -> None:
    intent = decided(packets.request(mac(1), requested="198.18.0.12", server_id=SERVER))
    assert intent == Commit("198.18.0.12", LAN, 600, allow_free=True, silent_if_unknown=False)


def test_selecting_another_server_withdraws_our_offer() -> None:
    raw = packets.request(mac(1), requested="198.18.0.12", server_id=OTHER_SERVER)
    assert decided(raw) == Withdraw("198.18.0.12")
    assert conclude(Withdraw("198.18.0.12"), True).ignored == "other_server"


def test_a_requested_lease_time_is_clamped_to_the_scope() -> None:
    for asked, granted in ((30, 60), (1200, 1200), (86400, 3600)):
        raw = packets.request(
            mac(1),
            requested="198.18.0.12",
            server_id=SERVER,
            options=[("lease_time", asked)],
        )
        assert decided(raw).lease_time == granted


def test_init_reboot_and_renewal_off_the_link_are_naked() -> None:
    intent = decided(packets.request(mac(1), requested="198.18.9.9"))
    assert isinstance(intent, Nak) and "not on this network" in intent.why
    renew = decided(packets.renew(mac(1), "10.0.0.5"))
    assert isinstance(renew, Nak)
    assert conclude(renew, None).message_type == NAK


def test_init_reboot_of_an_unknown_client_is_silent() -> None:
    intent = decided(packets.request(mac(1), requested="198.18.0.12"))
    assert intent == Commit("198.18.0.12", LAN, 600, allow_free=False, silent_if_unknown=True)
    assert conclude(intent, StoreCommit(None, refusal="no_record")).ignored == "no_record"
    naked = conclude(intent, StoreCommit(None, refusal="taken"))
    assert naked.message_type == NAK and "taken" in (naked.nak_reason or "")


def test_renewal_in_a_sibling_subnet_is_committed_there() -> None:
    intent = decided(packets.renew(mac(1), "198.18.3.15"), SHARED[0])
    assert isinstance(intent, Commit) and intent.scope is SHARED[1]


def test_without_a_scope_only_what_names_an_address_is_acted_on() -> None:
    """A removed scope's clients: their renewals are NAKed, releases honoured."""

    def unscoped(raw: bytes) -> object:
        return decide(decode(raw), None, VIEW, SERVER)

    assert unscoped(packets.release(mac(1), "203.0.113.9")) == Release("203.0.113.9")
    assert isinstance(unscoped(packets.renew(mac(1), "203.0.113.9")), Nak)
    assert unscoped(packets.rebind(mac(1), "203.0.113.9")) == Drop("no_scope")  # not ours
    assert unscoped(packets.discover(mac(1))) == Drop("no_scope")
    assert conclude(Drop("no_scope"), None).dropped == "no_scope"


def test_release_decline_inform() -> None:
    assert decided(packets.release(mac(1), "198.18.0.12")) == Release("198.18.0.12")
    assert decided(packets.decline(mac(1), "198.18.0.12")) == Decline("198.18.0.12")
    other = packets.decline(mac(1), "198.18.0.12", server_id=OTHER_SERVER)
    assert decided(other) == Ignore("decline_not_ours")
    assert decided(packets.inform(mac(1), "198.18.0.77")) == Inform(LAN)
    assert decided(packets.inform(mac(1), "0.0.0.0")) == Ignore("inform_without_ciaddr")
    assert conclude(Release("198.18.0.12"), False).ignored == "release_unknown"
    assert conclude(Release("198.18.0.12"), True).ignored is None


def test_conclusions_of_offers_and_commits() -> None:
    offer = Offer((SHARED[0], SHARED[1]), None)
    assert conclude(offer, None).ignored == "pool_exhausted"
    made = conclude(offer, "198.18.3.11")
    assert (made.message_type, made.yiaddr, made.scope) == (OFFER, "198.18.3.11", SHARED[1])
    commit = Commit("198.18.0.12", LAN, 600, allow_free=True)
    acked = conclude(commit, StoreCommit(Lease("198.18.0.12", mac(1))))
    assert (acked.message_type, acked.lease_time) == (ACK, 600)


def _reply_to(raw: bytes, message_type: int = ACK, yiaddr: str = "198.18.0.10") -> Reply:
    return Reply(message_type, decode(raw), yiaddr=yiaddr)


def test_destination() -> None:
    relayed = _reply_to(packets.discover(mac(1), giaddr=packets.RELAY_IP), OFFER)
    assert destination(relayed) == Destination(packets.RELAY_IP, 67, None)
    relayed_nak = _reply_to(
        packets.request(mac(1), requested="1.2.3.4", giaddr=packets.RELAY_IP), NAK
    )
    assert destination(relayed_nak) == Destination(packets.RELAY_IP, 67, None)

    nak = _reply_to(packets.renew(mac(1), "198.18.0.10"), NAK, "0.0.0.0")
    assert destination(nak) == Destination("255.255.255.255", 68, "ff:ff:ff:ff:ff:ff")

    # A client with an address is answered at its own MAC: the kernel's neighbour
    # table may still name the address's previous holder (issue 17, item 2).
    renewing = _reply_to(packets.renew(mac(1), "198.18.0.10"))
    assert destination(renewing) == Destination("198.18.0.10", 68, mac(1))

    # A client renewing from behind a router (its frame comes from the router's MAC):
    # the ACK and the NAK go to the router, the only way back to it.
    router = mac(99)
    routed = _reply_to(packets.renew(mac(1), "198.18.32.10", src_mac=router))
    assert destination(routed) == Destination("198.18.32.10", 68, router)
    routed_nak = _reply_to(packets.renew(mac(1), "198.18.32.10", src_mac=router), NAK, "0.0.0.0")
    assert destination(routed_nak) == Destination("198.18.32.10", 68, router)

    broadcast = _reply_to(packets.discover(mac(1), flags=codec.BROADCAST_FLAG), OFFER)
    assert destination(broadcast) == Destination("255.255.255.255", 68, "ff:ff:ff:ff:ff:ff")

    unicast = _reply_to(packets.discover(mac(1)), OFFER, "198.18.0.11")
    assert destination(unicast) == Destination("198.18.0.11", 68, mac(1))


# ---- hosts -----------------------------------------------------------------------------------

ON_LINK = parse_host({"hw-address": mac(1), "ip-address": "198.18.0.50"}, "h", 1)
BY_CLIENT_ID = parse_host({"client-id": "01:02", "ip-address": "198.18.3.40"}, "h", 2)
OFF_LINK = parse_host({"hw-address": mac(3), "ip-address": "198.18.2.9"}, "h")
HOSTS = HostIndex([ON_LINK, BY_CLIENT_ID, OFF_LINK])


def for_host(raw: bytes, host: Host | None, scope: Scope = LAN) -> object:
    return decide(decode(raw), scope, VIEW, SERVER, (), host, HOSTS)


def test_a_host_s_address_on_its_link_is_offered_and_the_only_one_it_is_leased() -> None:
    offer = for_host(packets.discover(mac(1), requested="198.18.0.11"), ON_LINK)
    assert isinstance(offer, Offer) and offer.reserved == Reserved("198.18.0.50", mac(1))
    commit = for_host(packets.request(mac(1), requested="198.18.0.50", server_id=SERVER), ON_LINK)
    assert isinstance(commit, Commit) and (commit.ip, commit.holder) == ("198.18.0.50", mac(1))
    # Any other address of the link: NAKed, so the client comes back for its own.
    nak = for_host(packets.renew(mac(1), "198.18.0.11"), ON_LINK)
    assert isinstance(nak, Nak) and "198.18.0.50" in nak.why


def test_a_host_found_in_a_shared_network_sibling_reserves_there() -> None:
    offer = for_host(
        packets.discover(mac(2), options=[("client_id", b"\x01\x02")]), BY_CLIENT_ID, SHARED[0]
    )
    assert isinstance(offer, Offer)
    assert offer.reserved == Reserved("198.18.3.40", "client-id=01:02")


def test_a_global_host_s_address_off_the_link_reserves_nothing_here() -> None:
    offer = for_host(packets.discover(mac(3)), OFF_LINK)
    assert isinstance(offer, Offer) and offer.reserved is None


def test_an_address_reserved_for_another_client_is_naked_at_renewal() -> None:
    nak = for_host(packets.renew(mac(9), "198.18.0.50"), None)
    assert isinstance(nak, Nak) and "reserved for another client" in nak.why
    # The client-id host's client renews it from any MAC: it is the identifier that counts.
    renew = packets.renew(mac(9), "198.18.3.40", options=[("client_id", b"\x01\x02")])
    assert isinstance(for_host(renew, BY_CLIENT_ID, SHARED[0]), Commit)
