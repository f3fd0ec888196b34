//! Marathon's `/v2` app, task, deployment and queue endpoints against the
//! real binary.

use crate::support;

use crate::support::{Server, all_events, client};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use stride_log::event::app::{AppDefinition, AppSpec};
use stride_log::event::condition::Condition;
use stride_log::event::{
    Actor, AppCreated, Envelope, Event, Seq, TaskLaunchRequested, TaskStatusRecorded,
};
use stride_log::store::LogWriter;

async fn call(
    http: &Client,
    server: &Server,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut request = http.request(method, server.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value, headers)
}

async fn get(http: &Client, server: &Server, path: &str) -> Value {
    let (status, body, _) = call(http, server, Method::GET, path, None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn create_stores_marathon_defaults_and_shows_app_info() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let body = json!({
        "id": "prod/web", "cmd": "python3 -m http.server $PORT0",
        "portDefinitions": [{"port": 0, "name": "http"}],
        "constraints": [["hostname", "UNIQUE"]],
        "healthChecks": [{"protocol": "HTTP", "portIndex": 0}],
        "unreachableStrategy": "disabled",
        "container": {"type": "MESOS"}
    });
    let (status, created, headers) =
        call(&http, &server, Method::POST, "/v2/apps", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(headers["location"], "/v2/apps/prod/web");
    let deployment = headers["marathon-deployment-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(created["id"], "/prod/web");
    assert_eq!(
        created["portDefinitions"][0]["port"], 10000,
        "port 0 got a service port"
    );
    for (field, expected) in [
        ("instances", json!(1)),
        ("cpus", json!(1.0)),
        ("mem", json!(128.0)),
        ("gpus", json!(0)),
        ("backoffSeconds", json!(1)),
        ("backoffFactor", json!(1.15)),
        ("maxLaunchDelaySeconds", json!(300)),
        ("executor", json!("")),
        ("role", json!("*")),
        ("networks", json!([{"mode": "host"}])),
        ("labels", json!({})),
        ("killSelection", json!("YOUNGEST_FIRST")),
        ("unreachableStrategy", json!("disabled")),
        ("requirePorts", json!(false)),
        ("constraints", json!([["hostname", "UNIQUE"]])),
    ] {
        assert_eq!(created[field], expected, "{field}");
    }
    assert_eq!(created["healthChecks"][0]["gracePeriodSeconds"], 300);
    assert_eq!(created["upgradeStrategy"]["minimumHealthCapacity"], 1.0);
    // Marathon leaves out what is unset and its empty omitEmpty lists.
    for absent in [
        "args",
        "user",
        "env",
        "fetch",
        "dependencies",
        "readinessChecks",
        "taskKillGracePeriodSeconds",
        "acceptedResourceRoles",
        "ports",
        "uris",
    ] {
        assert!(created.get(absent).is_none(), "{absent}: {created}");
    }

    let shown = get(&http, &server, "/v2/apps/prod/web").await["app"].clone();
    assert_eq!(shown["version"], created["version"]);
    assert_eq!(
        shown["versionInfo"]["lastConfigChangeAt"],
        created["version"]
    );
    assert_eq!(shown["deployments"], json!([{"id": deployment}]));
    for count in [
        "tasksStaged",
        "tasksRunning",
        "tasksHealthy",
        "tasksUnhealthy",
    ] {
        assert_eq!(shown[count], 0, "{count}");
    }
    assert_eq!(shown["tasks"], json!([]));
    assert_eq!(
        get(&http, &server, "/v2/apps/prod/web/tasks").await,
        json!({"tasks": []})
    );

    // The stored event carries the definition with its assigned port.
    let events = all_events(&http, &server).await;
    assert_eq!(types(&events), ["AppCreated", "DeploymentPlanned"]);
    assert_eq!(events[0]["definition"]["portDefinitions"][0]["port"], 10000);
}

#[tokio::test]
async fn list_filters_by_id_cmd_and_labels_and_embeds_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    for (id, cmd, team) in [
        ("/prod/web", "python web.py", "web"),
        ("/prod/db", "postgres", "db"),
        ("/dev/web", "python web.py --dev", "web"),
    ] {
        let body = json!({"id": id, "cmd": cmd, "labels": {"team": team}});
        let (status, _, _) = call(&http, &server, Method::POST, "/v2/apps", Some(body)).await;
        assert_eq!(status, 201);
    }
    let ids = |list: &Value| -> Vec<String> {
        list["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    for (query, expected) in [
        ("", vec!["/dev/web", "/prod/db", "/prod/web"]),
        ("?id=/prod", vec!["/prod/db", "/prod/web"]),
        ("?cmd=python", vec!["/dev/web", "/prod/web"]),
        ("?label=team==web", vec!["/dev/web", "/prod/web"]),
        ("?label=team!=web", vec!["/prod/db"]),
        ("?label=team%20in%20(db,%20x)&id=prod", vec!["/prod/db"]),
    ] {
        let list = get(&http, &server, &format!("/v2/apps{query}")).await;
        assert_eq!(ids(&list), expected, "{query}");
    }
    let plain = get(&http, &server, "/v2/apps").await;
    let first = &plain["apps"][0];
    assert_eq!(first["tasksRunning"], 0, "counts are always there");
    assert!(first["deployments"].is_array());
    assert!(first.get("tasks").is_none());
    let embedded = get(
        &http,
        &server,
        "/v2/apps?embed=apps.tasks&embed=apps.lastTaskFailure&embed=apps.counts",
    )
    .await;
    assert_eq!(embedded["apps"][0]["tasks"], json!([]));
    let (status, _, _) = call(
        &http,
        &server,
        Method::GET,
        "/v2/apps?label=a%20in%20b",
        None,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn scale_patch_restart_versions_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let body = json!({"id": "/web", "cmd": "sleep 100", "mem": 32, "instances": 1});
    call(&http, &server, Method::POST, "/v2/apps", Some(body)).await;

    let scale = json!({"instances": 3});
    let (status, locked, _) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/apps/web",
        Some(scale.clone()),
    )
    .await;
    assert_eq!(status, 409, "{locked}");
    let (status, scaled, headers) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/apps/web?force=true",
        Some(scale),
    )
    .await;
    assert_eq!(status, 200, "{scaled}");
    assert_eq!(
        headers["marathon-deployment-id"],
        scaled["deploymentId"].as_str().unwrap()
    );
    assert!(scaled["version"].is_string());

    let patch = json!({"mem": 64, "labels": {"team": "web"}});
    let (status, patched, _) = call(
        &http,
        &server,
        Method::PATCH,
        "/v2/apps/web?force=true",
        Some(patch),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    let app = get(&http, &server, "/v2/apps/web").await["app"].clone();
    assert_eq!(
        (app["mem"].clone(), app["cmd"].clone()),
        (json!(64.0), json!("sleep 100"))
    );
    assert_eq!(app["instances"], 3);
    assert_eq!(app["labels"]["team"], "web");

    let (status, restarted, _) = call(
        &http,
        &server,
        Method::POST,
        "/v2/apps/web/restart?force=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{restarted}");

    // PUT is a partial update by default, as in Marathon 1.x; Python
    // clients write booleans as True.
    let partial = json!({"id": "/ignored", "cmd": "sleep 200"});
    let (status, updated, _) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/apps/web?force=True",
        Some(partial),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let app = get(&http, &server, "/v2/apps/web").await["app"].clone();
    assert_eq!(app["cmd"], "sleep 200");
    assert_eq!(
        app["mem"], 64.0,
        "a partial PUT keeps what it does not name"
    );
    let replace = json!({"cmd": "sleep 300"});
    let (status, replaced, _) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/apps/web?force=TRUE&partialUpdate=false",
        Some(replace),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    let app = get(&http, &server, "/v2/apps/web").await["app"].clone();
    assert_eq!(app["cmd"], "sleep 300");
    assert_eq!(
        app["mem"], 128.0,
        "partialUpdate=false replaces the whole definition"
    );

    let versions = get(&http, &server, "/v2/apps/web/versions").await["versions"].clone();
    let versions: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        versions.len(),
        6,
        "create, scale, patch, restart, partial PUT, whole PUT"
    );
    assert_eq!(versions[0], app["version"], "newest first");
    let oldest = get(
        &http,
        &server,
        &format!("/v2/apps/web/versions/{}", versions[5]),
    )
    .await;
    assert_eq!(
        (oldest["instances"].clone(), oldest["mem"].clone()),
        (json!(1), json!(32.0))
    );
    assert_eq!(oldest["version"], versions[5]);
    let (status, _, _) = call(
        &http,
        &server,
        Method::GET,
        "/v2/apps/web/versions/2001-01-01T00:00:00Z",
        None,
    )
    .await;
    assert_eq!(status, 404);

    let revert = json!({"version": versions[5]});
    let (status, reverted, _) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/apps/web?force=true",
        Some(revert),
    )
    .await;
    assert_eq!(status, 200, "{reverted}");
    let app = get(&http, &server, "/v2/apps/web").await["app"].clone();
    assert_eq!(
        (app["instances"].clone(), app["mem"].clone()),
        (json!(1), json!(32.0))
    );

    let put_new = json!({"cmd": "sleep 3"});
    let (status, _, _) = call(&http, &server, Method::PUT, "/v2/apps/other", Some(put_new)).await;
    assert_eq!(status, 201, "PUT creates a missing app");

    let (status, deleted, _) = call(
        &http,
        &server,
        Method::DELETE,
        "/v2/apps/web?force=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    let (status, _, _) = call(&http, &server, Method::GET, "/v2/apps/web", None).await;
    assert_eq!(status, 404);

    let events = all_events(&http, &server).await;
    let kinds: Vec<Value> = events
        .iter()
        .filter(|e| e["type"] == "DeploymentPlanned")
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            json!("Create"),
            json!("Scale"),
            json!("Update"),
            json!("Restart"),
            json!("Update"),
            json!("Update"),
            json!("Update"),
            json!("Create"),
            json!("Delete")
        ]
    );
    assert!(types(&events).contains(&"AppScaled"));
    assert!(events.iter().all(|e| e["actor"]["kind"] == "api"));
}

