#!/usr/bin/env bash
# What the browser tests need (tests/it/ui.rs): Debian's chromium, and
# Playwright for Python from PyPI (pinned) in a venv of its own. Playwright
# never downloads a browser here: the tests launch /usr/bin/chromium.
# Idempotent. Prints the venv's python as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! [ -x /usr/bin/chromium ]; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi
exec scripts/pypi-venv.sh "${STRIDE_UI_VENV:-$PWD/target/ui-test-venv}" playwright==1.65.3
