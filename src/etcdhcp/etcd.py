"""The etcd connection: endpoints with failover, per-request timeouts, raw KV requests.

Requests are built from the client library's own protobuf stubs instead of its
helpers, because python-etcd3 0.12 (Debian 12) silently ignores a range `limit`
and neither library builds nested transactions, which `Etcd.choose` uses to try
several guarded alternatives in one round trip. Either library works: the
maintained fork `pyetcd` (etcd-sdk-python, PyPI) or `etcd3` (python3-etcd3).
"""

from __future__ import annotations

import collections
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

# Read by gRPC when it loads, so set before it is imported (an operator's own values
# win). Its C core logs TLS and connection failures to stderr in its own format; the
# reason reaches our one log line through the error details instead.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
# While etcd is down, calls fail fast and the channel reconnects in the background;
# with gRPC's classic poller (Debian 12's grpcio 1.51) only the backup poller moves
# that reconnection on, one step (TCP connect, each TLS handshake round) per poll,
# every 5 s by default: a restarted TLS etcd went unserved for 7-20 s after it was up.
os.environ.setdefault("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "100")
# Recent grpcio wheels (PyPI's 1.85) do each call's I/O on EventEngine threads of their
# own, which hand every answer over: about five more wake-ups per etcd request. The
# classic poller does it in the calling thread: a fifth fewer context switches and
# about 5 % less CPU per exchange (bench/README.md). Debian's 1.51 uses it already.
os.environ.setdefault("GRPC_EXPERIMENTS", "-event_engine_client")
# gRPC's fork handlers restart its pollers and threads in a forked child; every fork here
# (subprocess with preexec_fn: embedded etcd, the tests' labs) execs at once, and the child
# closes its descriptors first, under those restarted threads: about 1 fork in 1,000 from
# a process with a busy channel died of SIGABRT before its exec (issue 17, item 4).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

import grpc  # after the settings above

try:  # the maintained fork, from PyPI
    import pyetcd as etcd3
except ImportError:  # Debian 12's python3-etcd3
    import etcd3  # type: ignore[no-redef]

from etcdhcp import etcdwire, metrics
from etcdhcp.etcdwire import get, nested, put, to_bytes

log = logging.getLogger(__name__)
rpc = etcd3.etcdrpc

T = TypeVar("T")

# gRPC codes that mean "our credentials or permissions are wrong": retrying cannot help.
_DENIED = frozenset({grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED})
# How both gRPC builds (PyPI's BoringSSL, Debian's OpenSSL) report an untrusted server.
_UNTRUSTED_CERTIFICATE = re.compile(r"certificate[ _]verify[ _]failed", re.IGNORECASE)

# gRPC codes that mean "this member cannot answer now": try another one.
_RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)


_DELETE_EVENT = 1  # mvccpb.Event.EventType.DELETE

MAX_ATTEMPTS = 50  # per request, bounding the loop whatever the clock does
ROUND_PAUSE = 0.2  # seconds between rounds over the endpoints when all of them failed
ENDPOINT_COOLDOWN = 3.0  # seconds a failed endpoint is tried only after the others
REDISCOVER_PERIOD = 5.0  # seconds between SRV look-ups while no endpoint answers
UNAVAILABLE_LOG_PERIOD = 30.0  # seconds between reminders while etcd stays unavailable
OUTAGE_ANNOUNCE_AFTER = 3.0  # seconds an outage lasts before it is logged in any case

_REQUIRE_LEADER = ("hasleader", "true")  # clientv3.WithRequireLeader

_GRPC_OPTIONS = (
    # A restarted member is used again within a second, not after gRPC's default
    # reconnect backoff of up to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Pings while requests wait notice a member that stopped answering on an open
    # connection (hung, cut off): etcd refuses pings more often than every 5 s.
    ("grpc.keepalive_time_ms", 10000),
    ("grpc.keepalive_timeout_ms", 5000),
)


class EtcdError(Exception):
    """etcd refused a request (bad request, permission denied, ...)."""


class EtcdUnavailable(EtcdError):
    """No endpoint answered within the request timeout."""


class LeaseNotFound(EtcdError):
    """A put named an etcd lease that has expired or was revoked."""


