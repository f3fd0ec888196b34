//! The command line. This is the binary's edge: errors become `anyhow`
//! reports naming the flag or file at fault.

mod app;
mod audit;
mod auth;
mod events;
mod exit;
mod follow;
mod lb;
mod remote;
mod store;
mod table;

pub use exit::exit_code;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use stride_core::command::PortRange;
use stride_server::callbacks::CallbackConfig;
use stride_server::server::{self, ConnectionConfig, MesosConfig, ServeConfig};
use stride_server::stream::StreamConfig;

#[derive(Parser)]
#[command(
    name = "stride",
    version,
    about = "An event-sourced control plane for Apache Mesos"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Serve the API on the event log in --data-dir.
    Serve(Box<ServeArgs>),
    /// Run the embedded Mesos-compatible cluster as its own process, so
    /// Stride can restart while its tasks keep running.
    LocalMesos(stride_local::LocalClusterConfig),
    /// Inspect a store offline.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Print the event stream of a running server.
    Events(events::EventsArgs),
    /// Who changed what, when: filtered history from a running server.
    Audit(audit::AuditArgs),
    /// Apps on a running server: list, show, deploy, scale, restart, roll
    /// back, delete, versions, diff, tasks, why.
    #[command(subcommand, after_help = app::EXIT_CODES)]
    App(app::AppCommand),
    /// The deployments in progress.
    #[command(after_help = app::EXIT_CODES)]
    Deployments(app::DeploymentsArgs),
    /// Every task of every app.
    #[command(after_help = app::EXIT_CODES)]
    Tasks(app::TasksArgs),
    /// Who may do what: the auth file's tokens and users.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Load balancer sidecars that follow Stride.
    #[command(subcommand)]
    Lb(lb::LbCommand),
    /// Measure Stride on this machine.
    #[command(subcommand)]
    Bench(stride_bench::BenchCommand),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Where the event log lives (created if missing).
    #[arg(long, env = "STRIDE_DATA_DIR", default_value = "./stride-data")]
    data_dir: PathBuf,
    /// Address the HTTP API listens on (port 0 picks a free one).
    #[arg(long, env = "STRIDE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Snapshot the projection every this many events (or, once the state
    /// has more entries than that, every as many events as it has entries).
    #[arg(long, env = "STRIDE_SNAPSHOT_EVERY", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_every: u64,
    /// Service ports for `port: 0` are assigned from this range, FIRST-LAST.
    #[arg(long, env = "STRIDE_SERVICE_PORTS", default_value_t = PortRange::default())]
    service_ports: PortRange,
    /// Mesos masters, comma-separated (e.g. http://10.0.0.1:5050,http://10.0.0.2:5050),
    /// or, as Marathon's --master, the ZooKeeper path where they register
    /// (zk://h1:2181,h2:2181/mesos): Stride follows the leading one there.
    /// None starts the embedded local cluster.
    #[arg(
        long,
        env = "STRIDE_MASTER",
        value_parser = masters,
        conflicts_with = "no_mesos"
    )]
    master: Option<Masters>,
    /// Run without any Mesos: the API and the log only.
    #[arg(long, env = "STRIDE_NO_MESOS")]
    no_mesos: bool,
    /// The framework name Stride registers with.
    #[arg(long, env = "STRIDE_FRAMEWORK_NAME", default_value = "stride")]
    framework_name: String,
    /// The Unix user tasks run as (default: the current user).
    #[arg(long, env = "STRIDE_MESOS_USER")]
    mesos_user: Option<String>,
    /// Framework authentication to Mesos (Marathon's
    /// --mesos_authentication_principal): the principal, with its secret in
    /// --mesos-secret-file; sent as HTTP Basic on every scheduler call.
    #[arg(
        long,
        alias = "mesos_authentication_principal",
        env = "STRIDE_MESOS_PRINCIPAL",
        requires = "mesos_secret_file"
    )]
    mesos_principal: Option<String>,
    /// The file holding --mesos-principal's secret (one trailing newline
    /// is ignored).
    #[arg(
        long,
        alias = "mesos_authentication_secret_file",
        env = "STRIDE_MESOS_SECRET_FILE",
        requires = "mesos_principal"
    )]
    mesos_secret_file: Option<PathBuf>,
    /// The embedded cluster requires framework authentication, as a Mesos
    /// master with --credentials: a JSON file in Mesos' shape,
    /// {"credentials": [{"principal": ..., "secret": ...}]}.
    #[arg(long, env = "STRIDE_LOCAL_CREDENTIALS")]
    local_credentials: Option<PathBuf>,
    /// How often `/v1/stream` pings each subscriber (e.g. 10s, 500ms).
    #[arg(long, env = "STRIDE_STREAM_PING_INTERVAL", default_value = "10s", value_parser = duration)]
    stream_ping_interval: Duration,
    /// A stream subscriber silent (no pong, or not reading) this long is
    /// disconnected.
    #[arg(long, env = "STRIDE_STREAM_IDLE_TIMEOUT", default_value = "30s", value_parser = duration)]
    stream_idle_timeout: Duration,
    /// How often stream subscribers get a `progress` message.
    #[arg(long, env = "STRIDE_STREAM_PROGRESS_INTERVAL", default_value = "5s", value_parser = duration)]
    stream_progress_interval: Duration,
    /// Longest wait between retries of a failing event-subscription callback.
    #[arg(long, env = "STRIDE_CALLBACK_MAX_BACKOFF", default_value = "60s", value_parser = duration)]
    callback_max_backoff: Duration,
    /// How long one callback POST may take.
    #[arg(long, env = "STRIDE_CALLBACK_TIMEOUT", default_value = "10s", value_parser = duration)]
    callback_timeout: Duration,
    /// Callback POSTs per second to one endpoint at most, so no subscriber
    /// can drive the log through its callbacks.
    #[arg(long, env = "STRIDE_CALLBACK_MAX_RATE", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    callback_max_rate: u32,
    /// Open HTTP connections at most (default: the open-file limit, raised
    /// to its hard limit at start, less a quarter kept for everything else).
    /// Beyond it new connections are closed at once.
    #[arg(long, env = "STRIDE_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,
    /// Websocket and SSE subscribers at most (default: half the
    /// connections); beyond it a new one gets a 503.
    #[arg(long, env = "STRIDE_MAX_STREAMS", value_parser = clap::value_parser!(u64).range(1..))]
    max_streams: Option<u64>,
    /// A connection must send a complete request head within this long of
    /// being accepted or answered, else it is closed (idle keep-alive and
    /// slow-header connections alike).
    #[arg(long, env = "STRIDE_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = duration)]
    http_header_timeout: Duration,
    /// A client that takes none of what is sent to it for this long (it
    /// stopped reading an event stream or a response) is disconnected
    /// (default: --stream-idle-timeout).
    #[arg(long, env = "STRIDE_HTTP_SEND_TIMEOUT", value_parser = duration)]
    http_send_timeout: Option<Duration>,
    /// On SIGTERM, how long requests in flight and closing streams get
    /// before the server exits anyway.
    #[arg(long, env = "STRIDE_SHUTDOWN_TIMEOUT", default_value = "5s", value_parser = duration)]
    shutdown_timeout: Duration,
    /// How long a task chosen to stop stays out of load-balancer rotation,
    /// waiting for every sidecar to confirm, before it is killed anyway.
    #[arg(long, env = "STRIDE_DRAIN_TIMEOUT", default_value = "30s", value_parser = duration)]
    drain_timeout: Duration,
    /// The Docker engine that the embedded cluster runs DOCKER apps on.
    #[arg(long, env = "STRIDE_DOCKER_SOCKET", default_value = stride_local::DEFAULT_DOCKER_SOCKET)]
    docker_socket: PathBuf,
    /// Host ports the embedded cluster offers, BEGIN-END (default 31000-32000).
    #[arg(long, env = "STRIDE_LOCAL_PORTS")]
    local_ports: Option<stride_local::PortRange>,
    /// High availability: ZooKeeper servers and Stride's path there, as
    /// Marathon's --zk (e.g. zk://h1:2181,h2:2181,h3:2181/stride). Needs
    /// --master or --no-mesos: the embedded cluster is one instance's own.
    #[arg(long, env = "STRIDE_ZK")]
    zk: Option<stride_zk::ZkUrl>,
    /// The ZooKeeper session timeout asked for; a leader cut off from
    /// ZooKeeper stops acting within 2/3 of it.
    #[arg(long, env = "STRIDE_ZK_SESSION_TIMEOUT", value_parser = duration,
          default_value = stride_server::ha::DEFAULT_SESSION_TIMEOUT)]
    zk_session_timeout: Duration,
    /// With --zk and an auth file: a file holding the token this instance
    /// shows the others when it copies the log from one (admin on /;
    /// docs/security.md).
    #[arg(long, env = "STRIDE_PEER_TOKEN_FILE", requires = "zk")]
    peer_token_file: Option<PathBuf>,
    /// With --zk: PEM certificates trusted, besides the public roots, for
    /// the other instances' HTTPS (copying the log, passing writes to the
    /// leader), when a private CA signed their --tls-cert.
    #[arg(long, env = "STRIDE_CA_FILE", requires = "zk")]
    ca_file: Option<PathBuf>,
    /// Record no metrics and serve no `/metrics` (it answers 404).
    #[arg(long, env = "STRIDE_NO_METRICS")]
    no_metrics: bool,
    /// Who may do what: roles, tokens and users (docs/security.md);
    /// reloaded on SIGHUP. Without it (and without --http-credentials)
    /// anyone who reaches the port may do anything.
    #[arg(long, env = "STRIDE_AUTH_FILE")]
    auth_file: Option<PathBuf>,
    /// Marathon's --http_credentials: USER:PASSWORD, one Basic user who may
    /// do everything (besides the auth file's principals).
    #[arg(long, alias = "http_credentials", env = "STRIDE_HTTP_CREDENTIALS",
          value_parser = stride_auth::HttpCredentials::parse, hide_env_values = true)]
    http_credentials: Option<stride_auth::HttpCredentials>,
    /// Serve HTTPS and WSS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "STRIDE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "STRIDE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM certificates trusted for https:// event callbacks, besides the
    /// public roots (a receiver whose certificate a private CA signed).
    #[arg(long, env = "STRIDE_CALLBACK_CA_FILE")]
    callback_ca_file: Option<PathBuf>,
}

