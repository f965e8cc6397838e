#!/usr/bin/env bash
# The etcdhcp benchmark (as root, after scripts/bootstrap.sh): see bench/README.md.
# The harness runs under Debian's python3 (it needs only the standard library and
# python3-matplotlib); the servers it measures run from the project's venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$root/.venv/bin/python" ]; then
  echo "bench: no venv at $root/.venv: run scripts/bootstrap.sh first" >&2
  exit 1
fi
cd "$root"
PYTHONPATH="$root:$root/src" exec /usr/bin/python3 -m bench.run "$@"
