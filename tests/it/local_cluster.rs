//! The embedded local cluster against the Mesos v1 scheduler contract, with
//! raw HTTP: each test starts its own cluster on port 0 with a temp work
//! dir, and shuts it down (killing every task process) at the end.

use std::time::Duration;

use crate::support::ports::{Ports, ports};
use crate::support::raw_scheduler::{
    RawScheduler, command_task, framework_info, offered_ports, scalar,
};
use crate::support::{answers_http, holds_within};
use serde_json::{Value, json};
use stride_local::{LocalCluster, LocalClusterConfig, PortRange};

struct TestCluster {
    cluster: LocalCluster,
    /// The task ports it offers, where the test's tasks bind them.
    ports: Option<Ports>,
    _work_dir: tempfile::TempDir,
}

impl TestCluster {
    async fn start(config: LocalClusterConfig) -> Self {
        // `RUST_LOG=stride=debug` shows the cluster's side of a failure.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let work_dir = tempfile::tempdir().expect("tempdir");
        let config = LocalClusterConfig {
            work_dir: Some(work_dir.path().to_path_buf()),
            ..config
        };
        let cluster = LocalCluster::start(config).await.expect("cluster starts");
        Self {
            cluster,
            ports: None,
            _work_dir: work_dir,
        }
    }

    /// Tests run in parallel on one host, so each whose tasks bind ports
    /// gets its own (`support::ports`).
    async fn with_ports() -> Self {
        Self::with_ports_and(LocalClusterConfig::default()).await
    }

    async fn with_ports_and(config: LocalClusterConfig) -> Self {
        let ports = ports(500);
        let range = PortRange {
            begin: ports.first().into(),
            end: ports.last().into(),
        };
        let mut cluster = Self::start(LocalClusterConfig {
            ports: range,
            ..config
        })
        .await;
        cluster.ports = Some(ports);
        cluster
    }

    fn scheduler_url(&self) -> String {
        self.cluster.scheduler_url()
    }

    async fn state(&self) -> Value {
        reqwest::get(format!("{}/master/state", self.cluster.url()))
            .await
            .expect("state")
            .json()
            .await
            .expect("state JSON")
    }

    async fn shutdown(self) {
        self.cluster.shutdown().await;
    }
}

#[tokio::test]
async fn subscribe_streams_subscribed_heartbeat_and_an_offer_of_the_whole_agent() {
    let cluster = TestCluster::start(LocalClusterConfig::default()).await;
    let mut scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    assert_eq!(scheduler.status.as_u16(), 200);
    assert_eq!(scheduler.headers["content-type"], "application/json");
    assert_eq!(scheduler.headers["transfer-encoding"], "chunked");
    assert_eq!(scheduler.stream_id.len(), 36);
    assert_eq!(scheduler.next_event().await, json!({"type": "HEARTBEAT"}));
    let offers = scheduler.wait_for_offers().await;
    assert_eq!(offers.len(), 1);
    let offer = &offers[0];
    assert_eq!(offer["hostname"], "localhost");
    assert_eq!(
        offer["framework_id"]["value"],
        scheduler.framework_id.as_str()
    );
    assert_eq!(offer["allocation_info"]["role"], "*");
    assert_eq!(scalar(offer, "cpus"), 4.0);
    assert_eq!(scalar(offer, "mem"), 8192.0);
    assert_eq!(scalar(offer, "disk"), 20480.0);
    assert_eq!(
        offer["resources"][0]["ranges"]["range"],
        json!([{"begin": 31000, "end": 32000}])
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn bad_calls_get_the_real_masters_status_codes_and_texts() {
    let cluster = TestCluster::with_ports().await;
    let scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    let revive = json!({"type": "REVIVE", "framework_id": {"value": scheduler.framework_id}});
    let (code, body) = scheduler.post_raw(&revive.to_string(), None).await;
    assert_eq!(code, 400);
    assert_eq!(
        body,
        "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
    );
    let wrong = "00000000-0000-0000-0000-000000000000";
    let (code, body) = scheduler.post_raw(&revive.to_string(), Some(wrong)).await;
    assert_eq!(code, 400);
    assert_eq!(
        body,
        format!(
            "The stream ID '{wrong}' included in this request didn't match the stream ID \
             currently associated with framework ID {}",
            scheduler.framework_id
        )
    );
    let (code, body) = scheduler
        .post_raw("{not json", Some(&scheduler.stream_id))
        .await;
    assert_eq!(code, 400);
    assert!(
        body.starts_with("Failed to parse body into JSON: "),
        "{body}"
    );
    let unknown = json!({"type": "REVIVE", "framework_id": {"value": "nope"}});
    let (code, body) = scheduler.post_raw(&unknown.to_string(), Some("x")).await;
    assert_eq!((code, body.as_str()), (400, "Framework cannot be found"));
    let subscribe =
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info("t", 1.0)}});
    let (code, body) = scheduler.post_raw(&subscribe.to_string(), Some("x")).await;
    assert_eq!(
        (code, body.as_str()),
        (
            400,
            "Subscribe calls should not include the 'Mesos-Stream-Id' header"
        )
    );
    let text = scheduler
        .http
        .post(&scheduler.url)
        .header("Content-Type", "text/plain")
        .body(revive.to_string())
        .send()
        .await
        .expect("call");
    assert_eq!(text.status().as_u16(), 415);
    let get = scheduler
        .http
        .get(&scheduler.url)
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status().as_u16(), 405);
    let (code, body) = scheduler.call(revive).await;
    assert_eq!((code, body.as_str()), (202, ""));
    cluster.shutdown().await;
}

