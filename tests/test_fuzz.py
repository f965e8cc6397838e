"""Malformed input never hurts: decode and every protocol decision survive any frame.

Properties (hypothesis) over arbitrary bytes, mutated real-client requests and
requests crafted field by field: `codec.decode` returns a Request or raises
`codec.Malformed` and nothing else, allocates in proportion to the frame, and every
frame it accepts goes through the RFC 2131 helpers, the pipeline on a real
LeaseStore (the session's etcd) and the reply encoder without an exception. The
server counts each frame it drops. A bounded coverage-guided run of the atheris
harness (tests/fuzz/fuzz_decode.py) checks the same from a subprocess. Client-class
expressions (tests/fuzz/class_tests.py) evaluate every such request, and requests
with any option bytes at all, to a bool; the expression compiler turns any text into
an Expression or an ExpressionError; tests/fuzz/fuzz_expressions.py fuzzes both.
"""

from __future__ import annotations

import ipaddress
import random
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from etcdhcp import codec, expressions, metrics
from etcdhcp.etcd import Etcd
from etcdhcp.globalconfig import parse_global
from etcdhcp.options import assemble
from etcdhcp.pipeline import Exchange, Pipeline
from etcdhcp.rfc2131 import destination, request_state
from etcdhcp.scopes import Link, ScopeSet
from fuzz import class_tests, hostile
from stores import make_store, scope_of

SERVER_IP = "198.18.0.1"
SUBNET = ipaddress.IPv4Network("198.18.0.0/24")
FUZZ_DIR = Path(__file__).with_name("fuzz")
BASE_PAYLOADS = hostile.base_payloads()  # built now: scapy draws xids from `random`
ROOT = Path(__file__).resolve().parents[1]

# Addresses that steer crafted requests into the server's interesting paths.
ADDRESSES = st.sampled_from(
    ["0.0.0.0", SERVER_IP, "198.18.0.10", "198.18.0.12", "198.18.0.255", "10.9.8.7"]
).map(ipaddress.IPv4Address)
OPTION_CODES = st.one_of(
    st.sampled_from([0, 1, 12, 50, 51, 52, 53, 54, 55, 57, 61, 81, 82, 255]),
    st.integers(0, 255),
)
FAST = settings(max_examples=400, deadline=None, database=None)
WITH_ETCD = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _decode(frame: bytes) -> codec.Request | None:
    """decode's only two outcomes: a client's Request, or Malformed (None here)."""
    try:
        request = codec.decode(frame)
    except codec.Malformed as exc:
        assert exc.reason and exc.reason.isidentifier(), exc  # a usable metric label
        return None
    # What the rest of the server relies on without checking again.
    assert request.op == 1 and request.htype == 1 and request.hlen == 6
    assert request.message_type in codec.CLIENT_MESSAGE_TYPES
    return request


# ---- strategies ------------------------------------------------------------------------


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """A real client's request (or one of the hostile seeds) with a few bytes changed."""
    rng = draw(st.randoms(use_true_random=False))
    if draw(st.booleans()):
        data = bytearray(hostile.wrap(rng.choice(hostile.base_payloads()), hostile.random_mac(rng)))
    else:
        data = bytearray(hostile.hostile_frame(rng)[1])
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["set", "truncate", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "truncate":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


@st.composite
def crafted_frames(draw: st.DrawFn, well_formed: bool = False) -> bytes:
    """A request built field by field: any header values, any options, any overload.

    `well_formed` keeps the header and option 53 valid, so that most frames decode
    and the rest of the values (addresses, options, flags) reach the decisions.
    """
    options = draw(
        st.lists(st.tuples(OPTION_CODES, st.binary(max_size=300)), max_size=12).map(
            lambda pairs: b"".join(codec.encode_option(c, v) for c, v in pairs)
        )
    )
    if well_formed:
        for code in (codec.OPT_SERVER_ID, codec.OPT_REQUESTED_IP):
            if draw(st.booleans()):
                options = codec.encode_option(code, draw(ADDRESSES).packed) + options
        message_type = draw(st.sampled_from(sorted(codec.CLIENT_MESSAGE_TYPES)))
    else:
        message_type = draw(st.one_of(st.none(), st.integers(0, 10)))
    if message_type is not None:
        options = codec.encode_option(53, bytes((message_type,))) + options
    options += draw(st.sampled_from([b"\xff", b"", b"\x00\x00\xff", b"\x37"]))
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1 if well_formed else draw(st.sampled_from([1, 1, 1, 2, 0, 255])),
        1 if well_formed else draw(st.sampled_from([1, 1, 1, 6, 32])),
        6 if well_formed else draw(st.sampled_from([6, 6, 6, 0, 16, 17, 255])),
        draw(st.integers(0, 255)),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.integers(0, 65535)),
        draw(st.sampled_from([0, 0x8000, 0xFFFF])),
        draw(ADDRESSES).packed,
        draw(ADDRESSES).packed,
        draw(ADDRESSES).packed,
        draw(
            st.sampled_from(["0.0.0.0", "0.0.0.0", "198.18.0.254", "10.1.1.1"]).map(
                lambda a: ipaddress.IPv4Address(a).packed
            )
        ),
        draw(st.binary(min_size=16, max_size=16)),
        draw(st.binary(min_size=64, max_size=64)),
        draw(st.binary(min_size=128, max_size=128)),
    )
    cookies = [codec.MAGIC_COOKIE] if well_formed else [codec.MAGIC_COOKIE] * 5 + [b"c\x82S\x00"]
    cookie = draw(st.sampled_from(cookies))
    payload = header + cookie + options
    mac = codec.mac_to_str(payload[28:34])
    return hostile.wrap(payload, mac)


