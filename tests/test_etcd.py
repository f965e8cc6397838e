"""etcd: request builders, choose(), failover and errors, against the real etcd."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from etcdhcp import etcd as etcd_module
from etcdhcp import metrics
from etcdhcp.etcd import (
    Branch,
    Etcd,
    EtcdError,
    EtcdUnavailable,
    LeaseNotFound,
    first_value,
    prefix_end,
)
from etcdhcp.etcdwire import absent, get, present, put, value_is


def dead_endpoint() -> str:
    """An address where nothing listens (a port that was just free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_prefix_end() -> None:
    assert prefix_end("etcdhcp::") == b"etcdhcp:;"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"a\xff\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\x00"
    assert prefix_end("") == b"\x00"


def test_range_put_and_prefix(etcd: Etcd, etcd_prefix: str) -> None:
    p = etcd_prefix
    etcd.txn([], [put(f"{p}k{i}", f"v{i}") for i in range(10)])
    assert etcd.range(f"{p}k3").kvs[0].value == b"v3"
    assert etcd.range(f"{p}nope").kvs == []
    limited = etcd.range(p, prefix_end(p), limit=4)
    assert len(limited.kvs) == 4 and limited.more and limited.count == 10
    keys_only = etcd.range(p, prefix_end(p), keys_only=True)
    assert len(keys_only.kvs) == 10 and all(kv.value == b"" for kv in keys_only.kvs)
    assert etcd.range(p, prefix_end(p), count_only=True).count == 10
    # Something beside the prefix is not included.
    etcd.txn([], [put(p[:-1] + ";", "outside")])
    assert etcd.range(p, prefix_end(p), count_only=True).count == 10


def test_txn_outcomes_are_counted(etcd: Etcd, etcd_prefix: str) -> None:
    key = f"{etcd_prefix}k"
    failed = sample("etcdhcp_etcd_requests_total", op="txn", outcome="failed_compare")
    response = etcd.txn([present(key)], [put(key, "no")], [put(key, "yes")])
    assert not response.succeeded
    assert sample("etcdhcp_etcd_requests_total", op="txn", outcome="failed_compare") >= failed + 1
    response = etcd.txn([value_is(key, "yes")], [get(key)])
    assert response.succeeded
    assert [(kv.key, kv.value) for kv in response.responses[0].response_range.kvs] == [
        (key.encode(), b"yes")
    ]
    assert first_value(response.responses[0]) == b"yes"


def test_choose_runs_the_first_matching_branch_only(etcd: Etcd, etcd_prefix: str) -> None:
    p = etcd_prefix
    etcd.txn([], [put(f"{p}a", "1")])
    branches = [
        Branch([value_is(f"{p}a", "2")], [put(f"{p}b0", "x")]),
        Branch([present(f"{p}a")], [put(f"{p}b1", "x"), get(f"{p}a")]),
        Branch([absent(f"{p}zzz")], [put(f"{p}b2", "x")]),  # also holds, but comes later
    ]
    choice = etcd.choose(branches, [get(f"{p}a")])
    assert choice.index == 1
    assert first_value(choice.responses[1]) == b"1"
    assert etcd.range(f"{p}b1").kvs
    assert not etcd.range(f"{p}b0").kvs and not etcd.range(f"{p}b2").kvs


def test_choose_falls_back_to_otherwise(etcd: Etcd, etcd_prefix: str) -> None:
    p = etcd_prefix
    etcd.txn([], [put(f"{p}a", "1")])
    branches = [
        Branch([absent(f"{p}a")], [put(f"{p}b0", "x")]),
        Branch([value_is(f"{p}a", "2")], [put(f"{p}b1", "x")]),
    ]
    choice = etcd.choose(branches, [get(f"{p}a"), get(f"{p}missing")])
    assert choice.index is None
    assert first_value(choice.responses[0]) == b"1"
    assert first_value(choice.responses[1]) is None
    assert etcd.range(p, prefix_end(p), count_only=True).count == 1  # no branch wrote anything
    only = etcd.choose([Branch([absent(f"{p}a")], [put(f"{p}b0", "x")])])
    assert only.index is None and list(only.responses) == []
    first = etcd.choose([Branch([present(f"{p}a")], [put(f"{p}b0", "x")])])
    assert first.index == 0 and etcd.range(f"{p}b0").kvs
    with pytest.raises(ValueError):
        etcd.choose([])


def test_grant_and_lease_not_found(etcd: Etcd, etcd_prefix: str, etcd_client: Any) -> None:
    lease = etcd.grant(30)
    assert lease > 0
    assert 25 <= etcd_client.get_lease_info(lease).TTL <= 30
    etcd.txn([], [put(f"{etcd_prefix}leased", "v", lease)])
    _, meta = etcd_client.get(f"{etcd_prefix}leased")
    assert meta.lease_id == lease
    etcd_client.revoke_lease(lease)
    with pytest.raises(LeaseNotFound):
        etcd.txn([], [put(f"{etcd_prefix}leased", "v", lease)])


def test_bad_request_is_an_error_not_unavailability(etcd: Etcd, etcd_prefix: str) -> None:
    key = f"{etcd_prefix}dup"
    with pytest.raises(EtcdError) as info:
        etcd.txn([], [put(key, "1"), put(key, "2")])  # etcd refuses duplicate keys
    assert not isinstance(info.value, (EtcdUnavailable, LeaseNotFound))


def test_status(etcd: Etcd) -> None:
    assert etcd.status().version.startswith("3.")


@pytest.mark.parametrize("scheme", ["", "http://"])
def test_endpoint_with_or_without_scheme(etcd_server: Any, scheme: str) -> None:
    client = Etcd([f"{scheme}{etcd_server.host}:{etcd_server.port}"], timeout=5.0)
    try:
        assert client.status().version
    finally:
        client.close()


def test_failover_to_a_live_endpoint_and_remember_it(etcd_server: Any, etcd_prefix: str) -> None:
    dead = dead_endpoint()
    client = Etcd([dead, etcd_server.endpoint], timeout=3.0)
    try:
        client.txn([], [put(f"{etcd_prefix}k", "v")])
        assert client.endpoints[client._current] == etcd_server.endpoint
        assert sample("etcdhcp_etcd_up") == 1
        started = time.monotonic()
        for _ in range(20):
            assert client.range(f"{etcd_prefix}k").kvs[0].value == b"v"
        assert time.monotonic() - started < 2.0
        assert client.endpoints[client._current] == etcd_server.endpoint
    finally:
        client.close()


def test_a_hung_endpoint_costs_at_most_one_timeout(etcd_server: Any) -> None:
    """A member that accepts connections but never answers: the client moves on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        client = Etcd([f"127.0.0.1:{hung.getsockname()[1]}", etcd_server.endpoint], timeout=1.0)
        try:
            started = time.monotonic()
            with contextlib.suppress(EtcdUnavailable):  # the first request may be lost
                client.status()
            assert time.monotonic() - started < 1.5
            started = time.monotonic()
            assert client.status().version
            assert client.range("anything").count == 0
            assert time.monotonic() - started < 0.5
            assert client.endpoints[client._current] == etcd_server.endpoint
        finally:
            client.close()


def test_all_endpoints_dead_raises_within_the_timeout() -> None:
    client = Etcd([dead_endpoint(), dead_endpoint()], timeout=1.0)
    unavailable = sample("etcdhcp_etcd_requests_total", op="range", outcome="unavailable")
    started = time.monotonic()
    try:
        with pytest.raises(EtcdUnavailable):
            client.range("anything")
    finally:
        client.close()
    assert time.monotonic() - started < 2.5
    assert sample("etcdhcp_etcd_up") == 0
    assert (
        sample("etcdhcp_etcd_requests_total", op="range", outcome="unavailable") >= unavailable + 1
    )


def test_no_endpoint_is_refused() -> None:
    with pytest.raises(ValueError):
        Etcd([], timeout=1.0)


def test_watch_deletes_reports_deleted_keys(etcd: Etcd, etcd_prefix: str, etcd_client: Any) -> None:
    p = etcd_prefix
    etcd.txn([], [put(f"{p}a", "1"), put(f"{p}b", "2")])
    deleted, cancel = etcd.watch_deletes(p)
    seen: list[str] = []

    def consume() -> None:
        for key in deleted:
            seen.append(key)
            if len(seen) == 2:
                return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # let the watch be established
        etcd_client.put(f"{p}c", "3")  # a put is not a delete
        etcd_client.delete(f"{p}a")
        etcd_client.delete(f"{p}b")
        thread.join(5.0)
    finally:
        cancel()
    assert seen == [f"{p}a", f"{p}b"]


def test_keepalive_and_revoke(etcd: Etcd, etcd_prefix: str, etcd_client: Any) -> None:
    lease = etcd.grant(30)
    etcd.txn([], [put(f"{etcd_prefix}k", "v", lease)])
    assert 0 < etcd.keepalive(lease) <= 30
    etcd.revoke(lease)
    assert etcd_client.get(f"{etcd_prefix}k")[0] is None  # keys go with their lease
    assert etcd.keepalive(lease) == 0  # a lease that no longer exists


def test_rediscovery_after_every_endpoint_failed(etcd_server: Any) -> None:
    looked_up: list[int] = []

    def rediscover() -> list[str]:
        looked_up.append(1)
        return [etcd_server.endpoint]

    client = Etcd([dead_endpoint()], timeout=0.5, rediscover=rediscover)
    try:
        with pytest.raises(EtcdUnavailable):
            client.status()
        assert looked_up == [1]
        assert client.endpoints == [etcd_server.endpoint]
        assert client.status().version
        assert sample("etcdhcp_etcd_endpoint", endpoint=etcd_server.endpoint) == 1
    finally:
        client.close()


def test_an_outage_is_logged_once_and_reported_until_etcd_answers(
    etcd_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    dead = dead_endpoint()
    client = Etcd([dead], timeout=0.3)
    try:
        with caplog.at_level("WARNING", logger="etcdhcp.etcd"):
            for _ in range(5):
                with pytest.raises(EtcdUnavailable):
                    client.range("anything")
            assert client.unavailable_reason is not None
            assert "UNAVAILABLE" in client.unavailable_reason
            client.set_endpoints([etcd_server.endpoint])  # etcd is back
            # A watch is created by one member alone, with or without a quorum: it
            # proves nothing, and the outage goes on until a request answers.
            _events, cancel = client.watch("anything")
            cancel()
            assert client.unavailable_reason is not None
            client.range("anything")
        assert client.unavailable_reason is None
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 2, lines  # not one line per failed request
        assert lines[0].startswith("etcd unavailable (") and "failing closed" in lines[0]
        assert lines[1].startswith("etcd answers again") and "5 requests failed" in lines[1]
    finally:
        client.close()


def test_an_https_endpoint_means_tls_even_without_a_ca_or_certificate(etcd_server: Any) -> None:
    # The session's etcd speaks plain HTTP: a TLS client fails its handshake.
    tls = Etcd([etcd_server.endpoint.replace("http://", "https://")], timeout=1.0)
    try:
        with pytest.raises(EtcdUnavailable, match=r"(?i)handshake"):
            tls.status()
    finally:
        tls.close()


def test_check_access_passes_with_permission_and_writes_nothing(
    etcd: Etcd, etcd_prefix: str
) -> None:
    etcd.check_access(etcd_prefix)
    assert etcd.range(etcd_prefix, prefix_end(etcd_prefix)).count == 0


def test_brief_outages_are_not_logged_one_by_one(
    etcd_server: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(etcd_module, "OUTAGE_ANNOUNCE_AFTER", 0.5)
    dead = dead_endpoint()
    client = Etcd([dead], timeout=0.2)
    try:
        with caplog.at_level("WARNING", logger="etcdhcp.etcd"):
            for _ in range(3):  # three blips: a failed request, then etcd answers
                client.set_endpoints([dead])
                with pytest.raises(EtcdUnavailable):
                    client.range("anything")
                client.set_endpoints([etcd_server.endpoint])
                client.range("anything")
            client.set_endpoints([dead])  # then an outage that lasts
            for _ in range(5):
                with pytest.raises(EtcdUnavailable):
                    client.range("anything")
                time.sleep(0.1)
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 3, lines
        assert lines[0].startswith("etcd unavailable (")  # the first blip
        assert lines[1].startswith("etcd answers again")
        assert lines[2].startswith("etcd unavailable (")  # the lasting outage
        assert "(2 brief outages since the last report)" in lines[2]
    finally:
        client.close()


# ---- group commit (_Batcher) -------------------------------------------------------------


class GatedSender:
    """A `send` for _Batcher that records each batch and holds the first until released."""

    def __init__(self, refuse_batches: bool = False, error: Exception | None = None) -> None:
        self.batches: list[list[bytes]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.refuse_batches = refuse_batches
        self.error = error

    def __call__(self, ops: Any) -> list[Any]:
        self.batches.append(list(ops))
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        if self.error is not None:
            raise self.error
        if self.refuse_batches and len(ops) > 1:
            raise EtcdError("duplicate key given in txn request")
        return [b"answer to " + op for op in ops]


def queue_behind_one(sender: GatedSender, count: int) -> tuple[Any, list[bytes], dict]:
    """op0 is sent (and held by the sender's gate), then op1..op<count-1> (fewer than a
    batch) queue behind it, in that order, each from its own thread; then the gate opens.
    Returns the batcher, the ops and their answers (or errors) by op."""
    batcher = etcd_module._Batcher(sender, timeout=2.0)
    ops = [f"op{i}".encode() for i in range(count)]
    results: dict[bytes, Any] = {}

    def run(op: bytes) -> None:
        try:
            results[op] = batcher.submit(op)
        except Exception as exc:
            results[op] = exc

    threads = [threading.Thread(target=run, args=(op,)) for op in ops]
    threads[0].start()
    assert sender.entered.wait(5)
    for thread in threads[1:]:
        thread.start()
        time.sleep(0.02)  # in this order in the queue
    sender.gate.set()
    for thread in threads:
        thread.join(10)
    return batcher, ops, results


def test_batcher_sends_waiting_transactions_together_after_the_first() -> None:
    """The first transaction goes alone; the five that queued behind it (less than a batch:
    no second request meanwhile) go in one request, sent by the oldest waiter's own
    thread, oldest first."""
    sender = GatedSender()
    batcher, ops, results = queue_behind_one(sender, 6)
    assert sender.batches == [ops[:1], ops[1:]]
    assert results == {op: b"answer to " + op for op in ops}
    assert batcher._senders == 0 and not batcher._waiting


def test_batcher_opens_a_second_sender_only_for_a_full_batch() -> None:
    """While a request is in flight, the arrival that fills a batch sends it at once from
    its own thread; the few after it wait for one of the two, not a third request."""
    sender = GatedSender()
    batcher = etcd_module._Batcher(sender, timeout=2.0)
    limit = batcher.BATCH_LIMIT
    ops = [f"op{i}".encode() for i in range(limit + 3)]
    results: dict[bytes, Any] = {}

    def run(op: bytes) -> None:
        results[op] = batcher.submit(op)

    threads = [threading.Thread(target=run, args=(op,)) for op in ops]
    for thread in threads:
        thread.start()
        time.sleep(0.02)  # in this order in the queue
    assert sender.batches == [ops[:1], ops[1 : limit + 1]]
    assert batcher._senders == 2
    sender.gate.set()
    for thread in threads:
        thread.join(10)
    assert sender.batches == [ops[:1], ops[1 : limit + 1], ops[limit + 1 :]]
    assert results == {op: b"answer to " + op for op in ops}
    assert batcher._senders == 0 and not batcher._waiting


def test_batcher_sends_a_refused_batch_one_by_one() -> None:
    sender = GatedSender(refuse_batches=True)
    _batcher, ops, results = queue_behind_one(sender, 4)
    assert sender.batches == [ops[:1], ops[1:], ops[1:2], ops[2:3], ops[3:4]]
    assert results == {op: b"answer to " + op for op in ops}


def test_batcher_gives_every_waiter_the_outage() -> None:
    sender = GatedSender(error=EtcdUnavailable("no etcd endpoint answered"))
    batcher, ops, results = queue_behind_one(sender, 3)
    assert len(sender.batches) == 2
    assert all(isinstance(results[op], EtcdUnavailable) for op in ops)
    assert batcher._senders == 0 and not batcher._waiting


def test_many_concurrent_choices_each_get_their_own_answer(etcd: Etcd, etcd_prefix: str) -> None:
    """64 threads x 25 guarded puts through the real etcd: each sees its own outcome."""
    p = etcd_prefix
    batches_before = sample("etcdhcp_etcd_batch_size_count")
    outcomes: dict[str, int | None] = {}

    def work(t: int) -> None:
        for i in range(25):
            key = f"{p}{t}-{i}"
            if i % 5 == 0:  # taken already: the fallback branch reads it
                etcd.txn([], [put(key, "old")])
            choice = etcd.choose([Branch([absent(key)], [put(key, "new")])], [get(key)])
            outcomes[key] = choice.index
            if choice.index is None:
                assert first_value(choice.responses[0]) == b"old"

    threads = [threading.Thread(target=work, args=(t,)) for t in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == 64 * 25
    assert all(
        (index is None) == (key.endswith(("-0", "-5", "-10", "-15", "-20")))
        for key, index in outcomes.items()
    )
    response = etcd.txn([], [get(p, prefix_end(p))]).responses[0]
    stored = {kv.key: kv.value for kv in response.response_range.kvs}
    assert sum(v == b"new" for v in stored.values()) == 64 * 20
    batches = sample("etcdhcp_etcd_batch_size_count") - batches_before
    assert batches < 64 * 25  # some requests carried several transactions


_WAKE_UPS_SCRIPT = """
import sys, threading
from pathlib import Path
from etcdhcp.etcd import Etcd

def others() -> int:
    own = str(threading.get_native_id())
    total = 0
    for task in Path("/proc/self/task").iterdir():
        if task.name != own:
            status = (task / "status").read_text()
            total += int(status.split("voluntary_ctxt_switches:")[1].split()[0])
    return total

etcd = Etcd([sys.argv[1]], 5.0)
for _ in range(10):
    etcd.range("etcdhcp::probe")
before = others()
for _ in range(100):
    etcd.range("etcdhcp::probe")
print(others() - before)
"""


def test_a_request_is_polled_by_its_own_thread(etcd_server: Any) -> None:
    # gRPC's EventEngine client would wake its threads about five times a request
    # (393-433 for these 100 here); the classic poller that etcd.py chooses, a few in all
    # (5 on an idle machine, 8-18 with both cores 90 % busy: timers, the backup poller).
    done = subprocess.run(
        [sys.executable, "-c", _WAKE_UPS_SCRIPT, etcd_server.endpoint],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert int(done.stdout) < 100, done.stdout