class EtcdAccessDenied(EtcdError):
    """etcd refuses us for good: wrong password, no permission, an untrusted certificate.

    Retrying does not help; at start-up the daemon stops with this message.
    """


def prefix_end(prefix: str | bytes) -> bytes:
    """The first key after every key starting with `prefix` (etcd's range_end for a prefix)."""
    raw = bytearray(to_bytes(prefix))
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return b"\x00"
    raw[-1] += 1
    return bytes(raw)


@dataclass(frozen=True)
class Branch:
    """One guarded alternative for `Etcd.choose`: if every compare holds, run ops."""

    compare: Sequence[bytes]  # etcdwire compares
    ops: Sequence[bytes]  # etcdwire operations


@dataclass(frozen=True)
class WatchEvent:
    """One change seen by `Etcd.watch`."""

    key: str
    deleted: bool
    value: bytes  # the new value; for a delete, the old one (when asked with prev_kv)
    version: int  # the key's version after a put: 1 means the put created it
    revision: int  # the store revision of the change


@dataclass(frozen=True)
class Choice:
    """Which branch of a `choose` ran (None: the fallback) and that branch's responses."""

    index: int | None
    responses: Sequence[Any]


def first_value(response: Any) -> bytes | None:
    kvs = response.response_range.kvs
    return kvs[0].value if kvs else None


# ---- the connection -------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """Who etcdhcp is to etcd (config.etcd_credentials builds it from the flags)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)  # kept out of logs
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @property
    def scheme(self) -> str:
        """The scheme of an endpoint named without one (given, or found by SRV): https
        once any TLS file is configured, as for the Go client."""
        return "https" if self.ca or self.cert or self.key else "http"


