//! Keeping HAProxy running, in master-worker mode.
//!
//! `Launch::Spawn` starts `haproxy -W -S <master socket> -f <config>` unless
//! a master already answers on that socket (a previous sidecar's, left
//! running when it stopped or crashed: it is adopted, not restarted), and
//! starts it again if it dies. `Launch::Attach` (`--socket`) only ever uses
//! a master someone else runs. HAProxy runs in its own process group and
//! outlives the sidecar, so restarting or upgrading the sidecar never stops
//! traffic.

use super::master::{MasterCli, MasterError, Processes};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use stride_runtime::Backoff;
use stride_runtime::error::chain;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, watch};
use tokio::time::{Instant, sleep};

/// How often the master is asked whether it is alive.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// Missed answers in a row before HAProxy counts as dead.
const MISSES: u32 = 3;
/// How long a freshly started HAProxy may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// Start (or adopt) HAProxy with this binary.
    Spawn { binary: PathBuf },
    /// Use the HAProxy already running behind the master socket.
    Attach,
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("no HAProxy answers on the master socket {socket} (--socket)")]
    NotRunning {
        socket: PathBuf,
        #[source]
        source: MasterError,
    },
    #[error("cannot start {binary}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{binary} exited at start ({status}); its messages are above")]
    Exited {
        binary: PathBuf,
        status: std::process::ExitStatus,
    },
    #[error("{binary} started but its master socket {socket} never answered")]
    Silent {
        binary: PathBuf,
        socket: PathBuf,
        #[source]
        source: MasterError,
    },
}

pub struct Haproxy {
    pub master: MasterCli,
    config: PathBuf,
    launch: Launch,
    /// The master, when this sidecar started it, so it is reaped.
    child: Mutex<Option<Child>>,
}

impl Haproxy {
    pub fn new(launch: Launch, master_socket: &Path, config: &Path) -> Haproxy {
        Haproxy {
            master: MasterCli::new(master_socket),
            config: config.to_owned(),
            launch,
            child: Mutex::new(None),
        }
    }

    /// Adopts the running HAProxy, or starts one (`Spawn` only).
    pub async fn ensure_running(&self) -> Result<Processes, SupervisorError> {
        let socket = self.master.path().to_owned();
        let error = match self.master.processes().await {
            Ok(processes) => return Ok(processes),
            Err(error) => error,
        };
        let Launch::Spawn { binary } = &self.launch else {
            return Err(SupervisorError::NotRunning {
                socket,
                source: error,
            });
        };
        let mut command = Command::new(binary);
        command
            .arg("-W")
            .arg("-S")
            .arg(format!("{},mode,600", socket.display()))
            .arg("-f")
            .arg(&self.config)
            .stdin(Stdio::null())
            // Its own group: a Ctrl-C meant for the sidecar spares it.
            .process_group(0);
        let mut child = command.spawn().map_err(|source| SupervisorError::Spawn {
            binary: binary.clone(),
            source,
        })?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.master.processes().await {
                Ok(processes) => {
                    tracing::info!(master_pid = processes.master_pid, "HAProxy started.");
                    *self.child.lock().await = Some(child);
                    return Ok(processes);
                }
                Err(error) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(SupervisorError::Exited {
                            binary: binary.clone(),
                            status,
                        });
                    }
                    if Instant::now() > deadline {
                        let _ = child.start_kill();
                        return Err(SupervisorError::Silent {
                            binary: binary.clone(),
                            socket,
                            source: error,
                        });
                    }
                }
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Watches the master forever. When HAProxy dies it is started again
    /// (`Spawn`) or waited for (`Attach`); each time a master answers again,
    /// or a different master answers, `generation` moves so the sidecar
    /// re-applies the server state.
    pub async fn watch(
        self: Arc<Self>,
        generation: watch::Sender<u64>,
        alive: watch::Sender<Option<Processes>>,
    ) {
        let mut known_master = alive.borrow().as_ref().map(|p| p.master_pid);
        let mut misses = 0;
        let mut restart_delay = Backoff::new(Duration::from_millis(250), MAX_RESTART_DELAY);
        loop {
            sleep(WATCH_INTERVAL).await;
            self.reap().await;
            let seen = match self.master.processes().await {
                Ok(processes) => Some(processes),
                Err(error) => {
                    misses += 1;
                    if misses < MISSES {
                        continue;
                    }
                    if misses == MISSES {
                        tracing::warn!(error = %error, "HAProxy does not answer.");
                    }
                    match self.launch {
                        Launch::Attach => None,
                        Launch::Spawn { .. } => match self.ensure_running().await {
                            Ok(processes) => {
                                restart_delay.reset();
                                Some(processes)
                            }
                            Err(error) => {
                                tracing::error!(error = %chain(&error), "Cannot restart HAProxy; trying again.");
                                sleep(restart_delay.next_delay()).await;
                                None
                            }
                        },
                    }
                }
            };
            if seen.is_some() {
                misses = 0;
            }
            let master = seen.as_ref().map(|p| p.master_pid);
            if master.is_some() && master != known_master {
                tracing::info!(
                    master_pid = master,
                    "HAProxy is back; re-applying server state."
                );
                generation.send_modify(|g| *g += 1);
            }
            if master.is_some() {
                known_master = master;
            }
            alive.send_replace(seen);
        }
    }

    /// Collects our master's exit status, if it died, so it is no zombie.
    async fn reap(&self) {
        let mut child = self.child.lock().await;
        if let Some(running) = child.as_mut() {
            if let Ok(Some(status)) = running.try_wait() {
                tracing::warn!(%status, "HAProxy's master exited.");
                *child = None;
            }
        }
    }
}