ANY_FRAME = st.one_of(st.binary(max_size=1600), mutated_frames(), crafted_frames())


# ---- decode alone ----------------------------------------------------------------------


@FAST
@given(frame=st.binary(max_size=1600))
def test_decode_of_arbitrary_bytes_is_a_request_or_malformed(frame: bytes) -> None:
    _decode(frame)


@FAST
@given(frame=mutated_frames())
def test_decode_of_mutated_client_requests_is_a_request_or_malformed(frame: bytes) -> None:
    _decode(frame)


@FAST
@given(frame=crafted_frames())
def test_decode_of_crafted_requests_is_a_request_or_malformed(frame: bytes) -> None:
    _decode(frame)


@settings(max_examples=150, deadline=None, database=None)
@given(frame=ANY_FRAME)
def test_decode_allocates_in_proportion_to_the_frame(frame: bytes) -> None:
    _decode(frame)  # warm caches (scapy builds some lazily) outside the measurement
    tracemalloc.start()
    try:
        _decode(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Measured: under 8 KiB for a full-size frame. A length field trusted somewhere
    # (a buffer sized from a header) would show as tens of kilobytes or more.
    assert peak < 64 * 1024 + 16 * len(frame), (peak, len(frame))


def test_every_hostile_defect_is_rejected_with_a_reason() -> None:
    reasons: dict[str, set[str]] = {}
    rng = random.Random(7)
    for _ in range(3000):
        name, frame = hostile.hostile_frame(rng)
        with pytest.raises(codec.Malformed) as info:
            codec.decode(frame)
        reasons.setdefault(name, set()).add(info.value.reason)
    assert set(reasons) == {*hostile.DEFECTS, "fragment"}
    assert reasons["wrong_cookie"] == {"bad_cookie"}
    assert reasons["long_hardware_address"] == {"unsupported_hardware"}
    assert reasons["non_ethernet_hardware"] == {"unsupported_hardware"}
    assert reasons["reply_from_a_client"] == {"not_bootrequest"}
    assert reasons["option_past_end"] == {"bad_options"}
    assert reasons["giant_parameter_list"] == {"no_message_type"}
    assert reasons["repeated_message_type"] == {"bad_message_type"}
    assert reasons["fragment"] == {"fragment"}


# ---- the whole decision path, on a real store ------------------------------------------


LINK = Link("eth0", SERVER_IP)


class _NoPort:
    """A malformed frame is never answered: sending through this fails the test."""

    mac = "02:00:5e:00:00:01"

    def send_frame(self, frame: bytes) -> None:
        raise AssertionError("a reply to a malformed frame")

    send_datagram = send_frame  # type: ignore[assignment]


@pytest.fixture
def responder(etcd_server: Any, etcd_prefix: str) -> Pipeline:
    """The pipeline on a real LeaseStore: a small pool, so exhaustion paths run too."""
    etcd = Etcd([etcd_server.endpoint], timeout=5.0)
    view = ScopeSet([scope_of("198.18.0.10", "198.18.0.14", subnet=str(SUBNET))])
    store = make_store(
        etcd,
        etcd_prefix,
        "198.18.0.10",
        "198.18.0.14",
        offer_hold=2,
        decline_time=5,
        scopes=lambda: view,
    )
    store.seed()
    # Every real-world class test, each with options and boot fields, so classification,
    # class-limited pools and class option sets run on every fuzzed request too.
    view.globals = parse_global(
        {
            "client-classes": [
                {
                    "name": f"c{i}",
                    "test": text,
                    "option-data": [{"name": "domain-name", "data": f"c{i}.example"}],
                    "boot-file-name": f"c{i}.efi",
                }
                for i, text in enumerate(class_tests.TESTS)
            ]
        }
    )
    return Pipeline(store, store.scopes)


@WITH_ETCD
@given(frame=st.one_of(mutated_frames(), crafted_frames(well_formed=True)))
def test_decoded_frames_get_an_answer_or_silence_never_an_error(
    responder: Pipeline, frame: bytes
) -> None:
    request = _decode(frame)
    event("decoded" if request else "malformed")
    if request is None:
        return
    event(f"{request.type_name} {request_state(request)}")
    # The pure helpers, as the server uses them.
    assert request_state(request) in (
        "selecting",
        "init-reboot",
        "renewing",
        "rebinding",
        "invalid",
    )
    for value in (request.mac, request.type_name, request.hostname, request.client_id):
        assert value is None or isinstance(value, str | bytes)
    scope = responder.scopes().scopes[0]
    assemble(request, codec.ACK, SERVER_IP, scope, "198.18.0.10", 60)
    # The decision on the real store, then the reply as it would go on the wire.
    reply = responder.respond(Exchange(request, LINK))
    event(f"reply: {reply.type_name if reply else 'none'}")
    if reply is None:
        return
    payload = codec.encode_bootp(reply, SERVER_IP)
    assert codec.BOOTP_MIN_LEN <= len(payload) <= max(
        request.max_message_size - codec.IP_UDP_HEADERS, codec.BOOTP_MIN_LEN
    ) or any(code == codec.OPT_RELAY_AGENT_INFO for code, _ in reply.options)
    to = destination(reply)
    if to.mac is not None:
        codec.encode_frame(
            payload, src_mac="02:00:5e:00:00:01", dst_mac=to.mac, src_ip=SERVER_IP, dst_ip=to.ip
        )


def test_the_server_counts_every_malformed_frame_it_drops(responder: Pipeline) -> None:
    reasons = {e.reason for _, f in hostile.hostile_frames(200, seed=3) for e in _malformed(f)}

    def total() -> float:
        return sum(
            metrics.REGISTRY.get_sample_value("etcdhcp_packets_dropped_total", {"reason": r}) or 0.0
            for r in reasons
        )

    before = total()
    for _, frame in hostile.hostile_frames(200, seed=3):
        responder.handle(frame, LINK, _NoPort())
    assert total() == before + 200


def _malformed(frame: bytes) -> list[codec.Malformed]:
    try:
        codec.decode(frame)
    except codec.Malformed as exc:
        return [exc]
    return []


# ---- coverage-guided: atheris ----------------------------------------------------------

ATHERIS_RUNS = 300_000


def test_atheris_harness_runs_bounded_without_a_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, (_, frame) in enumerate(hostile.hostile_frames(64, seed=11)):
        (corpus / f"hostile-{i}").write_bytes(frame)
    for i, payload in enumerate(hostile.base_payloads()):
        (corpus / f"valid-{i}").write_bytes(hostile.wrap(payload, packets_mac(i)))
    _run_atheris("fuzz_decode.py", ATHERIS_RUNS, corpus, tmp_path)


def _run_atheris(harness: str, runs: int, corpus: Path, tmp_path: Path) -> None:
    """Run an atheris harness of tests/fuzz for `runs` inputs from `corpus`: no crash,
    no input slower than 20 s (libFuzzer reports it as a hang)."""
    argv = [
        sys.executable,
        str(FUZZ_DIR / harness),
        f"-runs={runs}",
        "-seed=1",
        "-max_len=1600",
        "-timeout=20",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={tmp_path}/",
        str(corpus),
    ]
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={"PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'tests'}", "PATH": "/usr/bin:/bin"},
    )
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert f"Done {runs} runs" in log, log[-4000:]
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))