#[tokio::test]
async fn deployments_are_listed_and_cancelled_by_rollback_or_force() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let body = json!({"id": "/web", "cmd": "sleep 1", "mem": 32});
    call(&http, &server, Method::POST, "/v2/apps", Some(body)).await;
    let listed = get(&http, &server, "/v2/deployments").await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["affectedApps"], json!(["/web"]));
    // Marathon starts a new app at 0 instances, then scales it.
    assert_eq!(listed[0]["currentActions"][0]["action"], "StartApplication");
    assert_eq!(
        listed[0]["steps"],
        json!([{"actions": [{"action": "StartApplication", "app": "/web"}]},
               {"actions": [{"action": "ScaleApplication", "app": "/web"}]}])
    );
    assert_eq!(
        (
            listed[0]["currentStep"].clone(),
            listed[0]["totalSteps"].clone()
        ),
        (json!(1), json!(2))
    );

    let update = json!({"cmd": "sleep 1", "mem": 512});
    let (_, updated, _) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/apps/web?force=true",
        Some(update),
    )
    .await;
    let update_id = updated["deploymentId"].as_str().unwrap().to_owned();
    let listed = get(&http, &server, "/v2/deployments").await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "the forced update replaced the create"
    );
    assert_eq!(listed[0]["id"], update_id.as_str());

    let (status, rollback, headers) = call(
        &http,
        &server,
        Method::DELETE,
        &format!("/v2/deployments/{update_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{rollback}");
    let rollback_id = rollback["deploymentId"].as_str().unwrap().to_owned();
    assert_eq!(headers["marathon-deployment-id"], rollback_id.as_str());
    assert_eq!(
        get(&http, &server, "/v2/apps/web").await["app"]["mem"],
        32.0
    );
    let listed = get(&http, &server, "/v2/deployments").await;
    assert_eq!(listed[0]["id"], rollback_id.as_str());

    let (status, _, _) = call(
        &http,
        &server,
        Method::DELETE,
        &format!("/v2/deployments/{rollback_id}?force=true"),
        None,
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(get(&http, &server, "/v2/deployments").await, json!([]));
    let events = all_events(&http, &server).await;
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "DeploymentFailed")
        .collect();
    assert_eq!(
        failed.len(),
        3,
        "create superseded, update rolled back, rollback stopped"
    );

    // Rolling back a deployment that removed an app creates it again, and
    // the answer is still Marathon's 200 (DeploymentsResource.cancel).
    let old = json!({"id": "/shop/old", "cmd": "sleep 1", "mem": 32});
    call(&http, &server, Method::POST, "/v2/apps", Some(old)).await;
    let replaced = json!({"apps": [{"id": "new", "cmd": "sleep 1", "mem": 32}]});
    let (status, replacing, _) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/groups/shop?force=true",
        Some(replaced),
    )
    .await;
    assert_eq!(status, 200, "{replacing}");
    let replacing = replacing["deploymentId"].as_str().unwrap().to_owned();
    let (status, rollback, _) = call(
        &http,
        &server,
        Method::DELETE,
        &format!("/v2/deployments/{replacing}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{rollback}");
    assert_eq!(
        get(&http, &server, "/v2/apps/shop/old").await["app"]["id"],
        "/shop/old"
    );
}

