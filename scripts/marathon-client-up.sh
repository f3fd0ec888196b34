#!/usr/bin/env bash
# The `marathon` client from PyPI (0.13.0, pinned) in a venv of its own, for
# tests/it/marathon_client.rs. Prints the venv's python as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/pypi-venv.sh "${STRIDE_MARATHON_VENV:-$PWD/target/marathon-client-venv}" marathon==0.13.0
