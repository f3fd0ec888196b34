//! The API at scale: a store holding 10,000 apps / 100,000 running tasks,
//! served by a real `stride serve` child; `GET /v2/apps?embed=apps.tasks`
//! timed against two same-run baselines (`/ping`, and `/v1/state`, which
//! serializes the same projection), and the server's resident memory. The
//! list is timed four ways: the first after start (every app rendered), with
//! a query that changes every time (no whole answer kept), right after a
//! change to one app (what a poller gets after any change), and repeated
//! with nothing changed (the last answer kept).

use super::percentiles;
use super::serve::{ServeChild, ServerBinary};
use super::world::World;
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use stride_log::store::LogWriter;

#[derive(clap::Args)]
pub struct ApiBench {
    /// Scratch store, wiped first.
    #[arg(long, default_value = "target/bench-api")]
    dir: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    apps: usize,
    #[arg(long, default_value_t = 10)]
    per_app: usize,
    #[arg(long, default_value_t = 1_000)]
    agents: usize,
    /// Requests timed per endpoint.
    #[arg(long, default_value_t = 100)]
    requests: usize,
    #[command(flatten)]
    server: ServerBinary,
}

pub fn run(args: ApiBench) -> anyhow::Result<()> {
    let world = World {
        apps: args.apps,
        per_app: args.per_app,
        agents: args.agents,
    };
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("cannot clear --dir {}", args.dir.display()))?;
    }
    let events = world.events();
    {
        let log = LogWriter::open(&args.dir)?;
        for batch in events.chunks(10_000) {
            log.append(batch, &[])?;
        }
        log.sync()?;
    }
    // sled's background thread lets go of the lock a moment after drop.
    std::thread::sleep(Duration::from_millis(500));
    let server = ServeChild::start(&args.dir, &args.server)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(measure(&server.url, args.requests, args.per_app));
    let rss = memory(&server);
    drop(server);
    let rows = result?;
    println!(
        "{} apps, {} tasks, {} events; {} sequential requests each\n",
        args.apps,
        args.apps * args.per_app,
        events.len(),
        args.requests
    );
    println!("| request | p50 | p99 | body | p50 vs /v1/state |");
    println!("|---|---|---|---|---|");
    let state_p50 = rows
        .iter()
        .find(|r| r.path == "/v1/state")
        .map_or(1.0, |r| r.p50);
    for row in &rows {
        println!(
            "| GET {} | {:.2} ms | {:.2} ms | {:.1} MB | {:.2} |",
            row.path,
            row.p50,
            row.p99,
            row.bytes as f64 / 1e6,
            row.p50 / state_p50
        );
    }
    let (rss, peak) = rss?;
    println!(
        "\nserver memory after the requests: RSS {:.0} MB, peak {:.0} MB",
        rss / 1e6,
        peak / 1e6
    );
    Ok(())
}

const LIST: &str = "/v2/apps?embed=apps.tasks";
/// The list's first request after start, when nothing is rendered yet.
const FIRST: &str = "/v2/apps?embed=apps.tasks (first after start: 1 request)";
/// The list with a query that changes every time, so no whole answer is
/// reused.
const NEW_QUERY: &str = "/v2/apps?embed=apps.tasks (a new query each time)";
/// The list right after one app was scaled (not timed): what a poller pays
/// after any change.
const AFTER_A_CHANGE: &str = "/v2/apps?embed=apps.tasks (right after a change)";

struct Row {
    path: &'static str,
    p50: f64,
    p99: f64,
    bytes: usize,
}

async fn measure(url: &str, requests: usize, per_app: usize) -> anyhow::Result<Vec<Row>> {
    let http = reqwest::Client::new();
    let mut rows = Vec::new();
    for path in ["/ping", "/v1/state", FIRST, NEW_QUERY, AFTER_A_CHANGE, LIST] {
        let mut samples = Vec::with_capacity(requests);
        let mut bytes = 0;
        // One untimed request first (connection set-up, warm caches), but
        // for the first list after start.
        let (first, last) = match path {
            FIRST => (1, 1),
            _ => (0, requests),
        };
        for i in first..=last {
            let target = match path {
                // A query never seen before defeats the whole-answer cache.
                NEW_QUERY => format!("{url}{LIST}&request={i}"),
                FIRST | AFTER_A_CHANGE | LIST => format!("{url}{LIST}"),
                _ => format!("{url}{path}"),
            };
            if path == AFTER_A_CHANGE {
                scale(&http, url, i, per_app + 1).await?;
            }
            let start = Instant::now();
            let response = http.get(target).send().await?;
            if !response.status().is_success() {
                bail!("GET {path} answered {}", response.status());
            }
            bytes = response.bytes().await?.len();
            if i > 0 {
                samples.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        let (p50, p99) = percentiles(&mut samples);
        rows.push(Row {
            path,
            p50,
            p99,
            bytes,
        });
    }
    Ok(rows)
}

/// Scales the `n`th app of the world to `instances`.
async fn scale(
    http: &reqwest::Client,
    url: &str,
    n: usize,
    instances: usize,
) -> anyhow::Result<()> {
    let response = http
        .put(format!("{url}/v2/apps/bench/app-{n}?force=true"))
        .json(&serde_json::json!({ "instances": instances }))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("scaling app {n} answered {}", response.status());
    }
    Ok(())
}

/// (resident, peak resident) bytes of the server, from /proc.
fn memory(server: &ServeChild) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc status"))?;
        let kb: f64 = line.split_whitespace().nth(1).context("a size")?.parse()?;
        Ok(kb * 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}
