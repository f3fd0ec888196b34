//! Zero downtime through the whole path, with real parts only: `stride
//! serve` against `stride local-mesos` (its own process, so Stride can die
//! while tasks run), tasks that are real HTTP servers each serving its own
//! id with an HTTP health check on it, the `stride lb haproxy` sidecar and
//! real HAProxy. Clients go through HAProxy's service port only.
//!
//! Ports: each test's own, from `support::ports`.

use crate::support;
use crate::support::lb::{HaproxyGuard, Sidecar};
use crate::support::real_parts;
use crate::support::{LocalMesos, Server, all_events, client, wait_until};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use stride_log::event::condition::Condition;
use stride_protocol::StateDocument;
use stride_protocol::state::StateView;
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(60);
/// Each task serves a file naming it; the health check reads that file.
const SERVE_ID: &str = "mkdir -p www && echo -n $MESOS_TASK_ID > www/id && cd www && exec python3 -m http.server $PORT0 --bind 127.0.0.1";
/// Requests each load phase sends at the least.
const PER_PHASE: u64 = 5_000;
/// Concurrent keep-alive clients in the load generator.
const CLIENTS: usize = 4;
/// Longer than any phase: the test ends lingering tasks itself.
const LINGER_SECONDS: u64 = 600;

/// One test's ports: its tasks', five service ports, the sidecar's.
struct Ports {
    tasks: support::ports::Ports,
    _front: support::ports::Ports,
    service: u16,
    http: u16,
    /// Stride's own port, fixed so a restarted Stride is found again (0:
    /// any, where it is not restarted).
    stride: u16,
}

impl Ports {
    fn new(tasks: u16, restarts_stride: bool) -> Ports {
        let front = support::ports::ports(7);
        Ports {
            tasks: support::ports::ports(tasks),
            service: front.nth(0),
            http: front.nth(5),
            stride: if restarts_stride { front.nth(6) } else { 0 },
            _front: front,
        }
    }
}

/// Stride, the local cluster, the sidecar and its HAProxy; dropped in
/// field order, HAProxy's processes killed whatever happens.
struct Cluster {
    sidecar: Sidecar,
    _haproxy: HaproxyGuard,
    server: Server,
    mesos: LocalMesos,
    ports: Ports,
    http: reqwest::Client,
    data: TempDir,
    _lb: TempDir,
}

