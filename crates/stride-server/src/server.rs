//! `stride serve`: builds every part, in data-flow order, each long-running
//! one under one `Supervisor`, serves, and stops in order (`stop_in_order`):
//! on SIGTERM, or when a part dies (then exiting non-zero, naming it).

use crate::api::{self, ServerInfo, Shared};
use crate::committer::Committer;
use crate::connections::{self, ConnectionLimits, descriptors};
use crate::health::{HealthMonitor, HealthResults, Readiness, ReadinessMonitor};
use crate::master_detector::MasterDetector;
use crate::metrics::{MesosState, Metrics};
use crate::published::{self, LoadError, Projection};
use crate::reconciler::{Links, Queue, Reconciler};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stride_core::command::{PortRange, Settings};
use stride_core::projection;
use stride_local::{LocalCluster, LocalClusterConfig};
use stride_log::store::{LogWriter, StoreError};
use stride_mesos::{Scheduler, SchedulerConfig, SchedulerHandle};
use stride_runtime::{Clock, Death, Part, Supervisor, shutdown_signal};

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Take a projection snapshot every this many events.
    pub snapshot_every: u64,
    /// Where service ports for `port: 0` come from.
    pub service_ports: PortRange,
    pub mesos: MesosConfig,
    pub stream: crate::stream::StreamConfig,
    pub callbacks: crate::callbacks::CallbackConfig,
    pub connections: ConnectionConfig,
    /// Record and serve `/metrics` (off: `--no-metrics`).
    pub metrics: bool,
    pub auth: AuthConfig,
    /// `--tls-cert` and `--tls-key`: HTTPS and WSS instead of HTTP and WS.
    pub tls: Option<crate::tls::TlsFiles>,
    /// High availability (`--zk`); `None`: this instance alone.
    pub ha: Option<crate::ha::HaConfig>,
}

/// Who may do what (`docs/security.md`). Neither set: open, with a
/// warning at start.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// `--auth-file`: roles, tokens and users; reloaded on SIGHUP.
    pub file: Option<PathBuf>,
    /// `--http-credentials user:password` (Marathon's): one user who may
    /// do everything.
    pub http_credentials: Option<stride_auth::HttpCredentials>,
}

/// What clients may hold open, and how long stopping may take.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionConfig {
    /// Open connections at most; `None`: what the open-file limit allows
    /// after a reserve (`connections::descriptors`).
    pub max_connections: Option<usize>,
    /// Websocket and SSE subscribers at most; `None`: half the connections.
    pub max_streams: Option<usize>,
    pub header_timeout: Duration,
    pub send_timeout: Duration,
    /// After SIGTERM, how long requests in flight and closing streams get.
    pub shutdown_timeout: Duration,
}