#[tokio::test]
async fn tasks_run_as_processes_serve_http_exit_and_get_killed() {
    let cluster = TestCluster::with_ports().await;
    let mut scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    let offer = scheduler.wait_for_offers().await.remove(0);
    let ports = offered_ports(&offer, 3);
    let server = "exec python3 -m http.server $PORT0 --bind 127.0.0.1";
    let mut tasks: Vec<Value> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| command_task(&offer, &format!("web-{i}"), server, &[*port]))
        .collect();
    tasks.push(command_task(
        &offer,
        "fails",
        "echo failing >&2; exit 1",
        &[],
    ));
    tasks.push(command_task(
        &offer,
        "env",
        "echo \"$MESOS_TASK_ID $HOST $MESOS_SANDBOX\"; pwd",
        &[],
    ));
    scheduler.accept(&offer, tasks, 5.0).await;

    for i in 0..3 {
        let task_id = format!("web-{i}");
        let starting = scheduler.wait_for_state(&task_id, "TASK_STARTING").await;
        assert_eq!(starting["source"], "SOURCE_EXECUTOR");
        assert!(starting["uuid"].is_string());
        let running = scheduler.wait_for_state(&task_id, "TASK_RUNNING").await;
        assert_eq!(
            running["container_status"]["network_infos"][0]["ip_addresses"][0]["ip_address"],
            "127.0.0.1"
        );
    }
    for port in &ports {
        let port = *port;
        assert!(
            holds_within(Duration::from_secs(15), || answers_http(port)).await,
            "task on port {port} answers HTTP"
        );
    }
    let failed = scheduler.wait_for_state("fails", "TASK_FAILED").await;
    assert_eq!(failed["message"], "Command exited with status 1");
    let finished = scheduler.wait_for_state("env", "TASK_FINISHED").await;
    assert_eq!(finished["message"], "Command exited with status 0");

    scheduler.kill("web-0").await;
    let killing = scheduler.wait_for_state("web-0", "TASK_KILLING").await;
    assert_eq!(killing["source"], "SOURCE_EXECUTOR");
    let killed = scheduler.wait_for_state("web-0", "TASK_KILLED").await;
    assert_eq!(
        killed["message"],
        "Command terminated with signal Terminated"
    );
    assert!(!answers_http(ports[0]).await);
    assert!(answers_http(ports[1]).await);

    let state = cluster.state().await;
    let framework = &state["frameworks"][0];
    let running: Vec<&str> = framework["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(running.len(), 2, "{running:?}");
    let completed = framework["completed_tasks"].as_array().expect("completed");
    assert_eq!(completed.len(), 3);
    assert_eq!(
        state["slaves"][0]["used_resources"]["ports"],
        format!("[{}-{}]", ports[1], ports[2])
    );

    // The sandbox holds the task's output and is its working directory.
    let sandbox = cluster
        ._work_dir
        .path()
        .join("slaves")
        .read_dir()
        .expect("agent dir")
        .next()
        .expect("one agent")
        .expect("entry")
        .path();
    let executors = sandbox
        .join("frameworks")
        .join(&scheduler.framework_id)
        .join("executors/env/runs");
    let run = executors
        .read_dir()
        .expect("runs")
        .next()
        .expect("run")
        .expect("entry")
        .path();
    let stdout = std::fs::read_to_string(run.join("stdout")).expect("stdout");
    let run_dir = run.display().to_string();
    assert_eq!(stdout, format!("env localhost {run_dir}\n{run_dir}\n"));

    // TEARDOWN kills the rest.
    let (code, _) = scheduler.call(json!({"type": "TEARDOWN"})).await;
    assert_eq!(code, 202);
    for port in &ports[1..] {
        let port = *port;
        assert!(
            holds_within(Duration::from_secs(10), || async move {
                !answers_http(port).await
            })
            .await
        );
    }
    let state = cluster.state().await;
    assert_eq!(state["frameworks"], json!([]));
    assert_eq!(
        state["completed_frameworks"][0]["id"],
        scheduler.framework_id.as_str()
    );
    cluster.shutdown().await;
}