class Etcd:
    """Thread-safe access to an etcd cluster through any of its client endpoints.

    Every call goes to the current endpoint; when it fails the call moves on to the
    next one, within the per-request timeout, and the next calls start there.
    `rediscover` (SRV discovery) looks the endpoints up again once all have failed.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        timeout: float,
        credentials: Credentials = Credentials(),
        rediscover: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoint")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self._credentials = credentials
        self._clients: dict[str, Any] = {}
        self._current = 0
        self._lock = threading.Lock()
        self._batcher = _Batcher(self._txn_batch, timeout)
        self._cooling: dict[str, float] = {}  # endpoint -> monotonic time it may be tried first
        self._availability = _Availability()
        self._rediscover = rediscover
        self._rediscovering = threading.Lock()
        self._rediscovered = 0.0
        _show_endpoint(self.endpoints, self.endpoints[0])

    @property
    def unavailable_reason(self) -> str | None:
        """Why the last request found no endpoint that answered; None while etcd answers."""
        return self._availability.reason

    # -- plumbing

    def _client_for(self, endpoint: str) -> Any:
        with self._lock:
            client = self._clients.get(endpoint)
        if client is not None:
            return client
        client = _Connection(endpoint, self._credentials, self.timeout)
        with self._lock:
            return self._clients.setdefault(endpoint, client)

    def _call(self, op: str, fn: Callable[[Any, float], T], *, quorum: bool = True) -> T:
        """Run fn(client, timeout) on the current endpoint, failing over on unavailability.

        `quorum` False: the request succeeds on a member cut off from the others (a watch
        is created by the member alone), so its answer does not end an outage.

        Each attempt gets a share of what is left among the endpoints not tried yet,
        so a member that accepts connections but never answers cannot use up the whole
        budget. When every endpoint failed (an election in progress, members
        restarting) the call pauses and starts another round while its budget lasts.
        Repeating is safe: every write is a guarded transaction that, run twice, finds
        its own result (a repeated commit renews the lease it just wrote).
        """
        started = time.monotonic()
        deadline = started + self.timeout
        last_error: Exception | None = None
        reauthenticated = False
        tried: set[str] = set()
        for _attempt in range(MAX_ATTEMPTS):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            untried = [e for e in self.endpoints if e not in tried]
            if not untried:
                time.sleep(min(ROUND_PAUSE, remaining))
                tried.clear()
                continue
            endpoint = self._pick(untried)
            tried.add(endpoint)
            budget = max(0.05, remaining / len(untried))
            client = None
            try:
                client = self._client_for(endpoint)
                result = fn(client, budget)
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                if code == grpc.StatusCode.UNAUTHENTICATED and not reauthenticated:
                    # etcd forgets a token unused for --auth-token-ttl, and every token
                    # when it restarts: authenticate again, once per request.
                    reauthenticated = True
                    self._forget(endpoint, client)
                    tried.discard(endpoint)
                    continue
                if code in _RETRYABLE:
                    last_error = exc
                    self._fail_over(endpoint, exc)
                    continue
                metrics.ETCD_REQUESTS.labels(op=op, outcome="error").inc()
                details = exc.details() if hasattr(exc, "details") else str(exc)
                if code == grpc.StatusCode.NOT_FOUND and "lease" in (details or ""):
                    raise LeaseNotFound(details) from exc
                if code in _DENIED or "authentication" in (details or ""):
                    raise EtcdAccessDenied(f"{endpoint}: {details}") from exc
                raise EtcdError(f"{endpoint}: {details}") from exc
            except (etcd3.exceptions.Etcd3Exception, OSError) as exc:  # connecting, auth
                last_error = exc
                self._fail_over(endpoint, exc)
                continue
            self._answered(endpoint, quorum)
            metrics.labelled(metrics.ETCD_REQUEST_DURATION, op).observe(time.monotonic() - started)
            return result
        reason = _short(last_error) if last_error else f"no answer within {self.timeout:g}s"
        if _UNTRUSTED_CERTIFICATE.search(reason):
            metrics.ETCD_UP.set(0)
            raise EtcdAccessDenied(
                f"etcd's TLS certificate is not trusted (check --etcd.auth.ca): {reason}"
            )
        self._availability.failed(reason)
        metrics.ETCD_REQUESTS.labels(op=op, outcome="unavailable").inc()
        self._maybe_rediscover()
        raise EtcdUnavailable(f"no etcd endpoint answered: {reason}")

    def _pick(self, untried: list[str]) -> str:
        """The first untried endpoint from the current one on, passing over those cooling off."""
        now = time.monotonic()
        with self._lock:
            count = len(self.endpoints)
            order = [self.endpoints[(self._current + k) % count] for k in range(count)]
            candidates = [e for e in order if e in untried] or untried
            ready = [e for e in candidates if self._cooling.get(e, 0.0) <= now]
            return (ready or candidates)[0]

    def _answered(self, endpoint: str, quorum: bool = True) -> None:
        """An endpoint answered: make it the current one (if another failed meanwhile)."""
        if quorum:
            self._availability.answered(endpoint)
        endpoints = self.endpoints
        if endpoints[self._current % len(endpoints)] == endpoint:
            return  # the common case, without taking the lock
        with self._lock:
            if endpoint not in self.endpoints:
                return
            self._current = self.endpoints.index(endpoint)
            endpoints = list(self.endpoints)
        _show_endpoint(endpoints, endpoint)

    def _fail_over(self, endpoint: str, exc: Exception) -> None:
        """Move the current endpoint on; the failed one cools off before it is tried first.

        Its channel stays: gRPC reconnects it (within a second, see _GRPC_OPTIONS) once
        the member is back. Logged once per outage of the endpoint, not per request.
        """
        now = time.monotonic()
        with self._lock:
            already_cooling = self._cooling.get(endpoint, 0.0) > now
            self._cooling[endpoint] = now + ENDPOINT_COOLDOWN
            count = len(self.endpoints)
            moved = count > 1 and self.endpoints[self._current % count] == endpoint
            if moved:
                self._current = (self._current + 1) % count
            endpoints, current = list(self.endpoints), self.endpoints[self._current % count]
        if not moved:
            return
        metrics.ETCD_FAILOVERS.inc()
        _show_endpoint(endpoints, current)
        quiet = already_cooling or self._availability.reason is not None
        log.log(
            logging.DEBUG if quiet else logging.WARNING,
            "etcd endpoint %s failed (%s); moving to %s",
            endpoint,
            _short(exc),
            current,
        )

    def _maybe_rediscover(self) -> None:
        """Every endpoint failed: look them up again (SRV), at most every REDISCOVER_PERIOD."""
        if self._rediscover is None or not self._rediscovering.acquire(blocking=False):
            return
        try:
            if time.monotonic() - self._rediscovered < REDISCOVER_PERIOD:
                return
            self._rediscovered = time.monotonic()
            try:
                found = list(self._rediscover())
            except EtcdError as exc:
                log.warning("looking up the etcd endpoints again failed: %s", exc)
                return
            self.set_endpoints(found)
        finally:
            self._rediscovering.release()

    def set_endpoints(self, endpoints: Sequence[str]) -> None:
        """Use these endpoints from now on (closing channels to the ones that went away)."""
        endpoints = list(endpoints)
        with self._lock:
            if not endpoints or endpoints == self.endpoints:
                return
            self.endpoints, self._current = endpoints, 0
            gone = [self._clients.pop(e) for e in list(self._clients) if e not in endpoints]
        log.info("etcd endpoints are now %s", ", ".join(endpoints))
        _show_endpoint(endpoints, endpoints[0])
        _close_clients(gone)

    def _forget(self, endpoint: str, client: Any) -> None:
        """Drop `client` (not a newer one another thread made) so the next call reconnects."""
        with self._lock:
            if client is not None and self._clients.get(endpoint) is client:
                del self._clients[endpoint]

    def check_access(self, prefix: str) -> None:
        """Raise EtcdAccessDenied unless we may read and write keys under `prefix`.

        One transaction whose compare can never hold (a version below 0), so its put
        never runs; etcd still checks permission for every key it names.
        """
        probe = to_bytes(prefix)
        self.txn(
            [etcdwire.never(probe)], [put(probe, b"")], [get(probe, prefix_end(probe), limit=1)]
        )

    def _metadata(self, client: Any) -> dict[str, Any]:
        """Credentials, and "require a leader": a member cut off from the quorum refuses
        at once (UNAVAILABLE, "no leader") instead of serving a watch that would never
        see a change or a request that can only time out; the call moves on."""
        metadata = (*(client.metadata or ()), _REQUIRE_LEADER)
        return {"credentials": client.call_credentials, "metadata": metadata}

    # -- requests

    def range(
        self,
        key: str | bytes,
        end: bytes | None = None,
        *,
        limit: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
        revision: int = 0,
    ) -> Any:
        """A RangeResponse; `end` None means the single key; `revision` 0 means now."""
        request = rpc.RangeRequest(
            key=to_bytes(key),
            limit=limit,
            keys_only=keys_only,
            count_only=count_only,
            revision=revision,
        )
        if end is not None:
            request.range_end = end

        def call(client: Any, timeout: float) -> Any:
            return client.kvstub.Range(request, timeout, **self._metadata(client))

        response = self._call("range", call)
        metrics.ETCD_REQUESTS.labels(op="range", outcome="ok").inc()
        return response

    def txn(
        self, compare: Sequence[bytes], success: Sequence[bytes], failure: Sequence[bytes] = ()
    ) -> Any:
        """A TxnResponse; `.succeeded` says which branch ran."""
        response = self._txn(compare, success, failure)
        outcome = "ok" if response.succeeded else "failed_compare"
        metrics.ETCD_REQUESTS.labels(op="txn", outcome=outcome).inc()
        return response

    def _txn(
        self, compare: Sequence[bytes], success: Sequence[bytes], failure: Sequence[bytes]
    ) -> Any:
        request = etcdwire.txn(compare, success, failure)

        def call(client: Any, timeout: float) -> Any:
            return client.txn(request, timeout, **self._metadata(client))

        return self._call("txn", call)

    def choose(self, branches: Sequence[Branch], otherwise: Sequence[bytes] = ()) -> Choice:
        """Run the first branch whose compares hold, else `otherwise`, in one transaction.

        The branches become an if/else chain of nested transactions, so exactly one
        runs and the whole decision costs at most one write. Concurrent choices from
        many workers share one etcd request (see `_Batcher`).
        """
        if not branches:
            raise ValueError("choose needs at least one branch")
        tail: Sequence[bytes] = otherwise
        for branch in reversed(branches):
            tail = [nested(branch.compare, branch.ops, tail)]
        response = self._batcher.submit(tail[0])
        index = 0
        while not response.succeeded:
            if index == len(branches) - 1:
                metrics.ETCD_REQUESTS.labels(op="txn", outcome="failed_compare").inc()
                return Choice(None, response.responses)
            index += 1
            response = response.responses[0].response_txn
        metrics.labelled(metrics.ETCD_REQUESTS, "txn", "ok").inc()
        return Choice(index, response.responses)

    def _txn_batch(self, ops: Sequence[bytes]) -> list[Any]:
        """Independent nested transactions in one request; their TxnResponses, in order."""
        response = self._txn([], ops, [])
        return [r.response_txn for r in response.responses]

    def grant(self, ttl: int) -> int:
        """A new etcd lease of `ttl` seconds; returns its ID."""
        request = rpc.LeaseGrantRequest(TTL=ttl, ID=0)

        def call(client: Any, timeout: float) -> Any:
            return client.leasestub.LeaseGrant(request, timeout, **self._metadata(client))

        response = self._call("grant", call)
        metrics.ETCD_REQUESTS.labels(op="grant", outcome="ok").inc()
        return response.ID

    def keepalive(self, lease_id: int) -> int:
        """Refresh etcd lease `lease_id` once; its TTL afterwards, 0 if it no longer exists."""
        request = rpc.LeaseKeepAliveRequest(ID=lease_id)

        def call(client: Any, timeout: float) -> Any:
            stream = client.leasestub.LeaseKeepAlive(
                iter([request]), timeout, **self._metadata(client)
            )
            return next(stream, None)

        response = self._call("keepalive", call)
        metrics.ETCD_REQUESTS.labels(op="keepalive", outcome="ok").inc()
        return max(0, response.TTL) if response is not None else 0

    def revoke(self, lease_id: int) -> None:
        """End etcd lease `lease_id` now, deleting every key attached to it."""
        request = rpc.LeaseRevokeRequest(ID=lease_id)

        def call(client: Any, timeout: float) -> Any:
            return client.leasestub.LeaseRevoke(request, timeout, **self._metadata(client))

        self._call("revoke", call)
        metrics.ETCD_REQUESTS.labels(op="revoke", outcome="ok").inc()

    def status(self) -> Any:
        """The current member's status: cheap proof that etcd answers."""

        def call(client: Any, timeout: float) -> Any:
            return client.maintenancestub.Status(
                rpc.StatusRequest(), timeout, **self._metadata(client)
            )

        return self._call("status", call)

    def watch(
        self,
        prefix: str,
        *,
        start_revision: int = 0,
        puts: bool = True,
        prev_kv: bool = False,
    ) -> tuple[Iterator[WatchEvent], Callable[[], None]]:
        """(changes under `prefix`, cancel), from the current endpoint.

        A raw Watch stream read by the caller's own thread: neither library's watcher
        thread survives its channel closing cleanly. Returns once etcd has created the
        watch, so nothing changed after the call returns is missed. `start_revision`
        replays history from that revision; `prev_kv` gives deletes their old value.
        The iterator ends when cancelled and raises EtcdError when the watch breaks
        (or its start revision was compacted away); the caller watches again.
        """
        create = rpc.WatchCreateRequest(
            key=to_bytes(prefix),
            range_end=prefix_end(prefix),
            start_revision=start_revision,
            prev_kv=prev_kv,
            filters=[] if puts else [rpc.WatchCreateRequest.NOPUT],
        )

        def call(client: Any, timeout: float) -> tuple[Any, threading.Event]:
            stop = threading.Event()

            def requests() -> Iterator[Any]:
                yield rpc.WatchRequest(create_request=create)
                stop.wait()  # keep the stream open until cancelled

            stream = rpc.WatchStub(client.channel).Watch(requests(), **self._metadata(client))
            # A member that accepts the connection but never answers must not hang us.
            timer = threading.Timer(timeout, stream.cancel)
            timer.start()
            try:
                created = next(stream, None)
            except BaseException:
                stop.set()
                raise
            finally:
                timer.cancel()
            if created is None or not created.created:
                stop.set()
                stream.cancel()
                raise EtcdError("etcd did not create the watch")
            return stream, stop

        stream, stop = self._call("watch", call, quorum=False)

        def cancel() -> None:
            stop.set()
            stream.cancel()

        def events() -> Iterator[WatchEvent]:
            try:
                for response in stream:
                    if response.compact_revision:
                        raise EtcdError(
                            f"revision {start_revision} is compacted; the oldest one "
                            f"left is {response.compact_revision}"
                        )
                    if response.canceled:
                        raise EtcdError(f"etcd cancelled the watch: {response.cancel_reason}")
                    for event in response.events:
                        deleted = event.type == _DELETE_EVENT
                        yield WatchEvent(
                            key=event.kv.key.decode(),
                            deleted=deleted,
                            value=event.prev_kv.value if deleted else event.kv.value,
                            version=event.kv.version,
                            revision=event.kv.mod_revision,
                        )
            except grpc.RpcError as exc:
                if not stop.is_set():
                    raise EtcdUnavailable(f"the watch broke: {_short(exc)}") from exc
            finally:
                stop.set()

        return events(), cancel

    def watch_deletes(self, prefix: str) -> tuple[Iterator[str], Callable[[], None]]:
        """(iterator of keys deleted under `prefix`, cancel): `watch` for deletes only."""
        events, cancel = self.watch(prefix, puts=False)
        return (event.key for event in events if event.deleted), cancel

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        _close_clients(clients)


