//! `stride bench`: measurements recorded in BENCHMARKS.md. Each prints a
//! markdown table with a same-run baseline, since shared machines are noisy.

mod log;
mod stream;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Durable appends vs raw fdatasync, replay, and restart of the event log.
    Log(log::LogBench),
    /// Websocket fan-out: append-to-receipt latency and append rate with
    /// and without subscribers.
    Stream(stream::StreamBenchArgs),
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Log(args) => log::run(args),
        BenchCommand::Stream(args) => stream::run(args),
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