fn is_reconciliation(event: &Value) -> bool {
    event["update"]["status"]["reason"] == "REASON_RECONCILIATION"
}

#[tokio::test]
async fn reconciliation_answers_from_the_task_table() {
    let cluster = TestCluster::with_ports().await;
    let mut scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    let offer = scheduler.wait_for_offers().await.remove(0);
    let agent_id = offer["agent_id"].clone();
    let tasks = vec![
        command_task(&offer, "sleeper", "sleep 60", &[]),
        command_task(&offer, "quick", "exit 0", &[]),
    ];
    scheduler.accept(&offer, tasks, 5.0).await;
    scheduler.wait_for_state("sleeper", "TASK_RUNNING").await;
    scheduler.wait_for_state("quick", "TASK_FINISHED").await;

    let (code, _) = scheduler
        .call(json!({"type": "RECONCILE", "reconcile": {"tasks": [
            {"task_id": {"value": "sleeper"}},
            {"task_id": {"value": "quick"}, "agent_id": agent_id},
            {"task_id": {"value": "unknown-with-agent"}, "agent_id": agent_id},
            {"task_id": {"value": "unknown-no-agent"}},
            {"task_id": {"value": "unknown-bad-agent"}, "agent_id": {"value": "no-such-agent-S9"}},
        ]}}))
        .await;
    assert_eq!(code, 202);
    let mut answers = Vec::new();
    while answers.len() < 5 {
        let event = scheduler.wait_for(false, is_reconciliation).await;
        answers.push(event["update"]["status"].clone());
    }
    for answer in &answers {
        assert_eq!(answer["reason"], "REASON_RECONCILIATION");
        assert_eq!(answer["source"], "SOURCE_MASTER");
        assert!(answer.get("uuid").is_none(), "{answer}");
    }
    let by_id = |id: &str| {
        answers
            .iter()
            .find(|a| a["task_id"]["value"] == id)
            .expect(id)
            .clone()
    };
    assert_eq!(by_id("sleeper")["state"], "TASK_RUNNING");
    assert_eq!(
        by_id("sleeper")["message"],
        "Reconciliation: Latest task state"
    );
    assert!(by_id("sleeper")["container_status"]["executor_pid"].is_u64());
    assert_eq!(by_id("quick")["state"], "TASK_GONE");
    assert_eq!(
        by_id("quick")["message"],
        "Reconciliation: Task is unknown to the agent"
    );
    assert_eq!(by_id("unknown-with-agent")["state"], "TASK_GONE");
    assert_eq!(by_id("unknown-no-agent")["state"], "TASK_UNKNOWN");
    assert_eq!(
        by_id("unknown-no-agent")["message"],
        "Reconciliation: Task is unknown"
    );
    assert!(by_id("unknown-no-agent").get("agent_id").is_none());
    assert_eq!(by_id("unknown-bad-agent")["state"], "TASK_UNKNOWN");

    let (code, _) = scheduler
        .call(json!({"type": "RECONCILE", "reconcile": {}}))
        .await;
    assert_eq!(code, 202);
    let implicit = scheduler.wait_for(false, is_reconciliation).await;
    assert_eq!(implicit["update"]["status"]["task_id"]["value"], "sleeper");
    assert_eq!(implicit["update"]["status"]["state"], "TASK_RUNNING");
    assert!(
        scheduler
            .try_next_event(Duration::from_millis(300))
            .await
            .is_none_or(|e| e["type"] != "UPDATE")
    );

    scheduler.kill("never-launched").await;
    let answer = scheduler.wait_for(false, is_reconciliation).await;
    let status = &answer["update"]["status"];
    assert_eq!(status["state"], "TASK_UNKNOWN");
    assert_eq!(status["message"], "Reconciliation: Task is unknown");
    cluster.shutdown().await;
}

