//! `stride serve`: builds every part, in data-flow order, and serves.

use crate::api::{self, Shared};
use crate::command::Committer;
use crate::projection::{self, LoadError, Projection};
use crate::store::{EventLog, StoreError};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Take a projection snapshot every this many events.
    pub snapshot_every: u64,
    pub stream: crate::stream::StreamConfig,
    pub callbacks: crate::callbacks::CallbackConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the store at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error(
        "cannot rebuild state from the store at {path}; `stride store verify` reports the damage"
    )]
    Load {
        path: PathBuf,
        #[source]
        source: LoadError,
    },
    #[error("cannot start the committer")]
    Committer(#[source] StoreError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
}

pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let path = config.data_dir.clone();
    let (log, state) = tokio::task::spawn_blocking(move || {
        let log = EventLog::open(&path).map_err(|source| ServeError::Open {
            path: path.clone(),
            source,
        })?;
        let state = projection::load(&log, None).map_err(|source| ServeError::Load {
            path: path.clone(),
            source,
        })?;
        Ok::<_, ServeError>((Arc::new(log), state))
    })
    .await
    .expect("the store-opening task does not panic")?;
    tracing::info!(seq = %state.seq, apps = state.apps.len(), tasks = state.tasks.len(), "state rebuilt");
    let projection = Arc::new(Projection::new(state.clone()));
    let committer = Committer::start(
        log.clone(),
        state,
        projection.clone(),
        config.snapshot_every,
    )
    .map_err(ServeError::Committer)?;
    let callbacks = crate::callbacks::Registry::default();
    crate::callbacks::start(
        log.clone(),
        projection.clone(),
        callbacks.clone(),
        config.callbacks,
    );
    let shared = Shared {
        log,
        projection,
        committer,
        stream: config.stream,
        callbacks,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(ServeError::Serve)?;
    tracing::info!(addr = %bound, "serving");
    // Tests and scripts wait for this line to learn the port.
    println!("stride: listening on http://{bound}");
    let app = api::router(shared).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(ServeError::Serve)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM; only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down");
}
