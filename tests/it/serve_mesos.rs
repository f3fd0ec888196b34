//! `stride serve` and Mesos: Stride records its framework id as an event,
//! and a SIGKILLed Stride comes back as the same framework. The same body
//! runs against a REAL Mesos 1.11 master (`../shared/real-mesos/up.sh`, or
//! `STRIDE_MESOS_MASTER`) and against `stride local-mesos` in its own
//! process; `stride serve` with no master starts the local cluster itself.

use crate::support::{LocalMesos, Server, all_events, client, real_master, wait_until};
use serde_json::Value;
use std::time::Duration;

/// Active frameworks called `name` on the master: (id, active).
async fn frameworks_named(http: &reqwest::Client, master: &str, name: &str) -> Vec<(String, bool)> {
    let state: Value = http
        .get(format!("{master}/master/frameworks"))
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
        .filter(|f| f["name"] == name)
        .map(|f| (f["id"].as_str().unwrap().to_owned(), f["active"] == true))
        .collect()
}

async fn teardown(http: &reqwest::Client, master: &str, id: &str) {
    let _ = http
        .post(format!("{master}/master/teardown"))
        .form(&[("frameworkId", id)])
        .send()
        .await;
}

async fn subscribed_framework(http: &reqwest::Client, server: &Server) -> Option<String> {
    all_events(http, server)
        .await
        .iter()
        .rev()
        .find(|e| e["type"] == "FrameworkSubscribed")
        .map(|e| e["framework"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_restarted_stride_resubscribes_as_the_same_framework_on_real_mesos() {
    let Some(master) = real_master().await else {
        return;
    };
    resubscribes_as_the_same_framework(&master.url).await;
}

#[tokio::test]
async fn a_restarted_stride_resubscribes_as_the_same_framework_on_local_mesos() {
    let local = LocalMesos::start(&[]);
    resubscribes_as_the_same_framework(&local.url).await;
}

/// A part that dies ends the process: Mesos refusing the framework for
/// good (an operator tore it down; Mesos answers the resubscription with
/// `ERROR`) ends the reconciler, and so Stride, non-zero and saying why,
/// after stopping in order.
#[tokio::test]
async fn a_framework_torn_down_on_real_mesos_ends_stride_saying_why() {
    let Some(master) = real_master().await else {
        return;
    };
    a_removed_framework_ends_stride(&master.url).await;
}

#[tokio::test]
async fn a_framework_torn_down_on_local_mesos_ends_stride_saying_why() {
    let local = LocalMesos::start(&[]);
    a_removed_framework_ends_stride(&local.url).await;
}

async fn a_removed_framework_ends_stride(master: &str) {
    let name = format!("stride-removed-test-{}", uuid::Uuid::new_v4());
    let dir = tempfile::tempdir().unwrap();
    let http = client();
    let args = ["--master", master, "--framework-name", &name];
    let (mut server, log) = Server::start_logged(dir.path(), &args);
    wait_until("FrameworkSubscribed", Duration::from_secs(30), || async {
        subscribed_framework(&http, &server).await.is_some()
    })
    .await;
    let id = subscribed_framework(&http, &server).await.unwrap();
    teardown(&http, master, &id).await;
    let status = tokio::task::spawn_blocking(move || server.exit_within(Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("Stride still runs a minute after its framework was removed");
    let text = log.text();
    assert_eq!(status.code(), Some(1), "{status}\n{text}");
    let said = "stride: the reconciler failed: Mesos refused the framework for good: \
                Framework has been removed";
    assert!(text.contains(said), "{text}");
    assert!(text.contains("shutdown: committer drained"), "{text}");
}

#[tokio::test]
async fn serve_without_a_master_runs_the_embedded_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let http = client();
    let server = Server::start_with_mesos(dir.path(), &[]);
    wait_until("FrameworkSubscribed", Duration::from_secs(30), || async {
        subscribed_framework(&http, &server).await.is_some()
    })
    .await;
    let events = all_events(&http, &server).await;
    let master = events
        .iter()
        .find(|e| e["type"] == "FrameworkSubscribed")
        .unwrap()["master"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(master.starts_with("http://127.0.0.1:"), "{master}");
}

async fn resubscribes_as_the_same_framework(master: &str) {
    let master = master.to_owned();
    let name = format!("stride-serve-test-{}", uuid::Uuid::new_v4());
    let dir = tempfile::tempdir().unwrap();
    let args = ["--master", &master, "--framework-name", &name];
    let http = client();
    let mut server = Server::start_with_mesos(dir.path(), &args);
    wait_until("FrameworkSubscribed", Duration::from_secs(30), || async {
        subscribed_framework(&http, &server).await.is_some()
    })
    .await;
    let id = subscribed_framework(&http, &server).await.unwrap();
    assert_eq!(
        frameworks_named(&http, &master, &name).await,
        vec![(id.clone(), true)]
    );

    server.kill();
    wait_until(
        "the master to see the disconnect",
        Duration::from_secs(30),
        || async { frameworks_named(&http, &master, &name).await == vec![(id.clone(), false)] },
    )
    .await;
    let server = Server::start_with_mesos(dir.path(), &args);
    wait_until(
        "the same framework to be active again",
        Duration::from_secs(30),
        || async { frameworks_named(&http, &master, &name).await == vec![(id.clone(), true)] },
    )
    .await;
    let recorded: Vec<Value> = all_events(&http, &server)
        .await
        .into_iter()
        .filter(|e| e["type"] == "FrameworkSubscribed")
        .collect();
    assert_eq!(
        recorded.len(),
        1,
        "resubscribing with the same id records nothing new"
    );
    assert_eq!(recorded[0]["actor"]["kind"], "mesos");
    teardown(&http, &master, &id).await;
}