#[tokio::test]
async fn updates_are_resent_until_acknowledged_and_queue_behind_each_other() {
    let config = LocalClusterConfig {
        status_update_retry_secs: 0.3,
        ..LocalClusterConfig::default()
    };
    let cluster = TestCluster::start(config).await;
    let mut scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    let offer = scheduler.wait_for_offers().await.remove(0);
    scheduler
        .accept(
            &offer,
            vec![command_task(&offer, "s", "sleep 60", &[])],
            5.0,
        )
        .await;
    let is_update = |e: &Value| e["type"] == "UPDATE";
    let first = scheduler.wait_for(false, is_update).await;
    assert_eq!(first["update"]["status"]["state"], "TASK_STARTING");
    // Not acknowledged: the same update comes again, and RUNNING waits.
    let again = scheduler.wait_for(false, is_update).await;
    assert_eq!(again, first);
    let third = scheduler.wait_for(false, is_update).await;
    assert_eq!(third, first);
    scheduler.acknowledge(&first).await;
    let running = scheduler.wait_for(false, is_update).await;
    assert_eq!(running["update"]["status"]["state"], "TASK_RUNNING");
    assert_ne!(
        running["update"]["status"]["uuid"],
        first["update"]["status"]["uuid"]
    );
    // A duplicate acknowledgement is accepted and changes nothing.
    scheduler.acknowledge(&first).await;
    scheduler.acknowledge(&running).await;
    assert!(
        scheduler
            .try_next_event(Duration::from_millis(800))
            .await
            .is_none_or(|e| e["type"] != "UPDATE")
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn failover_keeps_tasks_and_retires_the_old_stream_id() {
    let cluster = TestCluster::with_ports().await;
    let mut first =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    let offer = first.wait_for_offers().await.remove(0);
    let port = offered_ports(&offer, 1)[0];
    let server = "exec python3 -m http.server $PORT0 --bind 127.0.0.1";
    first
        .accept(
            &offer,
            vec![command_task(&offer, "web", server, &[port])],
            5.0,
        )
        .await;
    first.wait_for_state("web", "TASK_RUNNING").await;
    assert!(holds_within(Duration::from_secs(15), || answers_http(port)).await);
    let old_stream = first.stream_id.clone();
    let framework_id = first.framework_id.clone();
    drop(first);

    let disconnected = holds_within(Duration::from_secs(5), || async {
        cluster.state().await["frameworks"][0]["connected"] == false
    })
    .await;
    assert!(disconnected, "the master notices the closed stream");
    let mut info = framework_info("t", 60.0);
    info["id"] = json!({"value": framework_id});
    let mut second = RawScheduler::subscribe(&cluster.scheduler_url(), info).await;
    assert_eq!(second.framework_id, framework_id);
    assert_ne!(second.stream_id, old_stream);
    let revive = json!({"type": "REVIVE", "framework_id": {"value": framework_id}});
    let (code, body) = second
        .post_raw(&revive.to_string(), Some(&old_stream))
        .await;
    assert_eq!(code, 400);
    assert!(
        body.starts_with(&format!("The stream ID '{old_stream}' included")),
        "{body}"
    );
    assert!(answers_http(port).await, "the task survived the failover");
    let (code, _) = second
        .call(json!({"type": "RECONCILE", "reconcile": {}}))
        .await;
    assert_eq!(code, 202);
    let status = second.wait_for_state("web", "TASK_RUNNING").await;
    assert_eq!(status["reason"], "REASON_RECONCILIATION");
    cluster.shutdown().await;
    assert!(!answers_http(port).await, "shutdown kills every task");
}

#[tokio::test]
async fn a_second_subscription_takes_over_and_the_first_gets_an_error() {
    let cluster = TestCluster::with_ports().await;
    let mut first =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    let mut info = framework_info("t", 60.0);
    info["id"] = json!({"value": first.framework_id});
    let second = RawScheduler::subscribe(&cluster.scheduler_url(), info).await;
    let error = first.wait_for(false, |e| e["type"] == "ERROR").await;
    assert_eq!(error["error"]["message"], "Framework failed over");
    let (code, _) = first.call(json!({"type": "REVIVE"})).await;
    assert_eq!(code, 400);
    let (code, _) = second.call(json!({"type": "REVIVE"})).await;
    assert_eq!(code, 202);
    cluster.shutdown().await;
}

#[tokio::test]
async fn failover_timeout_kills_the_tasks_of_a_framework_that_stays_away() {
    let cluster = TestCluster::with_ports().await;
    let mut scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 0.5)).await;
    let offer = scheduler.wait_for_offers().await.remove(0);
    let port = offered_ports(&offer, 1)[0];
    let server = "exec python3 -m http.server $PORT0 --bind 127.0.0.1";
    scheduler
        .accept(
            &offer,
            vec![command_task(&offer, "web", server, &[port])],
            5.0,
        )
        .await;
    scheduler.wait_for_state("web", "TASK_RUNNING").await;
    assert!(holds_within(Duration::from_secs(15), || answers_http(port)).await);
    let framework_id = scheduler.framework_id.clone();
    drop(scheduler);
    assert!(
        holds_within(Duration::from_secs(10), || async move {
            !answers_http(port).await
        })
        .await
    );
    let removed = holds_within(Duration::from_secs(5), || async {
        cluster.state().await["completed_frameworks"][0]["id"] == framework_id.as_str()
    })
    .await;
    assert!(removed);
    cluster.shutdown().await;
}