#[tokio::test]
async fn service_ports_come_from_the_configured_range_and_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--service-ports", "20000-20002"]);
    let http = client();
    let first =
        json!({"id": "/a", "cmd": "run", "portDefinitions": [{"port": 0}, {"port": 20000}]});
    let (status, a, _) = call(&http, &server, Method::POST, "/v2/apps", Some(first)).await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(
        a["portDefinitions"][0]["port"], 20001,
        "explicit 20000 is skipped"
    );
    let bridged = json!({"id": "/b", "cmd": "run", "container": {"type": "DOCKER",
        "docker": {"image": "nginx", "network": "BRIDGE"},
        "portMappings": [{"containerPort": 80, "hostPort": 0, "servicePort": 0}]}});
    let (status, b, _) = call(&http, &server, Method::POST, "/v2/apps", Some(bridged)).await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(b["container"]["portMappings"][0]["servicePort"], 20002);
    let before = all_events(&http, &server).await.len();

    for (body, path) in [
        (
            json!({"id": "/c", "cmd": "run", "portDefinitions": [{"port": 0}]}),
            "/portDefinitions/0/port",
        ),
        (
            json!({"id": "/d", "cmd": "run", "portDefinitions": [{"port": 20001}]}),
            "/portDefinitions/0/port",
        ),
        (
            json!({"id": "/e", "container": {"docker": {"image": "x", "network": "BRIDGE"},
                "portMappings": [{"containerPort": 1, "servicePort": 20000}]}}),
            "/container/portMappings/0/servicePort",
        ),
    ] {
        let (status, error, _) = call(&http, &server, Method::POST, "/v2/apps", Some(body)).await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(error["details"][0]["path"], path, "{error}");
    }
    assert_eq!(all_events(&http, &server).await.len(), before);

    // An app keeps its own ports when updated, and ports free up on delete.
    let same = json!({"portDefinitions": [{"port": 20001}, {"port": 20000}]});
    let (status, _, _) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/apps/a?force=true",
        Some(same),
    )
    .await;
    assert_eq!(status, 200);
    call(
        &http,
        &server,
        Method::DELETE,
        "/v2/apps/b?force=true",
        None,
    )
    .await;
    let reuse = json!({"id": "/f", "cmd": "run", "portDefinitions": [{"port": 0}]});
    let (status, f, _) = call(&http, &server, Method::POST, "/v2/apps", Some(reuse)).await;
    assert_eq!(status, 201, "{f}");
    assert_eq!(f["portDefinitions"][0]["port"], 20002);
    let info = get(&http, &server, "/v2/info").await;
    assert_eq!(info["marathon_config"]["local_port_min"], 20000);
    assert_eq!(info["marathon_config"]["local_port_max"], 20002);
}

