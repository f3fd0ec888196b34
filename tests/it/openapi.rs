//! `/openapi.json` against the real binary: valid OpenAPI 3 by
//! openapi-spec-validator (PyPI), describing exactly the routes and methods
//! the router has, and schemathesis (PyPI) fuzzing the API from it on the
//! embedded cluster without a 5xx or an answer that contradicts it.

use crate::support::api_tools;

use crate::support::ports::ports;
use crate::support::{LocalMesos, Server, client, get_json};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

/// Every `(route template, method)` the router serves, read from its
/// source (its tests left out, whitespace removed so formatting does not
/// matter): a route or
/// a method added there without a description fails here.
fn routed() -> Vec<(String, String)> {
    let source = include_str!("../../crates/stride-server/src/api/mod.rs");
    let router = source.split("#[cfg(test)]").next().unwrap_or(source);
    let source: String = router.chars().filter(|c| !c.is_whitespace()).collect();
    let mut routed = Vec::new();
    for chunk in source.split(".route(\"").skip(1) {
        let (route, handlers) = chunk.split_once('"').expect("a route template");
        // The handlers end where the router's next call begins.
        let handlers = handlers.split(".with_state(").next().unwrap_or(handlers);
        for method in ["get", "put", "post", "patch", "delete"] {
            let called = handlers.starts_with(&format!(",{method}("))
                || handlers.contains(&format!(".{method}("));
            if called {
                routed.push((route.to_owned(), method.to_owned()));
            }
        }
    }
    routed
}

/// Whether `route` (a router template, maybe with a `{*rest}` wildcard)
/// serves the spec path `path`.
fn serves(route: &str, path: &str) -> bool {
    match route.split_once("{*") {
        Some((prefix, _)) => path.starts_with(prefix),
        None => path == route,
    }
}

/// The spec's `(path, method)` pairs.
fn described(spec: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            pairs.insert((path.clone(), method.clone()));
        }
    }
    pairs
}

