#!/usr/bin/env bash
# The long crash soak: 1,000 SIGKILL/restart rounds of tests/it/crash.rs.
# Full output goes to target/crash-soak.log; record its last line in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# Its own target dir, so rebuilding target/release meanwhile cannot swap the binary under it.
STRIDE_CRASH_ROUNDS="${1:-1000}" CARGO_TARGET_DIR=target/soak cargo test --release --test it -- --nocapture crash:: \
    > target/crash-soak.log 2>&1 || { tail -40 target/crash-soak.log; exit 1; }
grep -E "crash test|test result" target/crash-soak.log
