//! Talking to a running Stride: its base URL and a runtime for the call.

use anyhow::Context;
use reqwest::Url;

#[derive(clap::Args)]
pub struct Remote {
    /// Base URL of the Stride server.
    #[arg(
        long = "stride",
        env = "STRIDE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: Url,
}

impl Remote {
    /// `path` on the server, e.g. `/v1/audit`.
    pub fn endpoint(&self, path: &str) -> anyhow::Result<Url> {
        self.url
            .join(path)
            .with_context(|| format!("--stride {}: cannot build a URL for {path}", self.url))
    }
}

/// Client subcommands are async; `serve` builds its own runtime.
pub fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(
    future: F,
) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?
        .block_on(future)
}
