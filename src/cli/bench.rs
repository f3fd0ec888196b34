//! `stride bench`: measurements recorded in BENCHMARKS.md.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Durable appends, replay and restart of the event log.
    Log,
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Log => anyhow::bail!("not yet"),
    }
}
