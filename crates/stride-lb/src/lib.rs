//! `stride lb haproxy`: a sidecar that keeps HAProxy serving the apps of
//! one group as the log describes them.
//!
//! `follow` keeps a local copy of the projection (`/v1/state`, then
//! `/v1/stream`); `model` reads from it what to serve and which tasks are
//! in rotation; `apply` brings HAProxy in line: server changes through the
//! Runtime API (`runtime`), anything else as a checked file (`config`,
//! `install`) and a seamless reload (`master`). `supervisor` keeps HAProxy
//! running; `status` serves `GET /status`. HAProxy never depends on Stride
//! being up: it serves the last configuration it had.

pub mod apply;
pub mod config;
pub mod follow;
pub mod install;
pub mod master;
pub mod model;
pub mod runtime;
mod slots;
pub mod status;
pub mod supervisor;

#[cfg(test)]
mod golden;

// What the sidecar folds, under the paths its modules name them by.
use stride_core::projection;
use stride_log::event;
use stride_protocol as protocol;

use apply::Applier;
use axum::serve::ListenerExt;
use config::{Backends, RenderOptions, render};
use follow::{FollowError, Follower};
use install::{ConfigFile, InstallError};
use model::Selection;
use status::{Status, StatusHandle};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use stride_runtime::error::chain;
use stride_runtime::tcp::no_delay;
use stride_runtime::{Death, Supervisor};
use supervisor::{Haproxy, Launch, SupervisorError};
use tokio::sync::watch;

/// Where Debian installs HAProxy; `/usr/sbin` is not on every PATH.
pub const DEBIAN_HAPROXY: &str = "/usr/sbin/haproxy";

/// The installed HAProxy: the first on PATH, else Debian's.
pub fn installed_haproxy() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .map(|dir| dir.join("haproxy"))
        .chain([PathBuf::from(DEBIAN_HAPROXY)])
        .find(|path| path.is_file())
}

/// Everything `stride lb haproxy` is told.
#[derive(Debug, Clone)]
pub struct Options {
    pub follower: Follower,
    pub selection: Selection,
    pub render: RenderOptions,
    pub config: PathBuf,
    /// The HAProxy binary, for `-c` and (with `Launch::Spawn`) to run.
    pub haproxy: PathBuf,
    pub launch: Launch,
    pub master_socket: PathBuf,
    pub status_listen: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum LbError {
    #[error("cannot serve /status on {addr} (--status-listen)")]
    Status {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare {path} (--config)")]
    Config {
        path: PathBuf,
        #[source]
        source: InstallError,
    },
    #[error("cannot run HAProxy")]
    Haproxy(#[source] SupervisorError),
    #[error("cannot read Stride's state")]
    Stride(#[source] FollowError),
    #[error(transparent)]
    Died(Death),
}

/// Runs the sidecar until SIGTERM or Ctrl-C, or until one of its parts
/// (`/status`, the HAProxy watcher, the follower) dies. HAProxy keeps
/// running after it, serving the last configuration; the next start
/// adopts it.
pub async fn run(options: Options) -> Result<(), LbError> {
    let supervisor = Supervisor::new();
    let status_error = |source| LbError::Status {
        addr: options.status_listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(options.status_listen)
        .await
        .map_err(status_error)?;
    let bound = listener.local_addr().map_err(status_error)?;
    let (alive, haproxy_seen) = watch::channel(None);
    let status = StatusHandle::new(
        Status {
            name: options.follower.name.clone(),
            group: options.selection.group.clone(),
            stride: options.follower.stride.to_string(),
            ..Status::default()
        },
        haproxy_seen,
    );
    let app = status::router(status.clone());
    supervisor.spawn("status server", move |stop| async move {
        axum::serve(listener.tap_io(no_delay), app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    // Tests and scripts wait for this line to learn the port.
    println!("stride lb: status on http://{bound}");

    let file = ConfigFile::new(&options.config, &options.haproxy);
    let haproxy = Arc::new(Haproxy::new(
        options.launch.clone(),
        &options.master_socket,
        &options.config,
    ));
    if options.launch == Launch::Attach {
        // Someone else's HAProxy: make sure it is there before touching files.
        haproxy.ensure_running().await.map_err(LbError::Haproxy)?;
    }
    prepare_config(&file, &options, &haproxy).await?;
    let processes = haproxy.ensure_running().await.map_err(LbError::Haproxy)?;
    tracing::info!(
        master_pid = processes.master_pid,
        worker_pid = processes.worker_pid(),
        "HAProxy runs."
    );
    let master_pid = processes.master_pid;
    alive.send_replace(Some(processes));
    let (generation, generation_seen) = watch::channel(0);
    let watched = haproxy.clone();
    supervisor.spawn("HAProxy watcher", move |stop| async move {
        tokio::select! {
            () = watched.watch(generation, alive) => {}
            () = stop.cancelled() => {}
        }
        Ok::<(), Infallible>(())
    });
    let applier = Applier::new(
        options.render.clone(),
        options.selection.clone(),
        file,
        haproxy,
        status.clone(),
    );
    let follower = options.follower.clone();
    supervisor.spawn("follower", move |stop| async move {
        tokio::select! {
            () = follower.run(applier, generation_seen, status) => {}
            () = stop.cancelled() => {}
        }
        Ok::<(), Infallible>(())
    });
    let died = tokio::select! {
        () = stride_runtime::shutdown_signal() => None,
        death = supervisor.died() => Some(death),
    };
    tracing::info!(master_pid, "Stopping; HAProxy keeps serving.");
    supervisor.stop();
    died.map_or(Ok(()), |death| Err(LbError::Died(death)))
}

/// HAProxy needs a valid file to start from: the last one written if it
/// still passes `haproxy -c`, else one with no apps (the bad one is kept
/// aside).
async fn prepare_config(
    file: &ConfigFile,
    options: &Options,
    haproxy: &Haproxy,
) -> Result<(), LbError> {
    let error = |source| LbError::Config {
        path: options.config.clone(),
        source,
    };
    let empty = render(&options.render, &Backends::new()).text;
    let Some(current) = file.current() else {
        return file.install(&empty).map_err(error);
    };
    // A running master is adopted with whatever it serves.
    let starting = matches!(options.launch, Launch::Spawn { .. });
    if starting && haproxy.master.processes().await.is_err() {
        if let Err(rejected) = file.install_checked(&current).await {
            tracing::warn!(error = %chain(&rejected), "The existing config does not load; starting with no apps.");
            file.install(&empty).map_err(error)?;
        }
    }
    Ok(())
}

/// `--dry-run`: the file a fresh sidecar would write for Stride's state.
pub async fn dry_run(options: &Options) -> Result<String, LbError> {
    let client = options.follower.client().map_err(LbError::Stride)?;
    let state = options
        .follower
        .fetch_state(&client)
        .await
        .map_err(LbError::Stride)?;
    Ok(apply::render_state(&state, &options.selection, &options.render).await)
}
