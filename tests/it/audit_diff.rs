//! Audit answers with diffs, against the real binary: `/v1/audit` names
//! each changed field of a definition change (before, after), with who
//! and when; `/v1/apps/{id}/diff` gives the same between any two versions;
//! `stride audit --diff` prints them readably.

use crate::support;
use crate::support::{Server, client, run_stride};
use reqwest::Method;
use serde_json::{Value, json};

async fn as_user(
    http: &reqwest::Client,
    server: &Server,
    user: &str,
    method: Method,
    path: &str,
    body: Value,
) -> Value {
    let response = http
        .request(method, server.url(path))
        .basic_auth(user, Some("pw"))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

async fn get(http: &reqwest::Client, server: &Server, path: &str) -> (u16, Value) {
    let response = http.get(server.url(path)).send().await.expect("GET");
    (
        response.status().as_u16(),
        response.json().await.expect("JSON"),
    )
}

/// /web created by alice with 3 instances, scaled to 5 by bob, then its
/// command and env changed by carol.
async fn history(http: &reqwest::Client, server: &Server) {
    let web = json!({"id": "/web", "cmd": "sleep 1", "instances": 3, "cpus": 0.1, "mem": 16,
                     "env": {"A": "1", "B": "2"}});
    as_user(http, server, "alice", Method::POST, "/v2/apps", web).await;
    let scale = json!({"instances": 5});
    let path = "/v2/apps/web?force=true";
    as_user(http, server, "bob", Method::PUT, path, scale).await;
    let change = json!({"cmd": "sleep 2", "env": {"A": "9", "C": "3"}});
    as_user(http, server, "carol", Method::PUT, path, change).await;
}

fn changes(event: &Value) -> Vec<(String, Value, Value)> {
    event["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_owned(),
                c["before"].clone(),
                c["after"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn audit_and_diff_say_what_changed_who_changed_it_and_when() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_auth, auth_file) = support::users_file(&["alice", "bob", "carol"], "observer");
    let server = Server::start(dir.path(), &["--auth-file", auth_file.to_str().unwrap()]);
    let http = client();
    history(&http, &server).await;

    let (status, page) = get(&http, &server, "/v1/audit?app=/web").await;
    assert_eq!(status, 200, "{page}");
    let events = page["events"].as_array().unwrap();
    let of = |kind: &str| -> Vec<&Value> { events.iter().filter(|e| e["type"] == kind).collect() };
    let scaled = of("AppScaled");
    assert_eq!(scaled.len(), 1);
    assert_eq!(scaled[0]["actor"]["principal"], "bob");
    assert!(scaled[0]["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        changes(scaled[0]),
        [("/instances".into(), json!(3), json!(5))]
    );
    let updated = of("AppUpdated");
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0]["actor"]["principal"], "carol");
    assert_eq!(
        changes(updated[0]),
        [
            ("/cmd".into(), json!("sleep 1"), json!("sleep 2")),
            ("/env/A".into(), json!("1"), json!("9")),
            ("/env/B".into(), json!("2"), Value::Null),
            ("/env/C".into(), Value::Null, json!("3")),
        ]
    );
    assert!(of("AppCreated")[0].get("changes").is_none());

    // The same between versions, by the diff endpoint.
    let (_, versions) = get(&http, &server, "/v2/apps/web/versions").await;
    let versions: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(versions.len(), 3, "newest first: {versions:?}");
    let (first, last) = (versions[2], versions[0]);
    let (status, whole) = get(
        &http,
        &server,
        &format!("/v1/apps/web/diff?from={first}&to={last}"),
    )
    .await;
    assert_eq!(status, 200, "{whole}");
    assert_eq!(
        (whole["app"].as_str(), whole["from"].as_str()),
        (Some("/web"), Some(first))
    );
    let paths: Vec<String> = changes(&whole).into_iter().map(|c| c.0).collect();
    assert_eq!(paths, ["/cmd", "/env/A", "/env/B", "/env/C", "/instances"]);
    // By default: the latest version against the one before it.
    let (status, latest) = get(&http, &server, "/v1/apps/web/diff").await;
    assert_eq!(status, 200, "{latest}");
    assert_eq!(latest["to"], last);
    assert_eq!(latest["from"], versions[1]);
    assert_eq!(latest["changes"], updated[0]["changes"]);
    let (_, scaling) = get(
        &http,
        &server,
        &format!("/v1/apps/web/diff?to={}", versions[1]),
    )
    .await;
    assert_eq!(scaling["changes"], scaled[0]["changes"]);
    // Marathon's own version answer stays Marathon's shape.
    let (_, shown) = get(&http, &server, &format!("/v2/apps/web/versions/{last}")).await;
    assert!(shown.get("changes").is_none(), "{shown}");

    // Refused, each with a message naming what is wrong.
    let refused = [
        ("/v1/apps/nope/diff", 404, "does not exist"),
        (
            "/v1/apps/web/diff?from=2001-01-01T00:00:00Z",
            404,
            "has no version",
        ),
        ("/v1/apps/web/diff?from=yesterday", 400, "RFC 3339"),
        ("/v1/apps/web/diff?since=1", 400, "unknown query parameter"),
        (
            &format!("/v1/apps/web/diff?to={first}"),
            400,
            "first version",
        ),
        ("/v1/apps/web/history", 404, "/diff"),
    ];
    for (path, code, message) in refused {
        let (status, body) = get(&http, &server, path).await;
        assert_eq!(status, code, "{path}: {body}");
        let text = body["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{path}: {body}");
    }
}

#[tokio::test]
async fn stride_audit_diff_prints_each_change_under_its_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_auth, auth_file) = support::users_file(&["alice", "bob", "carol"], "observer");
    let server = Server::start(dir.path(), &["--auth-file", auth_file.to_str().unwrap()]);
    history(&client(), &server).await;
    let (ok, out, err) = run_stride(&["audit", "--app", "/web", "--diff", "--stride", &server.url]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in\n{out}"))
    };
    let scaled = at("AppScaled");
    assert!(lines[scaled].contains("api:bob"), "{out}");
    assert!(lines[scaled].contains("instances 3 -> 5"), "{out}");
    assert_eq!(lines[scaled + 1].trim(), "instances: 3 -> 5", "{out}");
    let updated = at("AppUpdated");
    assert!(lines[updated].contains("api:carol"), "{out}");
    let under: Vec<&str> = lines[updated + 1..updated + 5]
        .iter()
        .map(|l| l.trim())
        .collect();
    assert_eq!(
        under,
        [
            r#"cmd: "sleep 1" -> "sleep 2""#,
            r#"env/A: "1" -> "9""#,
            r#"env/B: "2" -> (none)"#,
            r#"env/C: (none) -> "3""#,
        ],
        "{out}"
    );
    // Without --diff, the rows alone.
    let (_, plain, _) = run_stride(&["audit", "--app", "/web", "--stride", &server.url]);
    assert!(!plain.contains("env/A"), "{plain}");
    // --json lines carry the changes for scripts.
    let (_, json_out, _) =
        run_stride(&["audit", "--app", "/web", "--json", "--stride", &server.url]);
    let scaled: Value = json_out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON lines"))
        .find(|e| e["type"] == "AppScaled")
        .expect("AppScaled");
    assert_eq!(scaled["changes"][0]["after"], 5);
}
