"""Coverage-guided fuzzing of codec.decode and the pure stages after it (atheris).

    PYTHONPATH=src:tests python tests/fuzz/fuzz_decode.py -runs=100000 [CORPUS_DIR]

Any exception other than codec.Malformed is a crash (libFuzzer writes the input
to crash-<sha1>); so is an input that takes longer than -timeout. tests/test_fuzz.py
runs this harness for a fixed number of runs on a seed corpus of hostile frames.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["etcdhcp"]):
    from etcdhcp import codec, rfc2131
    from etcdhcp.options import assemble
    from etcdhcp.scopes import Link, ScopeSet, parse_shared_network, parse_subnet

SERVER_IP = "198.18.0.1"
LINK = Link("eth0", SERVER_IP)
VIEW = ScopeSet(
    [
        parse_subnet({"id": 1, "subnet": "198.18.0.0/24", "pools": [{"pool": "198.18.0.10/31"}]}),
        *parse_shared_network(
            {
                "name": "relayed",
                "relay": {"ip-addresses": ["10.1.1.1"]},
                "subnet4": [
                    {"id": 2, "subnet": "198.18.2.0/24"},
                    {"id": 3, "subnet": "198.18.3.0/24"},
                ],
            }
        ),
    ]
)


def one_input(data: bytes) -> None:
    """Decode a frame; when it is a request, take it through what needs no store: the
    scope's choice, the decision, the options and the destination of a reply."""
    try:
        request = codec.decode(data)
    except codec.Malformed:
        return
    _ = (request.mac, request.requested_ip, request.server_id, request.hostname)
    _ = (request.client_id, request.max_message_size, request.type_name)
    scope = VIEW.select(request, LINK)
    rfc2131.decide(request, scope, VIEW, SERVER_IP)
    options = assemble(request, codec.OFFER, SERVER_IP, scope or VIEW.scopes[0], "198.18.0.10", 60)
    reply = codec.Reply(codec.OFFER, request, yiaddr="198.18.0.10", options=options)
    rfc2131.destination(reply)
    codec.encode_bootp(reply, SERVER_IP)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
