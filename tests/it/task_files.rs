//! `GET /v1/tasks/{id}/files/{stdout|stderr}`: a task's output read from
//! its sandbox through the agent's `/files/read`, on the embedded cluster
//! and on a real Mesos 1.11 agent.

use crate::support::ports::ports;
use crate::support::{Server, app, client, get_json, real_master, send_ok};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// An app whose tasks print a known line to each stream (stderr's with a
/// two-byte character), then sleep.
fn talker(id: &str) -> Value {
    let mut app = app(id);
    app["cmd"] = json!(
        "echo \"out of $MESOS_TASK_ID\"; echo \"err of $MESOS_TASK_ID: café\" >&2; sleep 1000"
    );
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

/// Both streams, read whole, then by offset and from the tail; a range
/// that cuts a character in two reads as U+FFFD and still says where the
/// next read starts.
async fn reads_both_streams(http: &reqwest::Client, server: &Server, task: &str) {
    let stdout = format!("out of {task}\n");
    let path = format!("/v1/tasks/{task}/files/stdout");
    let whole = poll("stdout written", || async {
        let whole = read(http, server, &path).await.1;
        (whole["data"] == stdout.as_str()).then_some(whole)
    })
    .await;
    assert_eq!(whole["offset"], 0, "{whole}");
    assert_eq!(whole["next"], stdout.len(), "{whole}");
    assert_eq!(whole["size"], stdout.len(), "{whole}");
    assert_eq!(whole["task"], task);
    let stderr_path = format!("/v1/tasks/{task}/files/stderr");
    let (_, stderr) = read(http, server, &stderr_path).await;
    let text = stderr["data"].as_str().unwrap();
    assert!(text.contains(&format!("err of {task}: café")), "{stderr}");
    // The agent's answer is not UTF-8 when its range cuts the é.
    let e = text.find('é').unwrap();
    for (offset, length, data) in [(e, 1, "\u{FFFD}"), (e + 1, 1, "\u{FFFD}"), (e, 2, "é")] {
        let (status, part) = read(
            http,
            server,
            &format!("{stderr_path}?offset={offset}&length={length}"),
        )
        .await;
        assert_eq!(status, 200, "{part}");
        assert_eq!(part["data"], data, "{offset}+{length}: {part}");
        assert_eq!(part["next"], offset + length, "{part}");
    }
    let (_, middle) = read(http, server, &format!("{path}?offset=4&length=2")).await;
    assert_eq!(
        (middle["offset"].as_u64(), middle["data"].as_str()),
        (Some(4), Some("of"))
    );
    assert_eq!(middle["next"], 6);
    let (_, tail) = read(http, server, &format!("{path}?length=5")).await;
    let last = &stdout[stdout.len() - 5..];
    assert_eq!(tail["data"], last, "{tail}");
    assert_eq!(tail["offset"], stdout.len() - 5);
    assert_eq!(tail["next"], stdout.len());
    let (_, past_end) = read(http, server, &format!("{path}?offset=100000")).await;
    assert_eq!(past_end["data"], "");
    assert_eq!(past_end["size"], stdout.len());
}

#[tokio::test]
async fn task_output_on_the_embedded_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(20);
    let server = Server::start_with_mesos(dir.path(), &["--local-ports", &ports.arg()]);
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
            format!("/v1/tasks/{task}/files/stdout?length=65537"),
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
    let Some(master) = real_master().await else {
        return;
    };
    let master = &master.url;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_mesos(dir.path(), &["--master", master]);
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

/// A task's stdout through its agent's own `/files/read`: the agent's
/// address from the master's `/master/slaves`, Stride's framework from
/// `/v2/info`; answers `(status, body)` for each query.
async fn agent_reads(
    http: &reqwest::Client,
    server: &Server,
    task: &str,
    queries: &[&str],
) -> Vec<(u16, String)> {
    let info = get_json(http, &server.url("/v2/info")).await;
    let master = info["marathon_config"]["master"].as_str().unwrap();
    let master = master.trim_end_matches('/');
    let framework = info["frameworkId"].as_str().unwrap();
    let agents = get_json(http, &format!("{master}/master/slaves")).await;
    let pid = agents["slaves"][0]["pid"].as_str().unwrap();
    let address = pid.split_once('@').unwrap().1;
    let path = format!("/frameworks/{framework}/executors/{task}/runs/latest");
    let mut answers = Vec::new();
    for query in queries {
        let query = query.replace("{path}", &path);
        let url = format!("http://{address}/files/read?{query}");
        let response = http.get(&url).send().await.unwrap();
        answers.push((response.status().as_u16(), response.text().await.unwrap()));
    }
    answers
}

/// The embedded cluster's `/files/read` answers as a real Mesos 1.11
/// agent's does, for every kind of query Stride or a person might send.
#[tokio::test]
async fn embedded_files_read_answers_as_a_real_agent() {
    let queries = [
        "path={path}/stdout",
        "path={path}/stdout&offset=-1",
        "path={path}/stdout&offset=3&length=4",
        "path={path}/stdout&offset=3",
        "path={path}/stdout&offset=3&length=-1",
        "path={path}/stdout&offset=0&length=0",
        "path={path}/stdout&offset=50&length=4",
        "path={path}/stdout&offset=-2",
        "path={path}/stdout&offset=0&length=-2",
        "path={path}/stdout&offset=x",
        "path={path}/stdout&offset=0&length=y",
        "path={path}/absent&offset=0",
        "path={path}&offset=0",
        "path=&offset=0",
        "offset=0",
        "path={path}/../../../../../etc/passwd&offset=0",
    ];
    let mut answers = Vec::new();
    let Some(real) = real_master().await else {
        return;
    };
    let local_ports = ports(10);
    for master in [None, Some(&real.url)] {
        let dir = tempfile::tempdir().unwrap();
        let server = match master {
            None => Server::start_with_mesos(dir.path(), &["--local-ports", &local_ports.arg()]),
            Some(master) => Server::start_with_mesos(dir.path(), &["--master", master]),
        };
        let http = client();
        let id = format!("/files-same-{}", std::process::id());
        let mut counter = app(&id);
        counter["cmd"] = json!("printf 0123456789; sleep 1000");
        send_ok(&http, &server, Method::POST, "/v2/apps", Some(counter)).await;
        let task = running_task(&http, &server, &id).await;
        let path = format!("/v1/tasks/{task}/files/stdout");
        poll("stdout written", || async {
            (read(&http, &server, &path).await.1["size"] == 10).then_some(())
        })
        .await;
        answers.push(agent_reads(&http, &server, &task, &queries).await);
        send_ok(
            &http,
            &server,
            Method::DELETE,
            &format!("/v2/apps{id}"),
            None,
        )
        .await;
    }
    let (embedded, real) = (&answers[0], &answers[1]);
    for ((query, ours), theirs) in queries.iter().zip(embedded).zip(real) {
        assert_eq!(ours.0, theirs.0, "{query}: ours {ours:?}, real {theirs:?}");
        match ours.0 {
            200 => {
                let parse = |body: &str| serde_json::from_str::<Value>(body).unwrap();
                assert_eq!(parse(&ours.1), parse(&theirs.1), "{query}");
            }
            _ => assert_eq!(ours.1, theirs.1, "{query}"),
        }
    }
}
