//! Health checks end to end with the real binary: `stride serve` against
//! `stride local-mesos` (its own process and port range), apps posted over
//! `/v2/apps`, tasks as real processes.

use crate::support::ports::ports;
use crate::support::{LocalMesos, Server, all_events, client, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

async fn post_app(http: &reqwest::Client, server: &Server, app: Value) {
    let response = http
        .post(server.url("/v2/apps"))
        .json(&app)
        .send()
        .await
        .expect("POST /v2/apps");
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

fn of_app<'a>(events: &'a [Value], kind: &str, app: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind && e["app"] == app)
        .collect()
}

async fn app_info(http: &reqwest::Client, server: &Server, id: &str) -> Value {
    let body: Value = http
        .get(server.url(&format!("/v2/apps{id}")))
        .send()
        .await
        .expect("GET app")
        .json()
        .await
        .expect("JSON");
    body["app"].clone()
}

#[tokio::test]
async fn health_checks_mark_tasks_and_replace_the_failing_ones() {
    // Ports no other test uses.
    let ports = ports(500);
    let mesos = LocalMesos::start(&["--ports", &ports.arg()]);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with_mesos(dir.path(), &["--master", &mesos.url]);
    let http = client();
    let fast = json!({"intervalSeconds": 1, "timeoutSeconds": 1, "delaySeconds": 0});
    let check = |mut extra: Value| {
        for (key, value) in fast.as_object().expect("object") {
            extra[key] = value.clone();
        }
        extra
    };
    // Stride-run HTTP check on a real server.
    post_app(
        &http,
        &server,
        json!({
            "id": "/up", "cmd": "exec python3 -m http.server $PORT0 --bind 127.0.0.1",
            "cpus": 0.1, "mem": 32, "portDefinitions": [{"port": 0}],
            "healthChecks": [check(json!({"protocol": "HTTP", "gracePeriodSeconds": 30}))]
        }),
    )
    .await;
    // Stride-run TCP check on a port nobody listens on: killed after 2.
    post_app(
        &http,
        &server,
        json!({
            "id": "/down", "cmd": "sleep 1000", "cpus": 0.1, "mem": 32,
            "portDefinitions": [{"port": 0}],
            "healthChecks": [check(json!({"protocol": "TCP", "gracePeriodSeconds": 0,
                "maxConsecutiveFailures": 2}))]
        }),
    )
    .await;
    // Mesos-run COMMAND check, run in the sandbox by the executor.
    post_app(&http, &server, json!({
        "id": "/cmd", "cmd": "touch ready && exec sleep 1000", "cpus": 0.1, "mem": 32,
        "healthChecks": [check(json!({"protocol": "COMMAND", "command": {"value": "test -f ready"},
            "gracePeriodSeconds": 30}))]
    }))
    .await;

    wait_until("the HTTP task is healthy", LIMIT, || async {
        let events = all_events(&http, &server).await;
        of_app(&events, "HealthChanged", "/up")
            .iter()
            .any(|e| e["healthy"] == true)
    })
    .await;
    wait_until("the COMMAND task is healthy", LIMIT, || async {
        let events = all_events(&http, &server).await;
        of_app(&events, "TaskStatusRecorded", "/cmd")
            .iter()
            .any(|e| e["healthy"] == true)
    })
    .await;
    wait_until("the failing task is killed and replaced", LIMIT, || async {
        let events = all_events(&http, &server).await;
        let killed = of_app(&events, "TaskKillRequested", "/down");
        let launched = of_app(&events, "TaskLaunchRequested", "/down");
        !killed.is_empty() && launched.len() >= 2
    })
    .await;

    let events = all_events(&http, &server).await;
    let down = of_app(&events, "HealthChanged", "/down");
    assert_eq!(down[0]["healthy"], false, "{down:?}");
    let kill = of_app(&events, "TaskKillRequested", "/down")[0];
    let reason = kill["reason"].as_str().expect("a reason");
    assert!(
        reason.starts_with("health check failed 2 times in a row: connecting to"),
        "{reason}"
    );
    // Only transitions are logged: one per task so far for /up.
    assert_eq!(of_app(&events, "HealthChanged", "/up").len(), 1);

    for (id, healthy) in [("/up", 1), ("/cmd", 1)] {
        let app = app_info(&http, &server, id).await;
        assert_eq!(app["tasksHealthy"], healthy, "{id}: {app}");
        assert_eq!(app["tasksUnhealthy"], 0, "{id}: {app}");
        let result = &app["tasks"][0]["healthCheckResults"][0];
        assert_eq!(result["alive"], true, "{id}: {app}");
    }
}
