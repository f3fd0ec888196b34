#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need,
# starts the real Mesos master and agent they talk to, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v strace >/dev/null || missing+=(strace)     # tests/it/durability_strace.rs
command -v python3 >/dev/null || missing+=(python3)   # tasks run `python3 -m http.server`
command -v prlimit >/dev/null || missing+=(util-linux) # tests/it/descriptors.rs
# tests/it/lb_haproxy.rs; Debian installs it in /usr/sbin, not on every PATH.
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v promtool >/dev/null || missing+=(prometheus)  # tests/it/metrics.rs: promtool and a real Prometheus
# Real ZooKeeper ensembles (crates/stride-zk's `ensemble`; tests/it/ha.rs, zk_ensemble.rs).
[ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
command -v java >/dev/null || missing+=(default-jre-headless)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
fi

# A real Mesos 1.11 master and agent on 127.0.0.1:5050 (idempotent).
../shared/real-mesos/up.sh
export STRIDE_MESOS_MASTER="${STRIDE_MESOS_MASTER:-http://127.0.0.1:5050}"

# The `marathon` client from PyPI in a venv, for tests/it/marathon_client.rs and
# tests/it/marathon_docs.rs (idempotent).
scripts/marathon-client-up.sh >/dev/null

# schemathesis, openapi-spec-validator and prometheus-client from PyPI in a
# venv, for tests/it/metrics.rs and tests/it/openapi.rs (idempotent).
export STRIDE_API_TOOLS_PYTHON="$(scripts/api-tools-up.sh | tail -n 1)"

# Debian's chromium and Playwright for Python in a venv, for tests/it/ui.rs
# (idempotent).
scripts/ui-test-up.sh >/dev/null

# A Docker engine (the machine's, or a private dockerd) and the locally
# built test image, for tests/it/docker_local.rs (idempotent).
export STRIDE_DOCKER_SOCKET="$(scripts/docker-up.sh | tail -n 1)"

# Every part above is here: a test that would skip for want of one fails
# instead (tests/it/support/real_parts.rs), so CI runs every test.
export STRIDE_TEST_REQUIRE_ALL=1
cargo test --workspace --all-targets
# --all-targets leaves doctests out; the log's say what must not compile
# (a reader appending).
cargo test -p stride-log --features store --doc