/// Writes what the reconciler and Mesos would have: an app with 3 instances,
/// one running healthy task and one staging task.
fn seed_store_with_tasks(dir: &std::path::Path) {
    let log = LogWriter::open(dir).unwrap();
    let definition: AppDefinition = serde_json::from_value(json!({
        "id": "/web", "cmd": "sleep 1", "instances": 3,
        "portDefinitions": [{"port": 10100}]
    }))
    .unwrap();
    let launch = |task: &str, host: &str, port: u32| {
        Event::TaskLaunchRequested(TaskLaunchRequested {
            task: task.into(),
            app: "/web".into(),
            app_version: 1_000,
            agent: "agent-1".into(),
            host: host.to_owned(),
            ports: vec![port],
            offer: "offer-1".to_owned(),
        })
    };
    let events = [
        Event::AppCreated(AppCreated {
            app: "/web".into(),
            definition: AppSpec::new(definition),
        }),
        launch("web.1", "host-a", 31000),
        launch("web.2", "host-b", 31001),
        Event::TaskStatusRecorded(TaskStatusRecorded {
            task: "web.1".into(),
            app: Some("/web".into()),
            condition: Condition::Running,
            mesos_state: "TASK_RUNNING".to_owned(),
            reason: None,
            message: None,
            agent: Some("agent-1".into()),
            healthy: Some(true),
            status_uuid: None,
            mesos_timestamp: None,
        }),
    ];
    let envelopes: Vec<Arc<Envelope>> = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            Arc::new(Envelope {
                seq: Seq(i as u64 + 1),
                id: uuid::Uuid::now_v7(),
                recorded_at: 1_000 * (i as u64 + 1),
                actor: Actor::Mesos,
                command_id: uuid::Uuid::now_v7(),
                event,
            })
        })
        .collect();
    log.append(&envelopes, &[]).unwrap();
    log.sync().unwrap();
}

