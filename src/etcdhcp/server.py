"""One frame's path: decode, decide, encode, send; every outcome is counted."""

from __future__ import annotations

import logging
import time
from typing import Protocol

from etcdhcp import codec, metrics
from etcdhcp.etcd import EtcdError, EtcdUnavailable
from etcdhcp.rfc2131 import Responder, destination

log = logging.getLogger(__name__)


class Link(Protocol):
    """The two ways out of the served interface (implemented by transport.Transport)."""

    mac: str

    def send_frame(self, frame: bytes) -> None: ...

    def send_datagram(self, payload: bytes, ip: str, port: int) -> None: ...


class DhcpServer:
    def __init__(self, responder: Responder, server_ip: str) -> None:
        self.responder = responder
        self.server_ip = server_ip
        self.link: Link | None = None

    def handle(self, frame: bytes) -> None:
        """Answer one captured frame; malformed input and etcd trouble cost only this frame."""
        started = time.monotonic()
        try:
            request = codec.decode(frame)
        except codec.Malformed as exc:
            metrics.PACKETS_DROPPED.labels(reason=exc.reason).inc()
            log.debug("dropped frame: %s", exc)
            return
        metrics.labelled(metrics.PACKETS_RECEIVED, request.type_name).inc()
        try:
            reply = self.responder.respond(request)
        except EtcdUnavailable as exc:
            metrics.PACKETS_DROPPED.labels(reason="etcd_unavailable").inc()
            # Not a line per packet: etcd.py logs the outage when it starts and ends.
            log.debug("no answer to %s from %s: %s", request.type_name, request.mac, exc)
            return
        except EtcdError as exc:
            metrics.PACKETS_DROPPED.labels(reason="etcd_error").inc()
            log.error("no answer to %s from %s: %s", request.type_name, request.mac, exc)
            return
        if reply is not None:
            self._send(reply)
        metrics.labelled(metrics.REQUEST_DURATION, request.type_name).observe(
            time.monotonic() - started
        )

    def _send(self, reply: codec.Reply) -> None:
        assert self.link is not None, "DhcpServer.link must be set before serving"
        payload = codec.encode_bootp(reply, self.server_ip)
        to = destination(reply)
        try:
            if to.mac is None:
                self.link.send_datagram(payload, to.ip, to.port)
            else:
                self.link.send_frame(
                    codec.encode_frame(
                        payload,
                        src_mac=self.link.mac,
                        dst_mac=to.mac,
                        src_ip=self.server_ip,
                        dst_ip=to.ip,
                        dst_port=to.port,
                    )
                )
        except OSError as exc:
            metrics.PACKETS_DROPPED.labels(reason="send_failed").inc()
            log.warning("sending %s to %s failed: %s", reply.type_name, to.ip, exc)
            return
        metrics.labelled(metrics.REPLIES_SENT, reply.type_name).inc()
        log.log(
            15, "%s %s -> %s (%s)", reply.type_name.upper(), reply.yiaddr, reply.request.mac, to.ip
        )
