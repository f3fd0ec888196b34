#!/usr/bin/env bash
# The `marathon` client from PyPI (0.13.0, pinned) in a venv of its own, for
# tests/marathon_client.rs. Idempotent: a venv that already imports that
# version is kept. Prints the venv's python as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${STRIDE_MARATHON_VENV:-$PWD/target/marathon-client-venv}"
version="0.13.0"
python="$venv/bin/python"

has_client() {
    [ -x "$python" ] && "$python" - "$version" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
assert version("marathon") == sys.argv[1]
PY
}

if ! has_client; then
    rm -rf "$venv"
    # Debian's python3 makes venvs only with python3-venv (ensurepip).
    if ! python3 -m venv "$venv" >&2; then
        rm -rf "$venv"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
        python3 -m venv "$venv" >&2
    fi
    "$python" -m pip install --quiet --disable-pip-version-check "marathon==$version" >&2
    has_client
fi
echo "$python"
