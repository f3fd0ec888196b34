#!/usr/bin/env bash
# The Python tools that check Stride's API from the outside, from PyPI:
# schemathesis (fuzzes the API from /openapi.json), openapi-spec-validator
# (checks that spec) and prometheus-client (its OpenMetrics parser reads
# /metrics); hypothesis pinned too, so tests/it/openapi.rs's deterministic run
# generates the same cases everywhere. Prints the venv's python as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/pypi-venv.sh "${STRIDE_API_TOOLS_VENV:-$PWD/target/api-tools-venv}" \
    schemathesis==4.32.5 hypothesis==6.170.27 openapi-spec-validator==0.9.0 \
    prometheus-client==0.26.0