#[tokio::test]
async fn tasks_counts_queue_and_kills() {
    let dir = tempfile::tempdir().unwrap();
    seed_store_with_tasks(dir.path());
    let server = Server::start(dir.path(), &[]);
    let http = client();

    let app = get(&http, &server, "/v2/apps/web").await["app"].clone();
    assert_eq!(
        [
            &app["tasksRunning"],
            &app["tasksStaged"],
            &app["tasksHealthy"],
            &app["tasksUnhealthy"]
        ],
        [&json!(1), &json!(1), &json!(1), &json!(0)]
    );
    let tasks = get(&http, &server, "/v2/apps/web/tasks").await["tasks"].clone();
    let running = &tasks[0];
    assert_eq!(running["id"], "web.1");
    assert_eq!(running["appId"], "/web");
    assert_eq!(running["host"], "host-a");
    assert_eq!(running["ports"], json!([31000]));
    assert_eq!(running["servicePorts"], json!([10100]));
    assert_eq!(running["slaveId"], "agent-1");
    assert_eq!(running["state"], "TASK_RUNNING");
    assert!(running["stagedAt"].is_string() && running["startedAt"].is_string());
    assert!(running["version"].is_string());
    assert_eq!(running["healthCheckResults"][0]["alive"], true);
    assert_eq!(tasks[1]["state"], "TASK_STAGING");
    assert!(tasks[1]["startedAt"].is_null());

    let all = get(&http, &server, "/v2/tasks").await["tasks"].clone();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let only_running = get(&http, &server, "/v2/tasks?status=running").await["tasks"].clone();
    assert_eq!(only_running.as_array().unwrap().len(), 1);
    let text = http
        .get(server.url("/v2/tasks"))
        .header("accept", "text/plain")
        .send()
        .await
        .unwrap();
    assert!(
        text.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(text.text().await.unwrap(), "web\t10100\thost-a:31000\t\n");

    let queue = get(&http, &server, "/v2/queue").await["queue"].clone();
    assert_eq!(queue.as_array().unwrap().len(), 1);
    assert_eq!(queue[0]["count"], 1, "3 instances, 2 launched");
    assert_eq!(queue[0]["app"]["id"], "/web");
    assert!(queue[0]["delay"]["overdue"].is_boolean());
    let (status, _, _) = call(&http, &server, Method::DELETE, "/v2/queue/web/delay", None).await;
    assert_eq!(status, 204);

    let (status, killed, _) = call(
        &http,
        &server,
        Method::DELETE,
        "/v2/apps/web/tasks/web.2",
        None,
    )
    .await;
    assert_eq!(status, 200, "{killed}");
    assert_eq!(killed["task"]["id"], "web.2");
    let (status, scaled, headers) = call(
        &http,
        &server,
        Method::DELETE,
        "/v2/apps/web/tasks/web.1?scale=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{scaled}");
    assert!(headers.contains_key("marathon-deployment-id"));
    assert_eq!(
        get(&http, &server, "/v2/apps/web").await["app"]["instances"],
        2
    );
    let (status, _, _) = call(
        &http,
        &server,
        Method::DELETE,
        "/v2/apps/web/tasks/web.9",
        None,
    )
    .await;
    assert_eq!(status, 404);

    let (status, on_host, _) = call(
        &http,
        &server,
        Method::DELETE,
        "/v2/apps/web/tasks?host=host-b",
        None,
    )
    .await;
    assert_eq!(status, 200, "{on_host}");
    assert_eq!(on_host["tasks"][0]["id"], "web.2");
    assert_eq!(on_host["tasks"].as_array().unwrap().len(), 1);
    // A host is named whole (Marathon's AppTasksResource.deleteMany):
    // neither a part of one nor an empty name picks anything.
    for host in ["nowhere", "host", "host-", "", "host-*"] {
        let path = format!("/v2/apps/web/tasks?host={host}&scale=true");
        let (status, nothing, _) = call(&http, &server, Method::DELETE, &path, None).await;
        assert_eq!(
            (status.as_u16(), nothing),
            (200, json!({"tasks": []})),
            "{host}"
        );
    }
    // `*` is every host.
    let (status, all, headers) = call(
        &http,
        &server,
        Method::DELETE,
        "/v2/apps/web/tasks?host=*&scale=true&force=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{all}");
    assert!(headers.contains_key("marathon-deployment-id"));
    assert_eq!(
        get(&http, &server, "/v2/apps/web").await["app"]["instances"],
        0
    );

    let events = all_events(&http, &server).await;
    let new: Vec<&str> = types(&events[4..]);
    assert_eq!(
        new,
        [
            "LaunchDelayReset",
            "TaskKillRequested",
            "TaskKillRequested",
            "AppScaled",
            "DeploymentPlanned",
            "TaskKillRequested",
            "TaskKillRequested",
            "TaskKillRequested",
            "DeploymentFailed",
            "AppScaled",
            "DeploymentPlanned"
        ]
    );
}

#[tokio::test]
async fn info_leader_and_ping() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let address = server.url.trim_start_matches("http://").to_owned();
    let info = get(&http, &server, "/v2/info").await;
    // Every key Marathon's InfoResource.scala writes, and no other.
    let keys = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(&info),
        [
            "buildref",
            "elected",
            "frameworkId",
            "http_config",
            "leader",
            "marathon_config",
            "name",
            "version",
            "zookeeper_config"
        ]
    );
    assert_eq!(
        keys(&info["marathon_config"]),
        [
            "access_control_allow_origin",
            "checkpoint",
            "decline_offer_duration",
            "default_network_name",
            "env_vars_prefix",
            "executor",
            "failover_timeout",
            "features",
            "framework_name",
            "ha",
            "hostname",
            "launch_token",
            "launch_token_refresh_interval",
            "leader_proxy_connection_timeout_ms",
            "leader_proxy_read_timeout_ms",
            "local_port_max",
            "local_port_min",
            "maintenance_mode",
            "master",
            "max_instances_per_offer",
            "mesos_bridge_name",
            "mesos_heartbeat_failure_threshold",
            "mesos_heartbeat_interval",
            "mesos_leader_ui_url",
            "mesos_role",
            "mesos_user",
            "min_revive_offers_interval",
            "new_group_enforce_role",
            "offer_matching_timeout",
            "on_elected_prepare_timeout",
            "reconciliation_initial_delay",
            "reconciliation_interval",
            "scale_apps_initial_delay",
            "scale_apps_interval",
            "store_cache",
            "task_launch_confirm_timeout",
            "task_launch_timeout",
            "task_lost_expunge_initial_delay",
            "task_lost_expunge_interval",
            "task_reservation_timeout",
            "webui_url"
        ]
    );
    assert_eq!(
        keys(&info["zookeeper_config"]),
        [
            "zk",
            "zk_compression",
            "zk_compression_threshold",
            "zk_connection_timeout",
            "zk_max_node_size",
            "zk_max_versions",
            "zk_session_timeout",
            "zk_timeout"
        ]
    );
    assert_eq!(keys(&info["http_config"]), ["http_port", "https_port"]);
    // Served over HTTP: its port there, none for HTTPS (tls.rs has the other).
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(
        info["http_config"],
        json!({"http_port": port, "https_port": null})
    );
    assert_eq!(info["marathon_config"]["webui_url"], server.url.as_str());
    assert_eq!(
        info["version"], "1.11.0",
        "a Marathon version clients accept"
    );
    assert_eq!(info["leader"], address.as_str());
    assert_eq!(info["elected"], true);
    assert_eq!(info["marathon_config"]["local_port_min"], 10000);
    let stride = get(&http, &server, "/v1/info").await;
    assert_eq!(stride["name"], "stride");
    assert_eq!(stride["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        get(&http, &server, "/v2/leader").await,
        json!({"leader": address})
    );
    let (status, abdicated, _) = call(&http, &server, Method::DELETE, "/v2/leader", None).await;
    assert_eq!(
        (status.as_u16(), abdicated),
        (200, json!({"message": "Leadership abdicated"}))
    );
    let (status, pods, _) = call(&http, &server, Method::GET, "/v2/pods", None).await;
    assert_eq!(status, 501);
    assert!(
        pods["message"]
            .as_str()
            .unwrap()
            .contains("Pods are not supported")
    );
    let pong = http.get(server.url("/ping")).send().await.unwrap();
    assert_eq!(pong.text().await.unwrap(), "pong");
}

