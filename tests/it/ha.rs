//! High availability (issue 15): three real `stride serve --zk` instances
//! on a real three-node ZooKeeper ensemble (Debian's 3.8, started on free
//! loopback ports by `stride_zk::ensemble`), driven over HTTP. The tests
//! take turns (`TURN`): each runs six JVMs and Stride processes.

use crate::support::{self as common, BIN, Server, client, stream_client, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stride_zk::ensemble::Ensemble;

/// ZooKeeper's least with tickTime 500 is 1 s; a little more rides out a
/// busy machine's pauses.
const SESSION: &str = "1500ms";
/// Generous bounds for what should take about a session timeout.
const ELECTION_WITHIN: Duration = Duration::from_secs(20);
/// What an election may take in all while it still moves (instances
/// restarting, catching up, answering slowly on a loaded machine).
const ELECTION_AT_MOST: Duration = Duration::from_secs(90);

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Cluster {
    ensemble: Ensemble,
    dirs: Vec<tempfile::TempDir>,
    servers: Vec<Option<Server>>,
    extra: Vec<String>,
    /// What the test reads the instances with.
    http: reqwest::Client,
}

impl Cluster {
    /// `None` (the test not run) without ZooKeeper or a JRE.
    fn start(extra: &[&str]) -> Option<Cluster> {
        Cluster::start_some(extra, 3)
    }

    /// Three instances' places, the first `running` of them started.
    fn start_some(extra: &[&str], running: usize) -> Option<Cluster> {
        Cluster::start_reading_with(extra, running, client())
    }

    /// As `start_some`, read with `http` (one trusting their CA).
    fn start_reading_with(
        extra: &[&str],
        running: usize,
        http: reqwest::Client,
    ) -> Option<Cluster> {
        let ensemble = common::zookeeper(3)?;
        let mut cluster = Cluster {
            ensemble,
            dirs: (0..3)
                .map(|_| tempfile::tempdir().expect("a dir"))
                .collect(),
            servers: (0..3).map(|_| None).collect(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            http,
        };
        for i in 0..running {
            cluster.start_instance(i);
        }
        Some(cluster)
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--zk".to_owned(),
            self.ensemble.url("/stride"),
            "--zk-session-timeout".to_owned(),
            SESSION.to_owned(),
        ];
        args.extend(self.extra.iter().cloned());
        args
    }

    fn start_instance(&mut self, i: usize) {
        let args = self.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = match self.extra.iter().any(|a| a == "--master") {
            true => Server::start_with_mesos(self.dirs[i].path(), &args),
            false => Server::start(self.dirs[i].path(), &args),
        };
        self.servers[i] = Some(server);
    }

    /// As `start_instance` (without Mesos), logging at info level into
    /// the `Log` returned.
    fn start_instance_logged(&mut self, i: usize) -> common::Log {
        let args = self.args();
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.push("--no-mesos");
        let (server, log) = Server::start_logged(self.dirs[i].path(), &args);
        self.servers[i] = Some(server);
        log
    }

    fn url(&self, i: usize) -> String {
        self.servers[i].as_ref().expect("running").url.clone()
    }

    fn running(&self) -> Vec<usize> {
        (0..3).filter(|&i| self.servers[i].is_some()).collect()
    }

    async fn election(&self, i: usize) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}/v1/leader", self.url(i)))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    /// Waits until one running instance leads and every running one names
    /// it; returns it and its epoch. Fails once no instance's view of the
    /// election has changed for `ELECTION_WITHIN` (stuck, not merely slow
    /// on a loaded machine), or past `ELECTION_AT_MOST`.
    async fn leader(&self) -> (usize, u64) {
        let started = Instant::now();
        let (mut changed, mut last) = (started, None);
        loop {
            let mut views = Vec::new();
            for i in self.running() {
                views.push((i, self.election(i).await));
            }
            let leading: Vec<&(usize, Option<Value>)> = views
                .iter()
                .filter(|(_, v)| v.as_ref().is_some_and(|v| v["leading"] == true))
                .collect();
            if let [(i, Some(view))] = leading[..] {
                let url = &view["url"];
                if views
                    .iter()
                    .all(|(_, v)| v.as_ref().is_some_and(|v| v["leader"]["url"] == *url))
                {
                    return (*i, view["epoch"].as_u64().expect("an epoch"));
                }
            }
            let election: Vec<Option<[Value; 3]>> = views
                .iter()
                .map(|(_, v)| {
                    let field = |v: &Value, name| v[name].clone();
                    v.as_ref().map(|v| {
                        [
                            field(v, "leading"),
                            field(v, "leader"),
                            field(v, "zookeeper"),
                        ]
                    })
                })
                .collect();
            if last.as_ref() != Some(&election) {
                (changed, last) = (Instant::now(), Some(election));
            }
            if changed.elapsed() > ELECTION_WITHIN || started.elapsed() > ELECTION_AT_MOST {
                panic!(
                    "no single leader after {:?} (the views unchanged for {:?}): {views:?}\nZooKeeper: {}",
                    started.elapsed(),
                    changed.elapsed(),
                    self.as_zookeeper_has_it().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last winner and the live sessions' registrations, as ZooKeeper
    /// holds them (a stuck election's evidence).
    async fn as_zookeeper_has_it(&self) -> String {
        let url: stride_zk::ZkUrl = self.ensemble.url("/stride").parse().expect("a URL");
        match stride_zk::Zk::connect(&url, Duration::from_secs(5)).await {
            Ok(zk) => format!(
                "leader {:?}, registered {:?}",
                zk.leader().await,
                zk.members().await
            ),
            Err(error) => format!("no session: {error}"),
        }
    }

    /// Waits until every running instance reflects the same seq.
    async fn converged(&self) -> u64 {
        let deadline = Instant::now() + ELECTION_WITHIN;
        loop {
            let mut seqs = BTreeSet::new();
            for i in self.running() {
                seqs.insert(self.election(i).await.map(|v| v["seq"].as_u64()));
            }
            if let [Some(Some(seq))] = seqs.iter().collect::<Vec<_>>()[..] {
                return *seq;
            }
            assert!(Instant::now() < deadline, "instances disagree: {seqs:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the leader has trimmed the replicated log's first batch.
    async fn trimmed(&self) {
        let url: stride_zk::ZkUrl = self.ensemble.url("/stride").parse().expect("a URL");
        let zk = stride_zk::Zk::connect(&url, Duration::from_secs(5))
            .await
            .expect("a session");
        wait_until("the replicated log trimmed", ELECTION_WITHIN, || async {
            zk.batches()
                .await
                .is_ok_and(|b| b.first().is_some_and(|b| b.first > 1))
        })
        .await;
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut server) = self.servers[i].take() {
            server.kill();
        }
    }

    fn signal(&self, i: usize, signal: nix::sys::signal::Signal) {
        let pid = self.servers[i].as_ref().expect("running").child.id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).expect("signalled");
    }

    /// Stops every instance with SIGTERM, then `stride store verify` on
    /// each store.
    fn stop_and_verify(&mut self) {
        for i in self.running() {
            self.signal(i, nix::sys::signal::Signal::SIGTERM);
        }
        for server in self.servers.iter_mut().flatten() {
            let status = server.exit_within(Duration::from_secs(20));
            assert!(status.is_some_and(|s| s.success()), "{status:?}");
        }
        for dir in &self.dirs {
            let output = std::process::Command::new(BIN)
                .args(["store", "verify", "--data-dir"])
                .arg(dir.path())
                .output()
                .expect("verify runs");
            assert!(
                output.status.success(),
                "verify {}: {}{}",
                dir.path().display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// Writes apps through every running instance, each with an
/// Idempotency-Key, retrying one until it is acknowledged; records what was.
struct Writers {
    acked: Arc<Mutex<BTreeSet<u64>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    fn start(urls: Arc<Mutex<Vec<String>>>, count: u64) -> Writers {
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..count)
            .map(|w| {
                let (urls, acked, stop) = (urls.clone(), acked.clone(), stop.clone());
                tokio::spawn(async move {
                    let http = client();
                    let mut n = w * 1_000_000;
                    let mut turn = w as usize;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        // The same request, retried until acknowledged.
                        loop {
                            turn += 1;
                            let url = {
                                let urls = urls.lock().expect("urls");
                                urls[turn % urls.len()].clone()
                            };
                            let sent = http
                                .post(format!("{url}/v2/apps"))
                                .header("Idempotency-Key", format!("key-{n}"))
                                .timeout(Duration::from_secs(5))
                                .json(&json!({"id": format!("/w/a{n}"), "cmd": "sleep 1", "instances": 0}))
                                .send()
                                .await;
                            match sent.map(|r| r.status()) {
                                Ok(status) if status.is_success() => {
                                    acked.lock().expect("acked").insert(n);
                                    break;
                                }
                                Ok(status) => assert!(
                                    status == StatusCode::SERVICE_UNAVAILABLE
                                        || status == StatusCode::BAD_GATEWAY,
                                    "write {n}: {status}"
                                ),
                                Err(_) => {}
                            }
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        Writers { acked, stop, tasks }
    }

    fn acked(&self) -> usize {
        self.acked.lock().expect("acked").len()
    }

    async fn stop(self) -> BTreeSet<u64> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a writer");
        }
        Arc::try_unwrap(self.acked)
            .expect("writers done")
            .into_inner()
            .expect("acked")
    }
}

/// How many times each app was created, by the leader's log.
async fn created(url: &str) -> BTreeMap<String, usize> {
    created_as_read_by(&client(), url).await
}

async fn created_as_read_by(http: &reqwest::Client, url: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut from = 1;
    loop {
        let page: Value = http
            .get(format!("{url}/v1/events?from={from}&limit=10000"))
            .send()
            .await
            .expect("events")
            .json()
            .await
            .expect("events json");
        let events = page["events"].as_array().expect("events").clone();
        if events.is_empty() {
            return counts;
        }
        from = page["next"].as_u64().expect("next");
        for event in events.iter().filter(|e| e["type"] == "AppCreated") {
            let id = event["app"].as_str().expect("an app id").to_owned();
            *counts.entry(id).or_default() += 1;
        }
    }
}

fn urls_of(cluster: &Cluster) -> Vec<String> {
    cluster
        .running()
        .into_iter()
        .map(|i| cluster.url(i))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_the_leader_under_keyed_writes_loses_and_doubles_nothing() {
    let _turn = TURN.lock().await;
    let Some(mut cluster) = Cluster::start(&[]) else {
        return;
    };
    let (mut leader, mut epoch) = cluster.leader().await;
    let urls = Arc::new(Mutex::new(urls_of(&cluster)));
    let writers = Writers::start(urls.clone(), 4);
    for round in 0..10 {
        let before = writers.acked();
        wait_until("writes acknowledged", ELECTION_WITHIN, || async {
            writers.acked() >= before + 5
        })
        .await;
        cluster.kill(leader);
        *urls.lock().expect("urls") = urls_of(&cluster);
        let (next, next_epoch) = cluster.leader().await;
        assert_ne!(next, leader, "round {round}");
        assert!(
            next_epoch > epoch,
            "round {round}: epoch {next_epoch} after {epoch}"
        );
        cluster.start_instance(leader);
        *urls.lock().expect("urls") = urls_of(&cluster);
        (leader, epoch) = (next, next_epoch);
    }
    let acked = writers.stop().await;
    assert!(acked.len() > 50, "only {} writes acknowledged", acked.len());
    let (leader, _) = cluster.leader().await;
    let head = cluster.converged().await;
    let counts = created(&cluster.url(leader)).await;
    for n in &acked {
        let id = format!("/w/a{n}");
        assert_eq!(counts.get(&id), Some(&1), "{id} acknowledged");
    }
    assert!(counts.values().all(|&c| c == 1), "an app created twice");
    // Each election is in the log, with a growing epoch.
    let state: Value = client()
        .get(format!("{}/v1/leader", cluster.url(leader)))
        .send()
        .await
        .expect("leader")
        .json()
        .await
        .expect("json");
    assert_eq!(state["recorded"]["epoch"], state["epoch"], "{state}");
    assert_eq!(state["seq"].as_u64(), Some(head));
    cluster.stop_and_verify();
}

/// A planned stop (SIGTERM, as in a rolling upgrade) closes the leader's
/// session once it has stepped down: its nodes are gone as soon as the
/// process is (not a session timeout later), and a standby takes over
/// with nothing acknowledged lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_closes_the_leaders_session_so_its_nodes_go_with_it() {
    let _turn = TURN.lock().await;
    let Some(mut cluster) = Cluster::start_some(&[], 0) else {
        return;
    };
    // The first instance started leads; its log is read.
    let log = cluster.start_instance_logged(0);
    let (leader, epoch) = cluster.leader().await;
    assert_eq!(leader, 0);
    cluster.start_instance(1);
    cluster.start_instance(2);
    let view = cluster.election(leader).await.expect("the leader's view");
    let instance = view["instance"]
        .as_str()
        .expect("an instance id")
        .to_owned();
    let url: stride_zk::ZkUrl = cluster.ensemble.url("/stride").parse().expect("a URL");
    let zk = stride_zk::Zk::connect(&url, Duration::from_secs(5))
        .await
        .expect("a session");
    let registered = |members: Vec<(String, String)>| members.iter().any(|(id, _)| *id == instance);
    assert!(registered(zk.members().await.expect("members")));
    let urls = Arc::new(Mutex::new(urls_of(&cluster)));
    let writers = Writers::start(urls.clone(), 4);
    wait_until("writes acknowledged", ELECTION_WITHIN, || async {
        writers.acked() >= 5
    })
    .await;
    cluster.signal(leader, nix::sys::signal::Signal::SIGTERM);
    let mut stopped = cluster.servers[leader].take().expect("running");
    let status = stopped.exit_within(ELECTION_WITHIN);
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    // Read once, right after the exit: an expiring session would still
    // hold the node for up to its timeout.
    assert!(
        !registered(zk.members().await.expect("members")),
        "the stopped leader is still registered: its session was left to expire"
    );
    // Closed only once it no longer acted: after stepping down (its parts
    // stopped, its committer drained), before the shutdown went on.
    common::assert_in_order(
        &log.text(),
        &[
            "shutdown: HTTP stopped",
            "stepped down; a standby now",
            "shutdown: ZooKeeper session closed",
            "shutdown: part stopped part=\"high availability\"",
            "shutdown: committer drained",
        ],
    );
    *urls.lock().expect("urls") = urls_of(&cluster);
    let (next, next_epoch) = cluster.leader().await;
    assert_ne!(next, leader);
    assert!(next_epoch > epoch, "epoch {next_epoch} after {epoch}");
    let before = writers.acked();
    wait_until(
        "writes acknowledged by the new leader",
        ELECTION_WITHIN,
        || async { writers.acked() >= before + 5 },
    )
    .await;
    let acked = writers.stop().await;
    cluster.converged().await;
    let counts = created(&cluster.url(next)).await;
    for n in &acked {
        let id = format!("/w/a{n}");
        assert_eq!(counts.get(&id), Some(&1), "{id} acknowledged");
    }
    assert!(counts.values().all(|&c| c == 1), "an app created twice");
    cluster.stop_and_verify();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_stopped_past_its_session_is_fenced_and_rejoins_as_a_standby() {
    let _turn = TURN.lock().await;
    let Some(mut cluster) = Cluster::start(&[]) else {
        return;
    };
    let (old, old_epoch) = cluster.leader().await;
    let old_url = cluster.url(old);
    cluster.signal(old, nix::sys::signal::Signal::SIGSTOP);
    let others: Vec<usize> = cluster
        .running()
        .into_iter()
        .filter(|&i| i != old)
        .collect();
    // The others elect a new leader while the old one sleeps.
    let deadline = Instant::now() + ELECTION_WITHIN;
    let (new, new_epoch) = loop {
        let mut found = None;
        for &i in &others {
            if let Some(view) = cluster.election(i).await
                && view["leading"] == true
            {
                found = Some((i, view["epoch"].as_u64().expect("epoch")));
            }
        }
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no new leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(new_epoch > old_epoch);
    // A write sent to the paused leader waits in its socket; it wakes
    // believing it leads, with state from before.
    let pending = tokio::spawn(async move {
        client()
            .post(format!("{old_url}/v2/apps"))
            .header("Idempotency-Key", "while-stopped")
            .json(&json!({"id": "/stopped/app", "cmd": "sleep 1", "instances": 0}))
            .send()
            .await
            .map(|r| r.status())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.signal(old, nix::sys::signal::Signal::SIGCONT);
    let status = pending.await.expect("the request").expect("an answer");
    // Fenced (503) or passed on to the new leader once stepped down (201):
    // never written under the old epoch.
    assert!(
        status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::CREATED,
        "{status}"
    );
    let (leader, epoch) = cluster.leader().await;
    assert_eq!(
        (leader, epoch),
        (new, new_epoch),
        "the old leader rejoined as a standby"
    );
    cluster.converged().await;
    let counts = created(&cluster.url(new)).await;
    let expected = usize::from(status == StatusCode::CREATED);
    assert_eq!(counts.get("/stopped/app").copied().unwrap_or(0), expected);
    // Every election in the log came from a live leader, in order.
    let events: Vec<Value> =
        common::all_events(&client(), cluster.servers[new].as_ref().expect("new"))
            .await
            .into_iter()
            .filter(|e| e["type"] == "LeaderElected")
            .collect();
    let epochs: Vec<u64> = events
        .iter()
        .map(|e| e["epoch"].as_u64().expect("epoch"))
        .collect();
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{epochs:?}");
    assert_eq!(epochs.last(), Some(&new_epoch));
    cluster.stop_and_verify();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_zookeeper_leader_loses_no_acknowledged_write() {
    let _turn = TURN.lock().await;
    let Some(mut cluster) = Cluster::start(&[]) else {
        return;
    };
    cluster.leader().await;
    let urls = Arc::new(Mutex::new(urls_of(&cluster)));
    let writers = Writers::start(urls, 4);
    wait_until("writes", ELECTION_WITHIN, || async {
        writers.acked() >= 20
    })
    .await;
    let zk_leader = cluster.ensemble.leader().expect("a quorum leader");
    cluster.ensemble.kill(zk_leader);
    let before = writers.acked();
    wait_until(
        "writes after the quorum re-elected",
        ELECTION_WITHIN,
        || async { writers.acked() >= before + 20 },
    )
    .await;
    let acked = writers.stop().await;
    let (leader, _) = cluster.leader().await;
    cluster.converged().await;
    let counts = created(&cluster.url(leader)).await;
    for n in &acked {
        assert_eq!(counts.get(&format!("/w/a{n}")), Some(&1), "write {n}");
    }
    cluster.stop_and_verify();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_zookeeper_stops_the_leader_and_its_return_elects_one_without_restarts() {
    let _turn = TURN.lock().await;
    let Some(mut cluster) = Cluster::start(&[]) else {
        return;
    };
    let (leader, epoch) = cluster.leader().await;
    let url = cluster.url(leader);
    let http = client();
    let write = |id: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            http.post(format!("{url}/v2/apps"))
                .timeout(Duration::from_secs(10))
                .json(&json!({"id": id, "cmd": "sleep 1", "instances": 0}))
                .send()
                .await
                .map(|r| r.status())
        }
    };
    assert_eq!(
        write("/before").await.expect("answered"),
        StatusCode::CREATED
    );
    for i in 0..3 {
        cluster.ensemble.kill(i);
    }
    // The leader stops leading within its session; reads go on.
    wait_until("the leader steps down", ELECTION_WITHIN, || async {
        cluster
            .election(leader)
            .await
            .is_some_and(|v| v["leading"] == false)
    })
    .await;
    let refused = write("/during").await.expect("answered");
    assert_eq!(refused, StatusCode::SERVICE_UNAVAILABLE);
    let apps: Value = http
        .get(format!("{url}/v2/apps"))
        .send()
        .await
        .expect("a read")
        .json()
        .await
        .expect("json");
    assert_eq!(apps["apps"].as_array().map(Vec::len), Some(1), "{apps}");
    for i in 0..3 {
        cluster.ensemble.restart(i).expect("restarted");
    }
    cluster.ensemble.wait_serving().expect("a quorum again");
    let (_, next_epoch) = cluster.leader().await;
    assert!(next_epoch > epoch);
    wait_until("writes accepted again", ELECTION_WITHIN, || async {
        write("/after")
            .await
            .is_ok_and(|s| s == StatusCode::CREATED)
    })
    .await;
    let (leader, _) = cluster.leader().await;
    cluster.converged().await;
    let counts = created(&cluster.url(leader)).await;
    assert_eq!(counts.get("/before"), Some(&1));
    assert_eq!(counts.get("/during"), None);
    assert_eq!(counts.get("/after"), Some(&1));
    cluster.stop_and_verify();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standbys_serve_reads_and_streams_at_the_leaders_seqs_and_pass_writes_on() {
    let _turn = TURN.lock().await;
    let Some(mut cluster) = Cluster::start(&[]) else {
        return;
    };
    let (leader, _) = cluster.leader().await;
    let standby = (leader + 1) % 3;
    let http = client();
    let answer = http
        .post(format!("{}/v2/apps", cluster.url(standby)))
        .json(&json!({"id": "/via/standby", "cmd": "sleep 1", "instances": 0}))
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), StatusCode::CREATED);
    let head = cluster.converged().await;
    let read = http
        .get(format!("{}/v2/apps/via/standby", cluster.url(standby)))
        .send()
        .await
        .expect("read");
    assert_eq!(read.status(), StatusCode::OK);
    let seq: u64 = read.headers()["x-stride-seq"]
        .to_str()
        .expect("text")
        .parse()
        .expect("a seq");
    assert_eq!(seq, head);
    // Marathon's shapes name the leader on every instance.
    let expected = cluster.url(leader).trim_start_matches("http://").to_owned();
    for i in 0..3 {
        let leader_v2: Value = http
            .get(format!("{}/v2/leader", cluster.url(i)))
            .send()
            .await
            .expect("leader")
            .json()
            .await
            .expect("json");
        assert_eq!(leader_v2, json!({"leader": expected}));
        let info: Value = http
            .get(format!("{}/v2/info", cluster.url(i)))
            .send()
            .await
            .expect("info")
            .json()
            .await
            .expect("json");
        assert_eq!(info["leader"], json!(expected));
        assert_eq!(info["elected"], json!(i == leader));
        assert_eq!(info["marathon_config"]["ha"], json!(true));
    }
    // A standby's stream subscriber sees the leader's events, seq by seq,
    // as writes passed through that standby land.
    let mut ws = stream_client::subscribe(
        cluster.servers[standby].as_ref().expect("standby"),
        "from=1",
    )
    .await;
    for n in 0..5 {
        let answer = http
            .post(format!("{}/v2/apps", cluster.url(standby)))
            .json(&json!({"id": format!("/streamed/a{n}"), "cmd": "sleep 1", "instances": 0}))
            .send()
            .await
            .expect("answered");
        assert_eq!(answer.status(), StatusCode::CREATED);
    }
    let head = cluster.converged().await;
    let mut streamed = Vec::new();
    while streamed.last().and_then(|e: &Value| e["seq"].as_u64()) != Some(head) {
        streamed.extend(stream_client::read_until_caught_up(&mut ws).await);
    }
    let on_leader =
        common::all_events(&http, cluster.servers[leader].as_ref().expect("leader")).await;
    let on_standby =
        common::all_events(&http, cluster.servers[standby].as_ref().expect("standby")).await;
    assert_eq!(on_leader, on_standby);
    let ids = |events: &[Value]| {
        events
            .iter()
            .map(|e| (e["seq"].clone(), e["id"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&streamed), ids(&on_leader));
    cluster.stop_and_verify();
}

/// The app's running tasks by id, as `url` shows them.
async fn running_tasks(url: &str, app: &str) -> BTreeSet<String> {
    let answer: Value = match client()
        .get(format!("{url}/v2/apps{app}/tasks"))
        .send()
        .await
    {
        Ok(response) => response.json().await.unwrap_or_default(),
        Err(_) => return BTreeSet::new(),
    };
    answer["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect()
}

/// Every running instance answers a task's stdout from its sandbox.
async fn assert_task_files_answer(cluster: &Cluster, tasks: &BTreeSet<String>) {
    let task = tasks.first().expect("a task");
    for i in cluster.running() {
        let url = format!("{}/v1/tasks/{task}/files/stdout", cluster.url(i));
        let answer = client().get(&url).send().await.expect("answered");
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        assert_eq!(body["file"], "stdout", "{body}");
    }
}

/// Whether the real master has framework `id` connected and active.
async fn subscribed(master: &str, id: &str) -> bool {
    let Ok(response) = client()
        .get(format!("{master}/master/frameworks"))
        .send()
        .await
    else {
        return false;
    };
    let frameworks: Value = response.json().await.unwrap_or_default();
    frameworks["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["id"] == id && f["active"] == true && f["connected"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_real_mesos_a_new_leader_keeps_the_framework_and_its_tasks() {
    let _turn = TURN.lock().await;
    // Held to the end: the real master is this test's alone meanwhile.
    let Some(real) = common::real_master().await else {
        return;
    };
    let master = real.url.clone();
    let name = format!("stride-ha-{}", uuid::Uuid::new_v4());
    let Some(mut cluster) = Cluster::start(&["--master", &master, "--framework-name", &name])
    else {
        return;
    };
    let (mut leader, _) = cluster.leader().await;
    let http = client();
    let app = "/ha/sleep";
    let created = http
        .post(format!("{}/v2/apps", cluster.url((leader + 1) % 3)))
        .json(&json!({"id": app, "cmd": "sleep 1000", "instances": 2, "cpus": 0.01, "mem": 8}))
        .send()
        .await
        .expect("created");
    assert_eq!(created.status(), StatusCode::CREATED);
    let deadline = Instant::now() + Duration::from_secs(60);
    let tasks = loop {
        let tasks = running_tasks(&cluster.url(leader), app).await;
        if tasks.len() == 2 {
            break tasks;
        }
        assert!(Instant::now() < deadline, "two tasks never ran: {tasks:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Task files, read through the leader's subscription, answer on every
    // instance (a standby passes the read on).
    assert_task_files_answer(&cluster, &tasks).await;
    let info: Value = common::get_json(&http, &format!("{}/v2/info", cluster.url(leader))).await;
    let framework = info["frameworkId"]
        .as_str()
        .expect("a framework id")
        .to_owned();
    for round in 0..3 {
        cluster.kill(leader);
        let (next, _) = cluster.leader().await;
        leader = next;
        let url = cluster.url(leader);
        // The new leader subscribes as the same framework and keeps the tasks.
        wait_until("the framework resubscribed", ELECTION_WITHIN, || async {
            subscribed(&master, &framework).await
        })
        .await;
        let info: Value = common::get_json(&http, &format!("{url}/v2/info")).await;
        assert_eq!(info["frameworkId"], json!(framework), "round {round}");
        assert_eq!(running_tasks(&url, app).await, tasks, "round {round}");
        cluster.start_instance(
            (0..3)
                .find(|&i| cluster.servers[i].is_none())
                .expect("the killed one"),
        );
    }
    // Once the restarted instance knows the leader.
    cluster.leader().await;
    assert_task_files_answer(&cluster, &tasks).await;
    // Past a reconciliation, nothing was launched or killed again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = common::all_events(&http, cluster.servers[leader].as_ref().expect("leader")).await;
    let of = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(of("TaskLaunchRequested"), 2, "a task launched twice");
    assert_eq!(of("TaskKillRequested"), 0, "a task killed");
    let subscribed_as: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["type"] == "FrameworkSubscribed")
        .filter_map(|e| e["framework"].as_str())
        .collect();
    assert_eq!(subscribed_as, BTreeSet::from([framework.as_str()]));
    assert_eq!(running_tasks(&cluster.url(leader), app).await, tasks);
    // Leave the shared agent as found.
    let deleted = http
        .delete(format!("{}/v2/apps{app}", cluster.url(leader)))
        .send()
        .await
        .expect("deleted");
    assert!(deleted.status().is_success());
    wait_until("the tasks gone", Duration::from_secs(60), || async {
        !subscribed(&master, &framework).await || {
            let frameworks: Value =
                common::get_json(&http, &format!("{master}/master/frameworks")).await;
            frameworks["frameworks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|f| f["id"] == framework.as_str())
                .all(|f| f["tasks"].as_array().is_none_or(Vec::is_empty))
        }
    })
    .await;
    cluster.stop_and_verify();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_behind_the_trimmed_log_copies_it_from_a_peer() {
    let _turn = TURN.lock().await;
    let Some(mut cluster) = Cluster::start_some(&[], 2) else {
        return;
    };
    let (leader, _) = cluster.leader().await;
    let http = client();
    for n in 0..20 {
        let created = http
            .post(format!("{}/v2/apps", cluster.url(leader)))
            .header("Idempotency-Key", format!("early-{n}"))
            .json(&json!({"id": format!("/early/a{n}"), "cmd": "sleep 1", "instances": 0}))
            .send()
            .await
            .expect("created");
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    // The two running instances applied everything: the leader trims.
    cluster.trimmed().await;
    cluster.start_instance(2);
    let head = cluster.converged().await;
    let copied = created(&cluster.url(2)).await;
    assert_eq!(copied, created(&cluster.url(leader)).await);
    assert_eq!(copied.len(), 20);
    // Its idempotency records came along: a retry replays, appending nothing.
    let events = common::all_events(&http, cluster.servers[2].as_ref().expect("new")).await;
    assert_eq!(events.len() as u64, head);
    cluster.stop_and_verify();
    // Started alone on that store, it answers the retry from its own copy.
    let alone = Server::start(cluster.dirs[2].path(), &[]);
    let retried = http
        .post(alone.url("/v2/apps"))
        .header("Idempotency-Key", "early-3")
        .json(&json!({"id": "/early/a3", "cmd": "sleep 1", "instances": 0}))
        .send()
        .await
        .expect("retried");
    assert_eq!(retried.status(), StatusCode::CREATED);
    assert_eq!(common::all_events(&http, &alone).await.len() as u64, head);
}

/// `stride auth token create --name peers --role admin`: its secret.
fn peer_token(auth_file: &std::path::Path) -> String {
    let (ok, out, err) = common::run_stride(&[
        "auth",
        "token",
        "create",
        "--name",
        "peers",
        "--role",
        "admin",
        "--auth-file",
        auth_file.to_str().expect("a UTF-8 path"),
    ]);
    assert!(ok, "{err}");
    out.trim().to_owned()
}

/// HTTPS with a private CA (certificates made here, as tests/it/tls.rs
/// does) and an auth file: a write sent to a standby reaches the leader
/// over HTTPS with the client's own credentials; an instance behind the
/// trimmed log without the peer token, or with a wrong one, is refused and
/// says so; with the right one it copies the log over HTTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_https_with_auth_writes_pass_to_the_leader_and_catch_up_needs_the_peer_token() {
    let _turn = TURN.lock().await;
    let pki = crate::tls::Pki::new();
    let (auth_dir, auth_file) = common::users_file(&[], "observer");
    let token = peer_token(&auth_file);
    let token_file = auth_dir.path().join("peer-token");
    std::fs::write(&token_file, format!("{token}\n")).expect("written");
    let wrong_file = auth_dir.path().join("wrong-token");
    std::fs::write(&wrong_file, "stride_not-a-token-of-this-file\n").expect("written");
    let path = |p: &std::path::Path| p.to_str().expect("a UTF-8 path").to_owned();
    let secured = [
        "--auth-file".to_owned(),
        path(&auth_file),
        "--tls-cert".to_owned(),
        path(&pki.cert),
        "--tls-key".to_owned(),
        path(&pki.key),
        "--ca-file".to_owned(),
        path(&pki.ca),
    ];
    let mut extra: Vec<&str> = secured.iter().map(String::as_str).collect();
    let token_arg = path(&token_file);
    extra.extend(["--peer-token-file", &token_arg]);
    let Some(mut cluster) = Cluster::start_reading_with(&extra, 2, pki.client()) else {
        return;
    };
    let (leader, _) = cluster.leader().await;
    let standby = 1 - leader;
    assert!(cluster.url(standby).starts_with("https://"));
    let http = pki.client();
    // Passed on without the peer token: an anonymous write stays refused.
    let anonymous = http
        .post(format!("{}/v2/apps", cluster.url(standby)))
        .json(&json!({"id": "/anonymous", "cmd": "sleep 1", "instances": 0}))
        .send()
        .await
        .expect("answered");
    assert_eq!(anonymous.status(), StatusCode::FORBIDDEN);
    for n in 0..20 {
        let created = http
            .post(format!("{}/v2/apps", cluster.url(standby)))
            .bearer_auth(&token)
            .json(&json!({"id": format!("/tls/a{n}"), "cmd": "sleep 1", "instances": 0}))
            .send()
            .await
            .expect("answered");
        assert_eq!(
            created.status(),
            StatusCode::CREATED,
            "write {n} via the standby"
        );
    }
    cluster.trimmed().await;
    // The third instance lacks what ZooKeeper no longer holds, and each peer
    // refuses it the log: it stops, naming the flag.
    let base: Vec<String> = cluster
        .args()
        .into_iter()
        .take(4)
        .chain(secured.iter().cloned())
        .collect();
    for (peer_token, refusal) in [
        (
            None,
            "it refused a request without a token (this instance has no --peer-token-file) (403 Forbidden)",
        ),
        (
            Some(path(&wrong_file)),
            "it refused the token of --peer-token-file (401 Unauthorized)",
        ),
    ] {
        let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
        args.push("--no-mesos");
        if let Some(file) = &peer_token {
            args.extend(["--peer-token-file", file]);
        }
        let (mut lagging, log) = Server::start_logged(cluster.dirs[2].path(), &args);
        let status = lagging.exit_within(ELECTION_WITHIN);
        let text = log.text();
        assert!(status.is_some_and(|s| !s.success()), "{status:?}: {text}");
        assert!(text.contains(refusal), "{text}");
        assert!(
            text.contains("the replicated log was trimmed past this store"),
            "{text}"
        );
    }
    cluster.start_instance(2);
    cluster.converged().await;
    let copied = created_as_read_by(&http, &cluster.url(2)).await;
    assert_eq!(copied.len(), 20);
    assert_eq!(
        copied,
        created_as_read_by(&http, &cluster.url(leader)).await
    );
    cluster.stop_and_verify();
}

/// The seqs of the snapshots in a data directory (`snapshots/snap-<seq>.bin`).
fn snapshot_seqs(data_dir: &std::path::Path) -> Vec<u64> {
    let mut seqs: Vec<u64> = std::fs::read_dir(data_dir.join("snapshots"))
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("snap-")?
                .strip_suffix(".bin")?
                .parse()
                .ok()
        })
        .collect();
    seqs.sort_unstable();
    seqs
}

/// A standby snapshots what it applies, as the leader what it commits, so
/// its promotion or restart does not replay the whole log: restarted, it
/// loads from its newest snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_snapshots_what_it_applies_and_restarts_from_it() {
    let _turn = TURN.lock().await;
    let Some(mut cluster) = Cluster::start_some(&["--snapshot-every", "10"], 2) else {
        return;
    };
    let (leader, _) = cluster.leader().await;
    let standby = 1 - leader;
    let http = client();
    for n in 0..40 {
        let created = http
            .post(format!("{}/v2/apps", cluster.url(leader)))
            .json(&json!({"id": format!("/snap/a{n}"), "cmd": "sleep 1", "instances": 0}))
            .send()
            .await
            .expect("created");
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    let head = cluster.converged().await;
    let dir = cluster.dirs[standby].path().to_owned();
    wait_until("the standby snapshotted", ELECTION_WITHIN, || async {
        snapshot_seqs(&dir).last().is_some_and(|&seq| seq >= 10)
    })
    .await;
    assert_eq!(cluster.leader().await.0, leader, "the standby never led");
    cluster.signal(standby, nix::sys::signal::Signal::SIGTERM);
    let stopped = cluster.servers[standby]
        .as_mut()
        .expect("running")
        .exit_within(ELECTION_WITHIN);
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}");
    cluster.servers[standby] = None;
    let newest = *snapshot_seqs(&dir).last().expect("a snapshot");
    assert!(newest <= head);
    let mut args = cluster.args();
    args.push("--no-mesos".to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (restarted, log) = Server::start_logged(&dir, &args);
    let loaded = format!("state loaded from a snapshot; replaying the log after it seq={newest}");
    wait_until("the restart logged its load", ELECTION_WITHIN, || async {
        log.text().contains("state rebuilt")
    })
    .await;
    assert!(log.text().contains(&loaded), "{}", log.text());
    assert_eq!(
        common::all_events(&http, &restarted).await.len() as u64,
        head
    );
}
