//! The write path seen from outside: commands become dense, durable events;
//! rejections and retries append nothing.

use crate::support;
use crate::support::{Server, all_events, app, client};
use serde_json::{Value, json};

#[tokio::test]
async fn events_get_dense_seqs_and_carry_the_actor() {
    let dir = tempfile::tempdir().unwrap();
    let (_auth, auth_file) = support::users_file(&["alice"], "observer");
    let server = Server::start(dir.path(), &["--auth-file", auth_file.to_str().unwrap()]);
    let http = client();
    for i in 0..5 {
        let response = http
            .post(server.url("/v2/apps"))
            .basic_auth("alice", Some("pw"))
            .json(&app(&format!("/team/app{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert!(response.headers().contains_key("marathon-deployment-id"));
    }
    let events = all_events(&http, &server).await;
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    assert_eq!(events[0]["type"], "AppCreated");
    assert_eq!(events[0]["actor"]["principal"], "alice");
    assert!(
        events[0]["actor"]["remote"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    // Both events of one command share its id.
    assert_eq!(events[0]["commandId"], events[1]["commandId"]);
    assert_ne!(events[0]["commandId"], events[2]["commandId"]);
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "time never goes backwards"
    );

    let state: Value = http
        .get(server.url("/v1/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["seq"], 10);
    assert_eq!(state["state"]["apps"].as_object().unwrap().len(), 5);
}

#[tokio::test]
async fn an_idempotent_retry_appends_nothing_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let post = || {
        http.post(server.url("/v2/apps"))
            .header("Idempotency-Key", "create-web-1")
            .json(&app("/web"))
            .send()
    };
    let first = post().await.unwrap();
    assert_eq!(first.status(), 201);
    let first_deployment = first.headers()["marathon-deployment-id"].clone();
    let retry = post().await.unwrap();
    assert_eq!(
        retry.status(),
        201,
        "a retry is answered as the original was"
    );
    assert_eq!(retry.headers()["marathon-deployment-id"], first_deployment);
    assert_eq!(all_events(&http, &server).await.len(), 2);

    // Without the key the same request is a new command, and a conflict.
    let conflict = http
        .post(server.url("/v2/apps"))
        .json(&app("/web"))
        .send()
        .await
        .unwrap();
    assert_eq!(conflict.status(), 409);
    assert_eq!(all_events(&http, &server).await.len(), 2);
}

#[tokio::test]
async fn rejected_commands_leave_the_log_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let cases: Vec<(&str, Vec<u8>, u16, Option<&str>)> = vec![
        ("malformed json", b"{\"id\": ".to_vec(), 400, None),
        (
            "trailing garbage",
            b"{\"id\": \"/a\"} x".to_vec(),
            400,
            None,
        ),
        ("not utf-8", vec![0xff, 0xfe, 0x00], 400, None),
        (
            "wrong type",
            br#"{"id": "/a", "cpus": "many"}"#.to_vec(),
            422,
            Some("/cpus"),
        ),
        (
            "negative cpus",
            br#"{"id": "/a", "cpus": -1}"#.to_vec(),
            422,
            Some("/cpus"),
        ),
        ("bad id", br#"{"id": "/A B"}"#.to_vec(), 422, Some("/id")),
        (
            "cmd and args",
            br#"{"id": "/a", "cmd": "x", "args": ["y"]}"#.to_vec(),
            422,
            Some("/"),
        ),
        ("missing id", br#"{"cmd": "x"}"#.to_vec(), 422, Some("/id")),
    ];
    for (name, body, status, path) in cases {
        let response = http
            .post(server.url("/v2/apps"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].is_string(), "{name}: {body}");
        if let Some(path) = path {
            let paths: Vec<&str> = body["details"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["path"].as_str().unwrap())
                .collect();
            assert!(paths.contains(&path), "{name}: {body}");
        }
    }
    let missing = http
        .delete(server.url("/v2/apps/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(all_events(&http, &server).await.is_empty());
    let state: Value = http
        .get(server.url("/v1/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["seq"], 0);
}

#[tokio::test]
async fn a_running_deployment_locks_the_app_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    http.post(server.url("/v2/apps"))
        .json(&app("/web"))
        .send()
        .await
        .unwrap();
    let mut changed = app("/web");
    changed["cmd"] = json!("sleep 2000");
    let locked = http
        .put(server.url("/v2/apps/web"))
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(locked.status(), 409);
    let forced = http
        .put(server.url("/v2/apps/web?force=true"))
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 200);
    let body: Value = forced.json().await.unwrap();
    assert!(body["deploymentId"].is_string() && body["version"].is_string());
    let types: Vec<String> = all_events(&http, &server)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "AppCreated",
            "DeploymentPlanned",
            "DeploymentFailed",
            "AppUpdated",
            "DeploymentPlanned"
        ]
    );
    let shown: Value = http
        .get(server.url("/v2/apps/web"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["app"]["cmd"], "sleep 2000");
}

#[tokio::test]
async fn state_can_be_read_as_of_any_earlier_seq() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--snapshot-every", "3"]);
    let http = client();
    for i in 0..6 {
        http.post(server.url("/v2/apps"))
            .json(&app(&format!("/a{i}")))
            .send()
            .await
            .unwrap();
    }
    for at in [0u64, 1, 4, 7, 12] {
        let state: Value = http
            .get(server.url(&format!("/v1/state?at={at}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(state["seq"], at);
        assert_eq!(
            state["state"]["apps"].as_object().unwrap().len() as u64,
            at.div_ceil(2)
        );
    }
    let beyond = http
        .get(server.url("/v1/state?at=13"))
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), 400);
}