#[tokio::test]
async fn the_spec_is_openapi_3_and_describes_every_route_with_its_errors() {
    let Some(python) = api_tools::python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let spec = get_json(&http, &server.url("/openapi.json")).await;
    let script = "import sys, json\n\
        from openapi_spec_validator import validate\n\
        validate(json.load(sys.stdin))";
    let (ok, _, err) = api_tools::run_python(&python, script, &[], &spec.to_string());
    assert!(ok, "openapi-spec-validator refused /openapi.json: {err}");
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));

    let described = described(&spec);
    let routed = routed();
    assert!(routed.len() > 40, "{routed:?}");
    for (route, method) in &routed {
        assert!(
            described
                .iter()
                .any(|(path, m)| m == method && serves(route, path)),
            "{method} {route} is routed but not in /openapi.json"
        );
    }
    for (path, method) in &described {
        assert!(
            routed
                .iter()
                .any(|(route, m)| m == method && serves(route, path)),
            "{method} {path} is described but not routed"
        );
        // And the server takes that method there: neither the 404 of an
        // unknown route nor a 405. Streams answer their headers at once.
        let concrete = path
            .replace("{id}", "nope")
            .replace("{taskId}", "nope.1")
            .replace("{version}", "2020-01-01T00:00:00Z");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let answer = http
            .request(method.clone(), server.url(&concrete))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("an answer");
        let status = answer.status();
        assert_ne!(status, 405, "{method} {concrete}");
        if status == 404 {
            let body = answer.text().await.unwrap_or_default();
            assert!(!body.contains("no resource at"), "{method} {path}: {body}");
        }
    }

    // Every operation has an id and says what its errors look like:
    // Marathon's writes 400 and 422, what a deployment may block 409.
    let mut ids = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().expect("an operationId");
            assert!(ids.insert(id.to_owned()), "{id} twice");
            let responses = operation["responses"].as_object().expect("responses");
            // Credentials are asked of every operation but liveness; one
            // that takes them may refuse them, an open one never does.
            let open = operation["security"] == serde_json::json!([{}]);
            assert_eq!(open, path == "/ping", "{method} {path}: {operation}");
            for code in ["401", "403"] {
                assert_eq!(
                    responses.contains_key(code),
                    !open,
                    "{method} {path} and {code}"
                );
            }
            let marathon = path.starts_with("/v2/") && !path.starts_with("/v2/pods");
            if marathon && operation.get("requestBody").is_some() {
                for code in ["400", "422"] {
                    assert!(responses.contains_key(code), "{method} {path} lacks {code}");
                }
            }
            // `force` overrides the 409 of a deployment in the way.
            let forced = operation["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["name"] == "force"));
            if marathon && forced {
                assert!(responses.contains_key("409"), "{method} {path} lacks 409");
            }
            // Only `/apps` of a missing group is found (empty), as in Marathon.
            let reads_or_deletes = ["get", "delete"].contains(&method.as_str());
            let lookup = path.contains("{id}") && !path.ends_with("{id}/apps");
            if lookup && reads_or_deletes && !path.starts_with("/v2/pods") {
                assert!(responses.contains_key("404"), "{method} {path} lacks 404");
            }
        }
    }
    assert!(ids.len() >= 55, "{} operations", ids.len());
    // Bearer tokens and Basic users, either of them, asked of every
    // operation unless it says otherwise: generated clients send them.
    assert_eq!(
        spec["components"]["securitySchemes"],
        serde_json::json!({
            "bearer": {"type": "http", "scheme": "bearer",
                "description": "A token from `stride auth token create` (docs/security.md)"},
            "basic": {"type": "http", "scheme": "basic",
                "description": "A user from `stride auth user set` or `--http-credentials`, as Marathon's clients send"},
        })
    );
    assert_eq!(
        spec["security"],
        serde_json::json!([{"bearer": []}, {"basic": []}])
    );
    let invalid =
        &spec["components"]["responses"]["Invalid"]["content"]["application/json"]["schema"];
    assert_eq!(
        invalid["$ref"], "#/components/schemas/ErrorBody",
        "{invalid}"
    );
    let error = &spec["components"]["schemas"]["ErrorBody"];
    assert!(
        error["properties"]["details"].to_string().contains("path"),
        "{error}"
    );
}