/// What `--master` names.
#[derive(Clone)]
enum Masters {
    Urls(Vec<reqwest::Url>),
    /// The ZooKeeper group the masters register in.
    Zk(stride_zk::ZkUrl),
}

fn masters(raw: &str) -> Result<Masters, String> {
    if raw.starts_with("zk://") {
        return raw.parse().map(Masters::Zk).map_err(|e| format!("{e}"));
    }
    raw.split(',')
        .map(|url| reqwest::Url::parse(url.trim()).map_err(|e| format!("{url:?}: {e}")))
        .collect::<Result<_, _>>()
        .map(Masters::Urls)
}

/// The principal and the secret read from its file.
fn mesos_credential(
    principal: Option<String>,
    secret_file: Option<PathBuf>,
) -> anyhow::Result<Option<stride_mesos::MesosCredential>> {
    let (Some(principal), Some(file)) = (principal, secret_file) else {
        return Ok(None);
    };
    let secret = std::fs::read_to_string(&file)
        .with_context(|| format!("--mesos-secret-file {}: cannot read it", file.display()))?;
    let secret = secret.strip_suffix('\n').unwrap_or(&secret);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    Ok(Some(stride_mesos::MesosCredential::new(principal, secret)))
}

/// What an instance reaches the others with: `--peer-token-file`'s token
/// and `--ca-file`'s certificates.
fn peers(
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
) -> anyhow::Result<stride_runtime::credentials::Credentials> {
    let token = token_file
        .map(|file| {
            let token = std::fs::read_to_string(&file).with_context(|| {
                format!("--peer-token-file {}: cannot read it", file.display())
            })?;
            anyhow::ensure!(
                !token.trim().is_empty(),
                "--peer-token-file {}: it is empty (it holds a token from `stride auth token create`)",
                file.display()
            );
            Ok(token)
        })
        .transpose()?;
    let ca = remote::load_ca(ca_file.as_deref(), "--ca-file (or STRIDE_CA_FILE)")?;
    let credentials = stride_runtime::credentials::Credentials::bearer(token).with_ca(ca);
    credentials
        .headers()
        .context("--peer-token-file: not a token")?;
    Ok(credentials)
}

fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A positive human duration such as `30s` or `250ms`.
fn duration(raw: &str) -> Result<Duration, String> {
    match humantime::parse_duration(raw) {
        Ok(d) if d.is_zero() => Err("must be more than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Commands::Serve(args) => {
            let args = *args;
            if args.zk.is_some() && args.master.is_none() && !args.no_mesos {
                anyhow::bail!(
                    "--zk needs --master (or --no-mesos): every instance must reach the same Mesos, and the embedded cluster is one instance's own"
                );
            }
            // Before any thread starts: they all inherit it, but for the
            // fan-out's and snapshots', which step back (`stride_sched`).
            stride_sched::answer_promptly();
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            let config = ServeConfig {
                data_dir: args.data_dir,
                listen: args.listen,
                snapshot_every: args.snapshot_every,
                stream: StreamConfig {
                    ping_interval: args.stream_ping_interval,
                    idle_timeout: args.stream_idle_timeout,
                    progress_interval: args.stream_progress_interval,
                },
                callbacks: CallbackConfig {
                    max_backoff: args.callback_max_backoff,
                    timeout: args.callback_timeout,
                    max_rate: args.callback_max_rate,
                    ca: remote::load_ca(
                        args.callback_ca_file.as_deref(),
                        "--callback-ca-file (or STRIDE_CALLBACK_CA_FILE)",
                    )?,
                },
                service_ports: args.service_ports,
                connections: ConnectionConfig {
                    max_connections: args.max_connections.map(saturating_usize),
                    max_streams: args.max_streams.map(saturating_usize),
                    header_timeout: args.http_header_timeout,
                    send_timeout: args.http_send_timeout.unwrap_or(args.stream_idle_timeout),
                    shutdown_timeout: args.shutdown_timeout,
                },
                mesos: MesosConfig {
                    masters: match &args.master {
                        Some(Masters::Urls(urls)) => urls.clone(),
                        _ => Vec::new(),
                    },
                    detect: match args.master {
                        Some(Masters::Zk(url)) => Some(url),
                        _ => None,
                    },
                    disabled: args.no_mesos,
                    framework_name: args.framework_name,
                    drain_timeout: args.drain_timeout,
                    user: args
                        .mesos_user
                        .or_else(|| std::env::var("USER").ok())
                        .unwrap_or_else(|| "root".to_owned()),
                    docker_socket: args.docker_socket,
                    local_ports: args.local_ports,
                    credential: mesos_credential(args.mesos_principal, args.mesos_secret_file)?,
                    local_credentials: args.local_credentials,
                },
                metrics: !args.no_metrics,
                auth: server::AuthConfig {
                    file: args.auth_file,
                    http_credentials: args.http_credentials,
                },
                tls: args
                    .tls_cert
                    .zip(args.tls_key)
                    .map(|(cert, key)| stride_server::tls::TlsFiles { cert, key }),
                ha: match args.zk {
                    Some(zk) => Some(stride_server::ha::HaConfig {
                        zk,
                        session_timeout: args.zk_session_timeout,
                        peers: peers(args.peer_token_file, args.ca_file)?,
                    }),
                    None => None,
                },
            };
            let served = runtime.block_on(server::serve(config));
            // Tasks still blocked (a log read for a client that is gone)
            // must not hold up the exit.
            runtime.shutdown_timeout(Duration::from_secs(1));
            served?;
            Ok(())
        }
        Commands::LocalMesos(config) => {
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            runtime.block_on(local_mesos(config))
        }
        Commands::Store(command) => store::run(command),
        Commands::Bench(command) => stride_bench::run(command),
        Commands::Events(args) => events::run(args),
        Commands::Audit(args) => audit::run(args),
        Commands::App(command) => app::run(command),
        Commands::Deployments(args) => app::deployments(args),
        Commands::Tasks(args) => app::tasks(args),
        Commands::Lb(command) => lb::run(command),
        Commands::Auth(command) => auth::run(command),
    }
}

async fn local_mesos(config: stride_local::LocalClusterConfig) -> anyhow::Result<()> {
    let supervisor = stride_runtime::Supervisor::new();
    let cluster = stride_local::LocalCluster::start_under(config, &supervisor)
        .await
        .context("cannot start the local cluster")?;
    // Tests and scripts wait for this line to learn the port.
    println!("stride local-mesos: listening on {}", cluster.url());
    let died = tokio::select! {
        () = stride_runtime::shutdown_signal() => None,
        death = supervisor.died() => Some(death),
    };
    supervisor.stop();
    cluster.shutdown().await;
    died.map_or(Ok(()), |death| Err(death.into()))
}
