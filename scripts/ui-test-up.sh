#!/usr/bin/env bash
# What the browser tests need (tests/ui.rs): Debian's chromium, and
# Playwright for Python from PyPI (pinned) in a venv of its own. Playwright
# never downloads a browser here: the tests launch /usr/bin/chromium.
# Idempotent. Prints the venv's python as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${STRIDE_UI_VENV:-$PWD/target/ui-test-venv}"
version="1.65.3"
python="$venv/bin/python"

if ! [ -x /usr/bin/chromium ]; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi

has_playwright() {
    [ -x "$python" ] && "$python" - "$version" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
assert version("playwright") == sys.argv[1]
PY
}

if ! has_playwright; then
    rm -rf "$venv"
    # Debian's python3 makes venvs only with python3-venv (ensurepip).
    if ! python3 -m venv "$venv" >&2; then
        rm -rf "$venv"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
        python3 -m venv "$venv" >&2
    fi
    "$python" -m pip install --quiet --disable-pip-version-check "playwright==$version" >&2
    has_playwright
fi
echo "$python"
