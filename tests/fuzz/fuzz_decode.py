"""Coverage-guided fuzzing of codec.decode and the pure RFC 2131 helpers (atheris).

    PYTHONPATH=src:tests python tests/fuzz/fuzz_decode.py -runs=100000 [CORPUS_DIR]

Any exception other than codec.Malformed is a crash (libFuzzer writes the input
to crash-<sha1>); so is an input that takes longer than -timeout. tests/test_fuzz.py
runs this harness for a fixed number of runs on a seed corpus of hostile frames.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["etcdhcp"]):
    from etcdhcp import codec
    from etcdhcp.rfc2131 import destination, ordered_options, request_state

SERVER_IP = "198.18.0.1"


def one_input(data: bytes) -> None:
    """Decode a frame; when it is a request, take it through what needs no store."""
    try:
        request = codec.decode(data)
    except codec.Malformed:
        return
    request_state(request)
    _ = (request.mac, request.requested_ip, request.server_id, request.hostname)
    _ = (request.client_id, request.max_message_size, request.type_name)
    options = ordered_options(request, codec.OFFER, SERVER_IP, {1: b"\xff\xff\xff\x00"})
    reply = codec.Reply(codec.OFFER, request, yiaddr="198.18.0.10", options=options)
    destination(reply)
    codec.encode_bootp(reply, SERVER_IP)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
