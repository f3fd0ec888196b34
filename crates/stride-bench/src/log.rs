//! The event log benchmark: (a) durable appends at several writer counts
//! against a raw 4 KiB append+fdatasync baseline, (b) full replay of a large
//! log, (c) restart of that log to serving, with and without a snapshot.

use super::percentiles;
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stride_core::command::{Command, Settings, TaskStatus};
use stride_core::projection::{State, snapshot};
use stride_log::event::condition::Condition;
use stride_log::event::{Actor, Envelope, Event, Seq, TaskId, TaskStatusRecorded};
use stride_log::store::LogWriter;
use stride_server::committer::Committer;
use stride_server::published::{self, Projection};

#[derive(clap::Args)]
pub struct LogBench {
    /// Directory for the benchmark stores (on the disk being measured).
    #[arg(long, default_value = "./target/bench-log")]
    dir: PathBuf,
    /// Concurrent writer counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    writers: Vec<usize>,
    /// Seconds each writer count runs.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Events in the replay and restart store.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
}

pub fn run(args: LogBench) -> anyhow::Result<()> {
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("--dir {}: cannot clear it", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("--dir {}: cannot create it", args.dir.display()))?;
    println!("## stride bench log\n");
    let (base_p50, base_p99, base_rate) = fdatasync_baseline(&args.dir)?;
    println!("| workload | events/s | p50 ack | p99 ack | vs baseline rate |");
    println!("|---|---|---|---|---|");
    println!(
        "| baseline: 4 KiB write + fdatasync, 1 thread | {base_rate:.0} | {base_p50:.3} ms | {base_p99:.3} ms | 1.00 |"
    );
    let ceiling = append_ceiling(&args.dir.join("ceiling"))?;
    println!(
        "| ceiling: the same appends in batches of 64, never synced | {ceiling:.0} | - | - | {:.2} |",
        ceiling / base_rate
    );
    let runtime = tokio::runtime::Runtime::new()?;
    for &writers in &args.writers {
        let store = args.dir.join(format!("appends-{writers}"));
        let metrics = stride_server::metrics::Metrics::on();
        let (rate, p50, p99) =
            runtime.block_on(appends(&store, writers, args.seconds, &metrics))?;
        println!(
            "| durable appends, {writers} writers | {rate:.0} | {p50:.3} ms | {p99:.3} ms | {:.2} |",
            rate / base_rate
        );
    }
    println!();
    replay_and_restart(&args.dir.join("replay"), args.events)?;
    Ok(())
}