def packets_mac(n: int) -> str:
    return f"02:00:5e:f0:00:{n:02x}"


# ---- client-class expressions ----------------------------------------------------------

CLASS_TESTS = class_tests.compiled()
CLASS_NAMES = st.lists(st.sampled_from(["ALL", "KNOWN", "c0", "c3", "VENDOR_CLASS_x"]))
# Option values shaped like what the expressions parse (TLVs, vendor blocks), often cut short.
TLVS = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=20)), max_size=6).map(
    lambda pairs: b"".join(bytes((c, len(v))) + v for c, v in pairs)
)
SHAPED_VALUE = st.one_of(
    st.binary(max_size=300),
    TLVS,
    st.tuples(st.binary(min_size=4, max_size=4), TLVS).map(
        lambda t: t[0] + bytes((len(t[1]),)) + t[1]
    ),
    st.tuples(st.binary(max_size=6), TLVS, st.integers(0, 40)).map(lambda t: (t[0] + t[1])[: t[2]]),
)
CLASS_OPTION_CODES = st.one_of(
    st.sampled_from([3, 12, 43, 50, 51, 53, 55, 57, 60, 61, 77, 82, 93, 124, 125]),
    st.integers(0, 255),
)


def _classify_all(request: codec.Request, classes: list[str], iface: str = "eth0") -> None:
    context = expressions.Context(iface=iface)
    matched = expressions.classify(request, CLASS_TESTS, context)
    assert matched[0] == "ALL" and set(matched) <= {"ALL", *(n for n, _ in CLASS_TESTS)} | {
        c for c in matched if c.startswith("VENDOR_CLASS_")
    }
    for _, test in CLASS_TESTS:
        assert test.evaluate(request, classes, context) in (True, False)


