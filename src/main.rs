//! The `stride` command line: `stride serve`, the client commands, the LB
//! sidecar, the store's tools and the benchmarks.

mod cli;

use std::process::ExitCode;

// sled's copy-on-write nodes churn the allocator; glibc's malloc showed up as
// the top cost in profiles of append and replay (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRIDE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("stride: {error:#}");
            ExitCode::from(cli::exit_code(&error))
        }
    }
}
