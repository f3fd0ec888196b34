//! The reconciler end to end: the real binary, tasks as real processes on
//! `stride local-mesos` (its own process, so Stride can be SIGKILLed while
//! tasks run) and on the REAL Mesos 1.11 master from `../shared/real-mesos`.
//! Each test gets its own host port range, below Linux's ephemeral range.

use crate::support::ports::ports;
use crate::support::{
    LocalMesos, Server, all_events, answers_http, client, real_master, send_ok,
    wait_for_a_whole_activation, wait_until,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const HTTP_SERVER: &str = "exec python3 -m http.server $PORT0 --bind 127.0.0.1";

struct Stride {
    server: Server,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Stride {
    fn start(master: &str, framework: &str) -> Stride {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_with_mesos(
            dir.path(),
            &["--master", master, "--framework-name", framework],
        );
        Stride {
            server,
            http: client(),
            _dir: dir,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        send_ok(&self.http, &self.server, method, path, body).await
    }

    async fn get(&self, path: &str) -> Value {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn scale(&self, app: &str, instances: u32) {
        let body = json!({ "instances": instances });
        self.send(reqwest::Method::PUT, &format!("/v2/apps{app}"), Some(body))
            .await;
    }

    async fn tasks(&self, app: &str) -> Vec<Value> {
        let body = self.get(&format!("/v2/apps{app}/tasks")).await;
        body["tasks"].as_array().cloned().unwrap_or_default()
    }

    /// Host ports of the app's running tasks.
    async fn running_ports(&self, app: &str) -> BTreeSet<u64> {
        self.tasks(app)
            .await
            .iter()
            .filter(|t| t["state"] == "TASK_RUNNING")
            .filter_map(|t| t["ports"][0].as_u64())
            .collect()
    }

    /// The app's `/v2/queue` item (Marathon's shape, which has no key for
    /// why), with the `reason` `/v1/queue` gives in words.
    async fn queue_entry(&self, app: &str) -> Option<Value> {
        let queue = self.get("/v2/queue").await;
        let mut item = queue["queue"]
            .as_array()?
            .iter()
            .find(|q| q["app"]["id"] == app)
            .cloned()?;
        assert!(
            item.get("reason").is_none(),
            "Marathon's queue item: {item}"
        );
        let explained = self.get("/v1/queue").await;
        item["reason"] = explained["queue"]
            .as_array()?
            .iter()
            .find(|q| q["app"] == app)?["reason"]
            .clone();
        Some(item)
    }

    async fn deployments(&self) -> usize {
        self.get("/v2/deployments").await.as_array().unwrap().len()
    }

    /// Waits until exactly `n` tasks run and each answers HTTP.
    async fn wait_serving(&self, app: &str, n: usize) -> BTreeSet<u64> {
        wait_until(&format!("{n} tasks of {app} serving"), WAIT, || async {
            let ports = self.running_ports(app).await;
            if ports.len() != n || self.tasks(app).await.len() != n {
                return false;
            }
            for port in &ports {
                if !answers_http(*port).await {
                    return false;
                }
            }
            true
        })
        .await;
        self.running_ports(app).await
    }
}

/// The pids of processes serving HTTP on `port` (by command line).
fn server_pids(port: u64) -> Vec<i32> {
    let output = std::process::Command::new("pgrep")
        .args(["-f", &format!("http.server {port} ")])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn kill_9(pid: i32) {
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
}

fn web(id: &str, instances: u32) -> Value {
    json!({
        "id": id, "cmd": HTTP_SERVER, "instances": instances, "cpus": 0.05, "mem": 32,
        "backoffSeconds": 10, "taskKillGracePeriodSeconds": 1
    })
}

/// Create, scale up and down, a task killed from outside, delete: against
/// any master.
async fn lifecycle(stride: &Stride, app: &str) {
    stride
        .send(reqwest::Method::POST, "/v2/apps", Some(web(app, 3)))
        .await;
    stride.wait_serving(app, 3).await;
    wait_until("the create deployment to finish", WAIT, || async {
        stride.deployments().await == 0
    })
    .await;

    stride.scale(app, 5).await;
    let five = stride.wait_serving(app, 5).await;
    stride.scale(app, 1).await;
    let one = stride.wait_serving(app, 1).await;
    for port in five.difference(&one) {
        wait_until("a scaled-down task's process to exit", WAIT, || async {
            server_pids(*port).is_empty() && !answers_http(*port).await
        })
        .await;
    }

    // A task dies behind Stride's back: it is replaced, after a backoff
    // that /v2/queue shows.
    let victim = stride.tasks(app).await[0]["id"].clone();
    let port = *one.first().unwrap();
    for pid in server_pids(port) {
        kill_9(pid);
    }
    wait_until("the queue to show the backoff", WAIT, || async {
        stride.queue_entry(app).await.is_some_and(|q| {
            q["delay"]["timeLeftSeconds"].as_u64() > Some(0)
                && q["reason"].as_str().unwrap().contains("backoff")
                && q["count"] == 1
        })
    })
    .await;
    let failure = stride
        .get(&format!("/v2/apps{app}?embed=apps.lastTaskFailure"))
        .await;
    assert_eq!(failure["app"]["lastTaskFailure"]["taskId"], victim);
    stride.wait_serving(app, 1).await;
    let replacement = stride.tasks(app).await[0]["id"].clone();
    assert_ne!(replacement, victim);
    assert!(stride.queue_entry(app).await.is_none());

    let last = stride.running_ports(app).await;
    stride
        .send(reqwest::Method::DELETE, &format!("/v2/apps{app}"), None)
        .await;
    wait_until("every process of the app to be gone", WAIT, || async {
        let gone = last.iter().chain(&one).all(|p| server_pids(*p).is_empty());
        gone && stride.deployments().await == 0
    })
    .await;
    let events = all_events(&stride.http, &stride.server).await;
    let kinds = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    // 3 + 2 + the replacement; every launch recorded before it happened.
    assert_eq!(kinds("TaskLaunchRequested"), 6);
    assert_eq!(kinds("DeploymentFinished"), 4, "create, 2 scales, delete");
    // Running tasks chosen to stop leave load-balancer rotation first.
    assert!(
        events.iter().any(|e| e["type"] == "TaskDraining"
            && e["reason"].as_str().unwrap().contains("scaled down"))
    );
    assert!(
        events.iter().any(|e| e["type"] == "TaskKillRequested"
            && e["reason"] == "drained from every load balancer")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_run_scale_get_replaced_and_go_away_on_local_mesos() {
    let ports = ports(200);
    let mesos = LocalMesos::start(&["--ports", &ports.slice(0, 199)]);
    let stride = Stride::start(&mesos.url, "stride-e2e");
    lifecycle(&stride, "/e2e/web").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_run_scale_get_replaced_and_go_away_on_real_mesos() {
    let Some(master) = real_master().await else {
        return;
    };
    let name = format!("stride-e2e-{}", uuid::Uuid::new_v4());
    let stride = Stride::start(&master.url, &name);
    lifecycle(&stride, "/e2e/real").await;
    let framework = all_events(&stride.http, &stride.server)
        .await
        .iter()
        .find(|e| e["type"] == "FrameworkSubscribed")
        .map(|e| e["framework"].as_str().unwrap().to_owned())
        .unwrap();
    let _ = stride
        .http
        .post(format!("{}/master/teardown", master.url))
        .form(&[("frameworkId", framework)])
        .send()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_taken_on_the_only_agent_or_an_app_too_big_makes_apps_wait_with_a_reason() {
    let ports = ports(100);
    let mesos = LocalMesos::start(&["--ports", &ports.slice(0, 99), "--cpus", "2"]);
    let stride = Stride::start(&mesos.url, "stride-e2e-ports");
    let fixed = json!({
        "id": "/fixed", "cmd": HTTP_SERVER, "instances": 1, "cpus": 0.05, "mem": 16,
        "requirePorts": true, "portDefinitions": [{"port": ports.nth(50)}]
    });
    stride
        .send(reqwest::Method::POST, "/v2/apps", Some(fixed))
        .await;
    assert_eq!(
        stride.wait_serving("/fixed", 1).await,
        BTreeSet::from([u64::from(ports.nth(50))])
    );
    // A second instance would need the same host port on the same agent.
    stride.scale("/fixed", 2).await;
    // Another app wants that host port too, through a bridge mapping.
    let bridged = json!({
        "id": "/bridged", "instances": 1, "cpus": 0.05, "mem": 16,
        "container": {"type": "DOCKER", "docker": {"image": "nginx", "network": "BRIDGE"},
            "portMappings": [{"containerPort": 80, "hostPort": ports.nth(50)}]}
    });
    stride
        .send(reqwest::Method::POST, "/v2/apps", Some(bridged))
        .await;
    let big = json!({"id": "/big", "cmd": "sleep 1000", "instances": 1, "cpus": 64, "mem": 16});
    stride
        .send(reqwest::Method::POST, "/v2/apps", Some(big))
        .await;

    for (app, reason) in [
        ("/fixed", "InsufficientPorts"),
        ("/bridged", "InsufficientPorts"),
        ("/big", "InsufficientCpus"),
    ] {
        wait_until(&format!("{app} to wait for {reason}"), WAIT, || async {
            stride.queue_entry(app).await.is_some_and(|q| {
                // Marathon's funnel lists every reason; this one declined.
                let reasons = q["processedOffersSummary"]["rejectSummaryLastOffers"].clone();
                let declined =
                    reasons.as_array().unwrap().iter().any(|step| {
                        step["reason"] == reason && step["declined"].as_u64() > Some(0)
                    });
                q["count"] == 1 && q["reason"].as_str().unwrap().contains(reason) && declined
            })
        })
        .await;
    }
    assert_eq!(stride.tasks("/fixed").await.len(), 1);
    assert!(stride.tasks("/bridged").await.is_empty());
    assert!(stride.tasks("/big").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_hostname_spreads_tasks_over_three_agents() {
    let ports = ports(300);
    let mesos = LocalMesos::start(&[
        "--agents",
        "3",
        "--agent-hostname",
        "host-a,host-b,host-c",
        "--ports",
        &ports.slice(0, 299),
    ]);
    let stride = Stride::start(&mesos.url, "stride-e2e-unique");
    let app = json!({
        "id": "/spread", "cmd": "sleep 1000", "instances": 3, "cpus": 0.05, "mem": 16,
        "constraints": [["hostname", "UNIQUE"]]
    });
    stride
        .send(reqwest::Method::POST, "/v2/apps", Some(app))
        .await;
    wait_until("3 tasks running", WAIT, || async {
        let tasks = stride.tasks("/spread").await;
        tasks.len() == 3 && tasks.iter().all(|t| t["state"] == "TASK_RUNNING")
    })
    .await;
    let hosts: BTreeSet<String> = stride
        .tasks("/spread")
        .await
        .iter()
        .map(|t| t["host"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        hosts,
        BTreeSet::from(["host-a".into(), "host-b".into(), "host-c".into()])
    );
    stride.scale("/spread", 4).await;
    wait_until("the 4th to wait on the constraint", WAIT, || async {
        stride.queue_entry("/spread").await.is_some_and(|q| {
            q["reason"]
                .as_str()
                .unwrap()
                .contains("UnfulfilledConstraint")
        })
    })
    .await;
    assert_eq!(stride.tasks("/spread").await.len(), 3);
}

/// Tasks the local cluster runs for `framework`: (id, state).
async fn cluster_tasks(http: &reqwest::Client, master: &str) -> Vec<(String, String)> {
    let state: Value = http
        .get(format!("{master}/master/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["tasks"].as_array().unwrap().iter())
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Stride is SIGKILLed at a different point of a scale-up each round:
/// before, during or after its launches are recorded and accepted. After
/// each restart it must converge with no duplicate and no orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_scale_up_leaves_no_duplicate_and_no_orphan() {
    let ports = ports(400);
    let mesos = LocalMesos::start(&["--ports", &ports.slice(0, 399)]);
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--master",
        mesos.url.as_str(),
        "--framework-name",
        "e2e-kill",
    ];
    let http = client();
    let mut server = Server::start_with_mesos(dir.path(), &args);
    let app = json!({"id": "/many", "cmd": "sleep 1000", "instances": 1, "cpus": 0.01, "mem": 8});
    let created = http
        .post(server.url("/v2/apps"))
        .json(&app)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let mut wanted = 1;
    for kill_after_ms in [0, 5, 20, 60] {
        wanted += 8;
        let scaled = http
            .put(server.url("/v2/apps/many?force=true"))
            .json(&json!({ "instances": wanted }))
            .send()
            .await
            .unwrap();
        assert!(scaled.status().is_success());
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        server.kill();
        server = Server::start_with_mesos(dir.path(), &args);
        converged(&http, &server, &mesos.url, wanted).await;
    }
    let events = all_events(&http, &server).await;
    let frameworks: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["type"] == "FrameworkSubscribed")
        .map(|e| e["framework"].as_str().unwrap())
        .collect();
    assert_eq!(frameworks.len(), 1, "one framework across the restarts");
}

/// Exactly `wanted` tasks run, the same ones in Stride and in Mesos, and
/// nothing else runs.
async fn converged(http: &reqwest::Client, server: &Server, master: &str, wanted: usize) {
    let stride_tasks = || async {
        let body: Value = http
            .get(server.url("/v2/apps/many/tasks"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect::<BTreeSet<String>>()
    };
    wait_until(
        &format!("{wanted} tasks, alike in Stride and Mesos"),
        WAIT,
        || async {
            let all = cluster_tasks(http, master).await;
            let running: BTreeSet<String> = all
                .iter()
                .filter(|(_, state)| state == "TASK_RUNNING")
                .map(|(id, _)| id.clone())
                .collect();
            let live = all.iter().filter(|(_, s)| !is_terminal(s)).count();
            running.len() == wanted && live == wanted && stride_tasks().await == running
        },
    )
    .await;
}

fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "TASK_FINISHED"
            | "TASK_FAILED"
            | "TASK_KILLED"
            | "TASK_ERROR"
            | "TASK_LOST"
            | "TASK_DROPPED"
            | "TASK_GONE"
    )
}

/// A restart waits for `readinessChecks`: new tasks that run but are not
/// ready keep the old ones alive and the deployment open; once they answer
/// ready, the old ones go and the deployment finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_waits_for_readiness_checks() {
    let ports = ports(100);
    let mesos = LocalMesos::start(&["--ports", &ports.slice(0, 99)]);
    let stride = Stride::start(&mesos.url, "stride-e2e-ready");
    let flag = tempfile::tempdir().unwrap();
    let ready_file = flag.path().join("ready");
    // Serves /ready once the flag file exists (a symlink to it in the
    // served directory).
    let cmd = format!(
        "mkdir -p www && ln -sf {} www/ready && cd www && exec python3 -m http.server $PORT0 --bind 127.0.0.1",
        ready_file.display()
    );
    let app = json!({
        "id": "/ready", "cmd": cmd, "instances": 2, "cpus": 0.05, "mem": 16,
        "portDefinitions": [{"port": 0, "name": "http-api"}],
        "readinessChecks": [{"portName": "http-api", "path": "/ready", "intervalSeconds": 2, "timeoutSeconds": 1}]
    });
    std::fs::write(&ready_file, "yes").unwrap();
    stride
        .send(reqwest::Method::POST, "/v2/apps", Some(app))
        .await;
    wait_until("the create to finish once ready", WAIT, || async {
        stride.deployments().await == 0 && stride.running_ports("/ready").await.len() == 2
    })
    .await;
    let old: BTreeSet<String> = task_ids(&stride, "/ready").await;

    std::fs::remove_file(&ready_file).unwrap();
    stride
        .send(reqwest::Method::POST, "/v2/apps/ready/restart", None)
        .await;
    wait_until("the new tasks to run, not ready", WAIT, || async {
        stride.running_ports("/ready").await.len() == 4
    })
    .await;
    // The planner has planned over this state and not moved on without
    // readiness.
    wait_for_a_whole_activation(&stride.server).await;
    assert_eq!(stride.deployments().await, 1);
    let deployments = stride.get("/v2/deployments").await;
    let results = &deployments[0]["currentActions"][0]["readinessCheckResults"];
    assert!(
        results
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["ready"] == false),
        "{deployments}"
    );
    assert!(
        old.is_subset(&task_ids(&stride, "/ready").await),
        "old tasks still there"
    );

    std::fs::write(&ready_file, "yes").unwrap();
    wait_until("the restart to finish", WAIT, || async {
        stride.deployments().await == 0
    })
    .await;
    let now = task_ids(&stride, "/ready").await;
    assert_eq!(now.len(), 2);
    assert!(now.is_disjoint(&old), "only new tasks remain");
}

async fn task_ids(stride: &Stride, app: &str) -> BTreeSet<String> {
    stride
        .tasks(app)
        .await
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}
