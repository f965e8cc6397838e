#!/usr/bin/env bash
# The whole test suite on Debian 12 (as root): installs what it needs, then runs
# pytest, network-namespace tests included (they fail, never skip, without root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest -v -p no:cacheprovider "$@"
