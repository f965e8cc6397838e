"""The options of a reply: what the scope configures, in the order the client asked.

A scope's options are encoded once, when its document is read (scopes.py), and
kept here per scope as a dict; per packet only their order is worked out: 53 and
54 first, then the lease times, then the client's parameter request list (55) in
its order (the subnet mask always before the router, RFC 2132 §3.3), then the
options sent whether asked for or not, then the echoes of 61 (RFC 6842), 82
(RFC 3046, unless empty) and 118 (RFC 3011: a client drops a reply without it), as Kea
echoes them. Levels nest as in Kea: the client's host record over pool over scope over
shared network over the client's classes (the first class that sets an option wins)
over the global level. The option set of each (global level, classes, scope, pool,
host options) is merged once and cached. A host's `hostname` goes out as Kea sends it:
in option 81 (RFC 4702) to a client that sent one, else in option 12 to a client that
sent or asked for one. A UEFI HTTP boot client (option 60 `HTTPClient...`) gets `HTTPClient` back
in option 60, as the UEFI specification requires. The codec leaves out what does
not fit the client's maximum size.
"""

from __future__ import annotations

import functools

from etcdhcp import optiondefs
from etcdhcp.clientclasses import ClientClass
from etcdhcp.codec import (
    FQDN_E,
    NAK,
    OPT_CLIENT_FQDN,
    OPT_CLIENT_ID,
    OPT_HOSTNAME,
    OPT_LEASE_TIME,
    OPT_MESSAGE,
    OPT_MESSAGE_TYPE,
    OPT_REBINDING_TIME,
    OPT_RELAY_AGENT_INFO,
    OPT_RENEWAL_TIME,
    OPT_SERVER_ID,
    OPT_SUBNET_MASK,
    OPT_SUBNET_SELECTION,
    ZERO_IP,
    Request,
    ip_int,
    ip_option,
    u32_option,
)
from etcdhcp.globalconfig import EMPTY, Globals
from etcdhcp.hosts import EMPTY_BOOT, EMPTY_OPTIONS, Host
from etcdhcp.scopes import Boot, OptionData, Pool, Scope

Options = tuple[tuple[int, bytes], ...]
OPT_VENDOR_CLASS_IDENTIFIER = 60
HTTP_CLIENT = b"HTTPClient"  # UEFI 2.5+ HTTP boot: the server answers with this in option 60
# RFC 4702 §2.1 flags: S (server updates A), O (server overrode S), E (canonical wire
# format, codec), N (no updates at all).
FQDN_S, FQDN_O, FQDN_N = 0x01, 0x02, 0x08
FQDN_RCODE = b"\xff\xff"  # RCODE1, RCODE2: 255 from a server (RFC 4702 §2.2)


@functools.lru_cache(maxsize=65536)
def configured(
    scope: Scope,
    pool: Pool | None,
    globals_: Globals = EMPTY,
    classes: tuple[ClientClass, ...] = (),
    host: OptionData = EMPTY_OPTIONS,
) -> tuple[dict[int, bytes], frozenset[int]]:
    """What a client of `classes` in `scope` (and the pool of its address), with `host`
    its host record's options, may be sent, encoded once: the options by code, most
    specific level winning, with the subnet mask; and the codes sent even unasked."""
    levels = OptionData(((OPT_SUBNET_MASK, scope.subnet.netmask.packed),))
    levels = levels.under(globals_.options)
    for cls in reversed(classes):  # the first class's options go on top
        levels = levels.under(cls.options)
    levels = levels.under(OptionData(scope.options, scope.always_send))
    if pool is not None:
        levels = levels.under(OptionData(pool.options, pool.always_send))
    levels = levels.under(host)
    unasked = optiondefs.BASIC_OPTIONS | {OPT_SUBNET_MASK} | levels.always
    return dict(levels.options), frozenset(unasked)


