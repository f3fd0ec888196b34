//! `stride bench`: measurements recorded in BENCHMARKS.md. Each prints a
//! markdown table with a same-run baseline, since shared machines are noisy.
//! `launch`: the embedded cluster's launch throughput, which
//! `tests/*_launch_bench.rs` drive.

mod api;
mod auth;
mod ha;
pub mod launch;
mod lb;
mod log;
mod metrics;
mod plan;
mod serve;
mod stream;
mod token_lookup;
mod world;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Durable appends vs raw fdatasync, replay, and restart of the event log.
    Log(log::LogBench),
    /// Websocket fan-out: append-to-receipt latency and append rate with
    /// and without subscribers.
    Stream(stream::StreamBenchArgs),
    /// The reconciler's planner on 10,000 apps / 100,000 tasks and offers
    /// from 1,000 agents.
    Plan(plan::PlanBench),
    /// `GET /v2/apps?embed=apps.tasks` latency and the server's memory on a
    /// store of that size.
    Api(api::ApiBench),
    /// What metrics cost on the write path: on against off, same run.
    Metrics(metrics::MetricsBench),
    /// What authorization costs on the write path and on stream fan-out:
    /// on against off, same run.
    Auth(auth::AuthBench),
    /// How soon a task change reaches traffic through HAProxy: the
    /// sidecar against a poll-and-reload baseline.
    Lb(lb::LbBench),
    /// High availability: failover time (kill -9 of the leader to the
    /// first acknowledged write), and durable writes with three instances
    /// on a ZooKeeper ensemble against one instance alone.
    Ha(ha::HaBench),
    /// What `bench lb` runs as each task: serves $MESOS_TASK_ID on $PORT0.
    #[command(hide = true)]
    LbTask,
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Log(args) => log::run(args),
        BenchCommand::Stream(args) => stream::run(args),
        BenchCommand::Plan(args) => plan::run(args),
        BenchCommand::Api(args) => api::run(args),
        BenchCommand::Metrics(args) => metrics::run(args),
        BenchCommand::Auth(args) => auth::run(args),
        BenchCommand::Lb(args) => lb::run(args),
        BenchCommand::Ha(args) => ha::run(args),
        BenchCommand::LbTask => lb::serve_task_id(),
    }
}

/// (p50, p99) of a sample, in the sample's unit.
pub(crate) fn percentiles(samples: &mut [f64]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}