/// Where the document tells two successes apart, or names one other than
/// 200, each is answered: the request below gets it from the server. A
/// success declared and not answered (PUT /v2/groups/{id} and PUT
/// /v2/apps once declared a 201 they never sent) fails here, and so does
/// one answered and not listed.
#[tokio::test]
async fn every_success_the_document_tells_apart_is_answered() {
    use reqwest::Method;
    use serde_json::{Value, json};
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let spec = get_json(&http, &server.url("/openapi.json")).await;
    let mut declared = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let successes: Vec<u16> = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|code| code.parse().ok())
                .filter(|code| (200..300).contains(code))
                .collect();
            if successes.len() > 1 || successes.iter().any(|&code| code != 200) {
                for code in successes {
                    declared.insert((method.to_uppercase(), path.clone(), code));
                }
            }
        }
    }
    let call = |method: Method, path: String, body: Option<Value>| {
        let mut request = http.request(method, server.url(&path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let answer = request.send().await.expect("an answer");
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap_or_default();
            (status, body)
        }
    };
    let app = crate::support::app;
    let mut reached = BTreeSet::new();
    let mut expect = |method: Method, template: &str, want: u16, got: (u16, Value)| {
        assert_eq!(got.0, want, "{method} {template}: {}", got.1);
        reached.insert((method.to_string(), template.to_owned(), want));
        got.1
    };
    // No Mesos: deployments stay open, so changes to their apps force.
    let got = call(Method::POST, "/v2/apps".into(), Some(app("/s/a"))).await;
    expect(Method::POST, "/v2/apps", 201, got);
    let got = call(Method::PUT, "/v2/apps/s/b".into(), Some(app("/s/b"))).await;
    expect(Method::PUT, "/v2/apps/{id}", 201, got);
    let body = Some(json!({"instances": 2}));
    let got = call(Method::PUT, "/v2/apps/s/b?force=true".into(), body).await;
    expect(Method::PUT, "/v2/apps/{id}", 200, got);
    let got = call(Method::POST, "/v2/groups".into(), Some(json!({"id": "/g"}))).await;
    expect(Method::POST, "/v2/groups", 201, got);
    let got = call(
        Method::POST,
        "/v2/groups/g".into(),
        Some(json!({"id": "sub"})),
    )
    .await;
    expect(Method::POST, "/v2/groups/{id}", 201, got);
    let got = call(Method::DELETE, "/v2/queue/s/a/delay".into(), None).await;
    expect(Method::DELETE, "/v2/queue/{id}/delay", 204, got);
    // A rollback is a new deployment (200); stopping one is 202.
    let created = call(Method::POST, "/v2/apps".into(), Some(app("/s/d"))).await;
    assert_eq!(created.0, 201, "{}", created.1);
    let deployment = created.1["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = call(
        Method::DELETE,
        format!("/v2/deployments/{deployment}"),
        None,
    )
    .await;
    let rollback = expect(Method::DELETE, "/v2/deployments/{id}", 200, got);
    let rollback = rollback["deploymentId"].as_str().unwrap();
    let path = format!("/v2/deployments/{rollback}?force=true");
    let got = call(Method::DELETE, path, None).await;
    expect(Method::DELETE, "/v2/deployments/{id}", 202, got);
    assert_eq!(
        declared, reached,
        "declared successes against those answered"
    );

    // Creating apps or a group by PUT of many is an update's 200, as in
    // Marathon (AppsResource.updateMultiple, GroupsResource.update).
    let (status, body) = call(Method::PUT, "/v2/apps".into(), Some(json!([app("/s/c")]))).await;
    assert_eq!(status, 200, "{body}");
    let body = Some(json!({"apps": [app("new")]}));
    let (status, body) = call(Method::PUT, "/v2/groups/fresh".into(), body).await;
    assert_eq!(status, 200, "{body}");
    let group = get_json(&http, &server.url("/v2/groups/fresh")).await;
    assert_eq!(group["apps"][0]["id"], "/fresh/new", "{group}");
}

/// schemathesis' configuration: every check, but these, and why:
/// - `positive_data_acceptance`: Marathon's rules span fields (`cmd` or
///   `args` but not both, `version` only with `id`, `scale` not with
///   `wipe`, ids not ending in `tasks`), which OpenAPI cannot state, so
///   schema-valid requests are rightly refused with 400/422.
/// - `negative_data_rejection`: Marathon's clients send flags Marathon's
///   way (an empty `?force=` is false, `True` is true), and definitions
///   are open objects whose unknown fields are ignored; refusing either
///   would break the clients Stride must serve unchanged.
/// - `ignored_auth`, `object_level_authorization`: the fuzzed server has
///   no auth file, so it is open to all and rightly takes any credentials
///   or none; tests/it/auth.rs checks every operation against anonymous,
///   wrong, reading, scoped and admin credentials instead.
/// - `use_after_free` and `ensure_resource_availability` under
///   `/v2/groups`: they judge the request that follows a POST or DELETE
///   by its path, but an absolute id in a group's body names the group
///   created, wherever the path points (as in Marathon's
///   GroupsResource.createWithPath), and deleting the root group (`/`,
///   which a path may name as `%2F`) deletes what is in it while the root
///   itself and its versions remain, as in Marathon.
/// - `use_after_free` on `GET /v2/apps/{id}/tasks`: it reads a 200 there
///   after a 2xx `DELETE /v2/apps/{id}/tasks` as a deleted resource still
///   served, but that DELETE kills the app's tasks (Marathon's
///   AppTasksResource.deleteMany) and the app replaces them, so the list
///   stays, as in Marathon. Deleting the app itself is still checked, by
///   `GET /v2/apps/{id}`.
///
/// Not fuzzed: `/v1/stream` and `/v2/events` (streams never end, so no
/// answer completes; tests/stream.rs, tests/sse.rs and tests/fuzz.rs cover
/// them). Pods answer 501 by design (Marathon's clients ask `HEAD /v2/pods`
/// to learn whether pods are supported), so 501 is expected there.
const CONFIG: &str = r#"
[checks]
enabled = true
positive_data_acceptance.enabled = false
negative_data_rejection.enabled = false
ignored_auth.enabled = false
object_level_authorization.enabled = false