def assemble(
    req: Request,
    message_type: int,
    server_ip: str,
    scope: Scope | None,
    yiaddr: str,
    lease_time: int | None,
    nak_reason: str | None = None,
    globals_: Globals = EMPTY,
    classes: tuple[ClientClass, ...] = (),
    host: Host | None = None,
) -> Options:
    """The reply's options, in wire order; `classes` are the client's defined classes,
    `host` its host record."""
    head: list[tuple[int, bytes]] = [
        (OPT_MESSAGE_TYPE, bytes((message_type,))),
        (OPT_SERVER_ID, ip_option(server_ip)),
    ]
    if message_type == NAK:
        if nak_reason:
            head.append((OPT_MESSAGE, nak_reason.encode()))
        return (*head, *_echoes(req))
    assert scope is not None, "only a NAK goes without a scope"
    if lease_time is not None:
        t1, t2 = scope.timers(lease_time)
        head += [
            (OPT_LEASE_TIME, u32_option(lease_time)),
            (OPT_RENEWAL_TIME, u32_option(t1)),
            (OPT_REBINDING_TIME, u32_option(t2)),
        ]
    pool = scope.pool_of(ip_int(yiaddr)) if yiaddr != ZERO_IP else None
    available, unasked = configured(
        scope, pool, globals_, classes, EMPTY_OPTIONS if host is None else host.options
    )
    extra = {}
    if OPT_VENDOR_CLASS_IDENTIFIER not in available and req.options.get(
        OPT_VENDOR_CLASS_IDENTIFIER, b""
    ).startswith(HTTP_CLIENT):
        extra[OPT_VENDOR_CLASS_IDENTIFIER] = HTTP_CLIENT
    extra.update(_names(req, None if host is None else host.hostname))
    if extra:
        available, unasked = {**available, **extra}, unasked | extra.keys()
    codes = optiondefs.order(req.param_request_list, available, unasked)
    return (*head, *((code, available[code]) for code in codes), *_echoes(req))


@functools.lru_cache(maxsize=65536)
def boot(
    scope: Scope,
    globals_: Globals = EMPTY,
    classes: tuple[ClientClass, ...] = (),
    host: Boot = EMPTY_BOOT,
) -> Boot:
    """The boot fields (siaddr, sname, file): the host record's win over the first class
    that sets one, which wins over the scope (and its shared network), which wins over
    the global level, as in Kea."""
    fields = globals_.boot.under(scope.boot)
    for cls in reversed(classes):
        fields = fields.under(cls.boot)
    return fields.under(host)


def _names(req: Request, hostname: str | None) -> dict[int, bytes]:
    """The client's name as Kea sends it: option 81 answers a client's 81 (RFC 4702: N
    set, as this server updates no DNS; O when the client asked the server to; E as the
    client's) with the host's name, lower-cased, else the client's own; a host's name
    goes in option 12 to a client that sent or asked for option 12."""
    fqdn = req.fqdn
    if fqdn is not None:
        asked, client_name = fqdn
        if not hostname and not client_name:
            return {}
        flags = FQDN_N | (asked & FQDN_E) | (FQDN_O if asked & FQDN_S else 0)
        wire = req.options[OPT_CLIENT_FQDN][3:]  # the client's name, as it wrote it
        if hostname:
            name = hostname.lower()
            wire = name.encode()
            if flags & FQDN_E:  # a name without the trailing dot is partial: no root label
                wire = optiondefs.fqdn_wire(name)
                wire = wire if name.endswith(".") else wire[:-1]
        return {OPT_CLIENT_FQDN: bytes((flags,)) + FQDN_RCODE + wire}
    if hostname and (OPT_HOSTNAME in req.options or OPT_HOSTNAME in req.param_request_list):
        return {OPT_HOSTNAME: hostname.lower().encode()}
    return {}


def _echoes(req: Request) -> list[tuple[int, bytes]]:
    echoed = []
    if req.client_id is not None:
        echoed.append((OPT_CLIENT_ID, req.client_id))
    if req.relay_agent_info:
        echoed.append((OPT_RELAY_AGENT_INFO, req.relay_agent_info))
    selection = req.options.get(OPT_SUBNET_SELECTION)
    if selection is not None:
        echoed.append((OPT_SUBNET_SELECTION, selection))
    return echoed
