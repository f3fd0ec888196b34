//! TaskInfo health checks, as the Mesos command executor runs them: COMMAND
//! (in the task's sandbox, with its environment), HTTP and TCP, reported as
//! TASK_RUNNING updates with `healthy` and
//! REASON_TASK_HEALTH_CHECK_STATUS_UPDATED, and a kill after
//! `consecutive_failures`.
//!
//! One scenario, two targets: the embedded local cluster, and a real Mesos
//! 1.11 master (`STRIDE_MESOS_MASTER`, else the one
//! `../shared/real-mesos/up.sh` starts on 127.0.0.1:5050). Where they
//! disagree, the real one is right.

use std::collections::HashMap;

use crate::support::ports::ports;
use crate::support::raw_scheduler::{
    EVENT_TIMEOUT, RawScheduler, command_task, framework_info, offered_ports,
};
use crate::support::real_master;
use serde_json::{Value, json};
use stride_local::{LocalCluster, LocalClusterConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_on_the_local_cluster() {
    let work = tempfile::tempdir().expect("tempdir");
    // Its own ports: tests run concurrently on this host, and a real
    // master's tasks use 31000-32000.
    let ports = ports(500);
    let config = LocalClusterConfig {
        work_dir: Some(work.path().to_owned()),
        ports: ports.arg().parse().expect("a port range"),
        ..LocalClusterConfig::default()
    };
    let cluster = LocalCluster::start(config).await.expect("cluster starts");
    scenario(&cluster.scheduler_url()).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_on_a_real_master() {
    let Some(master) = real_master().await else {
        return;
    };
    scenario(&format!(
        "{}/api/v1/scheduler",
        master.url.trim_end_matches('/')
    ))
    .await;
}

/// Every update of the scenario's tasks, in arrival order.
struct Updates {
    scheduler: RawScheduler,
    by_task: HashMap<String, Vec<Value>>,
}

impl Updates {
    /// Reads (and acknowledges) updates until `done` holds.
    async fn until(&mut self, what: &str, done: impl Fn(&HashMap<String, Vec<Value>>) -> bool) {
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        while !done(&self.by_task) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "no {what} in time; saw {:#?}",
                self.by_task
            );
            let Some(event) = self.scheduler.try_next_event(left).await else {
                continue;
            };
            if event["type"] == "UPDATE" {
                self.scheduler.acknowledge(&event).await;
                let status = event["update"]["status"].clone();
                let task = status["task_id"]["value"].as_str().unwrap_or_default();
                self.by_task
                    .entry(task.to_owned())
                    .or_default()
                    .push(status);
            }
        }
    }

    /// `(state, healthy)` of each update of `task`.
    fn steps(&self, task: &str) -> Vec<(String, Option<bool>)> {
        self.by_task
            .get(task)
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    s["state"].as_str().unwrap_or_default().to_owned(),
                    s["healthy"].as_bool(),
                )
            })
            .collect()
    }
}

fn has(updates: &HashMap<String, Vec<Value>>, task: &str, want: impl Fn(&Value) -> bool) -> bool {
    updates.get(task).is_some_and(|all| all.iter().any(want))
}

fn healthy(status: &Value) -> bool {
    status["healthy"] == true
}

fn with_check(mut task: Value, check: Value, env: Value) -> Value {
    task["health_check"] = check;
    task["command"]["environment"] = json!({ "variables": env });
    task
}

fn step(state: &str, healthy: Option<bool>) -> (String, Option<bool>) {
    (state.to_owned(), healthy)
}

