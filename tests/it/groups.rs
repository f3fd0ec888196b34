//! `/v2/groups` against the real binary: Marathon's group tree with nested
//! ids, its GroupInfo shape and embeds, versions and rollback, scaling,
//! dry runs and deletion; and, on the embedded cluster, a deployment whose
//! steps follow `dependencies`.

use crate::support::ports::ports;
use crate::support::{LocalMesos, Server, all_events, client, wait_until};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

async fn call(
    http: &reqwest::Client,
    server: &Server,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, server.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

fn sleeper(id: &str) -> Value {
    json!({"id": id, "cmd": "sleep 1000", "cpus": 0.01, "mem": 8})
}

#[tokio::test]
async fn a_tree_of_groups_is_created_shown_versioned_scaled_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    // Relative ids resolve against the group they are in.
    let tree = json!({
        "id": "shop",
        "dependencies": [],
        "apps": [sleeper("api")],
        "groups": [
            {"id": "db", "apps": [sleeper("main"), sleeper("/shop/db/replica")]},
            {"id": "web", "dependencies": ["../db"], "apps": [sleeper("front")]}
        ]
    });
    let (status, created) = call(
        &http,
        &server,
        Method::POST,
        "/v2/groups",
        Some(tree.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(keys(&created), ["deploymentId", "version"]);
    let (status, again) = call(&http, &server, Method::POST, "/v2/groups", Some(tree)).await;
    assert_eq!(status, 409, "{again}");

    // GroupInfo: id, apps, groups, pods, dependencies, version; each
    // group shows the tree's version, as in Marathon.
    let (_, root) = call(&http, &server, Method::GET, "/v2/groups", None).await;
    assert_eq!(
        keys(&root),
        ["apps", "dependencies", "groups", "id", "pods", "version"]
    );
    assert_eq!(root["id"], "/");
    assert_eq!(root["version"], created["version"]);
    let shop = &root["groups"][0];
    assert_eq!(shop["id"], "/shop");
    assert_eq!(shop["apps"][0]["id"], "/shop/api");
    assert!(
        shop["apps"][0].get("tasksRunning").is_none(),
        "no app embeds by default"
    );
    let ids: Vec<&str> = shop["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["/shop/db", "/shop/web"]);
    assert_eq!(shop["groups"][1]["dependencies"], json!(["/shop/db"]));
    assert_eq!(shop["groups"][0]["apps"].as_array().unwrap().len(), 2);

    let (_, only_groups) = call(
        &http,
        &server,
        Method::GET,
        "/v2/groups/shop?embed=group.groups",
        None,
    )
    .await;
    assert_eq!(only_groups["apps"], json!([]));
    assert_eq!(only_groups["groups"][0]["apps"], json!([]));
    let (_, with_counts) = call(
        &http,
        &server,
        Method::GET,
        "/v2/groups/shop?embed=group.apps&embed=group.apps.counts",
        None,
    )
    .await;
    assert_eq!(with_counts["apps"][0]["tasksRunning"], 0);
    assert_eq!(with_counts["groups"], json!([]));
    let (_, apps) = call(&http, &server, Method::GET, "/v2/groups/shop/apps", None).await;
    assert_eq!(apps.as_array().unwrap().len(), 4, "every app under /shop");
    let (status, _) = call(&http, &server, Method::GET, "/v2/groups/nope", None).await;
    assert_eq!(status, 404);

    // A dry run shows the steps and changes nothing.
    let scale = json!({"scaleBy": 2});
    let (status, dry) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/groups/shop/db?dryRun=true&force=true",
        Some(scale.clone()),
    )
    .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["steps"][0]["actions"][0]["action"], "ScaleApplication");
    let (_, main) = call(&http, &server, Method::GET, "/v2/apps/shop/db/main", None).await;
    assert_eq!(main["app"]["instances"], 1);
    let (status, scaled) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/groups/shop/db?force=True",
        Some(scale),
    )
    .await;
    assert_eq!(status, 200, "{scaled}");
    let (_, main) = call(&http, &server, Method::GET, "/v2/apps/shop/db/main", None).await;
    assert_eq!(main["app"]["instances"], 2);

    // Restructuring: listed apps replace the group's apps.
    let restructure = json!({"apps": [sleeper("main")]});
    let (status, _) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/groups/shop/db?force=true",
        Some(restructure),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &http,
        &server,
        Method::GET,
        "/v2/apps/shop/db/replica",
        None,
    )
    .await;
    assert_eq!(status, 404, "an app the update leaves out is removed");

    // Versions: the tree's, newest first; any of them can be read back and
    // rolled back to.
    let (_, versions) = call(
        &http,
        &server,
        Method::GET,
        "/v2/groups/shop/db/versions",
        None,
    )
    .await;
    let versions: Vec<String> = serde_json::from_value(versions).unwrap();
    assert_eq!(versions.len(), 3, "created, scaled, restructured");
    assert_eq!(versions[2], created["version"]);
    let (status, first) = call(
        &http,
        &server,
        Method::GET,
        &format!("/v2/groups/shop/db/versions/{}", versions[2]),
        None,
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["apps"].as_array().unwrap().len(), 2);
    let rollback = json!({"version": versions[2]});
    let (status, rolled) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/groups/shop/db?force=true",
        Some(rollback),
    )
    .await;
    assert_eq!(status, 200, "{rolled}");
    let (_, replica) = call(
        &http,
        &server,
        Method::GET,
        "/v2/apps/shop/db/replica",
        None,
    )
    .await;
    assert_eq!(replica["app"]["instances"], 1, "back as it was");
    let (status, bad) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/groups/shop",
        Some(json!({"version": versions[0], "scaleBy": 2})),
    )
    .await;
    assert_eq!(status, 422, "{bad}");

    // Apps and groups may not share an id; cyclic dependencies are refused.
    let (status, clash) = call(
        &http,
        &server,
        Method::POST,
        "/v2/apps",
        Some(sleeper("/shop/db")),
    )
    .await;
    assert_eq!(status, 422, "{clash}");
    let cycle = json!({"id": "/shop/db", "dependencies": ["/shop/web"]});
    let (status, cyclic) = call(
        &http,
        &server,
        Method::PUT,
        "/v2/groups/shop/db?force=true",
        Some(cycle),
    )
    .await;
    assert_eq!(status, 422, "{cyclic}");
    assert!(cyclic.to_string().contains("cyclic"), "{cyclic}");

    // Role enforcement (Marathon 1.9) is not there to switch on.
    let (status, _) = call(
        &http,
        &server,
        Method::PATCH,
        "/v2/groups/shop",
        Some(json!({"enforceRole": false})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &http,
        &server,
        Method::PATCH,
        "/v2/groups/shop",
        Some(json!({"enforceRole": true})),
    )
    .await;
    assert_eq!(status, 422);

    let (status, deleted) = call(
        &http,
        &server,
        Method::DELETE,
        "/v2/groups/shop/web?force=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    let (status, _) = call(&http, &server, Method::GET, "/v2/groups/shop/web", None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&http, &server, Method::GET, "/v2/apps/shop/web/front", None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&http, &server, Method::DELETE, "/v2/groups/shop/web", None).await;
    assert_eq!(status, 404);

    let events = all_events(&http, &server).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"GroupUpdated") && kinds.contains(&"GroupDeleted"),
        "{kinds:?}"
    );
    let (status, _) = call(
        &http,
        &server,
        Method::DELETE,
        "/v2/groups?force=true",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, root) = call(&http, &server, Method::GET, "/v2/groups", None).await;
    assert_eq!(
        (root["apps"].clone(), root["groups"].clone()),
        (json!([]), json!([]))
    );
}

