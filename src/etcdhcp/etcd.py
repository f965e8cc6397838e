"""The etcd connection: endpoints with failover, per-request timeouts, raw KV requests.

Requests are built from the client library's own protobuf stubs instead of its
helpers, because python-etcd3 0.12 (Debian 12) silently ignores a range `limit`
and neither library builds nested transactions, which `Etcd.choose` uses to try
several guarded alternatives in one round trip. Either library works: the
maintained fork `pyetcd` (etcd-sdk-python, PyPI) or `etcd3` (python3-etcd3).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc

try:  # the maintained fork, from PyPI
    import pyetcd as etcd3
except ImportError:  # Debian 12's python3-etcd3
    import etcd3  # type: ignore[no-redef]

from etcdhcp import metrics

log = logging.getLogger(__name__)
rpc = etcd3.etcdrpc

T = TypeVar("T")

# gRPC codes that mean "this member cannot answer now": try another one.
_RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)


_DELETE_EVENT = 1  # mvccpb.Event.EventType.DELETE


class EtcdError(Exception):
    """etcd refused a request (bad request, permission denied, ...)."""


class EtcdUnavailable(EtcdError):
    """No endpoint answered within the request timeout."""


class LeaseNotFound(EtcdError):
    """A put named an etcd lease that has expired or was revoked."""


def _b(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def prefix_end(prefix: str | bytes) -> bytes:
    """The first key after every key starting with `prefix` (etcd's range_end for a prefix)."""
    raw = bytearray(_b(prefix))
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return b"\x00"
    raw[-1] += 1
    return bytes(raw)


# ---- request builders -------------------------------------------------------------


def put(key: str | bytes, value: str | bytes, lease: int = 0) -> Any:
    return rpc.RequestOp(request_put=rpc.PutRequest(key=_b(key), value=_b(value), lease=lease))


def delete(key: str | bytes) -> Any:
    return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=_b(key)))


def get(key: str | bytes, end: bytes | None = None, limit: int = 0) -> Any:
    request = rpc.RangeRequest(key=_b(key), limit=limit)
    if end is not None:
        request.range_end = end
    return rpc.RequestOp(request_range=request)


def value_is(key: str | bytes, value: str | bytes) -> Any:
    return rpc.Compare(
        result=rpc.Compare.EQUAL, target=rpc.Compare.VALUE, key=_b(key), value=_b(value)
    )


def absent(key: str | bytes) -> Any:
    return rpc.Compare(result=rpc.Compare.EQUAL, target=rpc.Compare.VERSION, key=_b(key), version=0)


def present(key: str | bytes) -> Any:
    return rpc.Compare(
        result=rpc.Compare.GREATER, target=rpc.Compare.VERSION, key=_b(key), version=0
    )


def nested(compare: Sequence[Any], success: Sequence[Any], failure: Sequence[Any] = ()) -> Any:
    """A transaction as one operation of another (etcd >= 3.3)."""
    return rpc.RequestOp(
        request_txn=rpc.TxnRequest(compare=compare, success=success, failure=failure)
    )


@dataclass(frozen=True)
class Branch:
    """One guarded alternative for `Etcd.choose`: if every compare holds, run ops."""

    compare: Sequence[Any]
    ops: Sequence[Any]


@dataclass(frozen=True)
class Choice:
    """Which branch of a `choose` ran (None: the fallback) and that branch's responses."""

    index: int | None
    responses: Sequence[Any]