/// The app list is rendered once per change: repeated polls get the same
/// answer, and any change (a scale, a new app) shows in the next one.
#[tokio::test]
async fn repeated_list_polls_see_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let list = "/v2/apps?embed=apps.tasks";
    let instances = |body: &Value| -> Vec<u64> {
        let apps = body["apps"].as_array().unwrap();
        apps.iter()
            .map(|a| a["instances"].as_u64().unwrap())
            .collect()
    };
    let (status, _, _) = call(
        &http,
        &server,
        Method::POST,
        "/v2/apps",
        Some(support::app("/poll/a")),
    )
    .await;
    assert_eq!(status, 201);
    let first = get(&http, &server, list).await;
    assert_eq!(get(&http, &server, list).await, first);
    assert_eq!(instances(&first), [1]);
    let scale = json!({"instances": 3});
    let (status, _, _) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/apps/poll/a?force=true",
        Some(scale),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(instances(&get(&http, &server, list).await), [3]);
    let (status, _, _) = call(
        &http,
        &server,
        Method::POST,
        "/v2/apps",
        Some(support::app("/poll/b")),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(instances(&get(&http, &server, list).await), [3, 1]);
    // Another query is its own rendering.
    let filtered = get(&http, &server, "/v2/apps?embed=apps.tasks&id=/poll/b").await;
    assert_eq!(instances(&filtered), [1]);
    assert_eq!(instances(&get(&http, &server, list).await), [3, 1]);
}