/// How Stride reaches Mesos.
#[derive(Debug, Clone)]
pub struct MesosConfig {
    /// Masters to try; empty (and no `detect`) means the embedded local
    /// cluster.
    pub masters: Vec<reqwest::Url>,
    /// `--master zk://...`: the masters' ZooKeeper group, where the leading
    /// master is found.
    pub detect: Option<stride_zk::ZkUrl>,
    /// No Mesos at all (`--no-mesos`): the API and the log only.
    pub disabled: bool,
    pub framework_name: String,
    /// How long a draining task waits for load balancers before its kill.
    pub drain_timeout: std::time::Duration,
    /// The Unix user tasks run as.
    pub user: String,
    /// The embedded cluster's Docker engine socket.
    pub docker_socket: PathBuf,
    /// The embedded cluster's host ports (its default when unset).
    pub local_ports: Option<stride_local::PortRange>,
    /// Framework authentication (`--mesos-principal`, `--mesos-secret-file`).
    pub credential: Option<stride_mesos::MesosCredential>,
    /// The embedded cluster requires framework authentication against this
    /// Mesos credentials file (`--local-credentials`).
    pub local_credentials: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the store at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("refusing to serve the store at {path}: {refusal}")]
    Damaged { path: PathBuf, refusal: String },
    #[error(
        "cannot rebuild state from the store at {path}; `stride store verify` reports the damage"
    )]
    Load {
        path: PathBuf,
        #[source]
        source: LoadError,
    },
    #[error("cannot serve TLS")]
    Tls(#[source] crate::tls::TlsError),
    #[error("cannot load the auth file")]
    Auth(#[source] stride_auth::FileError),
    #[error("cannot start the embedded local cluster")]
    Local(#[source] stride_local::LocalClusterError),
    #[error("invalid Mesos settings")]
    Mesos(#[source] stride_mesos::ConfigError),
    #[error("cannot start the health monitor")]
    Health(#[source] crate::health::HealthError),
    #[error("cannot start the committer")]
    Committer(#[source] StoreError),
    #[error("cannot start the stream pacer")]
    Pacer(#[source] std::io::Error),
    #[error(transparent)]
    Died(Death),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
    #[error("cannot use the peer token (--peer-token-file)")]
    PeerToken(#[source] stride_runtime::credentials::InvalidToken),
}

pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let open_files = descriptors::raise_open_file_limit();
    let max_connections = config
        .connections
        .max_connections
        .unwrap_or_else(|| open_files.map_or(usize::MAX, descriptors::default_max_connections));
    let max_streams = config
        .connections
        .max_streams
        .unwrap_or(max_connections / 2)
        .clamp(1, max_connections);
    tracing::info!(
        open_files,
        max_connections,
        max_streams,
        "connection limits"
    );
    let auth = load_auth(&config.auth)?;
    let tls = config
        .tls
        .as_ref()
        .map(crate::tls::acceptor)
        .transpose()
        .map_err(ServeError::Tls)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let path = config.data_dir.clone();
    let (writer, state) = tokio::task::spawn_blocking(move || open_checked(&path))
        .await
        .expect("the store-opening task does not panic")?;
    tracing::info!(seq = %state.seq, apps = state.apps.len(), tasks = state.tasks.len(), "state rebuilt");
    let supervisor = Supervisor::new();
    let projection = Arc::new(Projection::new(state));
    let metrics = match config.metrics {
        true => Metrics::on(),
        false => Metrics::off(),
    };
    let settings = Settings {
        service_ports: config.service_ports,
    };
    // The committer alone appends; everything else reads. With high
    // availability the pipeline runs only while leading, and the role
    // holds the writer between (it applies the replicated log).
    let log = writer.reader();
    let (committer, standby_writer) = match &config.ha {
        Some(_) => (Committer::standby(&metrics), Some(writer)),
        None => {
            let committer = Committer::start(
                writer,
                projection.clone(),
                config.snapshot_every,
                settings,
                &metrics,
                &supervisor,
            )
            .map_err(ServeError::Committer)?;
            (committer, None)
        }
    };
    // No master configured: an embedded cluster on loopback, reached over
    // HTTP through the same client a real master gets.
    let mesos_wanted = !config.mesos.disabled;
    let local =
        match config.mesos.masters.is_empty() && config.mesos.detect.is_none() && mesos_wanted {
            true => Some(start_local(&config, &supervisor).await?),
            false => None,
        };
    let mut mesos = config.mesos.clone();
    if let Some(cluster) = &local {
        let url = reqwest::Url::parse(&cluster.url()).expect("the local cluster's URL parses");
        mesos.masters = vec![url];
    }
    let queue = Arc::new(Queue::default());
    let sidecars = crate::stream::Sidecars::default();
    let readiness = Readiness::default();
    let health = HealthResults::default();
    let subscription = crate::api::MesosSlot::default();
    // Stopped together once HTTP has: the reconciler first of all.
    let mut background = Vec::new();
    let detector = match (&mesos.detect, mesos_wanted) {
        (Some(url), true) => {
            let (detector, part) = MasterDetector::start(url.clone(), &supervisor);
            background.push(part);
            Some(detector)
        }
        _ => None,
    };
    let leader_parts = LeaderParts {
        detected: detector.as_ref().map(MasterDetector::leader),
        mesos: mesos.clone(),
        projection: projection.clone(),
        queue: queue.clone(),
        sidecars: sidecars.clone(),
        readiness: readiness.clone(),
        health: health.clone(),
        metrics: metrics.clone(),
        supervisor: supervisor.clone(),
        subscription: subscription.clone(),
    };
    if mesos.disabled {
        metrics.mesos(MesosState::Disabled);
    } else if config.ha.is_none() {
        let (scheduler, parts) = leader_parts.start_parts(&committer, None)?;
        subscription.set(Some(scheduler));
        background.extend(parts);
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(ServeError::Serve)?;
    let callbacks = crate::callbacks::Registry::default();
    background.push(crate::callbacks::start(
        log.clone(),
        projection.clone(),
        callbacks.clone(),
        config.callbacks,
        bound,
        &supervisor,
    ));
    let sessions = Sessions::start().map_err(ServeError::Serve)?;
    let stream = crate::stream::Hub::start(
        config.stream,
        projection.clone(),
        max_streams,
        sessions.handle(),
        &supervisor,
    )
    .map_err(ServeError::Pacer)?;
    background.push(supervisor.spawn("auth file reloader", {
        let (auth, stream) = (auth.clone(), stream.clone());
        |stop| reload_on_hangup(auth, stream, stop)
    }));
    let shared = Shared {
        auth,
        log: log.clone(),
        projection: projection.clone(),
        committer: committer.clone(),
        server: ServerInfo {
            address: bound,
            scheme,
            service_ports: config.service_ports,
            framework_name: mesos.framework_name.clone(),
            masters: mesos.masters.iter().map(without_credentials).collect(),
            detector,
            mesos_user: mesos.user.clone(),
        },
        mesos: subscription,
        stream: stream.clone(),
        callbacks,
        queue,
        health,
        rendered: Default::default(),
        readiness,
        sidecars,
        metrics: metrics.clone(),
    };
    tracing::info!(addr = %bound, "serving");
    let advertised = advertise(&config.data_dir, scheme, bound);
    let mut router = api::router(shared);
    if let (Some(ha), Some(writer)) = (&config.ha, standby_writer) {
        let view = crate::ha::RoleView::new(
            crate::ha::instance_id(&config.data_dir).map_err(ServeError::Serve)?,
            format!("{scheme}://{}", reachable(bound)),
            ha,
        );
        let lead: Box<dyn crate::ha::Lead> = match mesos.disabled {
            true => Box::new(crate::ha::NoMesos),
            false => Box::new(leader_parts),
        };
        let role = crate::ha::Ha {
            config: ha.clone(),
            view: view.clone(),
            log: Arc::new(writer),
            projection: projection.clone(),
            committer: committer.clone(),
            snapshot_every: config.snapshot_every,
            settings,
            metrics: metrics.clone(),
            supervisor: supervisor.clone(),
            lead,
            applying: Arc::default(),
            peers: crate::ha::peer_client(ha.peers.http_client().map_err(ServeError::PeerToken)?),
        };
        background.insert(
            0,
            supervisor.spawn("high availability", |stop| role.run(stop)),
        );
        let passing = ha.peers.trust_only().http_client();
        let proxy = crate::ha::Proxy::new(
            view.clone(),
            projection.clone(),
            passing.map_err(ServeError::PeerToken)?,
        );
        router = router
            .layer(axum::middleware::from_fn_with_state(
                proxy,
                crate::ha::pass_writes_to_leader,
            ))
            .layer(axum::Extension(view));
    }
    // Tests and scripts wait for this line to learn the port.
    println!("stride: listening on {scheme}://{bound}");
    let service = connections::Service { router, tls };
    let limits = ConnectionLimits {
        max_connections,
        header_timeout: config.connections.header_timeout,
        send_timeout: config.connections.send_timeout,
    };
    let stopping = async {
        tokio::select! {
            () = shutdown_signal() => {}
            _ = supervisor.died() => {}
        }
    };
    let open = connections::accept_until(listener, service, limits, stopping, &supervisor).await;
    stop_in_order(Running {
        supervisor: &supervisor,
        open,
        stream,
        sessions,
        background,
        committer,
        local,
        timeout: config.connections.shutdown_timeout,
    })
    .await;
    if let Some(path) = advertised {
        let _ = std::fs::remove_file(path);
    }
    match supervisor.death() {
        Some(death) => Err(ServeError::Died(death)),
        None => Ok(()),
    }
}

/// What a serving Stride stops, in order.
struct Running<'a> {
    supervisor: &'a Supervisor,
    open: connections::Open,
    stream: Arc<crate::stream::Hub>,
    sessions: Sessions,
    background: Vec<Part>,
    committer: Committer,
    local: Option<LocalCluster>,
    /// Each step waits this long at most.
    timeout: Duration,
}

/// The shutdown order (ARCHITECTURE.md): HTTP (accepting has stopped;
/// requests in flight are answered, streams closed with 1001), then the
/// background parts (the reconciler finishing the activation under way),
/// then the committer (everything submitted made durable and answered),
/// then the local cluster. Each step is logged and bounded in time.
async fn stop_in_order(running: Running<'_>) {
    let Running {
        supervisor,
        open,
        stream,
        sessions,
        background,
        committer,
        local,
        timeout,
    } = running;
    tracing::info!("shutdown: stopped accepting connections");
    // Streams never end by themselves: tell them to.
    stream.stop();
    let http = async {
        tokio::join!(open.drain(), stream.stopped());
    };
    bounded(
        "HTTP stopped: requests answered, streams closed",
        timeout,
        http,
    )
    .await;
    drop(sessions);
    supervisor.stop();
    let parts = async {
        for part in &background {
            part.ended().await;
            tracing::info!(part = part.name(), "shutdown: part stopped");
        }
    };
    bounded("background parts stopped", timeout, parts).await;
    bounded("committer drained", timeout, committer.drain()).await;
    if let Some(cluster) = local {
        bounded("local cluster stopped", timeout, cluster.shutdown()).await;
    }
    bounded("every part ended", timeout, supervisor.ended()).await;
}

/// Waits for one shutdown step, `timeout` at most, and says so.
async fn bounded(step: &str, timeout: Duration, done: impl Future<Output = ()>) {
    match tokio::time::timeout(timeout, done).await {
        Ok(()) => tracing::info!("shutdown: {step}"),
        Err(_) => tracing::warn!(?timeout, "shutdown: {step}: not done in time; going on"),
    }
}

/// The runtime websocket sessions run on (`Hub::start`), shut down without
/// waiting however `serve` ends: dropping a runtime blocks, which no async
/// function may.
struct Sessions(Option<tokio::runtime::Runtime>);

impl Sessions {
    fn start() -> std::io::Result<Sessions> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("stride-stream")
            .on_thread_start(stride_sched::yield_to_writers)
            .enable_all()
            .build()?;
        Ok(Sessions(Some(runtime)))
    }

    fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.0.as_ref().map(|runtime| runtime.handle().clone())
    }
}

impl Drop for Sessions {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Opens the store and rebuilds the state, while a second thread checks
/// the whole store (`store/integrity.rs`): a damaged store is refused, never
/// served, whatever the state's load made of it.
fn open_checked(path: &std::path::Path) -> Result<(LogWriter, projection::State), ServeError> {
    let log = LogWriter::open(path).map_err(|source| ServeError::Open {
        path: path.to_owned(),
        source,
    })?;
    let (report, state) = std::thread::scope(|scope| {
        let check = scope.spawn(|| {
            let started = std::time::Instant::now();
            let report = log.check();
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "store checked"
            );
            report
        });
        let state = published::load(&log, None);
        (check.join(), state)
    });
    let report = report
        .expect("the store check does not panic")
        .map_err(|source| ServeError::Open {
            path: path.to_owned(),
            source,
        })?;
    for cache in &report.caches {
        tracing::warn!("{cache}");
    }
    if !report.problems.is_empty() {
        return Err(ServeError::Damaged {
            path: path.to_owned(),
            refusal: report.refusal(path),
        });
    }
    let state = state.map_err(|source| ServeError::Load {
        path: path.to_owned(),
        source,
    })?;
    Ok((log, state))
}

/// Where this machine reaches the server bound at `bound`.
fn reachable(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::from(([127, 0, 0, 1], bound.port()))
        }
        ip if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, bound.port()))
        }
        _ => bound,
    }
}