fn fdatasync_baseline(dir: &Path) -> anyhow::Result<(f64, f64, f64)> {
    let mut file = std::fs::File::create(dir.join("baseline"))?;
    let block = vec![0x5au8; 4096];
    let mut samples = Vec::new();
    let start = Instant::now();
    for _ in 0..2_000 {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let rate = samples.len() as f64 / start.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(&mut samples);
    Ok((p50, p99, rate))
}

/// A status update, the most frequent command in production; a fixed pool
/// of task ids keeps the state bounded.
fn status(n: u64) -> Command {
    Command::RecordTaskStatus(TaskStatus {
        task: TaskId(format!("bench_app.{}", n % 1_000)),
        condition: Condition::Running,
        mesos_state: "TASK_RUNNING".into(),
        reason: None,
        message: None,
        agent: None,
        healthy: Some(true),
        uuid: Some(n.to_be_bytes().to_vec()),
        timestamp: None,
    })
}

/// What sled itself allows for our batch transaction (events plus index
/// entries), with no fsync at all: the bound durable appends approach.
fn append_ceiling(store: &Path) -> anyhow::Result<f64> {
    let log = LogWriter::open(store)?;
    let total = 100_000u64;
    let start = Instant::now();
    for first in (1..=total).step_by(64) {
        let batch: Vec<_> = (first..(first + 64).min(total + 1))
            .map(synthetic)
            .collect();
        log.append(&batch, &[])?;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// Durable appends by `writers` concurrent writers for `seconds`:
/// (events/s, p50 ack ms, p99 ack ms).
pub(super) async fn appends(
    store: &Path,
    writers: usize,
    seconds: u64,
    metrics: &stride_server::metrics::Metrics,
) -> anyhow::Result<(f64, f64, f64)> {
    let log = LogWriter::open(store)?;
    let projection = Arc::new(Projection::new(State::default()));
    let committer = Committer::start(
        log,
        projection.clone(),
        1_000_000,
        Settings::default(),
        metrics,
        &stride_runtime::Supervisor::new(),
    )?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..writers as u64)
        .map(|w| {
            let committer = committer.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = w << 40;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    committer.submit(Actor::Reconciler, None, status(n)).await?;
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                    n += 1;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let start = Instant::now();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let rate = projection.head().0 as f64 / start.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(&mut all);
    Ok((rate, p50, p99))
}

fn synthetic(seq: u64) -> Arc<Envelope> {
    Arc::new(Envelope {
        seq: Seq(seq),
        id: uuid::Uuid::now_v7(),
        recorded_at: 1_700_000_000_000_000 + seq,
        actor: Actor::Mesos,
        command_id: uuid::Uuid::now_v7(),
        event: Event::TaskStatusRecorded(TaskStatusRecorded {
            task: TaskId(format!("bench_app.{}", seq % 10_000)),
            app: None,
            condition: Condition::Running,
            mesos_state: "TASK_RUNNING".into(),
            reason: None,
            message: Some("bench".into()),
            agent: None,
            healthy: Some(true),
            status_uuid: Some(seq.to_be_bytes().to_vec()),
            mesos_timestamp: Some(seq),
        }),
    })
}

fn replay_and_restart(store: &Path, events: u64) -> anyhow::Result<()> {
    let state = {
        let log = LogWriter::open(store)?;
        let mut seq = 1;
        while seq <= events {
            let batch: Vec<_> = (seq..(seq + 10_000).min(events + 1))
                .map(synthetic)
                .collect();
            seq += batch.len() as u64;
            log.append(&batch, &[])?;
        }
        log.sync()?;
        let start = Instant::now();
        let state = published::load(&log, None)?;
        let elapsed = start.elapsed().as_secs_f64();
        println!("| workload | result |\n|---|---|");
        println!(
            "| full replay of {events} events | {:.2} s, {:.0} events/s |",
            elapsed,
            events as f64 / elapsed
        );
        state
    };
    let restart = restart_to_serving(store)?;
    println!("| restart of a {events}-event store to serving, no snapshot | {restart:.3} s |");
    {
        let log = open_when_unlocked(store)?;
        log.put_snapshot(state.seq, &snapshot::encode(&state)?)?;
        log.sync()?;
    }
    let restart = restart_to_serving(store)?;
    println!("| restart of a {events}-event store to serving, snapshot at head | {restart:.3} s |");
    Ok(())
}

/// sled's background thread may hold the file lock for a moment after a
/// handle is dropped or a child is killed.
fn open_when_unlocked(store: &Path) -> anyhow::Result<LogWriter> {
    for _ in 0..100 {
        if let Ok(log) = LogWriter::open(store) {
            return Ok(log);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(LogWriter::open(store)?)
}

/// Seconds from starting `stride serve` to its first answer on /ping.
fn restart_to_serving(store: &Path) -> anyhow::Result<f64> {
    let exe = std::env::current_exe()?;
    drop(open_when_unlocked(store)?);
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let mut child = std::process::Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(store)
        .env("STRIDE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Some(url) = line.trim().strip_prefix("stride: listening on http://") else {
        let _ = child.kill();
        bail!("stride serve did not start: {line}");
    };
    let mut stream = std::net::TcpStream::connect(url)?;
    stream.write_all(b"GET /ping HTTP/1.0\r\n\r\n")?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    let elapsed = start.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    if !answer.contains("200") {
        bail!("/ping answered {answer}");
    }
    Ok(elapsed)
}
