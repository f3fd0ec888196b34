//! An embedded single-host Mesos-compatible cluster: one master and N
//! agents in this process, speaking the Mesos v1 scheduler HTTP API on
//! loopback and running command tasks as local child processes.
//!
//! Stride talks to it through the same client it uses for a real master,
//! so the wire behaviour (framing, status codes, error texts, update
//! reliability, reconciliation answers) follows a real Mesos 1.11 master;
//! see `fixtures/mesos/` for the captures it is checked against.
//!
//! Known differences from a real master, all deliberate simplifications:
//! JSON only (a protobuf body gets 415); no UPDATE_FRAMEWORK, MESSAGE,
//! SHUTDOWN, REQUEST or operation calls (501); LAUNCH is the only offer
//! operation (others are ignored); one role per framework, and SUPPRESS /
//! REVIVE ignore their role list; `uris` are accepted but not fetched; no
//! executors other than the command executor (and the docker executor);
//! state lives in memory only (a restart forgets frameworks and command
//! tasks); allocation runs every
//! 100 ms rather than every second; agents share this host, so each gets a
//! disjoint slice of the port range. Health checks run as the command
//! executor runs them (`health.rs`). `container.type: DOCKER` tasks run on
//! a Docker engine (`docker/`); agent ids and those containers survive a
//! restart on the same work dir, command tasks do not.
//!
//! ```no_run
//! # async fn demo() -> Result<(), stride_local::LocalClusterError> {
//! use stride_local::{LocalCluster, LocalClusterConfig};
//! let cluster = LocalCluster::start(LocalClusterConfig::default()).await?;
//! println!("scheduler API at {}", cluster.scheduler_url());
//! cluster.shutdown().await;
//! # Ok(()) }
//! ```

mod agent;
mod agent_ids;
mod config;
mod credentials;
mod docker;
mod files;
mod health;
mod http;
mod master;
mod offers;
mod plain_command;
mod process;
mod reconcile;
mod sandbox;
mod state;
mod tasks;

use axum::serve::ListenerExt;
use credentials::FrameworkCredentials;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use stride_runtime::tcp::no_delay;
use stride_runtime::{Part, Supervisor};

use nix::sys::signal::Signal;
use tokio_util::sync::CancellationToken;

pub use config::{DEFAULT_DOCKER_SOCKET, LocalClusterConfig, PortRange};

use agent::{Agent, ResourceSet, parse_attributes};
use master::{Identity, Master, Settings, now_seconds};

