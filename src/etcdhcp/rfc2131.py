"""What to answer: RFC 2131 §4.3 decisions, from a Request and what the store knows.

The helpers at the top are plain functions of a request (client state, reply
options, where the reply goes); `Responder` combines them with the lease store.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
from dataclasses import dataclass

from etcdhcp import metrics
from etcdhcp.codec import (
    ACK,
    BROADCAST_FLAG,
    BROADCAST_MAC,
    CLIENT_PORT,
    DECLINE,
    DISCOVER,
    INFORM,
    NAK,
    OFFER,
    OPT_CLIENT_ID,
    OPT_DNS,
    OPT_LEASE_TIME,
    OPT_MESSAGE,
    OPT_MESSAGE_TYPE,
    OPT_REBINDING_TIME,
    OPT_RELAY_AGENT_INFO,
    OPT_RENEWAL_TIME,
    OPT_ROUTER,
    OPT_SERVER_ID,
    OPT_SUBNET_MASK,
    RELEASE,
    REQUEST,
    SERVER_PORT,
    ZERO_IP,
    Reply,
    Request,
    ip_option,
    u32_option,
)
from etcdhcp.store import LeaseStore

log = logging.getLogger(__name__)

LIMITED_BROADCAST = "255.255.255.255"
LEASE_OPTIONS = frozenset({OPT_LEASE_TIME, OPT_RENEWAL_TIME, OPT_REBINDING_TIME})


@dataclass(frozen=True)
class Network:
    """What the server tells clients about the served subnet."""

    server_ip: str
    subnet: ipaddress.IPv4Network
    router: str
    dns: tuple[str, ...]
    lease_time: int

    def contains(self, ip: str | None) -> bool:
        if not ip:
            return False
        try:
            packed = socket.inet_aton(ip)
        except (OSError, ValueError):
            return False
        if socket.inet_ntoa(packed) != ip:  # a form ipaddress refuses ("10.1", "010.0.0.1")
            try:
                return ipaddress.IPv4Address(ip) in self.subnet
            except ValueError:
                return False
        # What the codec hands over is canonical: compare integers, no ipaddress parsing.
        return int.from_bytes(packed, "big") & self._netmask == self._network

    @functools.cached_property
    def _netmask(self) -> int:
        return int(self.subnet.netmask)

    @functools.cached_property
    def _network(self) -> int:
        return int(self.subnet.network_address)

    def config_options(self, with_lease: bool) -> dict[int, bytes]:
        """Options 1, 3, 6 and (for leases) 51, 58 (T1 = 50%), 59 (T2 = 87.5%), RFC 2131 §4.4.5."""
        return dict(self._lease_options if with_lease else self._config_options)

    @functools.cached_property
    def _config_options(self) -> dict[int, bytes]:
        """Encoded once: they depend on the configuration only, not on the packet."""
        return {
            OPT_SUBNET_MASK: ip_option(self.subnet.netmask),
            OPT_ROUTER: ip_option(self.router),
            OPT_DNS: ip_option(*self.dns),
        }

    @functools.cached_property
    def _lease_options(self) -> dict[int, bytes]:
        return {
            **self._config_options,
            OPT_LEASE_TIME: u32_option(self.lease_time),
            OPT_RENEWAL_TIME: u32_option(self.lease_time // 2),
            OPT_REBINDING_TIME: u32_option(self.lease_time * 7 // 8),
        }


@dataclass(frozen=True)
class Destination:
    """Where a reply goes; `mac` None means the kernel routes it (the client has an address)."""

    ip: str
    port: int
    mac: str | None


def request_state(req: Request) -> str:
    """The client state a DHCPREQUEST comes from (RFC 2131 §4.3.2)."""
    if req.server_id is not None:
        return "selecting"
    if req.ciaddr == ZERO_IP:
        return "init-reboot" if req.requested_ip else "invalid"
    if req.relayed or req.dst_ip != LIMITED_BROADCAST:
        return "renewing"
    return "rebinding"


def ordered_options(
    req: Request, message_type: int, server_ip: str, config: dict[int, bytes]
) -> tuple[tuple[int, bytes], ...]:
    """Reply options: 53 and 54 first, then the client's parameter request list order,
    then the remaining configuration options, then 61 (RFC 6842) and 82 (RFC 3046) echoed."""
    options: list[tuple[int, bytes]] = [
        (OPT_MESSAGE_TYPE, bytes((message_type,))),
        (OPT_SERVER_ID, ip_option(server_ip)),
    ]
    remaining = dict(config)
    for code in req.param_request_list:
        if code in remaining:
            options.append((code, remaining.pop(code)))
    options.extend(sorted(remaining.items()))
    if req.client_id is not None:
        options.append((OPT_CLIENT_ID, req.client_id))
    if req.relay_agent_info is not None:
        options.append((OPT_RELAY_AGENT_INFO, req.relay_agent_info))
    return tuple(options)


def destination(reply: Reply) -> Destination:
    """RFC 2131 §4.1: relay, then NAK broadcast, then ciaddr, then broadcast bit, then chaddr."""
    req = reply.request
    if req.relayed:
        return Destination(req.giaddr, SERVER_PORT, None)
    if reply.message_type == NAK:
        return Destination(LIMITED_BROADCAST, CLIENT_PORT, BROADCAST_MAC)
    if req.ciaddr != ZERO_IP:
        return Destination(req.ciaddr, CLIENT_PORT, None)
    if req.broadcast:
        return Destination(LIMITED_BROADCAST, CLIENT_PORT, BROADCAST_MAC)
    return Destination(reply.yiaddr, CLIENT_PORT, req.mac)


def _ignore(reason: str) -> None:
    metrics.REQUESTS_IGNORED.labels(reason=reason).inc()


class Responder:
    """Turns one decoded request into a reply (or silence), using the lease store."""

    def __init__(self, network: Network, store: LeaseStore) -> None:
        self.network = network
        self.store = store
        self._handlers = {
            DISCOVER: self._discover,
            REQUEST: self._request,
            RELEASE: self._release,
            DECLINE: self._decline,
            INFORM: self._inform,
        }

    def respond(self, req: Request) -> Reply | None:
        if req.relayed and not self.network.contains(req.giaddr):
            metrics.PACKETS_DROPPED.labels(reason="foreign_relay").inc()
            return None
        return self._handlers[req.message_type](req)

    # ---- replies

    def _reply(self, req: Request, message_type: int, yiaddr: str) -> Reply:
        options = ordered_options(
            req, message_type, self.network.server_ip, self.network.config_options(True)
        )
        return Reply(message_type, req, yiaddr=yiaddr, flags=req.flags, options=options)

    def _nak(self, req: Request, why: str) -> Reply:
        log.info("NAK %s for %s: %s", req.mac, req.requested_ip or req.ciaddr, why)
        config = {OPT_MESSAGE: why.encode()}
        flags = req.flags | BROADCAST_FLAG if req.relayed else req.flags
        options = ordered_options(req, NAK, self.network.server_ip, config)
        return Reply(NAK, req, flags=flags, options=options)

    # ---- message types

    def _discover(self, req: Request) -> Reply | None:
        requested = req.requested_ip if self.network.contains(req.requested_ip) else None
        ip = self.store.offer(req.mac, requested)
        if ip is None:
            log.warning("no free address to offer %s: the pool is exhausted", req.mac)
            _ignore("pool_exhausted")
            return None
        return self._reply(req, OFFER, ip)

    def _request(self, req: Request) -> Reply | None:
        state = request_state(req)
        if state == "selecting":
            if req.server_id != self.network.server_ip:
                self.store.withdraw_offer(req.mac, keep=req.requested_ip)
                _ignore("other_server")
                return None
            if not req.requested_ip:
                _ignore("no_requested_address")
                return None
            return self._commit(req, req.requested_ip, allow_free=True, silent_if_unknown=False)
        if state == "init-reboot":
            if not self.network.contains(req.requested_ip):
                return self._nak(req, "requested address is not on this network")
            return self._commit(req, req.requested_ip, allow_free=False, silent_if_unknown=True)
        if state in ("renewing", "rebinding"):
            if not self.network.contains(req.ciaddr):
                return self._nak(req, "address is not on this network")
            return self._commit(req, req.ciaddr, allow_free=True, silent_if_unknown=False)
        _ignore("invalid_request")
        return None

    def _commit(
        self, req: Request, ip: str, *, allow_free: bool, silent_if_unknown: bool
    ) -> Reply | None:
        client_id = req.client_id.hex() if req.client_id else None
        result = self.store.commit(
            req.mac, ip, allow_free=allow_free, hostname=req.hostname, client_id=client_id
        )
        if result.lease is not None:
            verb = "renewed" if result.renewed else "granted"
            log.info("lease %s: %s %s (server %s)", verb, req.mac, ip, self.network.server_ip)
            return self._reply(req, ACK, ip)
        if result.refusal == "no_record" and silent_if_unknown:
            _ignore("no_record")
            return None
        return self._nak(req, f"address {ip} is not available ({result.refusal})")

    def _release(self, req: Request) -> None:
        if self.store.release(req.mac, req.ciaddr):
            log.info(
                "lease released: %s %s (server %s)", req.mac, req.ciaddr, self.network.server_ip
            )
        else:
            log.info("ignored RELEASE of %s from %s: not its lease", req.ciaddr, req.mac)
            _ignore("release_unknown")

    def _decline(self, req: Request) -> None:
        ip = req.requested_ip
        if req.server_id not in (None, self.network.server_ip) or not ip:
            _ignore("decline_not_ours")
            return
        if self.store.decline(req.mac, ip):
            log.info(
                "address declined: %s %s quarantined (server %s)",
                req.mac,
                ip,
                self.network.server_ip,
            )
        else:
            log.info("ignored DECLINE of %s from %s: not its address", ip, req.mac)
            _ignore("decline_unknown")

    def _inform(self, req: Request) -> Reply | None:
        """RFC 2131 §3.4: configuration only; no lease time, no yiaddr, sent to ciaddr."""
        if req.ciaddr == ZERO_IP and not req.relayed:
            _ignore("inform_without_ciaddr")
            return None
        config = self.network.config_options(False)
        options = ordered_options(req, ACK, self.network.server_ip, config)
        return Reply(ACK, req, ciaddr=req.ciaddr, flags=req.flags, options=options)
