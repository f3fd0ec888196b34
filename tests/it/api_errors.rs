//! Rejected requests: Marathon's status codes and error shapes, and a log
//! that does not grow.

use crate::support::{Server, all_events, app, client};
use serde_json::{Value, json};

async fn seq(http: &reqwest::Client, server: &Server) -> u64 {
    let state: Value = http
        .get(server.url("/v1/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state["seq"].as_u64().unwrap()
}

/// `body` with an id and, if it names nothing to run, a command (Marathon
/// requires one), so that each case is wrong in one way only.
fn with_id(mut body: Value) -> Value {
    if body.get("id").is_none() {
        body["id"] = json!("/bad/app");
    }
    if ["cmd", "args", "container"]
        .iter()
        .all(|f| body.get(f).is_none())
    {
        body["cmd"] = json!("sleep 1");
    }
    body
}

#[tokio::test]
async fn every_invalid_definition_is_a_422_naming_the_field_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let cases = [
        (json!({"cpus": "one"}), "/cpus"),
        (json!({"cpus": -1}), "/cpus"),
        (json!({"mem": "lots"}), "/mem"),
        (json!({"id": "/Bad_Id"}), "/id"),
        (json!({"id": "/a/./b-"}), "/id"),
        (json!({"instances": -1}), "/instances"),
        (json!({"cmd": "sleep 1", "args": ["sleep", "1"]}), "/"),
        (
            json!({"constraints": [["hostname", "SOMETIMES"]]}),
            "/constraints/0",
        ),
        (json!({"constraints": [["hostname"]]}), "/constraints/0"),
        (
            json!({"constraints": [["rack", "MAX_PER"]]}),
            "/constraints/0",
        ),
        (
            json!({"constraints": [["rack", "LIKE", "(rack"]]}),
            "/constraints/0",
        ),
        (
            json!({"constraints": [["hostname", "UNIQUE", "x"]]}),
            "/constraints/0",
        ),
        (
            json!({"portDefinitions": [{"port": 10005}, {"port": 10005}]}),
            "/portDefinitions/1/port",
        ),
        (
            json!({"portDefinitions": [{"port": 70000}]}),
            "/portDefinitions/0/port",
        ),
        (
            json!({"container": {"type": "DOCKER", "docker": {"network": "HOST"}}}),
            "/container/docker/image",
        ),
        (
            json!({"container": {"docker": {"image": "nginx", "network": "BRIDGE"},
                   "portMappings": [{"containerPort": 80, "hostPort": 70000}]}}),
            "/container/portMappings/0/hostPort",
        ),
        (
            json!({"container": {"docker": {"image": "nginx", "network": "BRIDGE"},
                   "portMappings": [{"servicePort": 10009}, {"servicePort": 10009}]}}),
            "/container/portMappings/1/servicePort",
        ),
        (json!({"env": {"A": 1}}), "/env/A"),
        (json!({"killSelection": "RANDOM"}), "/killSelection"),
        (
            json!({"unreachableStrategy": "sometimes"}),
            "/unreachableStrategy",
        ),
        (
            json!({"healthChecks": [{"protocol": "COMMAND"}]}),
            "/healthChecks/0/command",
        ),
        (
            json!({"upgradeStrategy": {"minimumHealthCapacity": 2}}),
            "/upgradeStrategy/minimumHealthCapacity",
        ),
        (
            json!({"readinessChecks": [{"portName": "http"}]}),
            "/readinessChecks/0/portName",
        ),
        (json!({"dependencies": ["NotAnId"]}), "/dependencies/0"),
        (json!({"backoffFactor": 0.5}), "/backoffFactor"),
        (json!({"fetch": [{"uri": ""}]}), "/fetch/0/uri"),
        // Traced to Marathon's AppValidation.scala and friends.
        (json!({"cmd": "x"}), "/cmd"),
        (json!({"id": "/bad/tasks"}), "/id"),
        (
            json!({"uris": ["http://a/b"], "fetch": [{"uri": "http://c"}]}),
            "/uris",
        ),
        (json!({"ports": [80, 80]}), "/ports"),
        (
            json!({"container": {"docker": {"image": "nginx", "network": "NONE"}}}),
            "/container/docker/network",
        ),
        (
            json!({"networks": [{"mode": "host"}], "container": {"docker": {"image": "x",
                "network": "BRIDGE"}}}),
            "/networks",
        ),
        (json!({"secrets": {"pw": {"source": "db/pw"}}}), "/secrets"),
        (json!({"role": "prod"}), "/role"),
    ];
    assert!(cases.len() >= 20);
    for (body, path) in cases {
        let body = with_id(body);
        let response = http
            .post(server.url("/v2/apps"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error["message"].is_string(), "{error}");
        let paths: Vec<&str> = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&path), "{body}: expected {path} in {error}");
        assert!(
            error["details"][0]["errors"][0].is_string(),
            "{body}: {error}"
        );
    }
    assert_eq!(seq(&http, &server).await, 0);
    assert!(all_events(&http, &server).await.is_empty());
}

