#!/usr/bin/env bash
# Usage: scripts/pypi-venv.sh VENV NAME==VERSION...
# Packages from PyPI, pinned, in a venv of their own. Idempotent: a venv
# that already has exactly these versions is kept. Prints the venv's python
# as its last line.
set -euo pipefail

venv="$1"
shift
python="$venv/bin/python"

# A venv copied or moved from elsewhere keeps the old path in its scripts'
# shebangs (pip, schemathesis, playwright), so it counts as absent.
has_pins() {
    [ -x "$python" ] && [[ "$(head -n1 "$venv/bin/pip" 2>/dev/null)" == "#!$venv/bin/"* ]] && "$python" - "$@" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, wanted = pin.split("==")
    assert version(name) == wanted, pin
PY
}

if ! has_pins "$@"; then
    rm -rf "$venv"
    # Debian's python3 makes venvs only with python3-venv (ensurepip).
    if ! python3 -m venv "$venv" >&2; then
        rm -rf "$venv"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
        python3 -m venv "$venv" >&2
    fi
    "$python" -m pip install --quiet --disable-pip-version-check "$@" >&2
    has_pins "$@"
fi
echo "$python"