impl Cluster {
    fn start(ports: Ports) -> Cluster {
        let mesos = LocalMesos::start(&["--ports", &ports.tasks.arg()]);
        let data = tempfile::tempdir().unwrap();
        let server = stride(data.path(), &mesos.url, &ports);
        let lb = tempfile::tempdir().unwrap();
        let sidecar = Sidecar::start(&server.url, lb.path(), ports.http);
        Cluster {
            _haproxy: HaproxyGuard(sidecar.master_socket()),
            sidecar,
            server,
            mesos,
            ports,
            http: client(),
            data,
            _lb: lb,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, self.server.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn state(&self) -> StateView {
        let answer = self.http.get(self.server.url("/v1/state")).send().await;
        answer.unwrap().json::<StateDocument>().await.unwrap().state
    }

    /// The app's live tasks by id, with their host port.
    async fn tasks(&self) -> BTreeMap<String, u16> {
        let state = self.state().await;
        state
            .tasks
            .iter()
            .filter(|(_, t)| !t.condition.is_terminal())
            .map(|(id, t)| (id.to_string(), t.ports[0] as u16))
            .collect()
    }

    /// Tasks that should take traffic: running, healthy, not on their way
    /// out. Read from Stride's state, not from the sidecar's reading of it.
    async fn ready(&self) -> BTreeMap<String, u16> {
        let state = self.state().await;
        state
            .tasks
            .iter()
            .filter(|(_, t)| {
                t.condition == Condition::Running
                    && t.healthy == Some(true)
                    && !t.kill_requested
                    && !t.draining
            })
            .map(|(id, t)| (id.to_string(), t.ports[0] as u16))
            .collect()
    }

    async fn deployments(&self) -> usize {
        let list = self
            .send(reqwest::Method::GET, "/v2/deployments", None)
            .await;
        list.as_array().unwrap().len()
    }

    /// Host ports of the servers HAProxy sends new requests to, from its
    /// Runtime API.
    async fn rotation(&self) -> BTreeSet<u16> {
        let socket = self.sidecar.config.with_extension("cfg.stats.sock");
        let mut api = stride_lb::runtime::RuntimeApi::new(&socket);
        let backend = format!("be_web_{}", self.ports.service);
        let servers = api
            .query(&format!("show servers state {backend}"))
            .await
            .unwrap();
        // Fields: ... 5 srv_op_state, 6 srv_admin_state ... 18 srv_port. Up
        // (op state 2, so in no maintenance) and not draining (admin flags
        // 0x08, 0x10); a slot once `disabled` in the file keeps flag 0x04.
        servers
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() > 18 && f[1] == backend && f[5] == "2")
            .filter(|f| f[6].parse::<u32>().unwrap() & 0x18 == 0)
            .map(|f| f[18].parse().unwrap())
            .collect()
    }

    /// Which tasks answer through HAProxy over `n` requests on fresh
    /// connections, and how many requests failed.
    async fn served(&self, n: usize) -> (BTreeSet<String>, usize) {
        let fresh = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut ids = BTreeSet::new();
        let mut failed = 0;
        for _ in 0..n {
            match get_id(&fresh, self.ports.service).await {
                Ok(id) => {
                    ids.insert(id);
                }
                Err(_) => failed += 1,
            }
        }
        (ids, failed)
    }

    /// Waits until HAProxy routes to exactly the ready tasks, `n` of them,
    /// and every request succeeds.
    async fn wait_serving(&self, n: usize) -> BTreeMap<String, u16> {
        wait_until(
            &format!("HAProxy to serve exactly the {n} ready tasks"),
            WAIT,
            || async {
                let ready = self.ready().await;
                if ready.len() != n || self.tasks().await.len() != n {
                    return false;
                }
                let ports: BTreeSet<u16> = ready.values().copied().collect();
                if self.rotation().await != ports {
                    return false;
                }
                let ids: BTreeSet<String> = ready.keys().cloned().collect();
                self.served(6 * n).await == (ids, 0)
            },
        )
        .await;
        self.ready().await
    }

    /// Waits until no deployment runs and the live tasks are `n`, none of
    /// them in `old`.
    /// Once `load` has sent a phase's worth of requests, SIGKILLs the
    /// processes of the tasks Stride is stopping (drained, out of rotation,
    /// lingering past SIGTERM) until the deployment is done.
    async fn end_lingering(&self, load: &Load) {
        wait_until("a phase's worth of requests", WAIT, || async {
            load.sent() >= PER_PHASE
        })
        .await;
        wait_until("the deployment to finish", WAIT, || async {
            let state = self.state().await;
            let stopping = state
                .tasks
                .values()
                .filter(|t| t.kill_requested && !t.condition.is_terminal());
            for port in stopping.flat_map(|t| t.ports.clone()) {
                for pid in u16::try_from(port).map(server_pids).unwrap_or_default() {
                    kill_9(pid);
                }
            }
            self.deployments().await == 0
        })
        .await;
    }

    async fn wait_deployed(&self, n: usize, old: &BTreeSet<String>) {
        wait_until("the deployment to finish", WAIT, || async {
            let tasks = self.tasks().await;
            self.deployments().await == 0
                && tasks.len() == n
                && tasks.keys().all(|id| !old.contains(id))
        })
        .await;
    }
}

/// `stride serve` against the local cluster, with this test's ports.
fn stride(data: &Path, master: &str, ports: &Ports) -> Server {
    let service = format!("{}-{}", ports.service, ports.service + 4);
    let listen = format!("127.0.0.1:{}", ports.stride);
    let extra = [
        "--master",
        master,
        "--service-ports",
        &service,
        "--stream-progress-interval",
        "200ms",
    ];
    Server::start_on(data, &listen, &extra)
}

/// The app as the deployment test runs it: its tasks ignore SIGTERM and
/// have a long kill grace period, so a stopped task lingers (still
/// answering) until the test SIGKILLs it, once enough requests went by:
/// each deployment lasts as long as the load needs, whatever the machine's
/// speed, and any request HAProxy still sent to a stopped task would fail.
fn lingering_web(ports: &Ports, instances: u32, env: Value) -> Value {
    let mut app = web(ports, instances, env);
    app["cmd"] = json!(format!("trap '' TERM; {SERVE_ID}"));
    app["taskKillGracePeriodSeconds"] = json!(LINGER_SECONDS);
    app
}

/// The app under test: real HTTP servers behind an HTTP health check as
/// Marathon users write one, `intervalSeconds: 1, timeoutSeconds: 1`
/// (`delaySeconds` would hold the first check back 15 s).
fn web(ports: &Ports, instances: u32, env: Value) -> Value {
    json!({
        "id": "/web", "cmd": SERVE_ID, "instances": instances, "cpus": 0.05, "mem": 32,
        "env": env, "portDefinitions": [{"port": ports.service}],
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"},
        "healthChecks": [{"protocol": "HTTP", "path": "/id", "portIndex": 0,
            "intervalSeconds": 1, "timeoutSeconds": 1, "delaySeconds": 0, "gracePeriodSeconds": 10,
            "maxConsecutiveFailures": 3}]
    })
}

/// One request through HAProxy: the answering task's id, or why not.
async fn get_id(client: &reqwest::Client, port: u16) -> Result<String, String> {
    let answer = client
        .get(format!("http://127.0.0.1:{port}/id"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = answer.status();
    let body = answer.text().await.map_err(|e| format!("{e:?}"))?;
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    Ok(body)
}

/// The processes serving HTTP on `port`, by command line.
fn server_pids(port: u16) -> Vec<i32> {
    let output = Command::new("pgrep")
        .args(["-f", &format!("http.server {port} ")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn kill_9(pid: i32) {
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
}

/// What a load phase saw.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    non_2xx: u64,
    errors: u64,
    /// The first few failures, verbatim.
    samples: Vec<String>,
    by_task: BTreeMap<String, u64>,
}

/// Keep-alive clients sending requests through HAProxy back to back until
/// stopped.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    workers: Vec<tokio::task::JoinHandle<Tally>>,
}

impl Load {
    fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let workers = (0..CLIENTS)
            .map(|_| {
                let (stop, sent) = (stop.clone(), sent.clone());
                tokio::spawn(async move {
                    // One client each, so each holds its own connection.
                    let client = reqwest::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .build()
                        .unwrap();
                    let mut tally = Tally::default();
                    while !stop.load(Ordering::Relaxed) {
                        match get_id(&client, port).await {
                            Ok(id) => {
                                tally.ok += 1;
                                *tally.by_task.entry(id).or_default() += 1;
                            }
                            Err(error) => {
                                if error.starts_with(|c: char| c.is_ascii_digit()) {
                                    tally.non_2xx += 1;
                                } else {
                                    tally.errors += 1;
                                }
                                if tally.samples.len() < 5 {
                                    tally.samples.push(error);
                                }
                            }
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    tally
                })
            })
            .collect();
        Load {
            stop,
            sent,
            workers,
        }
    }

    /// Requests sent so far.
    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Goes on until at least `PER_PHASE` requests were sent, then stops.
    async fn finish(self) -> Tally {
        wait_until(&format!("{PER_PHASE} requests"), WAIT, || async {
            self.sent.load(Ordering::Relaxed) >= PER_PHASE
        })
        .await;
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for worker in self.workers {
            let tally = worker.await.unwrap();
            total.ok += tally.ok;
            total.non_2xx += tally.non_2xx;
            total.errors += tally.errors;
            total.samples.extend(tally.samples);
            for (id, n) in tally.by_task {
                *total.by_task.entry(id).or_default() += n;
            }
        }
        total
    }
}

/// `report`, for a deployment: the requests while it ran are enough alone.
fn report_deployment(phase: &str, during: u64, tally: &Tally) {
    report(phase, during, tally);
    assert!(
        during >= PER_PHASE,
        "{phase}: only {during} requests while the deployment ran"
    );
}

/// Prints a phase's counts and checks none failed; `during` were sent
/// before the change was complete.
fn report(phase: &str, during: u64, tally: &Tally) {
    println!(
        "{phase}: {} requests ({during} while it ran), {} ok, {} non-2xx, {} errors, over {} tasks",
        tally.ok + tally.non_2xx + tally.errors,
        tally.ok,
        tally.non_2xx,
        tally.errors,
        tally.by_task.len()
    );
    assert_eq!(
        (tally.non_2xx, tally.errors),
        (0, 0),
        "{phase}: failed requests, e.g. {:?}",
        tally.samples
    );
    assert!(tally.ok >= PER_PHASE, "{phase}: {tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_running_healthy_tasks_get_traffic() {
    if real_parts::haproxy().is_none() {
        return;
    }
    let cluster = Cluster::start(Ports::new(150, false));
    cluster
        .send(
            reqwest::Method::POST,
            "/v2/apps",
            Some(web(&cluster.ports, 3, json!({}))),
        )
        .await;
    let three = cluster.wait_serving(3).await;

    cluster
        .send(
            reqwest::Method::PUT,
            "/v2/apps/web",
            Some(json!({"instances": 6})),
        )
        .await;
    let six = cluster.wait_serving(6).await;
    assert!(
        three.keys().all(|id| six.contains_key(id)),
        "scaling up keeps the first three"
    );

    // A task dies behind Stride's back: out of rotation, and replaced.
    let (victim, port) = six.iter().next().map(|(i, p)| (i.clone(), *p)).unwrap();
    let load = Load::start(cluster.ports.service);
    for pid in server_pids(port) {
        kill_9(pid);
    }
    wait_until("the killed task to be gone", WAIT, || async {
        !cluster.tasks().await.contains_key(&victim)
    })
    .await;
    let during = load.sent();
    let crash = load.finish().await;
    // Only what the process had in hand when it died can fail, at most
    // one request per client; the rest go to other servers.
    println!(
        "a task killed: {} requests ({during} before Stride saw it end), {} ok, {} non-2xx, {} errors",
        crash.ok + crash.non_2xx + crash.errors,
        crash.ok,
        crash.non_2xx,
        crash.errors
    );
    assert_eq!(crash.non_2xx, 0, "{crash:?}");
    assert!(crash.errors <= CLIENTS as u64, "{crash:?}");
    let replaced = cluster.wait_serving(6).await;
    assert!(!replaced.contains_key(&victim));

    // A task starts failing its check (its file is gone: 404): out of
    // rotation, then killed and replaced.
    let (sick, port) = replaced
        .iter()
        .next()
        .map(|(i, p)| (i.clone(), *p))
        .unwrap();
    let pid = server_pids(port)[0];
    let www = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    std::fs::remove_file(www.join("id")).unwrap();
    wait_until("the failing task to leave rotation", WAIT, || async {
        !cluster.rotation().await.contains(&port)
    })
    .await;
    wait_until("the failing task to be gone", WAIT, || async {
        !cluster.tasks().await.contains_key(&sick)
    })
    .await;
    let healed = cluster.wait_serving(6).await;
    assert!(!healed.contains_key(&sick));
    let events = all_events(&cluster.http, &cluster.server).await;
    let of_sick = |kind: &str, healthy: Value| {
        events
            .iter()
            .find(|e| e["type"] == kind && e["task"] == sick.as_str() && e["healthy"] == healthy)
            .unwrap_or_else(|| panic!("{kind} for {sick}"))
            .clone()
    };
    let unhealthy = of_sick("HealthChanged", json!(false));
    let kill = of_sick("TaskKillRequested", Value::Null);
    assert!(unhealthy["seq"].as_u64() < kill["seq"].as_u64());
    assert!(
        kill["reason"]
            .as_str()
            .unwrap()
            .starts_with("health check failed 3 times"),
        "{kill}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_drop_no_request() {
    if real_parts::haproxy().is_none() {
        return;
    }
    let cluster = Cluster::start(Ports::new(180, false));
    let ports = &cluster.ports;
    cluster
        .send(
            reqwest::Method::POST,
            "/v2/apps",
            Some(lingering_web(ports, 6, json!({}))),
        )
        .await;
    let first = cluster.wait_serving(6).await;
    cluster.wait_deployed(6, &BTreeSet::new()).await;

    let old: BTreeSet<String> = first.keys().cloned().collect();
    let load = Load::start(ports.service);
    cluster
        .send(reqwest::Method::POST, "/v2/apps/web/restart", None)
        .await;
    // Meanwhile new apps come, each a new frontend: a reload under load.
    for i in 0..3 {
        let reloads = cluster.sidecar.status().await["reloads"].clone();
        let other = json!({"id": format!("/other{i}"), "cmd": "sleep 1000", "instances": 0,
            "portDefinitions": [{"port": 0}], "labels": {"HAPROXY_GROUP": "external"}});
        cluster
            .send(reqwest::Method::POST, "/v2/apps", Some(other))
            .await;
        wait_until("the sidecar to reload HAProxy", WAIT, || async {
            cluster.sidecar.status().await["reloads"] != reloads
        })
        .await;
    }
    cluster.end_lingering(&load).await;
    cluster.wait_deployed(6, &old).await;
    let during = load.sent();
    let restarted = load.finish().await;
    report_deployment("rolling restart of 6", during, &restarted);
    let new = cluster.wait_serving(6).await;
    assert!(new.keys().all(|id| restarted.by_task.contains_key(id)));

    let old: BTreeSet<String> = new.keys().cloned().collect();
    let load = Load::start(ports.service);
    cluster
        .send(
            reqwest::Method::PUT,
            "/v2/apps/web",
            Some(json!({"instances": 2})),
        )
        .await;
    cluster.end_lingering(&load).await;
    wait_until("the scale down to finish", WAIT, || async {
        cluster.deployments().await == 0 && cluster.tasks().await.len() == 2
    })
    .await;
    let during = load.sent();
    let scaled = load.finish().await;
    report_deployment("scale 6 -> 2", during, &scaled);
    let two = cluster.wait_serving(2).await;
    assert!(two.keys().all(|id| old.contains(id)));

    let old: BTreeSet<String> = two.keys().cloned().collect();
    let load = Load::start(ports.service);
    cluster
        .send(
            reqwest::Method::PUT,
            "/v2/apps/web",
            Some(lingering_web(ports, 2, json!({"VERSION": "2"}))),
        )
        .await;
    cluster.end_lingering(&load).await;
    cluster.wait_deployed(2, &old).await;
    let during = load.sent();
    let upgraded = load.finish().await;
    report_deployment("upgrade of 2 (new env)", during, &upgraded);
    let new = cluster.wait_serving(2).await;
    assert!(new.keys().all(|id| upgraded.by_task.contains_key(id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stride_killed_haproxy_keeps_serving_tasks_and_the_sidecar_resumes() {
    if real_parts::haproxy().is_none() {
        return;
    }
    let mut cluster = Cluster::start(Ports::new(170, true));
    cluster
        .send(
            reqwest::Method::POST,
            "/v2/apps",
            Some(web(&cluster.ports, 2, json!({}))),
        )
        .await;
    let two = cluster.wait_serving(2).await;

    cluster.server.kill();
    wait_until("the sidecar to notice", WAIT, || async {
        cluster.sidecar.status().await["connected"] == false
    })
    .await;
    let load = Load::start(cluster.ports.service);
    let without_stride = load.finish().await;
    report("Stride down", without_stride.ok, &without_stride);
    let ids: BTreeSet<&String> = without_stride.by_task.keys().collect();
    assert_eq!(ids, two.keys().collect(), "the running tasks, all of them");

    cluster.server = stride(cluster.data.path(), &cluster.mesos.url, &cluster.ports);
    cluster
        .send(
            reqwest::Method::PUT,
            "/v2/apps/web",
            Some(json!({"instances": 4})),
        )
        .await;
    let four = cluster.wait_serving(4).await;
    assert!(two.keys().all(|id| four.contains_key(id)));
    let status = cluster.sidecar.status().await;
    assert!(status["reconnects"].as_u64() >= Some(1), "{status}");
    assert_eq!(
        status["stateFetches"], 1,
        "resumed the stream, never re-read the state: {status}"
    );
}