async fn scenario(scheduler_url: &str) {
    let name = format!("stride-health-{}", uuid::Uuid::new_v4());
    // No failover timeout: if this test dies, the master kills its tasks.
    let mut scheduler = RawScheduler::subscribe(scheduler_url, framework_info(&name, 0.0)).await;
    let offer = scheduler.wait_for_offers().await.remove(0);
    let port = offered_ports(&offer, 1)[0];
    // The test flips this file to make a check fail; a task cannot.
    let flag_dir = tempfile::tempdir().expect("tempdir");
    let flag = flag_dir.path().join("healthy");
    std::fs::write(&flag, "").expect("flag file");
    let timing = |consecutive: u32, grace: f64| {
        json!({"delay_seconds": 0.5, "interval_seconds": 0.5, "timeout_seconds": 2.0,
            "grace_period_seconds": grace, "consecutive_failures": consecutive})
    };
    let check = |kind: Value, consecutive: u32, grace: f64| {
        let mut check = timing(consecutive, grace);
        for (key, value) in kind.as_object().expect("an object") {
            check[key] = value.clone();
        }
        check
    };
    // Real Mesos sets no PORT0; like Marathon, the task says it.
    let port_env = json!([{"name": "PORT0", "value": port.to_string()}]);
    let tasks = vec![
        with_check(
            command_task(
                &offer,
                "http",
                "exec python3 -m http.server $PORT0 --bind 127.0.0.1",
                &[port],
            ),
            check(
                json!({"type": "HTTP", "http": {"port": port, "path": "/"}}),
                3,
                10.0,
            ),
            port_env.clone(),
        ),
        with_check(
            command_task(&offer, "tcp", "sleep 1000", &[]),
            check(json!({"type": "TCP", "tcp": {"port": port}}), 3, 10.0),
            json!([]),
        ),
        with_check(
            command_task(&offer, "sandbox", "touch marker && exec sleep 1000", &[]),
            check(
                json!({"type": "COMMAND",
                    "command": {"value": "test -f marker && test \"$MARK\" = yes"}}),
                3,
                10.0,
            ),
            json!([{"name": "MARK", "value": "yes"}]),
        ),
        with_check(
            command_task(&offer, "flip", "sleep 1000", &[]),
            check(
                json!({"type": "COMMAND",
                    "command": {"value": format!("test -f {}", flag.display())}}),
                2,
                0.0,
            ),
            json!([]),
        ),
        with_check(
            command_task(&offer, "grace", "sleep 1000", &[]),
            check(
                json!({"type": "COMMAND", "command": {"value": "exit 1"}}),
                1,
                120.0,
            ),
            json!([]),
        ),
    ];
    scheduler.accept(&offer, tasks, 60.0).await;
    let mut updates = Updates {
        scheduler,
        by_task: HashMap::new(),
    };

    updates
        .until("healthy reports", |u| {
            ["http", "tcp", "sandbox", "flip"]
                .iter()
                .all(|task| has(u, task, healthy))
        })
        .await;
    std::fs::remove_file(&flag).expect("flip to failing");
    updates
        .until("a kill after two failures", |u| {
            has(u, "flip", |s| s["state"] == "TASK_KILLED")
        })
        .await;

    // Every failure past the grace period reports; the second kills.
    assert_eq!(
        updates.steps("flip"),
        [
            step("TASK_STARTING", None),
            step("TASK_RUNNING", None),
            step("TASK_RUNNING", Some(true)),
            step("TASK_RUNNING", Some(false)),
            step("TASK_RUNNING", Some(false)),
            step("TASK_KILLING", None),
            step("TASK_KILLED", Some(false)),
        ]
    );
    let flip = &updates.by_task["flip"];
    for health in &flip[2..5] {
        assert_eq!(health["reason"], "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED");
        assert_eq!(health["source"], "SOURCE_EXECUTOR");
        assert!(health["uuid"].is_string() && health["container_status"].is_object());
        assert!(health.get("message").is_none(), "{health}");
    }
    let killed = &flip[6];
    assert!(killed.get("reason").is_none(), "{killed}");
    assert_eq!(
        killed["message"],
        "Command terminated with signal Terminated"
    );

    // Healthy from the first check on: no unhealthy report in between.
    for task in ["http", "tcp", "sandbox"] {
        let health: Vec<Option<bool>> = updates
            .steps(task)
            .into_iter()
            .filter_map(|(_, healthy)| healthy)
            .map(Some)
            .collect();
        assert_eq!(health, [Some(true)], "{task}");
    }
    // Failures within the grace period say nothing.
    assert_eq!(
        updates.steps("grace"),
        [step("TASK_STARTING", None), step("TASK_RUNNING", None)]
    );

    // The master keeps the latest status of each run of one state.
    let master = scheduler_url.trim_end_matches("/api/v1/scheduler");
    let frameworks: Value = reqwest::get(format!("{master}/master/frameworks"))
        .await
        .expect("frameworks")
        .json()
        .await
        .expect("JSON");
    let framework = frameworks["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == name.as_str())
        .expect("our framework");
    let flip = framework["tasks"]
        .as_array()
        .into_iter()
        .chain(framework["completed_tasks"].as_array())
        .flatten()
        .find(|t| t["id"] == "flip")
        .expect("the flip task");
    let statuses: Vec<(&str, Option<bool>)> = flip["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .map(|s| {
            (
                s["state"].as_str().unwrap_or_default(),
                s["healthy"].as_bool(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("TASK_STARTING", None),
            ("TASK_RUNNING", Some(false)),
            ("TASK_KILLING", None),
            ("TASK_KILLED", Some(false)),
        ]
    );

    let (code, _) = updates.scheduler.call(json!({"type": "TEARDOWN"})).await;
    assert_eq!(code, 202, "TEARDOWN");
}
