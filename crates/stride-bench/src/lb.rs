//! `stride bench lb`: how soon a change reaches traffic through HAProxy,
//! with the sidecar and with a same-run baseline that polls the app list
//! every second and reloads (cron-style marathon-lb, at a kinder interval).
//!
//! Real parts, as child processes: `stride local-mesos`, `stride serve`,
//! `stride lb haproxy` and its HAProxy, plus the baseline's own HAProxy.
//! Tasks are `stride bench lb-task`, serving their id over HTTP, with an
//! HTTP health check. Each change is timed from its event's `recorded_at`
//! at Stride to the arrival of the first answer HAProxy routed to a task
//! for it, as seen by probes sending requests through each HAProxy:
//!
//! (a) server changes: a task turns healthy (`HealthChanged`) and gets its
//!     first request; the app scales up by `--batch` and back down, so the
//!     sidecar goes through the Runtime API;
//! (b) changes needing a reload: the app's service port changes
//!     (`AppUpdated`) and the first request on the new port is answered
//!     by one of its tasks.

mod baseline;
mod probe;
mod procs;

use super::percentiles;
use anyhow::{Context, bail};
use baseline::Baseline;
use probe::{Probe, Subscriber};
use procs::{Running, SidecarHaproxy};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stride_log::event::json::envelope_from_json;
use stride_log::event::{Envelope, Event};

pub use probe::serve_task_id;

/// The baseline serves each service port this much higher.
const BASELINE_OFFSET: u16 = 200;
/// Longest wait for one change to show up on both load balancers.
const WAIT: Duration = Duration::from_secs(60);
/// Pause between the baseline probe's requests.
const BASELINE_PACE: Duration = Duration::from_millis(1);

#[derive(clap::Args)]
pub struct LbBench {
    /// Changes measured of each kind (at most 190).
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// Tasks added per scale-up in the server-change run: more make the
    /// run shorter, but a new task waits longer for its turn in the
    /// round robin the probe sees.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Pause between a probe's requests through the sidecar's HAProxy
    /// (the baseline's probe pauses 1 ms: its changes take ~1 s).
    #[arg(long, default_value = "100us", value_parser = humantime::parse_duration)]
    pace: Duration,
    /// How often the baseline polls.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    poll: Duration,
    /// First of 901 ports below the ephemeral range: tasks get the first
    /// 500, then the sidecar's HTTP port, service ports, the baseline's.
    /// The default block is clear of those the test suites use (20000-31000).
    #[arg(long, default_value_t = 11000)]
    ports_from: u16,
    /// Scratch directory (store, configs, logs), wiped first.
    #[arg(long, default_value = "target/bench-lb")]
    dir: PathBuf,
}

pub fn run(args: LbBench) -> anyhow::Result<()> {
    if args.changes == 0 || args.changes > 190 || args.batch == 0 {
        bail!("--changes must be 1-190 and --batch at least 1");
    }
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("cannot clear --dir {}", args.dir.display()))?;
    }
    std::fs::create_dir_all(args.dir.join("lb"))?;
    let dir = std::path::absolute(&args.dir)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?
        .block_on(bench(&args, &dir))
}

/// Everything the bench runs, stopped in field order when dropped.
struct Rig {
    baseline: Baseline,
    _sidecar: Running,
    _sidecar_haproxy: SidecarHaproxy,
    status: String,
    _stride: Running,
    url: String,
    _mesos: Running,
    http: reqwest::Client,
    exe: String,
    ports_from: u16,
}