class _Pending:
    """One transaction waiting for its batch. `done` is held until the answer (or the
    sending role, `lead`) is handed over: a bare lock is the cheapest wake-up Python has."""

    __slots__ = ("done", "error", "finished", "lead", "op", "response")

    def __init__(self, op: bytes) -> None:
        self.op = op
        self.done = threading.Lock()
        self.done.acquire()
        self.finished = False
        self.lead = False
        self.response: Any = None
        self.error: Exception | None = None


class _Batcher:
    """Group commit: guarded transactions from many workers go to etcd together.

    Each gRPC call costs the Python client far more CPU than etcd spends on one more
    nested transaction, and each request is a raft entry. A worker that finds no
    sender at work becomes one: it sends everything waiting (up to BATCH_LIMIT per
    request, its own transaction included) as one request of independent nested
    transactions, and the others wait for their answer. While requests are in flight,
    waiting transactions collect into the next one; only a full batch opens another
    sender (up to SENDERS), and a sender that finds less than a batch waiting leaves
    it to the others. When the last sender's own answer has arrived and transactions
    are still waiting, it hands the slot to the oldest waiting one's worker and
    returns to its client. So under light load a transaction goes straight out from
    its own thread, with no hand-off; under load requests grow instead of multiplying
    (against up to eight small requests in flight, at 1,000/s offered to one process:
    40 % less etcd CPU per lease, 1.2-1.4 times the leases a second; bench/README.md),
    and a slow etcd still gets up to SENDERS full requests in flight. If etcd refuses
    a batch (two members writing one key), its members are sent one by one.
    """

    BATCH_LIMIT = 16  # nested transactions a request; etcd's --max-txn-ops counts their ops
    SENDERS = 8

    def __init__(self, send: Callable[[Sequence[bytes]], list[Any]], timeout: float) -> None:
        self._send = send
        self._timeout = timeout
        self._lock = threading.Lock()
        self._waiting: collections.deque[_Pending] = collections.deque()
        self._senders = 0

    def submit(self, op: bytes) -> Any:
        """Send one nested transaction (an etcdwire operation); returns its TxnResponse."""
        pending = _Pending(op)
        with self._lock:
            self._waiting.append(pending)
            lead = self._senders == 0 or (
                self._senders < self.SENDERS and len(self._waiting) >= self.BATCH_LIMIT
            )
            if lead:
                self._senders += 1
        while True:
            if lead:
                self._lead(pending)
            if not pending.done.acquire(timeout=4 * self._timeout + 1):
                self._abandon(pending)
                raise EtcdUnavailable("etcd request did not complete in time")
            if not pending.lead:
                break
            pending.lead = False  # handed the sender slot: our transaction goes first
            with self._lock:
                self._waiting.appendleft(pending)
            lead = True
        if pending.error is not None:
            raise pending.error
        return pending.response

    def _lead(self, mine: _Pending | None) -> None:
        """Send batches until `mine` is answered, then pass the sender slot on (or free it)."""
        while True:
            with self._lock:
                if not self._waiting or (
                    self._senders > 1 and len(self._waiting) < self.BATCH_LIMIT
                ):
                    self._senders -= 1  # nothing left, or less than a batch: others carry it
                    return
                if mine is not None and mine.finished:
                    # Out of the queue first, so no other sender answers it meanwhile.
                    successor = self._waiting.popleft()
                    successor.lead = True
                    successor.done.release()
                    return
                count = min(len(self._waiting), self.BATCH_LIMIT)
                batch = [self._waiting.popleft() for _ in range(count)]
            metrics.ETCD_BATCH_SIZE.observe(len(batch))
            self._flush(batch)

    def _abandon(self, pending: _Pending) -> None:
        """A waiter that gave up: take it out of the queue; if the sender slot was handed
        to it meanwhile, keep the slot working so that no other waiter is stranded."""
        with self._lock:
            if pending in self._waiting:
                self._waiting.remove(pending)
            took_over = pending.lead
        if took_over:
            self._lead(None)

    def _flush(self, batch: list[_Pending]) -> None:
        try:
            responses = self._send([p.op for p in batch])
        except EtcdError as exc:
            if len(batch) > 1 and not isinstance(exc, EtcdUnavailable):
                for pending in batch:  # e.g. a duplicate key across members: one by one
                    self._flush([pending])
                return
            self._finish(batch, [None] * len(batch), exc)
            return
        except Exception as exc:  # never leave a worker waiting on a dead batch
            self._finish(batch, [None] * len(batch), EtcdError(f"etcd request failed: {exc}"))
            return
        self._finish(batch, responses, None)

    @staticmethod
    def _finish(batch: list[_Pending], responses: Sequence[Any], error: Exception | None) -> None:
        for pending, response in zip(batch, responses, strict=True):
            pending.response = response
            pending.error = error
            pending.finished = True
            pending.done.release()


