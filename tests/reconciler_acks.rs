//! Status updates are recorded before they are acknowledged: the real binary
//! runs under strace against a scripted fake master that sends a captured
//! TASK_RUNNING update, its resend, and a reconciliation answer. Every
//! ACKNOWLEDGE goes out only after an fdatasync of the recorded event; the
//! resend records nothing new but is acknowledged; the answer without a uuid
//! is recorded and never acknowledged.
//!
//! Scripted on purpose: neither a real master nor the local cluster lets a
//! test choose exactly which updates reach a scheduler, and when.

mod common;
#[path = "support/fake_master.rs"]
mod fake_master;

use common::{Server, all_events, client, wait_until};
use fake_master::{FakeMaster, Part, Reply};
use serde_json::{Value, json};
use std::time::Duration;
use stride::mesos::recordio::encode_record;

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
    let master = FakeMaster::start(vec![Reply::Stream(vec![
        record(&subscribed),
        record(&running),
        record(&running), // Mesos resends until acknowledged.
        record(&answer),
        Part::Hang,
    ])])
    .await;

    let dir = tempfile::tempdir().unwrap();
    let trace_path = dir.path().join("trace");
    let wrapper = [
        "strace",
        "-f",
        "-qq",
        "-s",
        "4096",
        "-e",
        "trace=pwrite64,fdatasync,write,writev,sendto,sendmsg",
        "-o",
        trace_path.to_str().unwrap(),
    ];
    let master_url = master.url.to_string();
    let mut server = Server::start_wrapped(
        &dir.path().join("data"),
        &["--master", &master_url],
        &wrapper,
    );
    let acknowledgements = || {
        master
            .requests()
            .into_iter()
            .filter(|r| r.body["type"] == "ACKNOWLEDGE")
            .collect::<Vec<_>>()
    };
    wait_until("two ACKNOWLEDGE calls", Duration::from_secs(30), || async {
        acknowledgements().len() >= 2
    })
    .await;
    let http = client();
    let recorded: Vec<Value> = all_events(&http, &server)
        .await
        .into_iter()
        .filter(|e| e["type"] == "TaskStatusRecorded")
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();

    let acks = acknowledgements();
    assert_eq!(
        acks.len(),
        2,
        "the update and its resend, never the answer: {acks:?}"
    );
    let uuid = &running["update"]["status"]["uuid"];
    for ack in &acks {
        assert_eq!(&ack.body["acknowledge"]["uuid"], uuid, "{ack:?}");
    }
    assert_eq!(
        recorded.len(),
        2,
        "the resend records nothing new: {recorded:?}"
    );
    assert_eq!(recorded[0]["mesos_state"], "TASK_RUNNING");
    assert_eq!(recorded[0]["condition"], "Running");
    assert_eq!(recorded[1]["reason"], "REASON_RECONCILIATION");
    assert!(recorded[1]["status_uuid"].is_null());

    // In the trace: no ACKNOWLEDGE leaves while a write is not yet synced.
    let trace = std::fs::read_to_string(&trace_path).unwrap();
    let mut unsynced = false;
    let mut acks_seen = 0;
    for line in trace.lines() {
        let completed = !line.contains("<unfinished");
        if line.contains("\\\"ACKNOWLEDGE\\\"") {
            assert!(
                !unsynced,
                "an ACKNOWLEDGE went out before its update was fdatasync'd"
            );
            acks_seen += 1;
        } else if completed
            && (line.contains("pwrite64(") || line.contains("<... pwrite64 resumed"))
        {
            unsynced = true;
        } else if completed
            && (line.contains("fdatasync(") || line.contains("<... fdatasync resumed"))
            && line.trim_end().ends_with("= 0")
        {
            unsynced = false;
        }
    }
    assert_eq!(acks_seen, 2, "both acknowledgements are in the trace");
}