#[tokio::test]
async fn decline_filters_for_refuse_seconds_and_suppress_revive_work() {
    let cluster = TestCluster::with_ports().await;
    let mut scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    let offer = scheduler.wait_for_offers().await.remove(0);
    let declined_at = tokio::time::Instant::now();
    scheduler.decline(&offer, 1.0).await;
    let again = scheduler.wait_for_offers().await.remove(0);
    let waited = declined_at.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "re-offered after {waited:?}"
    );
    assert_ne!(again["id"], offer["id"]);

    let (code, _) = scheduler
        .call(json!({"type": "SUPPRESS", "suppress": {"roles": ["*"]}}))
        .await;
    assert_eq!(code, 202);
    scheduler.decline(&again, 0.0).await;
    let quiet = scheduler.try_next_event(Duration::from_millis(1200)).await;
    assert!(
        quiet.as_ref().is_none_or(|e| e["type"] != "OFFERS"),
        "{quiet:?}"
    );

    // REVIVE also clears a long decline filter.
    let (code, _) = scheduler
        .call(json!({"type": "REVIVE", "revive": {"roles": ["*"]}}))
        .await;
    assert_eq!(code, 202);
    let revived = scheduler.wait_for_offers().await.remove(0);
    scheduler.decline(&revived, 3600.0).await;
    let (code, _) = scheduler.call(json!({"type": "REVIVE"})).await;
    assert_eq!(code, 202);
    scheduler.wait_for_offers().await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn stale_offers_drop_tasks_and_oversized_tasks_are_invalid() {
    let cluster = TestCluster::with_ports().await;
    let mut scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    let offer = scheduler.wait_for_offers().await.remove(0);
    scheduler.decline(&offer, 0.0).await;
    scheduler
        .accept(
            &offer,
            vec![command_task(&offer, "stale", "sleep 1", &[])],
            0.0,
        )
        .await;
    let dropped = scheduler.wait_for_state("stale", "TASK_DROPPED").await;
    assert_eq!(dropped["reason"], "REASON_INVALID_OFFERS");
    assert_eq!(
        dropped["message"],
        format!(
            "Task launched with invalid offers: Offer {} is no longer valid",
            offer["id"]["value"].as_str().expect("offer id")
        )
    );
    assert!(dropped.get("uuid").is_none());

    let offer = scheduler.wait_for_offers().await.remove(0);
    let mut too_big = command_task(&offer, "too-big", "sleep 1", &[]);
    too_big["resources"][0]["scalar"]["value"] = json!(1000.0);
    scheduler.accept(&offer, vec![too_big], 0.0).await;
    let error = scheduler.wait_for_state("too-big", "TASK_ERROR").await;
    assert_eq!(error["reason"], "REASON_TASK_INVALID");
    assert_eq!(error["source"], "SOURCE_MASTER");
    let ports = cluster.ports.as_ref().expect("its own ports");
    assert_eq!(
        error["message"],
        format!(
            "Total resources cpus(allocated: *):1000; mem(allocated: *):32 required by task and \
             its executor is more than available ports(allocated: *):[{}]; \
             cpus(allocated: *):4; mem(allocated: *):8192; disk(allocated: *):20480",
            ports.arg()
        )
    );
    cluster.shutdown().await;
}

