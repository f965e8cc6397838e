"""etcdwire: every builder, byte for byte, against the client library's own protobufs."""

from __future__ import annotations

import pytest

from etcdhcp import etcdwire
from etcdhcp.etcd import rpc

KEYS = ["k", "prefix::leased::198.18.0.1", "é-ü", "x" * 200]  # short, long length varints
LEASES = [0, 1, 127, 128, 7587891234567890123]


def request_op(**kw: object) -> bytes:
    return rpc.RequestOp(**kw).SerializeToString()


def compare(**kw: object) -> bytes:
    return rpc.Compare(**kw).SerializeToString()


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("lease", LEASES)
@pytest.mark.parametrize("value", ["", "v", "y" * 300])
def test_put(key: str, lease: int, value: str) -> None:
    expected = request_op(
        request_put=rpc.PutRequest(key=key.encode(), value=value.encode(), lease=lease)
    )
    assert etcdwire.put(key, value, lease) == expected
    assert etcdwire.put(key.encode(), value.encode(), lease) == expected


@pytest.mark.parametrize("key", KEYS)
def test_delete(key: str) -> None:
    single = rpc.DeleteRangeRequest(key=key.encode())
    assert etcdwire.delete(key) == request_op(request_delete_range=single)
    ranged = rpc.DeleteRangeRequest(key=key.encode(), range_end=b"\x00")
    assert etcdwire.delete(key, b"\x00") == request_op(request_delete_range=ranged)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("limit", [0, 1, 32, 1000])
def test_get(key: str, limit: int) -> None:
    plain = rpc.RangeRequest(key=key.encode(), limit=limit)
    assert etcdwire.get(key, limit=limit) == request_op(request_range=plain)
    ranged = rpc.RangeRequest(key=key.encode(), range_end=b"kz", limit=limit, keys_only=True)
    assert etcdwire.get(key, b"kz", limit, keys_only=True) == request_op(request_range=ranged)
    count = rpc.RangeRequest(key=key.encode(), range_end=b"kz", count_only=True)
    assert etcdwire.get(key, b"kz", count_only=True) == request_op(request_range=count)
    since = rpc.RangeRequest(key=key.encode(), range_end=b"kz", limit=1, min_mod_revision=8)
    assert etcdwire.get(key, b"kz", 1, modified_after=7) == request_op(request_range=since)


@pytest.mark.parametrize("key", KEYS)
def test_compares(key: str) -> None:
    k = key.encode()
    version, value = rpc.Compare.VERSION, rpc.Compare.VALUE
    assert etcdwire.value_is(key, "02:00:5e:00:00:01") == compare(
        result=rpc.Compare.EQUAL, target=value, key=k, value=b"02:00:5e:00:00:01"
    )
    assert etcdwire.value_is(key, "") == compare(
        result=rpc.Compare.EQUAL, target=value, key=k, value=b""
    )
    assert etcdwire.absent(key) == compare(
        result=rpc.Compare.EQUAL, target=version, key=k, version=0
    )
    assert etcdwire.present(key) == compare(
        result=rpc.Compare.GREATER, target=version, key=k, version=0
    )
    assert etcdwire.never(key) == compare(result=rpc.Compare.LESS, target=version, key=k, version=0)


def test_nested_transactions() -> None:
    """Three levels deep, as Etcd.choose builds them, equal to the message-built request."""
    inner_ops = [etcdwire.get("a"), etcdwire.get("b", b"c")]
    inner = etcdwire.nested([etcdwire.absent("x")], [etcdwire.put("x", "1", 5)], inner_ops)
    middle = etcdwire.nested([etcdwire.value_is("y", "2")], [etcdwire.delete("y")], [inner])
    outer = etcdwire.txn([etcdwire.present("z")], [etcdwire.put("z", "3")], [middle])

    msg_inner = rpc.TxnRequest(
        compare=[rpc.Compare(target=rpc.Compare.VERSION, key=b"x", version=0)],
        success=[rpc.RequestOp(request_put=rpc.PutRequest(key=b"x", value=b"1", lease=5))],
        failure=[
            rpc.RequestOp(request_range=rpc.RangeRequest(key=b"a")),
            rpc.RequestOp(request_range=rpc.RangeRequest(key=b"b", range_end=b"c")),
        ],
    )
    msg_middle = rpc.TxnRequest(
        compare=[rpc.Compare(target=rpc.Compare.VALUE, key=b"y", value=b"2")],
        success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=b"y"))],
        failure=[rpc.RequestOp(request_txn=msg_inner)],
    )
    msg_outer = rpc.TxnRequest(
        compare=[
            rpc.Compare(result=rpc.Compare.GREATER, target=rpc.Compare.VERSION, key=b"z", version=0)
        ],
        success=[rpc.RequestOp(request_put=rpc.PutRequest(key=b"z", value=b"3"))],
        failure=[rpc.RequestOp(request_txn=msg_middle)],
    )
    assert outer == msg_outer.SerializeToString()
    assert rpc.TxnRequest.FromString(outer) == msg_outer


def test_empty_transaction() -> None:
    assert etcdwire.txn([], []) == b""
    assert etcdwire.nested([], []) == request_op(request_txn=rpc.TxnRequest())


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16383, 16384, 2**32, 2**63 - 1])
def test_varint(value: int) -> None:
    decoded, shift = 0, 0
    for byte in etcdwire.varint(value):
        decoded |= (byte & 0x7F) << shift
        shift += 7
    assert decoded == value
    assert all(b & 0x80 for b in etcdwire.varint(value)[:-1])
    assert not etcdwire.varint(value)[-1] & 0x80
