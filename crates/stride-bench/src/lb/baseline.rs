//! The baseline: a load balancer driven the way cron-style marathon-lb is,
//! at a far kinder interval. Every tick it reads `/v2/apps?embed=apps.tasks`,
//! writes an HAProxy config serving each app's running, healthy tasks on
//! its service port + an offset, and reloads its own HAProxy (master-worker,
//! seamless, as the sidecar's) when the file changed. No `haproxy -c`
//! first, which spares it time marathon-lb spends; `retries 3` and
//! `option redispatch` as in marathon-lb's template.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stride_lb::master::MasterCli;
use tokio::task::JoinHandle;

pub struct Baseline {
    haproxy: Child,
    poller: JoinHandle<()>,
    /// The config HAProxy serves.
    serving: Arc<Mutex<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Apps {
    apps: Vec<App>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct App {
    #[serde(default)]
    port_definitions: Vec<PortDefinition>,
    #[serde(default)]
    health_checks: Vec<serde_json::Value>,
    #[serde(default)]
    tasks: Vec<Task>,
}

#[derive(Deserialize)]
struct PortDefinition {
    port: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Task {
    state: String,
    host: String,
    ports: Vec<u16>,
    #[serde(default)]
    health_check_results: Vec<Alive>,
}

#[derive(Deserialize)]
struct Alive {
    alive: bool,
}

impl Baseline {
    /// Starts HAProxy on an empty config in `dir`, then polls `stride`.
    pub async fn start(
        stride: &str,
        dir: &Path,
        binary: &Path,
        offset: u16,
        interval: Duration,
    ) -> anyhow::Result<Baseline> {
        let config = dir.join("baseline.cfg");
        let socket = dir.join("baseline.master.sock");
        std::fs::write(&config, render(&[], offset, &HashMap::new()))?;
        let log = std::fs::File::create(dir.join("baseline-haproxy.log"))?;
        let haproxy = Command::new(binary)
            .arg("-W")
            .arg("-S")
            .arg(&socket)
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let master = MasterCli::new(&socket);
        let mut tries = 0;
        while master.processes().await.is_err() {
            tries += 1;
            if tries > 200 {
                bail!(
                    "the baseline's HAProxy never answered on {}",
                    socket.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let url = format!("{stride}/v2/apps?embed=apps.tasks");
        let serving = Arc::new(Mutex::new(String::new()));
        let poller = tokio::spawn(poll(url, config, master, offset, interval, serving.clone()));
        Ok(Baseline {
            haproxy,
            poller,
            serving,
        })
    }

    /// Servers HAProxy has for `service_port`. A task killed and not yet
    /// polled stays listed, and a new task given its host port would get
    /// its traffic unannounced; the bench waits for this to settle.
    pub fn servers(&self, service_port: u16) -> usize {
        let serving = self.serving.lock().unwrap_or_else(|p| p.into_inner());
        let backend = format!("backend be_{service_port}\n");
        serving.split_once(&backend).map_or(0, |(_, rest)| {
            let servers = rest.split("\n\n").next().unwrap_or_default();
            servers.matches("    server ").count()
        })
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        self.poller.abort();
        // SIGTERM: the master stops its workers on the way out.
        let pid = nix::unistd::Pid::from_raw(self.haproxy.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.haproxy.wait();
    }
}

async fn poll(
    url: String,
    config: PathBuf,
    master: MasterCli,
    offset: u16,
    interval: Duration,
    serving: Arc<Mutex<String>>,
) {
    let client = reqwest::Client::new();
    let mut hosts = HashMap::new();
    let mut written = String::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(answer) = client.get(&url).send().await else {
            continue;
        };
        let Ok(apps) = answer.json::<Apps>().await else {
            continue;
        };
        for task in apps.apps.iter().flat_map(|a| &a.tasks) {
            if !hosts.contains_key(&task.host) {
                hosts.insert(task.host.clone(), resolve(&task.host).await);
            }
        }
        let text = render(&apps.apps, offset, &hosts);
        if text != written && std::fs::write(&config, &text).is_ok() {
            if let Err(error) = master.reload().await {
                tracing::warn!(%error, "The baseline's reload failed.");
            }
            written = text;
            *serving.lock().unwrap_or_else(|p| p.into_inner()) = written.clone();
        }
    }
}

async fn resolve(host: &str) -> Option<IpAddr> {
    let addrs: Vec<_> = tokio::net::lookup_host((host, 0)).await.ok()?.collect();
    let v4 = addrs.iter().find(|a| a.is_ipv4());
    v4.or(addrs.first()).map(|a| a.ip())
}

fn render(apps: &[App], offset: u16, hosts: &HashMap<String, Option<IpAddr>>) -> String {
    // The same start-up shortcut as the sidecar's file, to compare like
    // with like.
    let mut out = String::from(
        "global\n    httpclient.ssl.verify none\n\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client 1m\n    timeout server 1m\n    \
         retries 3\n    option redispatch\n",
    );
    for app in apps {
        let Some(port) = app.port_definitions.first().map(|p| p.port) else {
            continue;
        };
        let _ = write!(
            out,
            "\nfrontend fe_{port}\n    bind 127.0.0.1:{}\n    default_backend be_{port}\nbackend be_{port}\n",
            port + offset
        );
        let serving = app.tasks.iter().filter(|t| {
            let healthy = app.health_checks.is_empty()
                || (!t.health_check_results.is_empty()
                    && t.health_check_results.iter().all(|r| r.alive));
            t.state == "TASK_RUNNING" && healthy
        });
        for (n, task) in serving.enumerate() {
            let ip = hosts.get(&task.host).copied().flatten();
            if let (Some(ip), Some(task_port)) = (ip, task.ports.first()) {
                let addr = std::net::SocketAddr::new(ip, *task_port);
                let _ = writeln!(out, "    server t{n} {addr}");
            }
        }
    }
    out
}