/// Docker tasks run on a Docker engine (`tests/docker_local.rs`); with none
/// at `--docker-socket` they fail as a Mesos agent fails them, saying so.
#[tokio::test]
async fn docker_tasks_fail_saying_so_when_no_docker_engine_answers() {
    let missing = tempfile::tempdir().expect("tempdir");
    let socket = missing.path().join("docker.sock");
    let cluster = TestCluster::with_ports_and(LocalClusterConfig {
        docker_socket: socket.clone(),
        ..LocalClusterConfig::default()
    })
    .await;
    let mut scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    let offer = scheduler.wait_for_offers().await.remove(0);
    let mut task = command_task(&offer, "docker", "nginx", &[]);
    task["container"] = json!({"type": "DOCKER", "docker": {"image": "nginx:1.25"}});
    scheduler.accept(&offer, vec![task], 5.0).await;
    let failed = scheduler.wait_for_state("docker", "TASK_FAILED").await;
    assert_eq!(failed["source"], "SOURCE_AGENT");
    assert_eq!(failed["reason"], "REASON_CONTAINER_LAUNCH_FAILED");
    let message = failed["message"].as_str().expect("message");
    let expected = format!(
        "Failed to launch container: Failed to inspect image 'nginx:1.25': no Docker engine \
         answers at unix://{}",
        socket.display()
    );
    assert!(message.starts_with(&expected), "{message}");
    cluster.shutdown().await;
}

