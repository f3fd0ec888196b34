//! `stride serve --no-mesos` as a child process of a bench: no cluster, so
//! the bench's apps launch nothing and only Stride itself is measured. The
//! server is this binary, or another build given with `--server` (to
//! measure two builds with the same client).

/// Which `stride` serves a bench's requests.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerBinary {
    /// A `stride` binary to serve instead of this one, e.g. an older build.
    #[arg(long = "server")]
    path: Option<PathBuf>,
}

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The server child, killed when the bench ends (or fails).
pub struct ServeChild {
    child: Child,
    pub url: String,
}

impl ServeChild {
    pub fn start(data_dir: &Path, server: &ServerBinary) -> anyhow::Result<ServeChild> {
        Self::start_flagged(data_dir, server, &[])
    }

    /// `server` with `extra` flags for `stride serve`.
    pub fn start_flagged(
        data_dir: &Path,
        server: &ServerBinary,
        extra: &[&str],
    ) -> anyhow::Result<ServeChild> {
        let exe = match &server.path {
            Some(path) => path.clone(),
            None => std::env::current_exe().context("cannot find the stride binary")?,
        };
        Self::start_with(&exe, data_dir, extra)
    }

    /// `exe` with `extra` flags for `stride serve`.
    pub fn start_with(exe: &Path, data_dir: &Path, extra: &[&str]) -> anyhow::Result<ServeChild> {
        let mut child = Command::new(exe)
            .args([
                "serve",
                "--no-mesos",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env("STRIDE_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start stride serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut server = ServeChild {
            child,
            url: String::new(),
        };
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(line)) = lines.next() {
            if let Some(url) = line.strip_prefix("stride: listening on ") {
                server.url = url.to_owned();
                // Keep reading, so the child never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines {});
                return Ok(server);
            }
        }
        bail!("stride serve exited before listening")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
