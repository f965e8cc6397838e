"""One frame's path, one way: decode, classify, choose the scope, find the host, classify
again, decide, store, answer, send.

Each stage is a module of its own (codec, clientclasses, scopes, hosts, rfc2131,
store, options); this one strings them together for one `Exchange` and counts its
outcome once, at the end. A malformed frame or an etcd failure costs only that frame.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from etcdhcp import codec, expressions, globalconfig, hosts, logs, metrics, options, rfc2131
from etcdhcp.etcd import EtcdError, EtcdUnavailable
from etcdhcp.hosts import EMPTY_INDEX, Host, HostIndex
from etcdhcp.rfc2131 import Conclusion, Intent
from etcdhcp.scopes import Link, ScopeSet
from etcdhcp.store import LeaseStore

log = logging.getLogger(__name__)


class Port(Protocol):
    """The two ways out of a served interface (implemented by transport.Transport)."""

    mac: str

    def send_frame(self, frame: bytes) -> None: ...

    def send_datagram(self, payload: bytes, ip: str, port: int) -> None: ...


@dataclass
class Exchange:
    """One request on its way through the stages; `outcome` is what gets counted."""

    request: codec.Request
    link: Link
    classes: tuple[str, ...] = ()  # every class the client belongs to, built-in ones too
    host: Host | None = None  # the client's host record
    intent: Intent | None = None
    conclusion: Conclusion | None = None
    outcome: tuple[str, str] = ("ignored", "unknown")  # ("sent", type) / ("ignored", why) ...


class Pipeline:
    """Answers frames from every served interface with the current scopes and the store."""

    def __init__(
        self,
        store: LeaseStore,
        scopes: Callable[[], ScopeSet],
        host_index: Callable[[], HostIndex] = lambda: EMPTY_INDEX,
    ) -> None:
        self.store = store
        self.scopes = scopes
        self.host_index = host_index

    def handle(self, frame: bytes, link: Link, port: Port) -> None:
        started = time.monotonic()
        try:
            request = codec.decode(frame)
        except codec.Malformed as exc:
            metrics.PACKETS_DROPPED.labels(reason=exc.reason).inc()
            log.debug("dropped frame: %s", exc)
            return
        exchange = Exchange(request, link)
        metrics.labelled(metrics.PACKETS_RECEIVED, request.type_name).inc()
        reply = self.respond(exchange)
        if reply is not None:
            exchange.outcome = _send(reply, link, port)
        _count(exchange)
        metrics.labelled(metrics.REQUEST_DURATION, request.type_name).observe(
            time.monotonic() - started
        )

    def respond(self, exchange: Exchange) -> codec.Reply | None:
        """The reply to `exchange`'s request (None: silence, and `outcome` says why)."""
        req = exchange.request
        try:
            return self._answer(exchange)
        except EtcdUnavailable as exc:
            exchange.outcome = ("dropped", "etcd_unavailable")
            # Not a line per packet: etcd.py logs the outage when it starts and ends.
            log.debug("no answer to %s from %s: %s", req.type_name, req.mac, exc)
        except EtcdError as exc:
            exchange.outcome = ("dropped", "etcd_error")
            log.error("no answer to %s from %s: %s", req.type_name, req.mac, exc)
        return None

    def _answer(self, exchange: Exchange) -> codec.Reply | None:
        req, link = exchange.request, exchange.link
        scopes = self.scopes()
        level = globalconfig.of(scopes)
        first = level.classes.classify(req)
        scope = scopes.select(req, link, first)
        index = self.host_index()
        host = None
        if scope is not None and len(index):
            family = [s.id for s in scopes.family(scope, first)]
            host = hosts.find(index, req, family, level.identifiers)
        exchange.host = host
        exchange.classes = level.classes.with_host(
            req, first, () if host is None else host.classes, host is not None
        )
        exchange.intent = intent = rfc2131.decide(
            req, scope, scopes, link.server_ip, exchange.classes, host, index
        )
        done = self._carry_out(intent, exchange)
        exchange.conclusion = conclusion = rfc2131.conclude(intent, done)
        _log(exchange, done)
        if conclusion.message_type is None:
            if conclusion.dropped:
                exchange.outcome = ("dropped", conclusion.dropped)
                log.debug("no scope for %s from %s (giaddr %s)", req.type_name, req.mac, req.giaddr)
            elif conclusion.ignored:
                exchange.outcome = ("ignored", conclusion.ignored)
            else:
                exchange.outcome = ("done", "")
            return None
        nak = conclusion.message_type == codec.NAK
        defined = level.classes.of(exchange.classes)
        boot = None
        if not nak:
            assert conclusion.scope is not None
            host_boot = hosts.EMPTY_BOOT if host is None else host.boot
            boot = options.boot(conclusion.scope, level, defined, host_boot)
        return codec.Reply(
            conclusion.message_type,
            req,
            yiaddr=conclusion.yiaddr,
            ciaddr=req.ciaddr if isinstance(intent, rfc2131.Inform) else codec.ZERO_IP,
            flags=req.flags | codec.BROADCAST_FLAG if nak and req.relayed else req.flags,
            options=options.assemble(
                req,
                conclusion.message_type,
                link.server_ip,
                conclusion.scope,
                conclusion.yiaddr,
                conclusion.lease_time,
                conclusion.nak_reason,
                level,
                defined,
                host,
            ),
            siaddr=boot.next_server if boot else None,
            sname=boot.server_hostname if boot else b"",
            file=boot.boot_file_name if boot else b"",
        )

    def _carry_out(self, intent: Intent, exchange: Exchange) -> object:
        """The store's part: one transaction for the intent (none for the pure ones)."""
        store, req, host = self.store, exchange.request, exchange.host
        if isinstance(intent, rfc2131.Offer):
            reserved = intent.reserved
            return store.offer(
                req.mac,
                intent.requested,
                family=intent.family,
                reserved=None if reserved is None else (reserved.ip, reserved.holder),
            )
        if isinstance(intent, rfc2131.Commit):
            client_id = req.client_id.hex() if req.client_id else None
            return store.commit(
                req.mac,
                intent.ip,
                lease_time=intent.lease_time,
                allow_free=intent.allow_free,
                hostname=_client_name(req, host),
                client_id=client_id,
                server=exchange.link.server_ip,
                holder=intent.holder,
                host=None if host is None else host.name,
                classes=[c for c in exchange.classes if c != expressions.ALL],
            )
        if isinstance(intent, rfc2131.Withdraw):
            return store.withdraw_offer(req.mac, keep=intent.keep)
        if isinstance(intent, rfc2131.Release):
            return store.release(req.mac, intent.ip)
        if isinstance(intent, rfc2131.Decline):
            return store.decline(req.mac, intent.ip)
        return None


