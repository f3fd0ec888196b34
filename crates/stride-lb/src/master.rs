//! The master CLI of HAProxy in master-worker mode (`-W -S <socket>`): which
//! processes run, and seamless reloads.
//!
//! On `reload` the master re-executes itself on the new file and starts a
//! new worker, handing it the listening sockets of the old one over its
//! socketpair (the `-x sockpair@N` visible in `ps`), so no connection is
//! refused; the old worker finishes its connections and exits. HAProxy 2.6
//! answers `reload` with nothing, so the outcome is read from `show proc`:
//! the master's reload counter moves, and a failed reload leaves the old
//! worker current and `[failed: N]` above zero.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::Mutex;
use tokio::time::{Instant, sleep, timeout};

/// One master CLI exchange; the master answers at once when alive.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a reload may take: parsing the file and starting a worker.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// `show proc`, the part we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processes {
    pub master_pid: u32,
    /// Reloads since the master started.
    pub reloads: u64,
    /// Failed reloads since the last successful one.
    pub failed_reloads: u64,
    /// Current workers, newest first.
    pub workers: Vec<u32>,
}

impl Processes {
    pub fn worker_pid(&self) -> Option<u32> {
        self.workers.first().copied()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("cannot talk to HAProxy's master socket {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("HAProxy's master socket {path} did not answer within {COMMAND_TIMEOUT:?}")]
    Timeout { path: PathBuf },
    #[error("unexpected `show proc` answer from {path}: {answer:?}")]
    Unparsable { path: PathBuf, answer: String },
    #[error(
        "HAProxy could not load the new configuration (its log says why); the old one keeps serving"
    )]
    ReloadFailed,
    #[error("HAProxy did not finish reloading within {RELOAD_TIMEOUT:?}")]
    ReloadTimeout,
}

pub struct MasterCli {
    path: PathBuf,
    /// Held across a reload so nobody mistakes the master's re-exec (when
    /// its socket briefly refuses) for a crash.
    busy: Mutex<()>,
}

impl MasterCli {
    pub fn new(path: &Path) -> MasterCli {
        MasterCli {
            path: path.to_owned(),
            busy: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn processes(&self) -> Result<Processes, MasterError> {
        let _busy = self.busy.lock().await;
        self.show_proc().await
    }

    /// Reloads and waits for the outcome.
    pub async fn reload(&self) -> Result<Processes, MasterError> {
        let _busy = self.busy.lock().await;
        let before = self.show_proc().await?;
        // The master may drop the connection as it re-executes; the
        // outcome comes from `show proc` either way.
        let _ = self.command("reload").await;
        let deadline = Instant::now() + RELOAD_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(now) = self.show_proc().await {
                if now.reloads > before.reloads {
                    let new_worker = now
                        .worker_pid()
                        .is_some_and(|pid| !before.workers.contains(&pid));
                    return match now.failed_reloads == 0 && new_worker {
                        true => Ok(now),
                        false => Err(MasterError::ReloadFailed),
                    };
                }
            }
            // A reload takes tens of ms and changes arriving meanwhile
            // wait for it: look often.
            sleep(Duration::from_millis(5)).await;
        }
        Err(MasterError::ReloadTimeout)
    }

    async fn show_proc(&self) -> Result<Processes, MasterError> {
        let answer = self.command("show proc").await?;
        parse_show_proc(&answer).ok_or_else(|| MasterError::Unparsable {
            path: self.path.clone(),
            answer,
        })
    }

    /// One command per connection: write it, close our side, read it all.
    async fn command(&self, command: &str) -> Result<String, MasterError> {
        let io = |source| MasterError::Io {
            path: self.path.clone(),
            source,
        };
        let exchange = async {
            let mut stream = UnixStream::connect(&self.path).await.map_err(io)?;
            stream
                .write_all(format!("{command}\n").as_bytes())
                .await
                .map_err(io)?;
            // Without it the master keeps the connection open after a reload.
            stream.shutdown().await.map_err(io)?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.map_err(io)?;
            Ok(answer)
        };
        timeout(COMMAND_TIMEOUT, exchange)
            .await
            .map_err(|_| MasterError::Timeout {
                path: self.path.clone(),
            })?
    }
}

fn parse_show_proc(answer: &str) -> Option<Processes> {
    let mut master = None;
    let mut workers = Vec::new();
    let mut section = "";
    for line in answer.lines() {
        if let Some(title) = line.strip_prefix("# ") {
            section = title.trim();
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(pid), Some(kind)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        match (section, kind) {
            ("", "master") => {
                let reloads = fields.next()?.parse().ok()?;
                let failed_reloads = line
                    .split_once("[failed:")
                    .and_then(|(_, rest)| rest.split(']').next())
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
                master = Some((pid, reloads, failed_reloads));
            }
            ("workers", "worker") => workers.push(pid),
            _ => {}
        }
    }
    let (master_pid, reloads, failed_reloads) = master?;
    Some(Processes {
        master_pid,
        reloads,
        failed_reloads,
        workers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_proc_after_a_successful_and_a_failed_reload() {
        let ok = "#<PID>          <type>          <reloads>       <uptime>        <version>      \n\
                  6407            master          1 [failed: 0]   0d00h10m34s     2.6.12-1+deb12u4\n\
                  # workers\n\
                  6573            worker          0               0d00h10m29s     2.6.12-1+deb12u4\n\
                  # old workers\n\
                  6410            worker          1               0d00h10m40s     2.6.12-1+deb12u4\n\
                  # programs\n\n";
        assert_eq!(
            parse_show_proc(ok),
            Some(Processes {
                master_pid: 6407,
                reloads: 1,
                failed_reloads: 0,
                workers: vec![6573],
            })
        );
        let failed = ok.replace("1 [failed: 0]", "2 [failed: 1]");
        assert_eq!(parse_show_proc(&failed).unwrap().failed_reloads, 1);
        assert_eq!(parse_show_proc("Unknown command.\n"), None);
    }
}
