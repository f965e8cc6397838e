"""Send a hostile stream of frames from inside a lab client namespace.

    PYTHONPATH=src:tests python flood.py hostile COUNT [--rate PER_SECOND] [--seed N]
    PYTHONPATH=src:tests python flood.py discover COUNT [--rate PER_SECOND] [--seed N]

`hostile`: COUNT frames to port 67 that codec.decode rejects (tests/fuzz/hostile.py:
truncated headers, options running past the end, missing or repeated option 53, ...).
`discover`: COUNT valid DISCOVERs, each from its own forged MAC. Frames go out raw on
eth0, paced at --rate and bounded by --max-seconds; prints one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import json
import socket
import sys
import time

from fuzz import hostile

IFACE = "eth0"
BATCH = 50  # frames sent between two pacing checks


def frames(kind: str, count: int, seed: int) -> tuple[list[bytes], dict[str, int]]:
    if kind == "discover":
        return list(hostile.forged_discovers(count, seed)), {"discover": count}
    made = list(hostile.hostile_frames(count, seed))
    return [frame for _, frame in made], dict(collections.Counter(name for name, _ in made))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["hostile", "discover"])
    parser.add_argument("count", type=int)
    parser.add_argument("--rate", type=float, default=2000.0, help="frames per second")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args(argv)
    batch, kinds = frames(args.kind, args.count, args.seed)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((IFACE, 0))
    started = time.monotonic()
    sent = 0
    for i in range(0, len(batch), BATCH):
        if time.monotonic() - started > args.max_seconds:
            break
        for frame in batch[i : i + BATCH]:
            sock.send(frame)
            sent += 1
        ahead = sent / args.rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    print(json.dumps({"sent": sent, "seconds": time.monotonic() - started, "kinds": kinds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
