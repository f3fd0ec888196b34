//! High availability (issue 15), same run: (a) writes over HTTP to one
//! `stride serve --no-mesos` alone and to the leader of three `--zk`
//! instances on a real three-node ZooKeeper ensemble (`stride_zk::ensemble`),
//! alternating; (b) failover: kill -9 of the leader, then writes to the
//! survivors (a standby passes them on) until one is acknowledged; the
//! killed instance restarts before the next round.

use super::metrics::{Sample, http_writes, median};
use super::percentiles;
use super::serve::ServeChild;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stride_zk::ensemble::Ensemble;

#[derive(clap::Args)]
pub struct HaBench {
    /// Scratch directory, wiped first.
    #[arg(long, default_value = "target/bench-ha")]
    dir: PathBuf,
    /// Concurrent HTTP clients.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    writers: Vec<usize>,
    /// Seconds each write measurement runs.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Rounds of single-node and HA, alternating.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Leaders killed.
    #[arg(long, default_value_t = 20)]
    failovers: usize,
    /// `--zk-session-timeout` of each instance (ZooKeeper's least with the
    /// ensemble's tickTime of 500 ms is 1 s); `stride serve`'s default.
    #[arg(long, default_value = stride_server::ha::DEFAULT_SESSION_TIMEOUT)]
    session_timeout: String,
}

struct Cluster {
    exe: PathBuf,
    dirs: Vec<PathBuf>,
    args: Vec<String>,
    servers: Vec<Option<ServeChild>>,
}

impl Cluster {
    fn start(
        exe: &Path,
        dir: &Path,
        ensemble: &Ensemble,
        session: &str,
    ) -> anyhow::Result<Cluster> {
        let url = ensemble.url(&format!(
            "/{}",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("stride")
        ));
        let mut cluster = Cluster {
            exe: exe.to_owned(),
            dirs: (0..3).map(|i| dir.join(format!("instance-{i}"))).collect(),
            args: vec![
                "--zk".into(),
                url,
                "--zk-session-timeout".into(),
                session.into(),
            ],
            servers: (0..3).map(|_| None).collect(),
        };
        for i in 0..3 {
            cluster.start_instance(i)?;
        }
        Ok(cluster)
    }

    fn start_instance(&mut self, i: usize) -> anyhow::Result<()> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.servers[i] = Some(ServeChild::start_with(&self.exe, &self.dirs[i], &args)?);
        Ok(())
    }

    fn urls(&self) -> Vec<(usize, String)> {
        (0..3)
            .filter_map(|i| self.servers[i].as_ref().map(|s| (i, s.url.clone())))
            .collect()
    }

    /// The instance that leads, once every running one names it.
    async fn leader(&self, http: &reqwest::Client) -> anyhow::Result<(usize, String)> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let mut leading = Vec::new();
            let mut named = Vec::new();
            for (i, url) in self.urls() {
                let Ok(answer) = http.get(format!("{url}/v1/leader")).send().await else {
                    continue;
                };
                let view: serde_json::Value = answer.json().await.unwrap_or_default();
                if view["leading"] == true {
                    leading.push((i, url.clone()));
                }
                named.push(view["leader"]["url"].as_str().map(str::to_owned));
            }
            if let [(i, url)] = &leading[..]
                && named.len() == self.urls().len()
                && named.iter().all(|n| n.as_deref() == Some(url))
            {
                return Ok((*i, url.clone()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("no leader within 60 s")
    }
}

pub fn run(args: HaBench) -> anyhow::Result<()> {
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("--dir {}: cannot clear it", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("--dir {}: cannot create it", args.dir.display()))?;
    let exe = std::env::current_exe()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let ensemble = Ensemble::start(3).context("cannot start a ZooKeeper ensemble")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    println!("## stride bench ha\n");
    println!(
        "3-node ZooKeeper ensemble (tickTime 500 ms), session timeout {}; medians of {} alternating rounds of {} s\n",
        args.session_timeout, args.rounds, args.seconds
    );
    println!("| writers | mode | writes/s | p50 ack | p99 ack | rate HA/single |");
    println!("|---|---|---|---|---|---|");
    for &writers in &args.writers {
        let (mut single, mut ha) = (Vec::new(), Vec::new());
        for round in 0..args.rounds {
            let alone = ServeChild::start_with(
                &exe,
                &args.dir.join(format!("single-{writers}-{round}")),
                &[],
            )?;
            single.push(runtime.block_on(http_writes(&http, &alone.url, writers, args.seconds))?);
            drop(alone);
            let dir = args.dir.join(format!("ha-{writers}-{round}"));
            let cluster = Cluster::start(&exe, &dir, &ensemble, &args.session_timeout)?;
            let (_, leader) = runtime.block_on(cluster.leader(&http))?;
            ha.push(runtime.block_on(http_writes(&http, &leader, writers, args.seconds))?);
        }
        print_pair(writers, &single, &ha);
    }
    let mut cluster = Cluster::start(
        &exe,
        &args.dir.join("failover"),
        &ensemble,
        &args.session_timeout,
    )?;
    let mut times = runtime.block_on(failovers(&mut cluster, &http, args.failovers))?;
    let (p50, p99) = percentiles(&mut times);
    let max = times.iter().copied().fold(0.0, f64::max);
    println!(
        "\nfailover, kill -9 of the leader to the first acknowledged write ({} kills): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        times.len(),
        p50,
        p99,
        max
    );
    Ok(())
}

/// Each round: kill the leader, write to the others until one write is
/// acknowledged, then restart the killed instance.
async fn failovers(
    cluster: &mut Cluster,
    http: &reqwest::Client,
    rounds: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::new();
    for round in 0..rounds {
        let (leader, _) = cluster.leader(http).await?;
        let survivors: Vec<String> = cluster
            .urls()
            .into_iter()
            .filter(|(i, _)| *i != leader)
            .map(|(_, url)| url)
            .collect();
        cluster.servers[leader] = None; // SIGKILL
        let killed = Instant::now();
        let mut turn = 0;
        loop {
            turn += 1;
            let url = &survivors[turn % survivors.len()];
            let body = serde_json::json!({"cmd": "sleep 1000", "instances": round % 3});
            let sent = http
                .put(format!("{url}/v2/apps/bench/failover?force=true"))
                .timeout(Duration::from_millis(500))
                .json(&body)
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if killed.elapsed() > Duration::from_secs(60) {
                bail!("no write acknowledged within 60 s of killing the leader");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        times.push(killed.elapsed().as_secs_f64() * 1e3);
        cluster.start_instance(leader)?;
    }
    Ok(times)
}

fn print_pair(writers: usize, single: &[Sample], ha: &[Sample]) {
    let (single, ha) = (median(single), median(ha));
    println!(
        "| {writers} | single node | {:.0} | {:.2} ms | {:.2} ms | |",
        single.rate, single.p50, single.p99
    );
    println!(
        "| {writers} | HA leader (3 instances) | {:.0} | {:.2} ms | {:.2} ms | {:.2} |",
        ha.rate,
        ha.p50,
        ha.p99,
        ha.rate / single.rate
    );
}