def range_values(response: Any) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs of a ResponseOp holding a range response."""
    return [(kv.key, kv.value) for kv in response.response_range.kvs]


def first_value(response: Any) -> bytes | None:
    kvs = response.response_range.kvs
    return kvs[0].value if kvs else None


# ---- the connection -------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = None
    ca: str | None = None
    cert: str | None = None
    key: str | None = None


class Etcd:
    """Thread-safe access to an etcd cluster through any of its client endpoints.

    Every call goes to the current endpoint; when it is unreachable the call moves
    on to the next one and retries, within the per-request timeout.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        timeout: float,
        credentials: Credentials = Credentials(),
    ) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoint")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self._credentials = credentials
        self._clients: dict[str, Any] = {}
        self._current = 0
        self._lock = threading.Lock()

    # -- plumbing

    def _client_for(self, endpoint: str) -> Any:
        with self._lock:
            client = self._clients.get(endpoint)
        if client is not None:
            return client
        url = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        creds = self._credentials
        client = etcd3.client(
            host=url.hostname,
            port=url.port or 2379,
            ca_cert=creds.ca,
            cert_key=creds.key,
            cert_cert=creds.cert,
            user=creds.username,
            password=creds.password,
            timeout=self.timeout,
        )
        with self._lock:
            return self._clients.setdefault(endpoint, client)

    def _call(self, op: str, fn: Callable[[Any, float], T]) -> T:
        """Run fn(client, timeout) on the current endpoint, failing over on unavailability."""
        started = time.monotonic()
        deadline = started + self.timeout
        count = len(self.endpoints)
        last_error: Exception | None = None
        for attempt in range(max(2, count)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # Share what is left among the endpoints not tried yet, so one member that
            # accepts connections but never answers cannot use up the whole budget.
            budget = max(0.05, remaining / max(1, count - attempt))
            index = self._current
            endpoint = self.endpoints[index % count]
            try:
                client = self._client_for(endpoint)
                result = fn(client, budget)
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                if code in _RETRYABLE:
                    last_error = exc
                    self._fail_over(index, endpoint, exc)
                    continue
                metrics.ETCD_REQUESTS.labels(op=op, outcome="error").inc()
                details = exc.details() if hasattr(exc, "details") else str(exc)
                if code == grpc.StatusCode.NOT_FOUND and "lease" in (details or ""):
                    raise LeaseNotFound(details) from exc
                raise EtcdError(f"{endpoint}: {details}") from exc
            except (etcd3.exceptions.Etcd3Exception, OSError) as exc:  # connecting, auth
                last_error = exc
                self._fail_over(index, endpoint, exc)
                continue
            metrics.ETCD_UP.set(1)
            metrics.ETCD_REQUEST_DURATION.labels(op=op).observe(time.monotonic() - started)
            return result
        metrics.ETCD_UP.set(0)
        metrics.ETCD_REQUESTS.labels(op=op, outcome="unavailable").inc()
        raise EtcdUnavailable(f"no etcd endpoint answered: {last_error}")

    def _fail_over(self, index: int, endpoint: str, exc: Exception) -> None:
        with self._lock:
            if self._current == index and len(self.endpoints) > 1:
                self._current = (index + 1) % len(self.endpoints)
                log.warning(
                    "etcd endpoint %s failed (%s); trying %s",
                    endpoint,
                    _short(exc),
                    self.endpoints[self._current],
                )
            self._clients.pop(endpoint, None)

    def _metadata(self, client: Any) -> dict[str, Any]:
        return {"credentials": client.call_credentials, "metadata": client.metadata}

    # -- requests

    def range(
        self,
        key: str | bytes,
        end: bytes | None = None,
        *,
        limit: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
    ) -> Any:
        """A RangeResponse; `end` None means the single key."""
        request = rpc.RangeRequest(
            key=_b(key), limit=limit, keys_only=keys_only, count_only=count_only
        )
        if end is not None:
            request.range_end = end

        def call(client: Any, timeout: float) -> Any:
            return client.kvstub.Range(request, timeout, **self._metadata(client))

        response = self._call("range", call)
        metrics.ETCD_REQUESTS.labels(op="range", outcome="ok").inc()
        return response

    def prefix(self, prefix: str, *, keys_only: bool = False, count_only: bool = False) -> Any:
        return self.range(prefix, prefix_end(prefix), keys_only=keys_only, count_only=count_only)

    def txn(
        self, compare: Sequence[Any], success: Sequence[Any], failure: Sequence[Any] = ()
    ) -> Any:
        """A TxnResponse; `.succeeded` says which branch ran."""
        request = rpc.TxnRequest(compare=compare, success=success, failure=failure)

        def call(client: Any, timeout: float) -> Any:
            return client.kvstub.Txn(request, timeout, **self._metadata(client))

        response = self._call("txn", call)
        outcome = "ok" if response.succeeded else "failed_compare"
        metrics.ETCD_REQUESTS.labels(op="txn", outcome=outcome).inc()
        return response

    def choose(self, branches: Sequence[Branch], otherwise: Sequence[Any] = ()) -> Choice:
        """Run the first branch whose compares hold, else `otherwise`, in one transaction.

        The branches become an if/else chain of nested transactions, so exactly one
        runs and the whole decision costs one round trip and at most one write.
        """
        if not branches:
            raise ValueError("choose needs at least one branch")
        tail: Sequence[Any] = otherwise
        for branch in reversed(branches[1:]):
            tail = [nested(branch.compare, branch.ops, tail)]
        response = self.txn(branches[0].compare, branches[0].ops, tail)
        index = 0
        while not response.succeeded:
            index += 1
            if index == len(branches):
                return Choice(None, response.responses)
            response = response.responses[0].response_txn
        return Choice(index, response.responses)

    def grant(self, ttl: int) -> int:
        """A new etcd lease of `ttl` seconds; returns its ID."""
        request = rpc.LeaseGrantRequest(TTL=ttl, ID=0)

        def call(client: Any, timeout: float) -> Any:
            return client.leasestub.LeaseGrant(request, timeout, **self._metadata(client))

        response = self._call("grant", call)
        metrics.ETCD_REQUESTS.labels(op="grant", outcome="ok").inc()
        return response.ID

    def status(self) -> Any:
        """The current member's status: cheap proof that etcd answers."""

        def call(client: Any, timeout: float) -> Any:
            return client.maintenancestub.Status(
                rpc.StatusRequest(), timeout, **self._metadata(client)
            )

        return self._call("status", call)

    def watch_deletes(self, prefix: str) -> tuple[Iterator[str], Callable[[], None]]:
        """(iterator of keys deleted under `prefix`, cancel), from the current endpoint.

        A raw Watch stream read by the caller's own thread: neither library's watcher
        thread survives its channel closing cleanly. The iterator ends or raises when
        the watch breaks or is cancelled; the caller watches again.
        """
        stop = threading.Event()
        create = rpc.WatchCreateRequest(
            key=_b(prefix), range_end=prefix_end(prefix), filters=[rpc.WatchCreateRequest.NOPUT]
        )

        def requests() -> Iterator[Any]:
            yield rpc.WatchRequest(create_request=create)
            stop.wait()  # keep the stream open until cancelled

        def call(client: Any, _timeout: float) -> Any:
            stub = rpc.WatchStub(client.channel)
            return stub.Watch(requests(), **self._metadata(client))

        stream = self._call("watch", call)

        def cancel() -> None:
            stop.set()
            stream.cancel()

        def deleted() -> Iterator[str]:
            for response in stream:
                for event in response.events:
                    if event.type == _DELETE_EVENT:
                        yield event.kv.key.decode()

        return deleted(), cancel

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                client.close()
            except Exception:  # closing is best effort
                log.debug("closing an etcd client failed", exc_info=True)


def _short(exc: Exception) -> str:
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


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
