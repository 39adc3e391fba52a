#!/usr/bin/env bash
# Run the Python client's tests against the real shieldd binary.
# Usage (from anywhere): shield-client/python/run_tests.sh [pytest args...]
# Needs target/debug/shieldd (cargo build -p shieldd) unless SHIELDD_BIN is set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/target/pyvenv"
python="${PYTHON:-/usr/bin/python3.11}"
export SHIELDD_BIN="${SHIELDD_BIN:-$repo/target/debug/shieldd}"

if [ ! -x "$SHIELDD_BIN" ]; then
    echo "run_tests.sh: no shieldd at $SHIELDD_BIN (run: cargo build -p shieldd)" >&2
    exit 2
fi
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
    -e "$here" pytest openai anthropic langchain-core mcp
cd "$here"
exec "$venv/bin/python" -m pytest -q "$@" tests