#[tokio::test]
async fn one_422_reports_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let body = json!({"id": "/a", "cmd": "sleep 1", "cpus": -1, "mem": -1,
        "constraints": [["rack", "IS"]]});
    let response = http
        .post(server.url("/v2/apps"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    let paths: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/cpus", "/mem", "/constraints/0"]);

    let no_id = http
        .post(server.url("/v2/apps"))
        .json(&json!({"cmd": "sleep 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_id.status(), 422);
    let error: Value = no_id.json().await.unwrap();
    assert_eq!(error["details"][0]["path"], "/id");
}

#[tokio::test]
async fn bad_json_unknown_ids_conflicts_and_wrong_methods() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let malformed = http
        .post(server.url("/v2/apps"))
        .header("content-type", "application/json")
        .body("{\"id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);

    for (method, path) in [
        (reqwest::Method::GET, "/v2/apps/nope"),
        (reqwest::Method::GET, "/v2/apps/nope/tasks"),
        (reqwest::Method::GET, "/v2/apps/nope/versions"),
        (reqwest::Method::DELETE, "/v2/apps/nope"),
        (reqwest::Method::POST, "/v2/apps/nope/restart"),
        (reqwest::Method::DELETE, "/v2/apps/nope/tasks/nope.1"),
        (reqwest::Method::DELETE, "/v2/queue/nope/delay"),
        (
            reqwest::Method::DELETE,
            "/v2/deployments/0192f1c4-0000-7000-8000-000000000000",
        ),
        (reqwest::Method::DELETE, "/v2/deployments/not-a-uuid"),
    ] {
        let response = http
            .request(method.clone(), server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        let error: Value = response.json().await.unwrap();
        assert!(error["message"].is_string());
    }
    // A PUT creates a missing app from what it gives: here nothing to run.
    let scale_missing = http
        .put(server.url("/v2/apps/nope"))
        .json(&json!({"instances": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(scale_missing.status(), 422);
    let patch_missing = http
        .patch(server.url("/v2/apps/nope"))
        .json(&json!({"mem": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch_missing.status(), 404);
    let wrong_method = http
        .post(server.url("/v2/apps/web/versions"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let bad_flag = http
        .delete(server.url("/v2/apps/nope?force=maybe"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_flag.status(), 400);
    assert!(all_events(&http, &server).await.is_empty());

    let created = http
        .post(server.url("/v2/apps"))
        .json(&app("/web"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let duplicate = http
        .post(server.url("/v2/apps"))
        .json(&app("/web"))
        .send()
        .await
        .unwrap();
    assert_eq!(duplicate.status(), 409);
    let locked = http
        .put(server.url("/v2/apps/web"))
        .json(&json!({"instances": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(locked.status(), 409, "the create deployment holds the app");
    let invalid_patch = http
        .patch(server.url("/v2/apps/web?force=true"))
        .json(&json!({"cpus": -2, "instances": "many"}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_patch.status(), 422);
    let not_an_object = http
        .patch(server.url("/v2/apps/web?force=true"))
        .json(&json!([1, 2]))
        .send()
        .await
        .unwrap();
    assert_eq!(not_an_object.status(), 422);
    assert_eq!(all_events(&http, &server).await.len(), 2);
}

/// What schemathesis found (tests/openapi.rs): a 405 lists the methods of
/// the resource the path names, not of the wildcard route behind it; group
/// sub-resources refuse methods they do not take instead of creating or
/// deleting a group named `versions`; pods answer 501 only where
/// Marathon's PodsResource has a method; GroupUpdate's scalars are typed;
/// the root group cannot be created again.
#[tokio::test]
async fn methods_a_resource_does_not_take_are_405_with_its_allow() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    for (method, path, allow) in [
        ("OPTIONS", "/v2/apps/web/restart", "POST"),
        ("OPTIONS", "/v2/apps/web/tasks", "GET, DELETE"),
        ("TRACE", "/v2/apps/web/versions", "GET"),
        (
            "OPTIONS",
            "/v2/groups/prod",
            "GET, POST, PUT, PATCH, DELETE",
        ),
        ("POST", "/v2/groups/prod/versions", "GET"),
        ("POST", "/v2/groups/prod/apps", "GET"),
        ("DELETE", "/v2/groups/prod/versions", "GET"),
        (
            "PATCH",
            "/v2/groups/prod/versions/2020-01-01T00:00:00Z",
            "GET, PUT",
        ),
        ("TRACE", "/v2/pods", ""),
        ("PATCH", "/v2/pods/web", ""),
    ] {
        let response = send(&http, &server, method, path).await;
        assert_eq!(response.status(), 405, "{method} {path}");
        let allowed = response.headers()["allow"].to_str().unwrap().to_owned();
        if !allow.is_empty() {
            assert_eq!(allowed, allow, "{method} {path}");
        }
        let error: Value = response.json().await.unwrap();
        assert!(error["message"].is_string(), "{method} {path}");
    }
    for (method, path) in [
        ("HEAD", "/v2/pods"),
        ("POST", "/v2/pods"),
        ("PUT", "/v2/pods/web"),
    ] {
        let response = send(&http, &server, method, path).await;
        assert_eq!(response.status(), 501, "{method} {path}");
    }
    for (body, path) in [
        (json!({"id": "/g", "scaleBy": {}}), "/scaleBy"),
        (json!({"id": 7}), "/id"),
        (
            json!({"id": "/g", "groups": [{"id": "h", "version": 3}]}),
            "/groups/0/version",
        ),
    ] {
        let response = http
            .post(server.url("/v2/groups"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["details"][0]["path"], path, "{error}");
    }
    // The root group always exists, wherever the POST points.
    for path in ["/v2/groups", "/v2/groups/elsewhere"] {
        let response = http
            .post(server.url(path))
            .json(&json!({"id": "/"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 409, "{path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(
            error["message"],
            "Group / is already created. Use PUT to change this group."
        );
    }
    assert!(all_events(&http, &server).await.is_empty());
}

async fn send(
    http: &reqwest::Client,
    server: &Server,
    method: &str,
    path: &str,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    http.request(method, server.url(path))
        .json(&json!({"id": "/x"}))
        .send()
        .await
        .unwrap()
}