async fn bench(args: &LbBench, dir: &Path) -> anyhow::Result<()> {
    let rig = Rig::start(args, dir).await?;
    let subscriber = Subscriber::start(&rig.url).await?;
    let (a_sidecar, a_baseline, a_probe) = server_changes(&rig, args).await?;
    let (b_sidecar, b_baseline) = port_changes(&rig, args).await?;
    let events = rig.events().await?;
    let status: Value = rig.http.get(&rig.status).send().await?.json().await?;

    // Each change's event: when Stride recorded it, and when it reached
    // a stream subscriber.
    let mut healthy_at = BTreeMap::new();
    let mut healthy_delivered = BTreeMap::new();
    let mut updated_at = BTreeMap::new();
    let mut updated_delivered = BTreeMap::new();
    for envelope in &events {
        let delivered = subscriber.arrived(envelope.seq.0);
        match &envelope.event {
            Event::HealthChanged(e) if e.healthy => {
                let task = e.task.to_string();
                if !healthy_at.contains_key(&task) {
                    healthy_at.insert(task.clone(), envelope.recorded_at);
                    healthy_delivered.extend(delivered.map(|d| (task, d)));
                }
            }
            Event::AppUpdated(e) => {
                if let Some(port) = e.definition.port_definitions.first() {
                    let port = port.port as u16;
                    updated_at.insert(port, envelope.recorded_at);
                    updated_delivered.extend(delivered.map(|d| (port, d)));
                }
            }
            _ => {}
        }
    }
    // Delivery of the measured changes only.
    healthy_delivered.retain(|task, _| a_sidecar.contains_key(task));
    updated_delivered.retain(|port, _| b_sidecar.contains_key(port));
    let rows = [
        (
            "(a) server change: task healthy -> its first answer",
            since(&healthy_at, &a_sidecar),
            since(&healthy_at, &a_baseline),
            since(&healthy_at, &healthy_delivered),
            since(&healthy_delivered, &a_sidecar),
        ),
        (
            "(b) reload: service port changed -> first answer on it",
            since(&updated_at, &b_sidecar),
            since(&updated_at, &b_baseline),
            since(&updated_at, &updated_delivered),
            since(&updated_delivered, &b_sidecar),
        ),
    ];
    println!(
        "{} changes of each kind; the baseline polls every {:?}; the sidecar's probe pauses {:?} between requests\n",
        args.changes, args.poll, args.pace
    );
    println!(
        "| change | n | sidecar p50 | sidecar p99 | sidecar max | baseline p50 | baseline p99 | baseline / sidecar p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut parts = Vec::new();
    for (change, mut sidecar, mut baseline, mut stride, mut after) in rows {
        parts.push((percentiles(&mut stride), percentiles(&mut after)));
        let (p50, p99) = percentiles(&mut sidecar);
        let max = sidecar.last().copied().unwrap_or(0.0);
        let (base50, base99) = percentiles(&mut baseline);
        println!(
            "| {change} | {} | {p50:.2} ms | {p99:.2} ms | {max:.2} ms | {base50:.0} ms | {base99:.0} ms | x{:.0} | x{:.0} |",
            sidecar.len().min(baseline.len()),
            base50 / p50.max(1e-3),
            base99 / p99.max(1e-3),
        );
    }
    // Split at the moment a /v1/stream subscriber got the event.
    println!("\n| sidecar's time, split | (a) p50 | (a) p99 | (b) p50 | (b) p99 |");
    println!("|---|---|---|---|---|");
    let split = [
        (
            "Stride: recorded_at -> a stream subscriber has it (commit with fdatasync, publish, websocket)",
            parts[0].0,
            parts[1].0,
        ),
        (
            "then: the sidecar applies it, HAProxy routes, the probe's turn comes",
            parts[0].1,
            parts[1].1,
        ),
    ];
    for (part, a, b) in split {
        println!(
            "| {part} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
            a.0, a.1, b.0, b.1
        );
    }
    let latency = &status["latency"];
    println!(
        "\nthe sidecar's own account (/status): Runtime API batch p50 {:.2} ms p99 {:.2} ms; \
         reload (check, rename, reload, servers) p50 {:.1} ms p99 {:.1} ms",
        latency["runtime"]["p50Ms"].as_f64().unwrap_or(0.0),
        latency["runtime"]["p99Ms"].as_f64().unwrap_or(0.0),
        latency["reload"]["p50Ms"].as_f64().unwrap_or(0.0),
        latency["reload"]["p99Ms"].as_f64().unwrap_or(0.0),
    );
    println!(
        "probe round trip through the sidecar's HAProxy in (a): {a_probe:.0} µs mean, with 1 to {} tasks in rotation",
        1 + args.batch
    );
    drop(rig);
    Ok(())
}

impl Rig {
    async fn start(args: &LbBench, dir: &Path) -> anyhow::Result<Rig> {
        let from = args.ports_from;
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let task_ports = format!("{from}-{}", from + 499);
        let (mesos, master) = procs::start(
            &logs,
            "local-mesos",
            &[
                "local-mesos",
                "--listen",
                "127.0.0.1:0",
                "--ports",
                &task_ports,
            ],
            "stride local-mesos: listening on ",
        )?;
        let data = dir.join("data");
        let service_ports = format!("{}-{}", from + 501, from + 700);
        let (stride, url) = procs::start(
            &logs,
            "serve",
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                path_str(&data)?,
                "--master",
                &master,
                "--service-ports",
                &service_ports,
            ],
            "stride: listening on ",
        )?;
        let haproxy = stride_lb::installed_haproxy()
            .context("haproxy is not on PATH nor at /usr/sbin/haproxy; install it")?;
        let config = dir.join("lb/haproxy.cfg");
        let (sidecar, status) = procs::start(
            &logs,
            "sidecar",
            &[
                "lb",
                "haproxy",
                "--stride",
                &url,
                "--config",
                path_str(&config)?,
                "--bind-address",
                "127.0.0.1",
                "--http-port",
                &(from + 500).to_string(),
                "--name",
                "bench",
                "--haproxy",
                path_str(&haproxy)?,
            ],
            "stride lb: status on ",
        )?;
        let sidecar_haproxy = SidecarHaproxy(config.with_extension("cfg.master.sock"));
        let baseline = Baseline::start(&url, dir, &haproxy, BASELINE_OFFSET, args.poll).await?;
        let exe = std::env::current_exe()?;
        Ok(Rig {
            baseline,
            _sidecar: sidecar,
            _sidecar_haproxy: sidecar_haproxy,
            status: format!("{status}/status"),
            _stride: stride,
            url,
            _mesos: mesos,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            exe: path_str(&exe)?.to_owned(),
            ports_from: from,
        })
    }

    /// An app of tasks serving their id, checked over HTTP, exposed by the
    /// sidecar.
    fn app(&self, id: &str, port: u16, instances: usize) -> Value {
        json!({
            "id": id, "cmd": format!("exec '{}' bench lb-task", self.exe),
            "instances": instances, "cpus": 0.01, "mem": 8,
            "portDefinitions": [{"port": port}],
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"},
            "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0,
                "intervalSeconds": 1, "timeoutSeconds": 0, "delaySeconds": 0,
                "gracePeriodSeconds": 10, "maxConsecutiveFailures": 3}]
        })
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> anyhow::Result<()> {
        let answer = self
            .http
            .request(method, format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!("{path}: {} {}", answer.status(), answer.text().await?);
        }
        Ok(())
    }

    /// `GET path` on Stride, as JSON.
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.url);
        Ok(self.http.get(url).send().await?.json().await?)
    }

    /// Ids of the app's tasks that are running and healthy.
    async fn healthy(&self, app: &str) -> anyhow::Result<BTreeSet<String>> {
        let tasks = self.get(&format!("/v2/apps{app}/tasks")).await?;
        let tasks = tasks["tasks"].as_array().cloned().unwrap_or_default();
        Ok(tasks
            .iter()
            .filter(|t| t["state"] == "TASK_RUNNING")
            .filter(|t| {
                let results = t["healthCheckResults"].as_array();
                results.is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["alive"] == true))
            })
            .filter_map(|t| Some(t["id"].as_str()?.to_owned()))
            .collect())
    }

    /// Whether no deployment runs and `app` has exactly `n` tasks.
    async fn settled(&self, app: &str, n: usize) -> anyhow::Result<bool> {
        let deployments = self.get("/v2/deployments").await?;
        let tasks = self.get(&format!("/v2/apps{app}/tasks")).await?;
        let count = tasks["tasks"].as_array().map_or(0, Vec::len);
        Ok(deployments.as_array().is_some_and(Vec::is_empty) && count == n)
    }

    async fn events(&self) -> anyhow::Result<Vec<Envelope>> {
        let mut events = Vec::new();
        let mut from = 1;
        loop {
            let page = self
                .get(&format!("/v1/events?from={from}&limit=10000"))
                .await?;
            let batch = page["events"].as_array().cloned().unwrap_or_default();
            if batch.is_empty() {
                return Ok(events);
            }
            for value in &batch {
                events.push(envelope_from_json(value)?);
            }
            from = page["next"].as_u64().context("no next in /v1/events")?;
        }
    }
}

