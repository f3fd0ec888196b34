//! `GET /v1/tasks/{id}/files/{stdout|stderr}`: a task's output read from
//! its sandbox through the agent's `/files/read`, on the embedded cluster
//! and on a real Mesos 1.11 agent.

mod common;

use common::{Server, app, client, get_json, real_master, send_ok};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// An app whose tasks print a known line to each stream, then sleep.
fn talker(id: &str) -> Value {
    let mut app = app(id);
    app["cmd"] =
        json!("echo \"out of $MESOS_TASK_ID\"; echo \"err of $MESOS_TASK_ID\" >&2; sleep 1000");
    app
}

/// Asks `check` every 100 ms until it answers, for up to a minute.
async fn poll<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..600 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn running_task(http: &reqwest::Client, server: &Server, app: &str) -> String {
    let url = server.url(&format!("/v2/apps{app}/tasks"));
    poll("a running task", || async {
        let tasks = get_json(http, &url).await;
        let task = tasks["tasks"].as_array()?.first()?.clone();
        (task["state"] == "TASK_RUNNING").then(|| task["id"].as_str().unwrap().to_owned())
    })
    .await
}

async fn read(http: &reqwest::Client, server: &Server, path: &str) -> (u16, Value) {
    let response = http.get(server.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Both streams, read whole, then by offset and from the tail.
async fn reads_both_streams(http: &reqwest::Client, server: &Server, task: &str) {
    let stdout = format!("out of {task}\n");
    let path = format!("/v1/tasks/{task}/files/stdout");
    let whole = poll("stdout written", || async {
        let whole = read(http, server, &path).await.1;
        (whole["data"] == stdout.as_str()).then_some(whole)
    })
    .await;
    assert_eq!(whole["offset"], 0, "{whole}");
    assert_eq!(whole["size"], stdout.len(), "{whole}");
    assert_eq!(whole["task"], task);
    let (_, stderr) = read(http, server, &format!("/v1/tasks/{task}/files/stderr")).await;
    assert!(
        stderr["data"]
            .as_str()
            .unwrap()
            .contains(&format!("err of {task}")),
        "{stderr}"
    );
    let (_, middle) = read(http, server, &format!("{path}?offset=4&length=2")).await;
    assert_eq!(
        (middle["offset"].as_u64(), middle["data"].as_str()),
        (Some(4), Some("of"))
    );
    let (_, tail) = read(http, server, &format!("{path}?length=5")).await;
    let last = &stdout[stdout.len() - 5..];
    assert_eq!(tail["data"], last, "{tail}");
    assert_eq!(tail["offset"], stdout.len() - 5);
    let (_, past_end) = read(http, server, &format!("{path}?offset=100000")).await;
    assert_eq!(past_end["data"], "");
}

#[tokio::test]
async fn task_output_on_the_embedded_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_mesos(dir.path(), &["--local-ports", "25200-25219"]);
    let http = client();
    send_ok(
        &http,
        &server,
        Method::POST,
        "/v2/apps",
        Some(talker("/talk")),
    )
    .await;
    let task = running_task(&http, &server, "/talk").await;
    reads_both_streams(&http, &server, &task).await;

    let bad = [
        (
            format!("/v1/tasks/{task}/files/environ"),
            404,
            "stdout and stderr",
        ),
        (
            "/v1/tasks/nobody/files/stdout".to_owned(),
            404,
            "does not exist",
        ),
        (
            format!("/v1/tasks/{task}/files/stdout?offset=-1"),
            400,
            "offset",
        ),
        (
            format!("/v1/tasks/{task}/files/stdout?length=2000000"),
            400,
            "length",
        ),
    ];
    for (path, status, words) in bad {
        let (got, body) = read(&http, &server, &path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(words),
            "{path}: {body}"
        );
    }

    // A failed task is expunged once replaced; its output is still found
    // through the app's last failure.
    let mut failing = app("/fail");
    failing["cmd"] = json!("echo \"last words of $MESOS_TASK_ID\" >&2; exit 3");
    send_ok(&http, &server, Method::POST, "/v2/apps", Some(failing)).await;
    let url = server.url("/v2/apps/fail");
    let failed = poll("a task failure", || async {
        let app = get_json(&http, &url).await;
        app["app"]["lastTaskFailure"]["taskId"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    let (status, stderr) = read(&http, &server, &format!("/v1/tasks/{failed}/files/stderr")).await;
    assert_eq!(status, 200, "{stderr}");
    assert_eq!(stderr["data"], format!("last words of {failed}\n"));
}

#[tokio::test]
async fn task_output_on_a_real_mesos_agent() {
    let master = real_master();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_mesos(dir.path(), &["--master", &master]);
    let http = client();
    let id = format!("/files-{}", std::process::id());
    send_ok(&http, &server, Method::POST, "/v2/apps", Some(talker(&id))).await;
    let task = running_task(&http, &server, &id).await;
    reads_both_streams(&http, &server, &task).await;
    send_ok(
        &http,
        &server,
        Method::DELETE,
        &format!("/v2/apps{id}"),
        None,
    )
    .await;
}
