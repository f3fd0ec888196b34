//! Runs the embedded local Mesos-compatible cluster on its own, as the
//! future `stride local-mesos` subcommand will:
//!
//! `cargo run --example local_mesos -- --listen 127.0.0.1:5051 --agents 2`

use clap::Parser;
use stride::local::{LocalClusterConfig, run};

#[derive(Parser)]
#[command(about = "A local Mesos-compatible cluster running tasks as processes")]
struct Args {
    #[command(flatten)]
    cluster: LocalClusterConfig,
}

#[tokio::main]
async fn main() -> Result<(), stride::local::LocalClusterError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "stride=info".into()),
        )
        .init();
    run(Args::parse().cluster).await
}