#[tokio::test]
async fn offers_held_past_the_offer_timeout_are_rescinded() {
    let config = LocalClusterConfig {
        offer_timeout_secs: Some(0.5),
        ..LocalClusterConfig::default()
    };
    let cluster = TestCluster::start(config).await;
    let mut scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    let offer = scheduler.wait_for_offers().await.remove(0);
    let rescind = scheduler.wait_for(true, |e| e["type"] == "RESCIND").await;
    assert_eq!(rescind["rescind"]["offer_id"], offer["id"]);
    let fresh = scheduler.wait_for_offers().await.remove(0);
    assert_ne!(fresh["id"], offer["id"]);
    cluster.shutdown().await;
}

#[tokio::test]
async fn several_agents_have_own_hostnames_attributes_and_port_slices() {
    let config = LocalClusterConfig {
        agents: 2,
        hostnames: vec!["host-a".to_string(), "host-b".to_string()],
        attributes: vec!["rack:r1".to_string(), "rack:r2;level:2".to_string()],
        ports: PortRange {
            begin: 31000,
            end: 31009,
        },
        ..LocalClusterConfig::default()
    };
    let cluster = TestCluster::start(config).await;
    let mut scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    let mut offers = scheduler.wait_for_offers().await;
    offers.sort_by_key(|o| o["hostname"].as_str().unwrap_or_default().to_string());
    assert_eq!(offers.len(), 2);
    assert_eq!(offers[0]["hostname"], "host-a");
    assert_eq!(offers[1]["hostname"], "host-b");
    assert_eq!(
        offered_ports(&offers[0], 100),
        (31000..=31004).collect::<Vec<_>>()
    );
    assert_eq!(
        offered_ports(&offers[1], 100),
        (31005..=31009).collect::<Vec<_>>()
    );
    assert_eq!(
        offers[1]["attributes"],
        json!([
            {"name": "rack", "type": "TEXT", "text": {"value": "r2"}},
            {"name": "level", "type": "SCALAR", "scalar": {"value": 2.0}}
        ])
    );
    let state = cluster.state().await;
    assert_eq!(state["slaves"][0]["attributes"], json!({"rack": "r1"}));
    cluster.shutdown().await;
}

#[tokio::test]
async fn operator_teardown_removes_a_framework_like_the_real_endpoint() {
    let cluster = TestCluster::with_ports().await;
    let scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    let teardown = |id: &str| {
        let url = format!("{}/master/teardown", cluster.cluster.url());
        let form = [("frameworkId", id.to_string())];
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .form(&form)
                .send()
                .await
                .expect("teardown");
            (
                response.status().as_u16(),
                response.text().await.unwrap_or_default(),
            )
        }
    };
    assert_eq!(
        teardown("nope").await,
        (400, "No framework found with specified ID".to_string())
    );
    assert_eq!(
        teardown(&scheduler.framework_id).await,
        (200, String::new())
    );
    let state = cluster.state().await;
    assert_eq!(
        state["completed_frameworks"][0]["id"],
        scheduler.framework_id.as_str()
    );
    let (code, body) = scheduler.call(json!({"type": "REVIVE"})).await;
    assert_eq!((code, body.as_str()), (400, "Framework cannot be found"));
    cluster.shutdown().await;
}

#[tokio::test]
async fn heartbeats_arrive_at_the_announced_interval() {
    let config = LocalClusterConfig {
        heartbeat_interval_secs: 0.3,
        ..LocalClusterConfig::default()
    };
    let cluster = TestCluster::start(config).await;
    let mut scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("t", 60.0)).await;
    assert_eq!(
        scheduler.subscribed["subscribed"]["heartbeat_interval_seconds"],
        0.3
    );
    let started = tokio::time::Instant::now();
    for _ in 0..4 {
        scheduler.wait_for(true, |e| e["type"] == "HEARTBEAT").await;
    }
    // The first comes right after SUBSCRIBED, then one per interval.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    cluster.shutdown().await;
}