/// `POST /v2/groups/{path}` creates the group its body's id names, resolved
/// against the path as Marathon's createWithPath does: an absolute id
/// stands wherever the path points, a relative one goes under the path, and
/// one that climbs to the root names a group that always exists (409).
#[tokio::test]
async fn a_posted_group_is_the_one_its_body_names_resolved_against_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    for (path, id, created) in [
        ("/v2/groups/f", "/x", "/x"),
        ("/v2/groups/f", "y", "/f/y"),
        ("/v2/groups/f/y", "../z", "/f/z"),
    ] {
        let response = http
            .post(server.url(path))
            .json(&json!({"id": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "POST {path} {id}");
        assert_eq!(response.headers()["location"], created, "POST {path} {id}");
        let (status, group) = call(
            &http,
            &server,
            Method::GET,
            &format!("/v2/groups{created}"),
            None,
        )
        .await;
        assert_eq!((status, group["id"].as_str()), (200, Some(created)));
    }
    let (status, _) = call(&http, &server, Method::GET, "/v2/groups/x/f", None).await;
    assert_eq!(status, 404, "the path is not the group created");
    let before = all_events(&http, &server).await.len();
    for (path, id) in [("/v2/groups/f", ".."), ("/v2/groups/f/y", "../../")] {
        let body = Some(json!({"id": id}));
        let (status, conflict) = call(&http, &server, Method::POST, path, body).await;
        assert_eq!(status, 409, "POST {path} {id}: {conflict}");
        assert_eq!(
            conflict["message"],
            "Group / is already created. Use PUT to change this group."
        );
    }
    assert_eq!(all_events(&http, &server).await.len(), before);
}

/// Marathon's `DeploymentPlan`: stop, start, then scale in dependency
/// order. A web tier depending on a database group launches only once the
/// database runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_order_the_steps_of_a_deployment() {
    let ports = ports(500);
    let mesos = LocalMesos::start(&["--ports", &ports.arg()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_mesos(dir.path(), &["--master", &mesos.url]);
    let http = client();
    let tree = json!({
        "id": "/tier",
        "groups": [
            {"id": "db", "apps": [sleeper("main")]},
            {"id": "web", "dependencies": ["/tier/db"], "apps": [sleeper("front")]},
            {"id": "edge", "apps": [{"id": "proxy", "cmd": "sleep 1000", "cpus": 0.01, "mem": 8,
                "dependencies": ["/tier/web/front"], "instances": 2}]}
        ]
    });
    let (status, created) = call(&http, &server, Method::POST, "/v2/groups", Some(tree)).await;
    assert_eq!(status, 201, "{created}");
    let (_, deployments) = call(&http, &server, Method::GET, "/v2/deployments", None).await;
    let steps = deployments[0]["steps"].clone();
    let names = |step: &Value| -> Vec<(String, String)> {
        step["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["action"].as_str().unwrap().to_owned(),
                    a["app"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let steps: Vec<Vec<(String, String)>> = steps.as_array().unwrap().iter().map(names).collect();
    let pair = |action: &str, app: &str| (action.to_owned(), app.to_owned());
    assert_eq!(
        steps,
        [
            vec![
                pair("StartApplication", "/tier/db/main"),
                pair("StartApplication", "/tier/edge/proxy"),
                pair("StartApplication", "/tier/web/front")
            ],
            vec![pair("ScaleApplication", "/tier/db/main")],
            vec![pair("ScaleApplication", "/tier/web/front")],
            vec![pair("ScaleApplication", "/tier/edge/proxy")],
        ]
    );
    wait_until(
        "the deployment to finish",
        Duration::from_secs(60),
        || async {
            call(&http, &server, Method::GET, "/v2/deployments", None)
                .await
                .1
                == json!([])
        },
    )
    .await;
    // In the log: each tier's launches come after the step before it is done.
    let events = all_events(&http, &server).await;
    let seq_of = |pick: &dyn Fn(&Value) -> bool| -> u64 {
        events
            .iter()
            .find(|e| pick(e))
            .map(|e| e["seq"].as_u64().unwrap())
            .expect("an event")
    };
    let launch =
        |app: &'static str| move |e: &Value| e["type"] == "TaskLaunchRequested" && e["app"] == app;
    let step_done =
        |n: u64| move |e: &Value| e["type"] == "DeploymentStepFinished" && e["step"] == n;
    let running = |app: &'static str| {
        move |e: &Value| {
            e["type"] == "TaskStatusRecorded"
                && e["app"] == app
                && e["mesos_state"] == "TASK_RUNNING"
        }
    };
    assert!(seq_of(&launch("/tier/db/main")) < seq_of(&running("/tier/db/main")));
    assert!(seq_of(&running("/tier/db/main")) < seq_of(&step_done(2)));
    assert!(seq_of(&step_done(2)) < seq_of(&launch("/tier/web/front")));
    assert!(seq_of(&running("/tier/web/front")) < seq_of(&step_done(3)));
    assert!(seq_of(&step_done(3)) < seq_of(&launch("/tier/edge/proxy")));
    assert!(events.iter().any(|e| e["type"] == "DeploymentFinished"));
    let (_, proxy) = call(
        &http,
        &server,
        Method::GET,
        "/v2/apps/tier/edge/proxy",
        None,
    )
    .await;
    assert_eq!(proxy["app"]["tasksRunning"], 2);
}