[[operations]]
include-path-regex = "^/v2/pods"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "501"]

[[operations]]
include-path-regex = "^/v2/groups"
checks.use_after_free.enabled = false
checks.ensure_resource_availability.enabled = false

[[operations]]
include-path = "/v2/apps/{id}/tasks"
include-method = "GET"
checks.use_after_free.enabled = false
"#;

/// A schemathesis hooks file: fuzzing not steered by the server's answers.
/// schemathesis reports each answer's success to `hypothesis.target`, which
/// makes the cases generated depend on how the server timed its answers,
/// and turns on Hypothesis's target phase, whose hill climbing fails with
/// an IndexError (hypothesis 6.170.27, `optimiser.attempt_replace`).
const HOOKS: &str = r#"
import hypothesis
hypothesis.target = lambda observation, *, label="": observation
"#;

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_contradicting_the_spec() {
    let Some(python) = api_tools::python() else {
        return;
    };
    // The embedded cluster as its own process, with room for a few dozen
    // tasks only: fuzzed apps launch (their commands fail) without
    // flooding the shared machine with processes.
    let ports = ports(100);
    let mesos = LocalMesos::start(&["--cpus", "0.05", "--mem", "256", "--ports", &ports.arg()]);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with_mesos(dir.path(), &["--master", &mesos.url]);
    let examples = std::env::var("STRIDE_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    let schemathesis = std::path::Path::new(&python).with_file_name("schemathesis");
    let work = tempfile::tempdir().expect("tempdir");
    let config = work.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).expect("write the config");
    let hooks = work.path().join("hooks.py");
    std::fs::write(&hooks, HOOKS).expect("write the hooks");
    let output = Command::new(&schemathesis)
        .env("SCHEMATHESIS_HOOKS", &hooks)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(server.url("/openapi.json"))
        .args([
            "--exclude-path",
            "/v1/stream",
            "--exclude-path",
            "/v2/events",
            // The same cases in the same order on every run, however busy
            // the machine: a count, not a time budget, bounds each phase,
            // and one worker keeps the requests from interleaving.
            "--generation-deterministic",
            "--max-examples",
            &examples,
            "--workers",
            "1",
            "--request-timeout",
            "30",
            // Ids are patterned strings: many generated ones are filtered,
            // which is no fault of the API.
            "--suppress-health-check",
            "filter_too_much,too_slow",
            "--no-color",
            "--report-dir",
        ])
        .arg(work.path())
        .current_dir(work.path())
        .output()
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}\n{stderr}"
    );
    let summary = stdout
        .lines()
        .find(|line| line.contains(" generated, "))
        .unwrap_or_default();
    assert!(summary.contains("passed"), "{stdout}");
    eprintln!("schemathesis: {summary}");
    let phases = stdout
        .lines()
        .filter(|line| line.contains(" (in ") || line.contains("Scenarios:"));
    for line in phases {
        eprintln!("schemathesis: {}", line.trim());
    }
    let cases: u64 = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(cases > 1000, "too few cases: {summary}\n{stdout}");
    // The fuzzing reached the cluster: apps were created and their tasks
    // launched and reported on by it.
    let http = client();
    for kind in ["AppCreated", "TaskLaunchRequested", "TaskStatusRecorded"] {
        let url = server.url(&format!("/v1/audit?type={kind}&limit=1"));
        let page = get_json(&http, &url).await;
        assert_eq!(
            page["events"].as_array().map(Vec::len),
            Some(1),
            "no {kind}"
        );
    }
}
