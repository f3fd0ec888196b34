//! The local cluster's events and error answers have the same shape (keys
//! and value kinds, recursively) as those a real Mesos 1.11 master sent in
//! `fixtures/mesos/`.

use std::path::Path;

use crate::support::raw_scheduler::{RawScheduler, command_task, framework_info};
use serde_json::{Map, Value, json};
use stride_local::{LocalCluster, LocalClusterConfig, PortRange};

fn fixture(path: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/mesos")
        .join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture JSON")
}

/// Keys and value kinds; an array is represented by its first element.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), shape(value)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => Value::Null,
    }
}

fn assert_same_shape(ours: &Value, fixture_path: &str) {
    let captured = fixture(fixture_path);
    assert_eq!(
        shape(ours),
        shape(&captured),
        "shape differs from {fixture_path}\nours: {ours:#}\nreal: {captured:#}"
    );
}

#[tokio::test]
async fn events_and_errors_have_the_shape_of_a_real_masters() {
    let work_dir = tempfile::tempdir().expect("tempdir");
    let config = LocalClusterConfig {
        work_dir: Some(work_dir.path().to_path_buf()),
        ports: PortRange {
            begin: 25500,
            end: 25999,
        },
        ..LocalClusterConfig::default()
    };
    let cluster = LocalCluster::start(config).await.expect("cluster");
    let mut scheduler =
        RawScheduler::subscribe(&cluster.scheduler_url(), framework_info("shapes", 60.0)).await;
    assert_same_shape(&scheduler.subscribed, "events/subscribe--SUBSCRIBED.json");
    let heartbeat = scheduler.next_event().await;
    assert_same_shape(&heartbeat, "events/subscribe--HEARTBEAT.json");
    let offers = scheduler.wait_for(true, |e| e["type"] == "OFFERS").await;
    assert_same_shape(&offers, "events/subscribe--OFFERS.json");
    let offer = offers["offers"]["offers"][0].clone();

    let tasks = vec![
        command_task(&offer, "t-sleep", "sleep 60", &[]),
        command_task(&offer, "t-finish", "exit 0", &[]),
        command_task(&offer, "t-fail", "exit 3", &[]),
    ];
    scheduler.accept(&offer, tasks, 1.0).await;
    let update = |task: &'static str, state: &'static str| {
        move |e: &Value| {
            e["type"] == "UPDATE"
                && e["update"]["status"]["task_id"]["value"] == task
                && e["update"]["status"]["state"] == state
        }
    };
    for (task, state, file) in [
        (
            "t-sleep",
            "TASK_STARTING",
            "launch--UPDATE-TASK_STARTING.json",
        ),
        (
            "t-sleep",
            "TASK_RUNNING",
            "launch--UPDATE-TASK_RUNNING.json",
        ),
        (
            "t-finish",
            "TASK_FINISHED",
            "launch--UPDATE-TASK_FINISHED.json",
        ),
        ("t-fail", "TASK_FAILED", "launch--UPDATE-TASK_FAILED.json"),
    ] {
        let event = scheduler.wait_for(true, update(task, state)).await;
        assert_same_shape(&event, &format!("events/{file}"));
    }

    let agent_id = offer["agent_id"].clone();
    let (code, _) = scheduler
        .call(json!({"type": "RECONCILE", "reconcile": {"tasks": [
            {"task_id": {"value": "t-sleep"}, "agent_id": agent_id},
            {"task_id": {"value": "t-finish"}, "agent_id": agent_id},
            {"task_id": {"value": "t-unknown-no-agent"}},
        ]}}))
        .await;
    assert_eq!(code, 202);
    for (task, state, file) in [
        (
            "t-sleep",
            "TASK_RUNNING",
            "reconcile-explicit--UPDATE-TASK_RUNNING-REASON_RECONCILIATION-no_uuid.json",
        ),
        (
            "t-finish",
            "TASK_GONE",
            "reconcile-explicit--UPDATE-TASK_GONE-REASON_RECONCILIATION-no_uuid.json",
        ),
        (
            "t-unknown-no-agent",
            "TASK_UNKNOWN",
            "reconcile-explicit--UPDATE-TASK_UNKNOWN-REASON_RECONCILIATION-no_uuid.json",
        ),
    ] {
        let event = scheduler.wait_for(false, update(task, state)).await;
        assert_same_shape(&event, &format!("events/{file}"));
    }

    scheduler.kill("t-never-launched").await;
    let event = scheduler
        .wait_for(false, update("t-never-launched", "TASK_UNKNOWN"))
        .await;
    assert_same_shape(
        &event,
        "events/kill-unknown--UPDATE-TASK_UNKNOWN-REASON_RECONCILIATION-no_uuid.json",
    );
    scheduler.kill("t-sleep").await;
    let killing = scheduler
        .wait_for(true, update("t-sleep", "TASK_KILLING"))
        .await;
    assert_same_shape(&killing, "events/kill--UPDATE-TASK_KILLING.json");
    let killed = scheduler
        .wait_for(true, update("t-sleep", "TASK_KILLED"))
        .await;
    assert_same_shape(&killed, "events/kill--UPDATE-TASK_KILLED.json");
    assert_eq!(
        killed["update"]["status"]["message"],
        fixture("events/kill--UPDATE-TASK_KILLED.json")["update"]["status"]["message"]
    );

    let offer =
        scheduler.wait_for(true, |e| e["type"] == "OFFERS").await["offers"]["offers"][0].clone();
    scheduler.decline(&offer, 0.0).await;
    scheduler
        .accept(
            &offer,
            vec![command_task(&offer, "t-stale", "sleep 1", &[])],
            0.0,
        )
        .await;
    let dropped = scheduler
        .wait_for(false, update("t-stale", "TASK_DROPPED"))
        .await;
    assert_same_shape(
        &dropped,
        "events/misc-stale-offer--UPDATE-TASK_DROPPED-REASON_INVALID_OFFERS-no_uuid.json",
    );
    let offer =
        scheduler.wait_for(true, |e| e["type"] == "OFFERS").await["offers"]["offers"][0].clone();
    let mut too_big = command_task(&offer, "t-too-big", "sleep 1", &[]);
    too_big["resources"][0]["scalar"]["value"] = json!(1000.0);
    scheduler.accept(&offer, vec![too_big], 0.0).await;
    let error = scheduler
        .wait_for(false, update("t-too-big", "TASK_ERROR"))
        .await;
    assert_same_shape(
        &error,
        "events/misc-invalid-task--UPDATE-TASK_ERROR-REASON_TASK_INVALID-no_uuid.json",
    );

    // Error answers: same status, content type and text as captured.
    let revive = json!({"type": "REVIVE", "framework_id": {"value": scheduler.framework_id}});
    let captured = fixture("calls/no-stream-id.json");
    let (code, body) = scheduler.post_raw(&revive.to_string(), None).await;
    assert_eq!(u64::from(code), captured["response"]["status"]);
    assert_eq!(body, captured["response"]["body"]);
    let captured = fixture("calls/wrong-stream-id.json");
    let wrong = "00000000-0000-0000-0000-000000000000";
    let (code, body) = scheduler.post_raw(&revive.to_string(), Some(wrong)).await;
    assert_eq!(u64::from(code), captured["response"]["status"]);
    let real_framework_id = captured["request"]["framework_id"]["value"]
        .as_str()
        .expect("id");
    assert_eq!(
        body.replace(&scheduler.framework_id, real_framework_id),
        captured["response"]["body"]
    );
    let captured = fixture("calls/malformed-json.json");
    let response = scheduler
        .http
        .post(&scheduler.url)
        .header("Content-Type", "application/json")
        .header("Mesos-Stream-Id", &scheduler.stream_id)
        .body(captured["request"].as_str().expect("raw body").to_string())
        .send()
        .await
        .expect("call");
    assert_eq!(
        u64::from(response.status().as_u16()),
        captured["response"]["status"]
    );
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let body = response.text().await.expect("body");
    assert!(
        body.starts_with("Failed to parse body into JSON: "),
        "{body}"
    );
    let (code, body) = scheduler.call(json!({"type": "TEARDOWN"})).await;
    let captured = fixture("calls/TEARDOWN.json");
    assert_eq!(u64::from(code), captured["response"]["status"]);
    assert_eq!(body, captured["response"]["body"]);
    cluster.shutdown().await;
}
