//! `stride bench stream`: websocket fan-out on this machine.
//!
//! Runs `stride serve` as a child on a temporary store, then measures
//! (1) the maximum append rate and (2) appends at a fixed rate, both with
//! no subscribers, (3) append-to-receipt latency for N subscribers while
//! writers append at that fixed rate, (4) the maximum append rate with
//! those subscribers connected. Each append run also reports how long the
//! writers waited for their acknowledgements. Latency is from the event's
//! `recorded_at` (stamped before its fsync) to its arrival at a subscriber.

use super::serve::{ServeChild, ServerBinary};
use anyhow::{Context, bail};
use futures::StreamExt;
use memchr::memmem::Finder;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stride_server::metrics::Phase;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

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
    /// The server's `--snapshot-every` (its default: snapshots are taken
    /// as in production, in every run alike).
    #[arg(long, default_value_t = 10_000)]
    snapshot_every: u64,
    /// The nice value of the subscribers' threads. Subscribers stand in
    /// for clients on other machines; at the writers' priority (0) they
    /// take this machine's cores from the server they measure.
    #[arg(long, default_value_t = 10)]
    subscriber_nice: i32,
    #[command(flatten)]
    server: ServerBinary,
}

/// Latency histogram: 100 µs buckets up to 30 s (the last bucket is "more").
const BUCKET_MICROS: u64 = 100;
const BUCKETS: usize = 300_000;