/// (a): scale an app up by `--batch` and back down until `--changes` tasks
/// turned healthy; when each first answered through either load balancer,
/// and the sidecar probe's mean round trip (µs).
async fn server_changes(
    rig: &Rig,
    args: &LbBench,
) -> anyhow::Result<(BTreeMap<String, u64>, BTreeMap<String, u64>, f64)> {
    let port = rig.ports_from + 501;
    let sidecar = Probe::start(port, args.pace);
    let baseline = Probe::start(port + BASELINE_OFFSET, BASELINE_PACE);
    let wanted = 1 + args.batch;
    // Created at full size, so the server slots are there before any
    // measured change: no reload in this run.
    let app = rig.app("/a", port, wanted);
    rig.send(reqwest::Method::POST, "/v2/apps", app).await?;
    let seen_by_both = |ids: BTreeSet<String>| {
        ids.iter()
            .all(|id| sidecar.first(id).is_some() && baseline.first(id).is_some())
    };
    let all_seen = || async {
        let healthy = rig.healthy("/a").await?;
        Ok(healthy.len() == wanted && seen_by_both(healthy))
    };
    wait("the first tasks to answer through both", all_seen).await?;
    let scale = |instances| {
        rig.send(
            reqwest::Method::PUT,
            "/v2/apps/a",
            json!({ "instances": instances }),
        )
    };
    let scale_down = || async {
        scale(1).await?;
        wait("the scale down to finish", || rig.settled("/a", 1)).await?;
        // The next task may get a host port just freed: the baseline must
        // not still route to it as the stopped task's.
        wait("the baseline to drop the stopped tasks", || async {
            Ok(rig.baseline.servers(port) == 1)
        })
        .await
    };
    scale_down().await?;
    let original = rig.healthy("/a").await?;
    let mut measured = BTreeSet::new();
    while measured.len() < args.changes {
        off_beat(args.poll).await;
        scale(wanted).await?;
        wait("new tasks to answer through both", all_seen).await?;
        let new = rig.healthy("/a").await?;
        measured.extend(new.difference(&original).cloned());
        scale_down().await?;
    }
    let first = |probe: &Probe| {
        measured
            .iter()
            .take(args.changes)
            .filter_map(|id| Some((id.clone(), probe.first(id)?)))
            .collect()
    };
    Ok((first(&sidecar), first(&baseline), sidecar.mean_round_trip()))
}