/// Names this server's URL in the data directory, so `stride store backup`
/// can ask it for a live backup (`store/backup.rs`).
fn advertise(data_dir: &std::path::Path, scheme: &str, bound: SocketAddr) -> Option<PathBuf> {
    let host = reachable(bound);
    match stride_log::store::backup::advertise(data_dir, &format!("{scheme}://{host}")) {
        Ok(path) => Some(path),
        Err(error) => {
            tracing::warn!(%error, "cannot name this server in the data directory; live backups will not find it");
            None
        }
    }
}

async fn start_local(
    config: &ServeConfig,
    supervisor: &Supervisor,
) -> Result<LocalCluster, ServeError> {
    let local = LocalClusterConfig {
        work_dir: Some(config.data_dir.join("local-sandboxes")),
        docker_socket: config.mesos.docker_socket.clone(),
        ports: config
            .mesos
            .local_ports
            .unwrap_or(LocalClusterConfig::default().ports),
        credentials: config.mesos.local_credentials.clone(),
        ..LocalClusterConfig::default()
    };
    let cluster = LocalCluster::start_under(local, supervisor)
        .await
        .map_err(ServeError::Local)?;
    tracing::info!(url = %cluster.url(), "embedded local cluster started");
    Ok(cluster)
}

fn state_framework(projection: &Projection) -> Option<stride_mesos::types::FrameworkId> {
    let state = projection.read();
    state
        .framework
        .as_ref()
        .map(|f| stride_mesos::types::FrameworkId::new(f.as_str()))
}

