//! The integration tests: one binary (one link, one support module), one
//! module per part under test; a test is named `module::test`, so
//! `cargo test --test it lb_haproxy::` runs one part's.
//!
//! `support` holds the one harness: the real `stride` binary on port 0 with
//! a temp data dir, one `wait_until`, one port allocator (`ports`), and the
//! real parts from outside the repository (`real_parts`: a real Mesos
//! master, HAProxy, strace, Docker, chromium, PyPI venvs). A test whose
//! part is missing says why on stderr and is not run, except under
//! `STRIDE_TEST_REQUIRE_ALL=1`, which `scripts/test.sh` (and so CI) sets.

mod support;

mod api_apps;
mod api_errors;
mod app_cli;
mod audit;
mod audit_diff;
mod audit_props;
mod auth;
mod callback_loops;
mod callbacks;
mod cli_store;
mod connections;
mod crash;
mod crate_graph;
mod descriptors;
mod docker_launch_bench;
mod docker_local;
mod docker_real_mesos;
mod durability_strace;
mod error_shape;
mod format;
mod fuzz;
mod groups;
mod ha;
mod health;
mod idempotency_keys;
mod integrity;
mod lb_haproxy;
mod lb_zero_downtime;
mod limits;
mod local_cluster;
mod local_cluster_shapes;
mod local_health;
mod local_launch_bench;
mod log_api;
mod marathon_client;
mod marathon_docs;
mod mesos_auth;
mod mesos_client;
mod mesos_client_edge_cases;
mod mesos_wire;
mod mesos_zk;
mod metrics;
mod openapi;
mod projection_props;
mod reconciler_acks;
mod reconciler_e2e;
mod sched;
mod serve_health;
mod serve_mesos;
mod shutdown;
mod skip_with_reason;
mod sse;
mod stream;
mod stream_edges;
mod stream_liveness;
mod task_files;
mod tls;
mod ui;
mod zk_ensemble;