pub fn run(args: StreamBenchArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("stride-bench-{}", uuid::Uuid::new_v4()));
    // Subscribers are separate clients in real life: one thread per core
    // here, not all of them on a single one, and apart from the writers'.
    let nice = args.subscriber_nice;
    let subscribers = tokio::runtime::Builder::new_multi_thread()
        .thread_name("bench-subscribers")
        .on_thread_start(move || {
            if let Err(error) = rustix::process::setpriority_process(None, nice) {
                eprintln!("cannot set the subscribers' nice to {nice}: {error}");
            }
        })
        .enable_all()
        .build()
        .context("cannot start the subscribers' runtime")?;
    // The writers stand in for clients on other machines too: their
    // threads ask for the server's short slice, so that waking for an
    // acknowledgement does not wait for the subscribers' slice to end.
    let result = tokio::runtime::Builder::new_multi_thread()
        .on_thread_start(stride_sched::answer_promptly)
        .enable_all()
        .build()
        .context("cannot start the writers' runtime")
        .and_then(|runtime| runtime.block_on(bench(&args, &dir, subscribers.handle())));
    subscribers.shutdown_background();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn bench(
    args: &StreamBenchArgs,
    dir: &std::path::Path,
    subscribers: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let every = args.snapshot_every.to_string();
    let server = ServeChild::start_flagged(dir, &args.server, &["--snapshot-every", &every])?;
    let base = server.url.clone();
    let http = reqwest::Client::new();
    append(&http, &base, args, None)
        .await?
        .print("max append rate, no subscribers");
    append(&http, &base, args, Some(args.rate))
        .await?
        .print("paced appends, no subscribers");

    let histogram: Arc<Vec<AtomicU64>> =
        Arc::new((0..BUCKETS).map(|_| AtomicU64::new(0)).collect());
    let recording = Arc::new(AtomicBool::new(false));
    let spread = Arc::new(Spread::new());
    let ws_url = format!("{}/v1/stream?from=now", base.replacen("http", "ws", 1));
    let mut readers = Vec::new();
    let mut orders = Vec::new();
    for _ in 0..args.subscribers {
        // The default read buffer (128 KiB, zeroed before each read) would
        // cost these clients more than the messages do.
        let config = WebSocketConfig::default().read_buffer_size(32 * 1024);
        // Connected on the subscribers' runtime, whose reactor then
        // serves the socket.
        let url = ws_url.clone();
        let (mut ws, _) = subscribers
            .spawn(async move {
                tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true).await
            })
            .await?
            .context("a subscriber cannot connect (is the open-file limit high enough?)")?;
        let (histogram, recording, spread) = (histogram.clone(), recording.clone(), spread.clone());
        let order = Arc::new(Order::default());
        orders.push(order.clone());
        readers.push(subscribers.spawn(async move {
            let _closed = Closed(&order);
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    if is_control(&text) {
                        continue;
                    }
                    let seq = order.saw(&text);
                    if recording.load(Ordering::Relaxed) {
                        if let Some(micros) = latency(&text) {
                            record(&histogram, micros);
                            spread.record(seq, micros);
                        }
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
    paced.print(&format!("paced appends, {} subscribers", args.subscribers));
    println!(
        "latency run: {} subscribers, {received} deliveries",
        args.subscribers
    );
    for (label, q) in [("p50", 0.50), ("p99", 0.99), ("max", 1.0)] {
        println!(
            "  append->receipt {label}: {:>8.1} ms",
            percentile(&counts, q)
        );
    }
    spread.print();
    append(&http, &base, args, None).await?.print(&format!(
        "max append rate, {} subscribers",
        args.subscribers
    ));
    check_order(&orders).await?;
    for reader in readers {
        reader.abort();
    }
    Ok(())
}

/// What a writer run achieved: events/s, how long each create took to be
/// acknowledged (durable) as the writers saw it, and the server's own
/// account of those requests.
struct Appended {
    rate: f64,
    acks: Vec<u64>,
    server: ServerSide,
}

impl Appended {
    fn print(&self, label: &str) {
        println!(
            "{label}: {:.0} events/s, ack p50 {:.1} ms, p99 {:.1} ms",
            self.rate,
            percentile(&self.acks, 0.5),
            percentile(&self.acks, 0.99)
        );
        println!(
            "  in the server: request p99 <= {:.1} ms, commit p99 <= {:.1} ms",
            self.server.request_p99 * 1e3,
            self.server.commit_p99 * 1e3
        );
        let phases: Vec<String> = self
            .server
            .phases_p99
            .iter()
            .map(|(name, p99)| format!("{name} {:.2}", p99 * 1e3))
            .collect();
        println!("  committer steps, p99 <= ms: {}", phases.join(", "));
    }
}

/// Where a writer's acknowledgement waited, from the server's `/metrics`
/// histograms over one run (bucket bounds, so "at most"): the whole
/// request in the server, and its command in the committer (decide,
/// fsync, publish). The rest of the writers' wait is the client's.
struct ServerSide {
    request_p99: f64,
    commit_p99: f64,
    /// Each step of the committer (`Phase`) and the fsync.
    phases_p99: Vec<(&'static str, f64)>,
}

const REQUESTS: &str =
    r#"stride_http_request_duration_seconds_bucket{method="POST",route="/v2/apps",le=""#;
const COMMITS: &str = r#"stride_commit_ack_duration_seconds_bucket{result="committed",le=""#;
const FSYNCS: &str = r#"stride_fsync_duration_seconds_bucket{le=""#;

fn phase_series(phase: Phase) -> String {
    format!(
        r#"stride_commit_phase_duration_seconds_bucket{{phase="{}",le=""#,
        phase.name()
    )
}

/// A `/metrics` text, to compare two of.
struct Scrape(String);

impl Scrape {
    async fn take(http: &reqwest::Client, base: &str) -> anyhow::Result<Scrape> {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        Ok(Scrape(text))
    }

    /// One histogram's cumulative buckets: (upper bound in s, count).
    fn buckets(&self, series: &str) -> anyhow::Result<Vec<(f64, u64)>> {
        let buckets: Vec<(f64, u64)> = self
            .0
            .lines()
            .filter_map(|line| {
                let (bound, count) = line.strip_prefix(series)?.split_once("\"} ")?;
                Some((bound.parse().ok()?, count.parse().ok()?))
            })
            .collect();
        if buckets.is_empty() {
            bail!("the server's /metrics has no {series}...");
        }
        Ok(buckets)
    }

    /// The `q` quantile's bucket bound of what `series` counted since
    /// `earlier`.
    fn quantile_since(&self, earlier: &Scrape, series: &str, q: f64) -> anyhow::Result<f64> {
        let before = earlier.buckets(series).unwrap_or_default();
        let deltas: Vec<(f64, u64)> = self
            .buckets(series)?
            .into_iter()
            .map(|(bound, count)| {
                let old = before
                    .iter()
                    .find(|(b, _)| *b == bound)
                    .map_or(0, |(_, c)| *c);
                (bound, count.saturating_sub(old))
            })
            .collect();
        let total = deltas.last().map_or(0, |(_, count)| *count);
        let target = ((total as f64) * q).ceil() as u64;
        Ok(deltas
            .iter()
            .find(|(_, count)| *count >= target.max(1))
            .map_or(f64::NAN, |(bound, _)| *bound))
    }
}

/// Appends for `args.duration` (two events per created app), paced to
/// `rate` events/s when given.
async fn append(
    http: &reqwest::Client,
    base: &str,
    args: &StreamBenchArgs,
    rate: Option<u64>,
) -> anyhow::Result<Appended> {
    let before = Scrape::take(http, base).await?;
    let started = Instant::now();
    let appended = Arc::new(AtomicU64::new(0));
    let acks: Arc<Vec<AtomicU64>> = Arc::new((0..BUCKETS).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::new();
    for w in 0..args.writers {
        let (http, url, appended) = (http.clone(), format!("{base}/v2/apps"), appended.clone());
        let acks = acks.clone();
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
                    "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "portDefinitions": []});
                let sent = Instant::now();
                let response = http.post(&url).json(&body).send().await?;
                if !response.status().is_success() {
                    let status = response.status();
                    bail!("append failed: {status}: {}", response.text().await?);
                }
                record(&acks, sent.elapsed().as_micros() as u64);
                appended.fetch_add(2, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await.context("a writer panicked")??;
    }
    let rate = appended.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let after = Scrape::take(http, base).await?;
    Ok(Appended {
        rate,
        acks: acks.iter().map(|b| b.load(Ordering::Relaxed)).collect(),
        server: ServerSide {
            request_p99: after.quantile_since(&before, REQUESTS, 0.99)?,
            commit_p99: after.quantile_since(&before, COMMITS, 0.99)?,
            phases_p99: Phase::ALL
                .iter()
                .map(|&phase| {
                    let p99 = after.quantile_since(&before, &phase_series(phase), 0.99);
                    (phase.name(), p99.unwrap_or(f64::NAN))
                })
                .chain([("fsync", after.quantile_since(&before, FSYNCS, 0.99)?)])
                .collect(),
        },
    })
}

/// What one subscriber received, to check it got every event once, in order.
#[derive(Default)]
struct Order {
    first: AtomicU64,
    last: AtomicU64,
    received: AtomicU64,
    out_of_order: AtomicU64,
    /// Its connection ended (the server cut it off, or it failed).
    closed: AtomicBool,
}

/// Marks its subscriber's connection ended when its reader stops.
struct Closed<'a>(&'a Order);

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Relaxed);
    }
}

impl Order {
    /// Notes `text`'s seq, and returns it.
    fn saw(&self, text: &str) -> u64 {
        let Some(seq) = seq_of(text) else {
            self.out_of_order.fetch_add(1, Ordering::Relaxed);
            return 0;
        };
        let last = self.last.swap(seq, Ordering::Relaxed);
        if last == 0 {
            self.first.store(seq, Ordering::Relaxed);
        } else if seq != last + 1 {
            self.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        self.received.fetch_add(1, Ordering::Relaxed);
        seq
    }
}

/// Each event's latency at the first and at the last subscriber to get it:
/// how long the event took to reach the subscribers at all, and how long
/// fanning it out to all of them took on top.
struct Spread {
    first: Vec<AtomicU64>,
    last: Vec<AtomicU64>,
}

/// Seqs tracked (by seq modulo this): far more than one run appends.
const SPREAD_SLOTS: usize = 1 << 20;

impl Spread {
    fn new() -> Spread {
        Spread {
            first: (0..SPREAD_SLOTS)
                .map(|_| AtomicU64::new(u64::MAX))
                .collect(),
            last: (0..SPREAD_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record(&self, seq: u64, micros: u64) {
        let slot = seq as usize % SPREAD_SLOTS;
        self.first[slot].fetch_min(micros, Ordering::Relaxed);
        self.last[slot].fetch_max(micros, Ordering::Relaxed);
    }

    fn print(&self) {
        let mut firsts = vec![0; BUCKETS];
        let mut lasts = vec![0; BUCKETS];
        for (first, last) in self.first.iter().zip(&self.last) {
            let (first, last) = (first.load(Ordering::Relaxed), last.load(Ordering::Relaxed));
            if first != u64::MAX {
                firsts[bucket(first)] += 1;
                lasts[bucket(last)] += 1;
            }
        }
        for (label, counts) in [("first subscriber", &firsts), ("last subscriber", &lasts)] {
            println!(
                "  at the {label} to get each event: p50 {:.1} ms, p99 {:.1} ms",
                percentile(counts, 0.5),
                percentile(counts, 0.99)
            );
        }
    }
}

/// Whether `text` is a control message (`progress`, `error`) rather than
/// an event: the protocol gives control messages a lower-case `type`,
/// which serde writes first, and events their CamelCase type. Parsing each
/// of a million messages a second would cost these clients more than the
/// server's sending them.
fn is_control(text: &str) -> bool {
    text.strip_prefix(r#"{"type":""#)
        .is_some_and(|kind| kind.starts_with(|c: char| c.is_ascii_lowercase()))
}

/// The envelope's `seq` (keys are sorted: the first `"seq":` is its own).
fn seq_of(text: &str) -> Option<u64> {
    static SEQ: LazyLock<Finder> = LazyLock::new(|| Finder::new(r#""seq":"#));
    let start = SEQ.find(text.as_bytes())? + 6;
    let digits = text[start..].split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// How long the slowest subscriber may go without progress at the end.
const STALL: Duration = Duration::from_secs(60);

/// Waits for every subscriber to reach the same last seq (however long,
/// while the slowest still moves: after the maximum rate run they are
/// minutes behind), then checks each saw the same run of seqs, each once,
/// in order.
async fn check_order(orders: &[Arc<Order>]) -> anyhow::Result<()> {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut slowest = (0, Instant::now());
    loop {
        let head = orders.iter().map(|o| load(&o.last)).max().unwrap_or(0);
        let behind = orders.iter().filter(|o| load(&o.last) < head);
        let (closed, open): (Vec<_>, Vec<_>) =
            behind.partition(|o| o.closed.load(Ordering::Relaxed));
        if !closed.is_empty() {
            bail!(
                "{} subscribers were disconnected before seq {head} (see the server's log)",
                closed.len()
            );
        }
        let Some(least) = open.iter().map(|o| load(&o.last)).min() else {
            break;
        };
        if least > slowest.0 {
            slowest = (least, Instant::now());
        } else if slowest.1.elapsed() > STALL {
            bail!(
                "{} subscribers stopped short of seq {head} (the slowest at {least} for {STALL:?})",
                open.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (first, last) = orders
        .first()
        .map_or((0, 0), |o| (load(&o.first), load(&o.last)));
    let mut faults = 0;
    for order in orders {
        let exact = load(&order.first) == first
            && load(&order.received) == last + 1 - first
            && load(&order.out_of_order) == 0;
        faults += u64::from(!exact);
    }
    println!(
        "order: {} subscribers each got seqs {first}..={last}; {faults} with a gap, duplicate or reordering",
        orders.len()
    );
    if faults > 0 {
        bail!("{faults} subscribers missed, repeated or reordered events");
    }
    Ok(())
}

/// An event's latency, from its `at` to now. Envelope keys are sorted and
/// none before `at` holds an `at` key, so the first `"at":"` is the
/// envelope's.
pub(crate) fn latency(text: &str) -> Option<u64> {
    static AT: LazyLock<Finder> = LazyLock::new(|| Finder::new(r#""at":""#));
    let start = AT.find(text.as_bytes())? + 6;
    let at = text[start..].split('"').next()?;
    let at = chrono::DateTime::parse_from_rfc3339(at).ok()?;
    let at = u64::try_from(at.timestamp_micros()).unwrap_or(0);
    Some(stride_runtime::clock::now_micros().saturating_sub(at))
}

fn bucket(micros: u64) -> usize {
    ((micros / BUCKET_MICROS) as usize).min(BUCKETS - 1)
}

fn record(histogram: &[AtomicU64], micros: u64) {
    histogram[bucket(micros)].fetch_add(1, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::{COMMITS, Scrape, is_control, seq_of};
    use serde_json::{Value, json};
    use stride_log::event::Seq;
    use stride_protocol::{ErrorCode, ServerMessage, StreamError};

    /// Told apart as `/v1/stream` writes them, so a change to the protocol
    /// fails here rather than making every subscriber look out of order.
    #[test]
    fn control_messages_are_told_from_events() {
        let progress = ServerMessage::<Value>::Progress {
            seq: Seq(7),
            head: Seq(9),
        };
        let error = ServerMessage::<Value>::Error(StreamError {
            error: ErrorCode::Internal,
            message: "gone".into(),
            head: None,
        });
        for control in [progress, error] {
            assert!(is_control(&control.to_text()), "{}", control.to_text());
        }
        let event = ServerMessage::Event(json!({
            "actor": {"kind": "api"}, "at": "2026-01-01T00:00:00.000001Z",
            "seq": 7, "type": "AppCreated", "app": "/a",
        }));
        let text = event.to_text();
        assert!(!is_control(&text), "{text}");
        assert_eq!(seq_of(&text), Some(7));
    }

    #[test]
    fn the_servers_quantile_is_read_from_the_buckets_a_run_added() {
        let scrape = |counts: [u64; 4]| {
            let bounds = ["0.001", "0.002", "0.004", "+Inf"];
            let lines: Vec<String> = bounds
                .iter()
                .zip(counts)
                .map(|(bound, count)| format!("{COMMITS}{bound}\"}} {count}"))
                .collect();
            Scrape(lines.join("\n"))
        };
        let before = scrape([10, 10, 10, 10]);
        // The run added 98 requests under 1 ms and 2 between 2 and 4 ms.
        let after = scrape([108, 108, 110, 110]);
        let p = |q| after.quantile_since(&before, COMMITS, q).unwrap();
        assert_eq!((p(0.5), p(0.98), p(0.99)), (0.001, 0.001, 0.004));
        assert!(Scrape(String::new()).buckets(COMMITS).is_err());
    }
}
