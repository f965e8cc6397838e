"""etcd requests written straight to protobuf wire bytes.

The hot path builds a nested transaction for every DHCP request. Building it from
protobuf message objects cost ~70 us for a REQUEST (each nesting level copies the
levels below it); writing the same bytes by hand costs a fraction of that. The
builders here return the serialized form of one message (a Compare, a RequestOp),
so composing them is concatenation. Field numbers are those of etcd's rpc.proto;
the tests check every builder byte for byte against the library's own messages.
Responses are still parsed by the library's protobufs.
"""

from __future__ import annotations

from collections.abc import Sequence

# rpc.proto field numbers
_COMPARE_RESULT, _COMPARE_TARGET, _COMPARE_KEY, _COMPARE_VERSION, _COMPARE_VALUE = 1, 2, 3, 4, 7
_GREATER, _LESS = 1, 2  # Compare.CompareResult (EQUAL is 0)
_VALUE = 3  # Compare.CompareTarget (VERSION is 0)
_OP_RANGE, _OP_PUT, _OP_DELETE, _OP_TXN = 1, 2, 3, 4  # RequestOp's oneof
_TXN_COMPARE, _TXN_SUCCESS, _TXN_FAILURE = 1, 2, 3
_KEY, _RANGE_END = 1, 2  # RangeRequest, DeleteRangeRequest (PutRequest: key, value)
_PUT_VALUE, _PUT_LEASE = 2, 3
_RANGE_LIMIT, _RANGE_KEYS_ONLY, _RANGE_COUNT_ONLY, _RANGE_MIN_MOD_REVISION = 3, 8, 9, 10

_VARINT, _LENGTH = 0, 2  # wire types


def to_bytes(value: str | bytes) -> bytes:
    """A key or value as etcd takes it: text is UTF-8."""
    return value.encode() if type(value) is str else value


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer."""
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = [bytes((n,)) for n in range(0x80)]


def _tag(field: int, wire_type: int) -> bytes:
    return bytes(((field << 3) | wire_type,))


def _number(field: int, value: int) -> bytes:
    return _tag(field, _VARINT) + varint(value)


def _message(field: int, body: bytes) -> bytes:
    n = len(body)
    return _TAGS[field] + (_SMALL[n] if n < 0x80 else varint(n)) + body


_TAGS = {field: _tag(field, _LENGTH) for field in range(1, 16)}


def _optional_number(field: int, value: int) -> bytes:
    """proto3 leaves a zero scalar out."""
    return _number(field, value) if value else b""


def _optional_bytes(field: int, value: bytes | None) -> bytes:
    return _message(field, value) if value else b""


# ---- operations (RequestOp)


def put(key: str | bytes, value: str | bytes, lease: int = 0) -> bytes:
    body = (
        _message(_KEY, to_bytes(key))
        + _optional_bytes(_PUT_VALUE, to_bytes(value))
        + _optional_number(_PUT_LEASE, lease)
    )
    return _message(_OP_PUT, body)


def delete(key: str | bytes, end: bytes | None = None) -> bytes:
    """Delete one key, or every key from `key` up to `end` (exclusive)."""
    return _message(_OP_DELETE, _message(_KEY, to_bytes(key)) + _optional_bytes(_RANGE_END, end))


def get(
    key: str | bytes,
    end: bytes | None = None,
    limit: int = 0,
    *,
    keys_only: bool = False,
    count_only: bool = False,
    modified_after: int = 0,
) -> bytes:
    """Read one key, or every key from `key` up to `end` (exclusive); `modified_after` > 0:
    only the keys last modified after that revision."""
    body = (
        _message(_KEY, to_bytes(key))
        + _optional_bytes(_RANGE_END, end)
        + _optional_number(_RANGE_LIMIT, limit)
        + _optional_number(_RANGE_KEYS_ONLY, keys_only)
        + _optional_number(_RANGE_COUNT_ONLY, count_only)
        + _optional_number(_RANGE_MIN_MOD_REVISION, modified_after + 1 if modified_after else 0)
    )
    return _message(_OP_RANGE, body)


def nested(
    compare: Sequence[bytes], success: Sequence[bytes], failure: Sequence[bytes] = ()
) -> bytes:
    """A transaction as one operation of another (etcd >= 3.3)."""
    return _message(_OP_TXN, txn(compare, success, failure))


# ---- compares


_HEAD_VALUE_IS = _number(_COMPARE_TARGET, _VALUE)  # result EQUAL (0) is left out
_HEAD_PRESENT = _number(_COMPARE_RESULT, _GREATER)  # target VERSION (0) is left out
_HEAD_NEVER = _number(_COMPARE_RESULT, _LESS)
_VERSION_0 = _number(_COMPARE_VERSION, 0)  # in a oneof, so written although zero


def value_is(key: str | bytes, value: str | bytes) -> bytes:
    return (
        _HEAD_VALUE_IS
        + _message(_COMPARE_KEY, to_bytes(key))
        + _message(_COMPARE_VALUE, to_bytes(value))
    )


def absent(key: str | bytes) -> bytes:
    return _message(_COMPARE_KEY, to_bytes(key)) + _VERSION_0


def present(key: str | bytes) -> bytes:
    return _HEAD_PRESENT + _message(_COMPARE_KEY, to_bytes(key)) + _VERSION_0


def never(key: str | bytes) -> bytes:
    """A compare that cannot hold (a version below 0) yet names `key`."""
    return _HEAD_NEVER + _message(_COMPARE_KEY, to_bytes(key)) + _VERSION_0


# ---- the request


def txn(compare: Sequence[bytes], success: Sequence[bytes], failure: Sequence[bytes] = ()) -> bytes:
    """A whole TxnRequest: if every compare holds run `success`, else `failure`."""
    return b"".join(
        [
            *[_message(_TXN_COMPARE, c) for c in compare],
            *[_message(_TXN_SUCCESS, op) for op in success],
            *[_message(_TXN_FAILURE, op) for op in failure],
        ]
    )