/// `POST /v2/tasks/delete`: tasks by id, across apps, as Marathon's
/// TasksResource kills them; unknown ids are ignored.
#[tokio::test]
async fn tasks_are_killed_by_id_with_or_without_scaling() {
    let dir = tempfile::tempdir().unwrap();
    seed_store_with_tasks(dir.path());
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let task = get(&http, &server, "/v2/apps/web/tasks").await["tasks"][0].clone();
    let mut keys: Vec<&String> = task.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "appId",
            "healthCheckResults",
            "host",
            "id",
            "ipAddresses",
            "localVolumes",
            "ports",
            "role",
            "servicePorts",
            "slaveId",
            "stagedAt",
            "startedAt",
            "state",
            "version"
        ],
        "Marathon's Task (TaskConversion.scala)"
    );
    let ids = json!({"ids": ["web.2", "nope.1"]});
    let (status, killed, _) =
        call(&http, &server, Method::POST, "/v2/tasks/delete", Some(ids)).await;
    assert_eq!(status, 200, "{killed}");
    let killed: Vec<&str> = killed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(killed, ["web.2"]);
    assert_eq!(
        get(&http, &server, "/v2/apps/web").await["app"]["instances"],
        3,
        "without scale the app keeps its instances"
    );

    let (status, both, _) = call(
        &http,
        &server,
        Method::POST,
        "/v2/tasks/delete?scale=True&wipe=True",
        Some(json!({"ids": ["web.1"]})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        both["message"],
        "You cannot use scale and wipe at the same time."
    );

    let (status, scaled, headers) = call(
        &http,
        &server,
        Method::POST,
        "/v2/tasks/delete?scale=True&force=True",
        Some(json!({"ids": ["web.1"]})),
    )
    .await;
    assert_eq!(status, 200, "{scaled}");
    assert_eq!(
        headers["marathon-deployment-id"],
        scaled["deploymentId"].as_str().unwrap()
    );
    assert_eq!(
        get(&http, &server, "/v2/apps/web").await["app"]["instances"],
        2
    );
    let (status, _, _) = call(
        &http,
        &server,
        Method::POST,
        "/v2/tasks/delete",
        Some(json!({"tasks": []})),
    )
    .await;
    assert_eq!(status, 422, "a body without ids");
}
