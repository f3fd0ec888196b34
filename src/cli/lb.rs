//! `stride lb haproxy`: the HAProxy sidecar (`lb/`), from flags.

use super::remote::Remote;
use anyhow::{Context, bail};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use stride_lb::Options;
use stride_lb::config::RenderOptions;
use stride_lb::follow::Follower;
use stride_lb::model::Selection;
use stride_lb::supervisor::Launch;

#[derive(clap::Subcommand)]
pub enum LbCommand {
    /// Keep HAProxy serving the apps of one group, from Stride's log:
    /// servers change through the Runtime API, anything else by a checked,
    /// seamless reload.
    Haproxy(HaproxyArgs),
}

#[derive(clap::Args)]
pub struct HaproxyArgs {
    #[command(flatten)]
    remote: Remote,
    /// The haproxy.cfg this sidecar owns: written, checked, reloaded.
    #[arg(long, env = "STRIDE_LB_CONFIG")]
    config: PathBuf,
    /// Manage the HAProxy already running in master-worker mode with this
    /// master socket (`haproxy -W -S PATH -f <--config>`) instead of
    /// starting one.
    #[arg(long, env = "STRIDE_LB_SOCKET")]
    socket: Option<PathBuf>,
    /// Expose apps whose HAPROXY_GROUP label lists this group ('*': all).
    #[arg(long, env = "STRIDE_LB_GROUP", default_value = "external")]
    group: String,
    /// Port of the shared HTTP frontend that routes HAPROXY_N_VHOST names.
    #[arg(long, env = "STRIDE_LB_HTTP_PORT", default_value_t = 80)]
    http_port: u16,
    /// Address the frontends bind.
    #[arg(long, env = "STRIDE_LB_BIND_ADDRESS", default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// HAProxy's Runtime API socket, written into the config
    /// [default: <config>.stats.sock].
    #[arg(long)]
    stats_socket: Option<PathBuf>,
    /// The HAProxy binary [default: haproxy on PATH, else /usr/sbin/haproxy].
    #[arg(long, env = "STRIDE_LB_HAPROXY")]
    haproxy: Option<PathBuf>,
    /// The name this sidecar gives Stride [default: haproxy@<hostname>].
    #[arg(long, env = "STRIDE_LB_NAME")]
    name: Option<String>,
    /// Print the config it would write for Stride's state now, and exit.
    #[arg(long)]
    dry_run: bool,
    /// Address of `GET /status` (port 0 picks one; printed at start).
    #[arg(long, env = "STRIDE_LB_STATUS_LISTEN", default_value = "127.0.0.1:0")]
    status_listen: SocketAddr,
    /// How long changes gather before they are applied together. With 0,
    /// each is applied once the stream has delivered what it holds; those
    /// arriving during an apply (a reload takes ~100 ms) go in the next.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    debounce: Duration,
    /// Longest wait between attempts to reach Stride.
    #[arg(long, default_value = "10s", value_parser = super::duration)]
    max_backoff: Duration,
}

/// A Unix socket path holds 108 bytes; HAProxy binds `<path>.<pid>.tmp`
/// first, so leave room for that.
const MAX_SOCKET_PATH: usize = 90;

pub fn run(command: LbCommand) -> anyhow::Result<()> {
    let LbCommand::Haproxy(args) = command;
    let dry_run = args.dry_run;
    let options = options(args)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    if dry_run {
        let text = runtime.block_on(stride_lb::dry_run(&options))?;
        print!("{text}");
        return Ok(());
    }
    runtime.block_on(stride_lb::run(options))?;
    Ok(())
}

fn options(args: HaproxyArgs) -> anyhow::Result<Options> {
    let credentials = args.remote.credentials()?;
    let config = std::path::absolute(&args.config)
        .with_context(|| format!("--config {}", args.config.display()))?;
    let directory = config.parent().unwrap_or(Path::new("/"));
    if !directory.is_dir() {
        bail!(
            "--config {}: {} is not a directory",
            args.config.display(),
            directory.display()
        );
    }
    let stats_socket = match args.stats_socket {
        Some(path) => socket_path(path, "--stats-socket")?,
        None => socket_path(
            suffixed(&config, ".stats.sock"),
            "--stats-socket (default from --config)",
        )?,
    };
    let haproxy = haproxy_binary(args.haproxy, args.dry_run)?;
    let (launch, master_socket) = match args.socket {
        Some(socket) => (Launch::Attach, socket_path(socket, "--socket")?),
        None => {
            let socket = suffixed(&config, ".master.sock");
            let socket = socket_path(socket, "--config (its master socket)")?;
            let binary = haproxy.clone();
            (Launch::Spawn { binary }, socket)
        }
    };
    if args.group.trim().is_empty() || args.group.chars().any(|c| c.is_control()) {
        bail!("--group '{}': not a group name", args.group);
    }
    if args.http_port == 0 {
        bail!("--http-port must be a port, not 0");
    }
    Ok(Options {
        follower: Follower {
            credentials,
            stride: args.remote.url,
            name: args.name.unwrap_or_else(default_name),
            debounce: args.debounce,
            max_backoff: args.max_backoff,
        },
        selection: Selection {
            group: args.group.clone(),
            http_port: args.http_port,
        },
        render: RenderOptions {
            group: args.group,
            stats_socket,
            bind: args.bind_address,
            http_port: args.http_port,
        },
        config,
        haproxy,
        launch,
        master_socket,
        status_listen: args.status_listen,
    })
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn socket_path(path: PathBuf, flag: &str) -> anyhow::Result<PathBuf> {
    let path = std::path::absolute(&path).with_context(|| format!("{flag} {}", path.display()))?;
    // It goes into haproxy.cfg as one unquoted word, and into `-S PATH,mode,600`.
    let text = path.to_string_lossy();
    if text
        .chars()
        .any(|c| c.is_whitespace() || "#\"'\\,".contains(c))
    {
        bail!("{flag}: the socket path {text} may not hold spaces, commas, quotes, '#' or '\\'");
    }
    let length = path.as_os_str().len();
    if length > MAX_SOCKET_PATH {
        bail!(
            "{flag}: the socket path {} is {length} bytes; Unix sockets allow about {MAX_SOCKET_PATH} here",
            path.display()
        );
    }
    Ok(path)
}

/// `--haproxy`, else `haproxy` on PATH, else Debian's /usr/sbin/haproxy
/// (not on every user's PATH). A dry run needs none.
fn haproxy_binary(given: Option<PathBuf>, dry_run: bool) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        if !path.is_file() {
            bail!("--haproxy {}: no such file", path.display());
        }
        return Ok(path);
    }
    match stride_lb::installed_haproxy() {
        Some(found) => Ok(found),
        None if dry_run => Ok(PathBuf::from(stride_lb::DEBIAN_HAPROXY)),
        None => {
            bail!("haproxy is not on PATH nor at /usr/sbin/haproxy; install it or pass --haproxy")
        }
    }
}

fn default_name() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    format!("haproxy@{host}")
}
