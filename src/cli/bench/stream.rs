//! `stride bench stream`: websocket fan-out on this machine.
//!
//! Runs `stride serve` as a child on a temporary store, then measures
//! (1) the append rate with no subscribers, (2) append-to-receipt latency
//! for N subscribers while writers append at a fixed rate, (3) the append
//! rate with those subscribers connected. Latency is from the event's
//! `recorded_at` (stamped before its fsync) to its arrival at a subscriber.

use anyhow::{Context, bail};
use futures::StreamExt;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct StreamBenchArgs {
    /// Websocket subscribers.
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,
    /// Events per second appended during the latency run.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Length of each run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Concurrent HTTP writers.
    #[arg(long, default_value_t = 32)]
    writers: usize,
}

/// Latency histogram: 100 µs buckets up to 30 s (the last bucket is "more").
const BUCKET_MICROS: u64 = 100;
const BUCKETS: usize = 300_000;

/// The server child, killed when the bench ends (or fails).
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(args: StreamBenchArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("stride-bench-{}", uuid::Uuid::new_v4()));
    let result = crate::cli::remote::block_on(bench(&args, &dir));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn bench(args: &StreamBenchArgs, dir: &std::path::Path) -> anyhow::Result<()> {
    let (_server, base) = start_server(dir)?;
    let http = reqwest::Client::new();
    let alone = append(&http, &base, args, None).await?;
    println!("append rate, no subscribers:      {alone:>8.0} events/s");

    let histogram: Arc<Vec<AtomicU64>> =
        Arc::new((0..BUCKETS).map(|_| AtomicU64::new(0)).collect());
    let recording = Arc::new(AtomicBool::new(false));
    let ws_url = format!("{}/v1/stream?from=now", base.replacen("http", "ws", 1));
    let mut readers = Vec::new();
    for _ in 0..args.subscribers {
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .context("a subscriber cannot connect (is the open-file limit high enough?)")?;
        let (histogram, recording) = (histogram.clone(), recording.clone());
        readers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    if recording.load(Ordering::Relaxed) {
                        record(&histogram, &text);
                    }
                }
            }
        }));
    }
    recording.store(true, Ordering::SeqCst);
    let paced = append(&http, &base, args, Some(args.rate)).await?;
    // Let the subscribers drain what was appended.
    tokio::time::sleep(Duration::from_secs(2)).await;
    recording.store(false, Ordering::SeqCst);
    let counts: Vec<u64> = histogram
        .iter()
        .map(|b| b.load(Ordering::Relaxed))
        .collect();
    let received: u64 = counts.iter().sum();
    println!(
        "latency run: {} subscribers, {paced:.0} events/s appended, {received} deliveries",
        args.subscribers
    );
    for (label, q) in [("p50", 0.50), ("p99", 0.99), ("max", 1.0)] {
        println!(
            "  append->receipt {label}: {:>8.1} ms",
            percentile(&counts, q)
        );
    }
    let crowded = append(&http, &base, args, None).await?;
    println!(
        "append rate, {} subscribers:    {crowded:>8.0} events/s",
        args.subscribers
    );
    for reader in readers {
        reader.abort();
    }
    Ok(())
}

fn start_server(dir: &std::path::Path) -> anyhow::Result<(ServerProcess, String)> {
    let exe = std::env::current_exe().context("cannot find the stride binary")?;
    let mut child = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("STRIDE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start stride serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let child = ServerProcess(child);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix("stride: listening on ") {
                    let url = url.to_owned();
                    std::thread::spawn(move || for _ in lines {});
                    return Ok((child, url));
                }
            }
            _ => bail!("stride serve exited before listening"),
        }
    }
}

/// Appends for `args.duration` (two events per created app), paced to
/// `rate` events/s when given; returns the events/s achieved.
async fn append(
    http: &reqwest::Client,
    base: &str,
    args: &StreamBenchArgs,
    rate: Option<u64>,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let appended = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..args.writers {
        let (http, url, appended) = (http.clone(), format!("{base}/v2/apps"), appended.clone());
        let pace =
            rate.map(|r| Duration::from_secs_f64(args.writers as f64 * 2.0 / r.max(1) as f64));
        let deadline = started + args.duration;
        tasks.push(tokio::spawn(async move {
            let mut tick = pace.map(tokio::time::interval);
            let prefix = uuid::Uuid::new_v4().simple().to_string();
            for n in 0u64.. {
                if Instant::now() >= deadline {
                    break;
                }
                if let Some(tick) = &mut tick {
                    tick.tick().await;
                }
                let body = serde_json::json!({"id": format!("/bench/w{w}-{prefix}-{n}"),
                    "cmd": "sleep 1000", "cpus": 0.1, "mem": 16});
                let response = http.post(&url).json(&body).send().await?;
                if !response.status().is_success() {
                    bail!("append failed: {}", response.status());
                }
                appended.fetch_add(2, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await.context("a writer panicked")??;
    }
    Ok(appended.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Files one event's latency. Envelope keys are sorted and none before
/// `at` holds an `at` key, so the first `"at":"` is the envelope's.
fn record(histogram: &[AtomicU64], text: &str) {
    let Some(start) = text.find("\"at\":\"").map(|i| i + 6) else {
        return;
    };
    let Some(at) = text[start..].split('"').next() else {
        return;
    };
    let Ok(at) = chrono::DateTime::parse_from_rfc3339(at) else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let micros = (now - at.timestamp_micros()).max(0) as u64;
    let bucket = ((micros / BUCKET_MICROS) as usize).min(BUCKETS - 1);
    histogram[bucket].fetch_add(1, Ordering::Relaxed);
}

fn percentile(counts: &[u64], q: f64) -> f64 {
    let total: u64 = counts.iter().sum();
    let target = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (bucket, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= target {
            return (bucket as u64 + 1) as f64 * BUCKET_MICROS as f64 / 1000.0;
        }
    }
    0.0
}