def _short(exc: Exception) -> str:
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _close_clients(clients: Sequence[Any]) -> None:
    for client in clients:
        try:
            client.close()
        except Exception:  # closing is best effort
            log.debug("closing an etcd client failed", exc_info=True)


def _show_endpoint(endpoints: Sequence[str], current: str) -> None:
    """etcdhcp_etcd_endpoint: 1 for the endpoint requests go to first, 0 for the others."""
    for endpoint in endpoints:
        metrics.ETCD_ENDPOINT.labels(endpoint=endpoint).set(1 if endpoint == current else 0)


class _Availability:
    """Whether etcd answers: etcdhcp_etcd_up, and log lines when that changes.

    The gauge (and /readyz) follow every request. The log does not: an outage is
    announced once, with a reminder every UNAVAILABLE_LOG_PERIOD while it lasts and one
    line when etcd answers again. Blips (single requests failing during an election
    while others succeed) are announced at most once per UNAVAILABLE_LOG_PERIOD, unless
    one lasts OUTAGE_ANNOUNCE_AFTER; the next line counts the ones left out.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reason: str | None = None  # None while etcd answers
        self._since = 0.0  # when the current outage began
        self._failures = 0  # requests failed in it
        self._announced = False  # whether the current outage was logged
        self._logged = -UNAVAILABLE_LOG_PERIOD  # when an outage was last logged
        self._unlogged = 0  # outages since then that were too short to log

    def answered(self, endpoint: str) -> None:
        metrics.ETCD_UP.set(1)
        if self.reason is None:
            return
        with self._lock:
            if self.reason is None:
                return
            self.reason = None
            announced, self._announced = self._announced, False
            if not announced:
                self._unlogged += 1
            outage, failures = time.monotonic() - self._since, self._failures
        if announced:
            log.warning(
                "etcd answers again (via %s) after %.1fs; %d requests failed meanwhile",
                endpoint,
                outage,
                failures,
            )

    def failed(self, reason: str) -> None:
        metrics.ETCD_UP.set(0)
        now = time.monotonic()
        with self._lock:
            if self.reason is None:
                self._since, self._failures = now, 0
            self.reason = reason
            self._failures += 1
            due = now - self._logged >= UNAVAILABLE_LOG_PERIOD
            lasting = now - self._since >= OUTAGE_ANNOUNCE_AFTER
            announce = not self._announced and (due or lasting)
            remind = self._announced and due
            if announce or remind:
                self._logged, self._announced = now, True
            blips, outage, failures = self._unlogged, now - self._since, self._failures
            if announce:
                self._unlogged = 0
        if announce:
            log.warning(
                "etcd unavailable (%s): failing closed, no address is handed out or "
                "extended until it answers%s",
                reason,
                f" ({blips} brief outages since the last report)" if blips else "",
            )
        elif remind:
            log.warning(
                "etcd still unavailable after %.0fs (%d requests failed): %s",
                outage,
                failures,
                reason,
            )


def srv_endpoints(name: str, scheme: str = "http", timeout: float = 3.0) -> list[str]:
    """etcd client endpoints from the DNS SRV records of `name`, best first.

    `name` is the full SRV name (`_etcd-client._tcp.example.net`), as the original
    took it. Targets stay host names, so TLS checks them against certificates; gRPC
    resolves them. dnspython is imported here: only SRV users need it.
    """
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.Resolver().resolve(name, "SRV", lifetime=timeout)
    except dns.exception.DNSException as exc:
        raise EtcdUnavailable(f"SRV look-up of {name} failed: {exc}") from exc
    records = sorted(answer, key=lambda r: (r.priority, -r.weight))
    return [f"{scheme}://{r.target.to_text(omit_final_dot=True)}:{r.port}" for r in records]


class _Connection:
    """One gRPC channel to one etcd member, authenticated if a user is configured.

    Built here rather than by the client library: both libraries open a TLS channel
    only when given a CA file, while a client certificate alone (or an https endpoint)
    must still mean TLS, checked against the system's trusted CAs. The token goes in
    each call's metadata, which works on plain and TLS channels alike.
    """

    def __init__(self, endpoint: str, credentials: Credentials, timeout: float) -> None:
        url = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        host = url.hostname or "localhost"
        target = f"[{host}]:{url.port or 2379}" if ":" in host else f"{host}:{url.port or 2379}"
        options = list(_GRPC_OPTIONS)
        if url.scheme == "https" or credentials.ca or credentials.cert:
            tls = grpc.ssl_channel_credentials(
                root_certificates=_read(credentials.ca),  # None: the system's trusted CAs
                private_key=_read(credentials.key),
                certificate_chain=_read(credentials.cert),
            )
            self.channel = grpc.secure_channel(target, tls, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.kvstub = rpc.KVStub(self.channel)
        # Txn with the request already serialized (etcdwire); the response is parsed.
        self.txn = self.channel.unary_unary(
            "/etcdserverpb.KV/Txn",
            request_serializer=None,
            response_deserializer=rpc.TxnResponse.FromString,
        )
        self.leasestub = rpc.LeaseStub(self.channel)
        self.maintenancestub = rpc.MaintenanceStub(self.channel)
        self.call_credentials = None
        self.metadata: tuple[tuple[str, str], ...] | None = None
        if credentials.username:
            try:
                response = rpc.AuthStub(self.channel).Authenticate(
                    rpc.AuthenticateRequest(
                        name=credentials.username, password=credentials.password or ""
                    ),
                    timeout,
                )
            except BaseException:
                self.channel.close()
                raise
            self.metadata = (("token", response.token),)

    def close(self) -> None:
        self.channel.close()


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


class LeaseBuckets:
    """Shares etcd leases among keys whose expiry falls in the same time bucket.

    Granting an etcd lease is a consensus write; one per DHCP lease would double
    the write load (FIELD-NOTES). Keys get the lease of the bucket that ends at or
    after their own expiry, so they live at most one bucket longer than asked.
    """

    def __init__(self, etcd: Etcd, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self._etcd = etcd
        self.ttl = max(1, round(ttl))
        self.granularity = max(1, self.ttl // 16)
        self._clock = clock
        self._leases: dict[int, int] = {}  # bucket end (unix seconds) -> lease ID
        self._lock = threading.Lock()

    def lease(self) -> int:
        """The lease ID for a key that must live at least `ttl` seconds from now."""
        now = self._clock()
        bucket_end = (int(now + self.ttl) // self.granularity + 1) * self.granularity
        with self._lock:
            lease_id = self._leases.get(bucket_end)
            if lease_id is None:
                lease_id = self._etcd.grant(int(bucket_end - now) + 1)
                self._leases = {end: i for end, i in self._leases.items() if end > now}
                self._leases[bucket_end] = lease_id
            return lease_id

    def forget(self) -> None:
        """Drop cached leases (after etcd said one no longer exists)."""
        with self._lock:
            self._leases.clear()