/// A master's URL as `/v2/info` may show it: user and password removed.
fn without_credentials(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// What a leader runs besides the committer: the Mesos subscription with
/// the reconciler, the health and readiness monitors. A lone Stride starts
/// them once; with high availability each win starts them anew (`Lead`).
struct LeaderParts {
    mesos: MesosConfig,
    /// The leading master, with `--master zk://`.
    detected: Option<tokio::sync::watch::Receiver<Option<reqwest::Url>>>,
    projection: Arc<Projection>,
    queue: Arc<Queue>,
    sidecars: crate::stream::Sidecars,
    readiness: Readiness,
    health: HealthResults,
    metrics: Metrics,
    supervisor: Supervisor,
    /// Where the API finds the subscription (task files).
    subscription: crate::api::MesosSlot,
}

impl LeaderParts {
    /// Starts them on `committer`; every Mesos call passes `gate`, if any.
    fn start_parts(
        &self,
        committer: &Committer,
        gate: Option<stride_mesos::CallGate>,
    ) -> Result<(SchedulerHandle, Vec<Part>), ServeError> {
        let mut scheduler = SchedulerConfig::new(
            self.mesos.masters.clone(),
            self.mesos.framework_name.clone(),
            self.mesos.user.clone(),
        );
        scheduler.detected = self.detected.clone();
        // The recorded framework id: a restarted Stride keeps its tasks.
        scheduler.framework_id = state_framework(&self.projection);
        scheduler.credential = self.mesos.credential.clone();
        scheduler.gate = gate;
        let (scheduler, reconciler) = follow_mesos(
            scheduler,
            committer,
            &self.projection,
            Links {
                queue: self.queue.clone(),
                sidecars: self.sidecars.clone(),
                readiness: self.readiness.clone(),
                drain_timeout: self.mesos.drain_timeout,
                metrics: self.metrics.clone(),
                clock: Clock::system(),
            },
            &self.supervisor,
        )?;
        let mut parts = vec![reconciler];
        let monitor = HealthMonitor::new(
            self.projection.clone(),
            committer.clone(),
            self.health.clone(),
            self.metrics.clone(),
            Clock::system(),
        )
        .map_err(ServeError::Health)?;
        parts.push(
            self.supervisor
                .spawn("health monitor", |stop| monitor.run(stop)),
        );
        let readiness = ReadinessMonitor::new(self.projection.clone(), self.readiness.clone())
            .map_err(ServeError::Health)?;
        parts.push(
            self.supervisor
                .spawn("readiness monitor", |stop| readiness.run(stop)),
        );
        Ok((scheduler, parts))
    }
}

impl crate::ha::Lead for LeaderParts {
    fn start(
        &self,
        committer: &Committer,
        gate: stride_mesos::CallGate,
    ) -> Result<Vec<Part>, String> {
        let (scheduler, parts) = self
            .start_parts(committer, Some(gate))
            .map_err(|error| stride_runtime::error::chain(&error))?;
        self.subscription.set(Some(scheduler));
        Ok(parts)
    }

    fn stopped(&self) {
        self.subscription.set(None);
    }
}

/// Subscribes to Mesos as `scheduler` says and starts the reconciler on its
/// events.
fn follow_mesos(
    scheduler: SchedulerConfig,
    committer: &Committer,
    projection: &Arc<Projection>,
    links: Links,
    supervisor: &Supervisor,
) -> Result<(SchedulerHandle, Part), ServeError> {
    let (handle, events) = Scheduler::spawn(scheduler).map_err(ServeError::Mesos)?;
    let reconciler = Reconciler::new(handle.clone(), committer.clone(), projection.clone(), links);
    let part = supervisor.spawn("reconciler", |stop| reconciler.run(events, stop));
    Ok((handle, part))
}

fn load_auth(config: &AuthConfig) -> Result<Arc<stride_auth::Keeper>, ServeError> {
    let keeper = stride_auth::Keeper::load(config.file.clone(), config.http_credentials.clone())
        .map_err(ServeError::Auth)?;
    let current = keeper.current();
    if current.is_open() {
        tracing::warn!(
            "no --auth-file and no --http-credentials: anyone who reaches this port may do anything, \
             and the audit records every caller as anonymous (docs/security.md)"
        );
    } else {
        let (tokens, users) = current.counts();
        tracing::info!(file = ?config.file, tokens, users, "authentication required");
    }
    Ok(Arc::new(keeper))
}

/// SIGHUP reads the auth file again; a file that fails to load leaves the
/// one in force and says why.
async fn reload_on_hangup(
    auth: Arc<stride_auth::Keeper>,
    stream: Arc<crate::stream::Hub>,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), std::io::Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            received = hangups.recv() => {
                if received.is_none() {
                    return Ok(());
                }
            }
        }
        match auth.reload() {
            Ok(current) => {
                let (tokens, users) = current.counts();
                tracing::info!(file = ?auth.file(), tokens, users, "auth file reloaded");
                // Open streams check their grant against it.
                stream.auth_reloaded();
            }
            Err(error) => {
                tracing::error!(%error, "auth file not reloaded; the one loaded before stays in force");
            }
        }
    }
}
