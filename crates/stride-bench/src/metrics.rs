//! What metrics cost on the write path, on against off in the same run:
//! (a) durable appends through the committer in this process, with a
//! recording handle and with an off one; (b) writes over HTTP to two
//! `stride serve --no-mesos` children, one with `--no-metrics`; (c) one
//! scrape of `/metrics`. Rounds alternate on and off, so drift on a shared
//! machine falls on both.

use super::log::appends;
use super::percentiles;
use super::serve::ServeChild;
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use stride_server::metrics::Metrics;

#[derive(clap::Args)]
pub struct MetricsBench {
    /// Scratch directory, wiped first.
    #[arg(long, default_value = "target/bench-metrics")]
    dir: PathBuf,
    /// Concurrent writers, for appends and for HTTP clients alike.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    writers: Vec<usize>,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Rounds of on and off, alternating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// One measurement: rate and acknowledgement latency.
#[derive(Default, Clone, Copy)]
pub(crate) struct Sample {
    pub rate: f64,
    pub p50: f64,
    pub p99: f64,
}

/// The median of each figure over the rounds.
pub(crate) fn median(samples: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| {
        let mut values: Vec<f64> = samples.iter().map(f).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(0.0)
    };
    Sample {
        rate: pick(|s| s.rate),
        p50: pick(|s| s.p50),
        p99: pick(|s| s.p99),
    }
}

pub fn run(args: MetricsBench) -> anyhow::Result<()> {
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("--dir {}: cannot clear it", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("--dir {}: cannot create it", args.dir.display()))?;
    let runtime = tokio::runtime::Runtime::new()?;
    println!("## stride bench metrics\n");
    println!(
        "medians of {} alternating rounds of {} s each\n",
        args.rounds, args.seconds
    );
    println!("| workload | metrics | events or requests/s | p50 ack | p99 ack | rate on/off |");
    println!("|---|---|---|---|---|---|");
    for &writers in &args.writers {
        let mut on = Vec::new();
        let mut off = Vec::new();
        for round in 0..args.rounds {
            for (recording, into) in [(true, &mut on), (false, &mut off)] {
                let metrics = if recording {
                    Metrics::on()
                } else {
                    Metrics::off()
                };
                let store = args
                    .dir
                    .join(format!("appends-{writers}-{round}-{recording}"));
                let (rate, p50, p99) =
                    runtime.block_on(appends(&store, writers, args.seconds, &metrics))?;
                into.push(Sample { rate, p50, p99 });
                std::fs::remove_dir_all(&store).ok();
            }
        }
        print_pair(&format!("committer appends, {writers} writers"), &on, &off);
    }
    let exe = std::env::current_exe()?;
    let servers = [
        ServeChild::start_with(&exe, &args.dir.join("serve-on"), &[])?,
        ServeChild::start_with(&exe, &args.dir.join("serve-off"), &["--no-metrics"])?,
    ];
    let http = reqwest::Client::new();
    for &writers in &args.writers {
        let mut samples = [Vec::new(), Vec::new()];
        for _ in 0..args.rounds {
            for (server, into) in servers.iter().zip(samples.iter_mut()) {
                into.push(runtime.block_on(http_writes(
                    &http,
                    &server.url,
                    writers,
                    args.seconds,
                ))?);
            }
        }
        print_pair(
            &format!("PUT /v2/apps/{{id}} over HTTP, {writers} clients"),
            &samples[0],
            &samples[1],
        );
    }
    let scrape = runtime.block_on(scrape(&servers[0].url))?;
    println!(
        "\nGET /metrics after that load: p50 {:.2} ms, p99 {:.2} ms, {} bytes",
        scrape.p50, scrape.p99, scrape.rate as u64
    );
    Ok(())
}

fn print_pair(workload: &str, on: &[Sample], off: &[Sample]) {
    let (on, off) = (median(on), median(off));
    println!(
        "| {workload} | off | {:.0} | {:.3} ms | {:.3} ms | |",
        off.rate, off.p50, off.p99
    );
    println!(
        "| {workload} | on | {:.0} | {:.3} ms | {:.3} ms | {:.3} |",
        on.rate,
        on.p50,
        on.p99,
        on.rate / off.rate
    );
}

/// `writers` clients each scaling their own app (forced: no deployment
/// waits for another) for `seconds`, through `http` (with its default
/// headers).
pub(crate) async fn http_writes(
    http: &reqwest::Client,
    url: &str,
    writers: usize,
    seconds: u64,
) -> anyhow::Result<Sample> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let http = http.clone();
            let target = format!("{url}/v2/apps/bench/w{w}?force=true");
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut instances = 0u32;
                while Instant::now() < deadline {
                    instances = (instances + 1) % 3;
                    let body = serde_json::json!({"cmd": "sleep 1000", "instances": instances});
                    let started = Instant::now();
                    let response = http.put(&target).json(&body).send().await?;
                    if !response.status().is_success() {
                        bail!("PUT {target} answered {}", response.status());
                    }
                    latencies.push(started.elapsed().as_secs_f64() * 1e3);
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let started = Instant::now();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(&mut all);
    Ok(Sample { rate, p50, p99 })
}

/// `GET /metrics` 100 times: latencies, and the body's size as `rate`.
async fn scrape(url: &str) -> anyhow::Result<Sample> {
    let http = reqwest::Client::new();
    let mut samples = Vec::new();
    let mut bytes = 0;
    for _ in 0..100 {
        let started = Instant::now();
        let body = http
            .get(format!("{url}/metrics"))
            .send()
            .await?
            .bytes()
            .await?;
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        bytes = body.len();
    }
    let (p50, p99) = percentiles(&mut samples);
    Ok(Sample {
        rate: bytes as f64,
        p50,
        p99,
    })
}
