#!/usr/bin/env bash
# The long crash soak: 1,000 SIGKILL/restart rounds of tests/crash.rs.
# Record its last line in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
STRIDE_CRASH_ROUNDS="${1:-1000}" cargo test --release --test crash -- --nocapture 2>&1 | grep -E "crash test|test result"