/// How often timers (heartbeats, update resends, failover and offer
/// timeouts) and allocation run.
const TICK: Duration = Duration::from_millis(100);
/// How long shutdown waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum LocalClusterError {
    #[error("invalid port range {0:?}: expected BEGIN-END with 0 < BEGIN <= END <= 65535")]
    InvalidPortRange(String),
    #[error("invalid agent attributes {0:?}: expected NAME:VALUE pairs separated by ';'")]
    InvalidAttribute(String),
    #[error("port range {range} has fewer ports than the {agents} agents that share it")]
    TooFewPorts { range: PortRange, agents: usize },
    #[error("a local cluster needs at least one agent")]
    NoAgents,
    #[error("invalid setting {name}: {value}")]
    InvalidSetting { name: &'static str, value: f64 },
    #[error("cannot create work directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--credentials")]
    Credentials(#[source] credentials::CredentialsError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// A running local cluster. Dropping it kills every task process; call
/// [`LocalCluster::shutdown`] to also stop the server cleanly.
pub struct LocalCluster {
    address: SocketAddr,
    work_dir: PathBuf,
    master: Arc<Master>,
    stop: CancellationToken,
    /// Drops the server's connections (when they do not close in time).
    abort: CancellationToken,
    server: Option<Part>,
    ticker: Option<Part>,
}

impl LocalCluster {
    /// Binds the listener, registers the agents and starts serving.
    pub async fn start(config: LocalClusterConfig) -> Result<Self, LocalClusterError> {
        LocalCluster::start_under(config, &Supervisor::new()).await
    }

    /// Like `start`, its server and timers parts of `supervisor`'s.
    pub async fn start_under(
        config: LocalClusterConfig,
        supervisor: &Supervisor,
    ) -> Result<Self, LocalClusterError> {
        config.validate()?;
        let credentials = config
            .credentials
            .as_deref()
            .map(FrameworkCredentials::load)
            .transpose()
            .map_err(LocalClusterError::Credentials)?;
        let master_id = uuid::Uuid::new_v4().to_string();
        let work_dir = config
            .work_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("stride-local-{master_id}")));
        std::fs::create_dir_all(&work_dir).map_err(|source| LocalClusterError::WorkDir {
            path: work_dir.clone(),
            source,
        })?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| LocalClusterError::Bind {
                address: config.listen,
                source,
            })?;
        let address = listener
            .local_addr()
            .map_err(|source| LocalClusterError::Bind {
                address: config.listen,
                source,
            })?;
        let agent_ids =
            agent_ids::agent_ids(&work_dir, &master_id, config.agents).map_err(|source| {
                LocalClusterError::WorkDir {
                    path: work_dir.clone(),
                    source,
                }
            })?;
        let agents = agent_ids
            .iter()
            .enumerate()
            .map(|(index, id)| {
                let attributes = config
                    .attributes_of(index)
                    .map(parse_attributes)
                    .transpose()?
                    .unwrap_or_default();
                Ok(Agent {
                    id: id.clone(),
                    pid_name: format!("slave({})", index + 1),
                    hostname: config.hostname_of(index).to_string(),
                    attributes,
                    total: ResourceSet::new(
                        config.cpus,
                        config.mem,
                        config.disk,
                        config.ports_of(index),
                    ),
                    used: ResourceSet::default(),
                    offered: ResourceSet::default(),
                    registered_time: now_seconds(),
                })
            })
            .collect::<Result<Vec<_>, LocalClusterError>>()?;
        let identity = Identity {
            id: master_id,
            hostname: config.hostname_of(0).to_string(),
            address,
            start_time: now_seconds(),
        };
        let settings = Settings {
            heartbeat_interval: config.heartbeat_interval(),
            update_retry: config.status_update_retry(),
            default_kill_grace: config.default_kill_grace(),
            offer_timeout: config.offer_timeout(),
            work_dir: work_dir.clone(),
            credentials,
        };
        let engine = docker::Engine::new(&config.docker_socket);
        let recovered = docker::recover(&engine, &agent_ids).await;
        let master = Master::new(identity, settings, agents, engine);
        {
            let mut state = master.lock();
            for found in recovered {
                master.adopt(&mut state, found);
            }
        }
        // Its own stop, not the supervisor's: the cluster stops last, so
        // that the reconciler's last activation still reaches it.
        let (stop, abort) = (CancellationToken::new(), CancellationToken::new());
        let server = {
            let (stop, abort) = (stop.clone(), abort.clone());
            let app = http::router(Arc::clone(&master));
            supervisor.spawn("local cluster server", move |_| async move {
                let serve = axum::serve(listener.tap_io(no_delay), app)
                    .with_graceful_shutdown(async move { stop.cancelled().await });
                tokio::select! {
                    served = serve => served,
                    () = abort.cancelled() => Ok(()),
                }
            })
        };
        let ticker = {
            let stop = stop.clone();
            let master = Arc::clone(&master);
            supervisor.spawn("local cluster timers", move |_| async move {
                let mut interval = tokio::time::interval(TICK);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        _ = interval.tick() => master.tick(),
                    }
                }
                Ok::<(), Infallible>(())
            })
        };
        tracing::info!(%address, agents = config.agents, work_dir = %work_dir.display(), "local Mesos cluster started");
        Ok(Self {
            address,
            work_dir,
            master,
            stop,
            abort,
            server: Some(server),
            ticker: Some(ticker),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT`: the master URL to give a scheduler.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `http://127.0.0.1:PORT/api/v1/scheduler`.
    pub fn scheduler_url(&self) -> String {
        format!("{}/api/v1/scheduler", self.url())
    }

    /// Where the task sandboxes are.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// Kills every task (SIGKILL, no grace), closes every subscription,
    /// stops the server and waits until every child process is reaped.
    pub async fn shutdown(mut self) {
        self.master.shutdown();
        self.stop_parts();
        if let Some(ticker) = self.ticker.take() {
            ticker.ended().await;
        }
        if let Some(server) = self.server.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, server.ended())
                .await
                .is_err()
        {
            tracing::warn!("local cluster connections did not close in time; dropping them");
            self.abort.cancel();
        }
        self.master.supervisors.close();
        self.master.supervisors.wait().await;
        tracing::info!("local Mesos cluster stopped");
    }
}

impl Drop for LocalCluster {
    /// Last resort when `shutdown` was not awaited (e.g. a test panicked):
    /// no task process may outlive the cluster.
    fn drop(&mut self) {
        for pgid in self.master.live_process_groups() {
            process::signal_group(pgid, Signal::SIGKILL);
        }
        self.stop_parts();
        self.abort.cancel();
    }
}

impl LocalCluster {
    fn stop_parts(&self) {
        self.stop.cancel();
        for part in self.server.iter().chain(&self.ticker) {
            part.stop();
        }
    }
}
