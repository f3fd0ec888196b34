//! Status updates are recorded before they are acknowledged. The real
//! binary follows a scripted fake master that sends a captured TASK_RUNNING
//! update, its resend, and a reconciliation answer: an acknowledged update
//! survives a SIGKILL at the moment its ACKNOWLEDGE arrives (the reconciler
//! acknowledges only once the committer has answered, and the committer
//! answers only after fdatasync: tests/durability_strace.rs); the resend
//! records nothing new but is acknowledged; the answer without a uuid is
//! recorded and never acknowledged.
//!
//! Scripted on purpose: neither a real master nor the local cluster lets a
//! test choose exactly which updates reach a scheduler, and when.

use crate::support::fake_master::{FakeMaster, Part, Reply};
use crate::support::{Server, all_events, client, wait_until};
use serde_json::{Value, json};
use std::time::Duration;
use stride_mesos::recordio::encode_record;

fn record(event: &Value) -> Part {
    Part::Bytes(encode_record(event.to_string().as_bytes()))
}

fn captured(name: &str) -> Value {
    let path = format!(
        "{}/fixtures/mesos/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn updates_are_acknowledged_only_after_they_are_durable() {
    let running = captured("launch--UPDATE-TASK_RUNNING.json");
    let answer =
        captured("failover-reconcile--UPDATE-TASK_RUNNING-REASON_RECONCILIATION-no_uuid.json");
    let subscribed = json!({"type": "SUBSCRIBED", "subscribed": {
        "framework_id": {"value": "fake-framework-0001"}, "heartbeat_interval_seconds": 15.0}});
    let master =
        FakeMaster::start(vec![Reply::Stream(script(&subscribed, &running, &answer))]).await;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let master_url = master.url.to_string();
    let mut server = Server::start_with_mesos(&data, &["--master", &master_url]);
    let acknowledgements = || {
        master
            .requests()
            .into_iter()
            .filter(|r| r.body["type"] == "ACKNOWLEDGE")
            .collect::<Vec<_>>()
    };
    wait_until("an ACKNOWLEDGE", Duration::from_secs(30), || async {
        !acknowledgements().is_empty()
    })
    .await;
    // Acknowledged, so it must survive a crash right now.
    server.kill();
    let after = Server::start(&data, &[]);
    let http = client();
    let recorded = |events: Vec<Value>| -> Vec<Value> {
        events
            .into_iter()
            .filter(|e| e["type"] == "TaskStatusRecorded")
            .collect()
    };
    let survived = recorded(all_events(&http, &after).await);
    let task = &running["update"]["status"]["task_id"]["value"];
    assert!(
        survived
            .iter()
            .any(|e| &e["task"] == task && e["mesos_state"] == "TASK_RUNNING"),
        "an acknowledged update was lost: {survived:?}"
    );
    drop(after);

    // The whole script, uninterrupted, against a fresh fake master.
    let master =
        FakeMaster::start(vec![Reply::Stream(script(&subscribed, &running, &answer))]).await;
    let master_url = master.url.to_string();
    let fresh = dir.path().join("fresh");
    let server = Server::start_with_mesos(&fresh, &["--master", &master_url]);
    let events = || async { recorded(all_events(&http, &server).await) };
    // The last resend follows the answer: once it is acknowledged, the
    // answer before it (same task, handled in order) has been handled.
    wait_until(
        "both updates recorded and three acknowledgements",
        Duration::from_secs(30),
        || async {
            let acks = master
                .requests()
                .iter()
                .filter(|r| r.body["type"] == "ACKNOWLEDGE")
                .count();
            events().await.len() >= 2 && acks >= 3
        },
    )
    .await;
    let acks: Vec<_> = master
        .requests()
        .into_iter()
        .filter(|r| r.body["type"] == "ACKNOWLEDGE")
        .collect();
    assert_eq!(
        acks.len(),
        3,
        "the update and its two resends, never the answer: {acks:?}"
    );
    let uuid = &running["update"]["status"]["uuid"];
    for ack in &acks {
        assert_eq!(&ack.body["acknowledge"]["uuid"], uuid, "{ack:?}");
    }
    let recorded = events().await;
    assert_eq!(
        recorded.len(),
        2,
        "the resend records nothing new: {recorded:?}"
    );
    // Updates of different tasks are recorded concurrently, in any order.
    let update = recorded
        .iter()
        .find(|e| !e["status_uuid"].is_null())
        .expect("the update");
    assert_eq!(update["mesos_state"], "TASK_RUNNING");
    assert_eq!(update["condition"], "Running");
    let reconciled = recorded
        .iter()
        .find(|e| e["status_uuid"].is_null())
        .expect("the answer");
    assert_eq!(reconciled["reason"], "REASON_RECONCILIATION");
}

fn script(subscribed: &Value, running: &Value, answer: &Value) -> Vec<Part> {
    vec![
        record(subscribed),
        record(running),
        record(running), // Mesos resends until acknowledged.
        record(answer),
        record(running),
        Part::Hang,
    ]
}