@FAST
@given(frame=st.one_of(mutated_frames(), crafted_frames(well_formed=True)), classes=CLASS_NAMES)
def test_class_expressions_evaluate_every_decoded_request(frame: bytes, classes: list[str]) -> None:
    request = _decode(frame)
    event("decoded" if request else "malformed")
    if request is not None:
        _classify_all(request, classes)


@FAST
@given(
    options=st.dictionaries(CLASS_OPTION_CODES, SHAPED_VALUE, max_size=10),
    header=st.tuples(
        st.integers(0, 255), st.integers(0, 255), st.integers(0, 2**32 - 1), ADDRESSES, ADDRESSES
    ),
    chaddr=st.binary(min_size=16, max_size=16),
    classes=CLASS_NAMES,
    iface=st.text(max_size=16),
)
def test_class_expressions_evaluate_requests_with_any_option_bytes(
    options: dict[int, bytes],
    header: tuple[int, int, int, ipaddress.IPv4Address, ipaddress.IPv4Address],
    chaddr: bytes,
    classes: list[str],
    iface: str,
) -> None:
    """Requests the codec would refuse too (any hlen, any option 53), straight to the tests."""
    htype, hlen, xid, ciaddr, giaddr = header
    request = codec.Request(
        op=1, htype=htype, hlen=hlen, hops=0, xid=xid, secs=0, flags=0, ciaddr=str(ciaddr),
        yiaddr="0.0.0.0", siaddr="0.0.0.0", giaddr=str(giaddr), chaddr=chaddr, options=options,
    )  # fmt: skip
    _classify_all(request, classes, iface)


EXPRESSION_TOKENS = st.sampled_from(
    [*"()[],.*+", "==", "'a'", "''", "0x0a", "0x", "1", "-1", "4294967296", "10.0.0.1", "::1",
     "1.2.3.999", "option", "relay4", "relay6", "vendor", "vendor-class", "pkt", "pkt4", "pkt6",
     "member('c0')", "member('x')", "substring", "split", "concat", "ifelse", "hexstring",
     "addrtotext", "uint16totext", "int8totext", "text", "hex", "exists", "data", "enterprise",
     "mac", "msgtype", "iface", "len", "all", "and", "or", "not", "host-name", "'", "=", "\n"]
)  # fmt: skip


@FAST
@given(
    text=st.one_of(
        st.text(max_size=80),
        st.lists(EXPRESSION_TOKENS, max_size=30).map(" ".join),
        st.lists(EXPRESSION_TOKENS, max_size=30).map("".join),
        # A real test with a slice replaced by a token: mostly near-valid text.
        st.tuples(
            st.sampled_from(class_tests.TESTS),
            st.integers(0, 90),
            st.integers(0, 90),
            EXPRESSION_TOKENS,
        ).map(lambda t: t[0][: t[1]] + t[3] + t[0][t[2] :]),
    )
)
def test_expression_compiler_returns_an_expression_or_one_error_line(text: str) -> None:
    try:
        expression = expressions.compile(text, ["c0"], class_tests.NAMES)
    except expressions.ExpressionError as exc:
        event("error")
        assert str(exc).startswith("at ") and "\n" not in str(exc)
        return
    event("compiled")
    for payload in BASE_PAYLOADS:
        assert expression.evaluate(codec.decode_bootp(payload), ["c0"]) in (True, False)


EXPRESSION_ATHERIS_RUNS = 30_000


def test_atheris_expression_harness_runs_bounded_without_a_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, payload in enumerate(hostile.base_payloads()):
        (corpus / f"frame-{i}").write_bytes(b"\x00" + hostile.wrap(payload, packets_mac(i)))
    for i, text in enumerate(class_tests.TESTS):
        (corpus / f"text-{i}").write_bytes(b"\x02" + text.encode())
    _run_atheris("fuzz_expressions.py", EXPRESSION_ATHERIS_RUNS, corpus, tmp_path)