/// (b): move an app to a new service port `--changes` times; when each
/// new port first answered through either load balancer.
async fn port_changes(
    rig: &Rig,
    args: &LbBench,
) -> anyhow::Result<(BTreeMap<u16, u64>, BTreeMap<u16, u64>)> {
    let first_port = rig.ports_from + 502;
    let app = rig.app("/b", first_port, 1);
    rig.send(reqwest::Method::POST, "/v2/apps", app).await?;
    let mut sidecar_seen = BTreeMap::new();
    let mut baseline_seen = BTreeMap::new();
    for n in 1..=args.changes {
        let port = first_port + n as u16;
        // The last move restarted the task; its deployment ends first.
        wait("the app to settle", || async {
            Ok(rig.settled("/b", 1).await? && rig.healthy("/b").await?.len() == 1)
        })
        .await?;
        off_beat(args.poll).await;
        let sidecar = Probe::start(port, args.pace);
        let baseline = Probe::start(port + BASELINE_OFFSET, BASELINE_PACE);
        let app = rig.app("/b", port, 1);
        rig.send(reqwest::Method::PUT, "/v2/apps/b", app).await?;
        wait("the new port to answer through both", || async {
            Ok(sidecar.first_any().is_some() && baseline.first_any().is_some())
        })
        .await?;
        sidecar_seen.insert(port, sidecar.first_any().unwrap_or_default());
        baseline_seen.insert(port, baseline.first_any().unwrap_or_default());
    }
    Ok((sidecar_seen, baseline_seen))
}

/// Each change's latency (ms): from when Stride recorded it (`at`) to
/// when the first answer for it arrived (`seen`).
fn since<K: Ord>(at: &BTreeMap<K, u64>, seen: &BTreeMap<K, u64>) -> Vec<f64> {
    seen.iter()
        .filter_map(|(key, first)| Some((*first as f64 - *at.get(key)? as f64) / 1000.0))
        .collect()
}

/// A pause of random length under `poll`: a change made right after the
/// baseline noticed the last one would always wait a whole poll for it.
async fn off_beat(poll: Duration) {
    let pause = uuid::Uuid::new_v4().as_u128() % poll.as_micros().max(1);
    tokio::time::sleep(Duration::from_micros(pause as u64)).await;
}

/// Polls `check` every 20 ms until it holds, for at most `WAIT`.
async fn wait<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("timed out waiting for {what}")
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}
