"""Coverage-guided fuzzing of client-class expressions (atheris).

    PYTHONPATH=src:tests python tests/fuzz/fuzz_expressions.py -runs=100000 [CORPUS_DIR]

The first byte picks what the rest is: a frame (decoded, then classified by every
real-world test), a request built field by field with any option bytes (no codec
checks in the way), or expression text (compiled; a compiled one is evaluated).
Anything but codec.Malformed or ExpressionError escaping is a crash.
"""

from __future__ import annotations

import socket
import sys

import atheris

with atheris.instrument_imports(include=["etcdhcp"]):
    from etcdhcp import codec, expressions

from fuzz import class_tests, hostile

TESTS = class_tests.compiled()
CLASSES = ("ALL", "KNOWN", "c0", "VENDOR_CLASS_PXEClient")


def any_request(data: atheris.FuzzedDataProvider) -> codec.Request:
    """A Request whose header and options are whatever the input says."""
    header = data.ConsumeBytes(20).ljust(20, b"\x00")
    options: dict[int, bytes] = {}
    while data.remaining_bytes() > 1:
        code = data.ConsumeIntInRange(0, 255)
        options[code] = options.get(code, b"") + data.ConsumeBytes(data.ConsumeIntInRange(0, 300))
    return codec.Request(
        op=1,
        htype=header[0],
        hlen=header[1],
        hops=0,
        xid=int.from_bytes(header[2:6], "big"),
        secs=0,
        flags=0,
        ciaddr=socket.inet_ntoa(header[6:10]),
        yiaddr="0.0.0.0",
        siaddr=socket.inet_ntoa(header[10:14]),
        giaddr=socket.inet_ntoa(header[14:18]),
        chaddr=header[2:18],
        options=options,
    )


def one_input(raw: bytes) -> None:
    data = atheris.FuzzedDataProvider(raw)
    mode = data.ConsumeIntInRange(0, 2)
    if mode == 2:
        try:
            expression = expressions.compile(
                data.ConsumeUnicodeNoSurrogates(400), ["c0"], class_tests.NAMES
            )
        except expressions.ExpressionError:
            return
        for payload in hostile.base_payloads():
            assert expression.evaluate(codec.decode_bootp(payload), CLASSES) in (True, False)
        return
    if mode == 0:
        try:
            request = codec.decode(data.ConsumeBytes(data.remaining_bytes()))
        except codec.Malformed:
            return
    else:
        request = any_request(data)
    expressions.classify(request, TESTS, expressions.Context(iface="eth0"))
    for _, test in TESTS:
        assert test.evaluate(request, CLASSES) in (True, False)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