def _client_name(req: codec.Request, host: Host | None) -> str | None:
    """The name a lease records: the host's (as sent, lower-cased), else the client's own
    (option 12, else option 81's), ready for dynamic DNS."""
    if host is not None and host.hostname:
        return host.hostname.lower()
    fqdn = req.fqdn
    return req.hostname or (fqdn[1] if fqdn is not None and fqdn[1] else None)


def _send(reply: codec.Reply, link: Link, port: Port) -> tuple[str, str]:
    payload = codec.encode_bootp(
        reply,
        link.server_ip,
        lambda code: metrics.labelled(metrics.REPLY_OPTIONS_DROPPED, str(code)).inc(),
    )
    to = rfc2131.destination(reply)
    try:
        if to.mac is None:
            port.send_datagram(payload, to.ip, to.port)
        else:
            port.send_frame(
                codec.encode_frame(
                    payload,
                    src_mac=port.mac,
                    dst_mac=to.mac,
                    src_ip=link.server_ip,
                    dst_ip=to.ip,
                    dst_port=to.port,
                )
            )
    except OSError as exc:
        log.warning("sending %s to %s failed: %s", reply.type_name, to.ip, exc)
        return ("dropped", "send_failed")
    log.log(
        logs.V1,
        "%s %s -> %s (%s)",
        reply.type_name.upper(),
        reply.yiaddr,
        reply.request.mac,
        to.ip,
    )
    return ("sent", reply.type_name)


def _log(exchange: Exchange, done: object) -> None:
    """The operator's audit trail: one INFO line per lease event."""
    intent, req, server = exchange.intent, exchange.request, exchange.link.server_ip
    conclusion = exchange.conclusion
    assert conclusion is not None
    if isinstance(intent, rfc2131.Commit) and conclusion.message_type == codec.ACK:
        verb = "renewed" if getattr(done, "renewed", False) else "granted"
        log.info("lease %s: %s %s (server %s)", verb, req.mac, intent.ip, server)
    elif conclusion.message_type == codec.NAK:
        asked = req.requested_ip or req.ciaddr
        log.info("NAK %s for %s: %s", req.mac, asked, conclusion.nak_reason)
    elif isinstance(intent, rfc2131.Offer) and done is None:
        log.warning("no free address to offer %s: the pool is exhausted", req.mac)
    elif isinstance(intent, rfc2131.Release):
        if done:
            log.info("lease released: %s %s (server %s)", req.mac, intent.ip, server)
        else:
            log.info("ignored RELEASE of %s from %s: not its lease", intent.ip, req.mac)
    elif isinstance(intent, rfc2131.Decline):
        if done:
            log.info("address declined: %s %s quarantined (server %s)", req.mac, intent.ip, server)
        else:
            log.info("ignored DECLINE of %s from %s: not its address", intent.ip, req.mac)


def _count(exchange: Exchange) -> None:
    """Every exchange's outcome, counted once."""
    kind, label = exchange.outcome
    if kind == "sent":
        metrics.labelled(metrics.REPLIES_SENT, label).inc()
    elif kind == "dropped":
        metrics.PACKETS_DROPPED.labels(reason=label).inc()
    elif kind == "ignored":
        metrics.REQUESTS_IGNORED.labels(reason=label).inc()
