//! Every definition in `fixtures/marathon-docs/` (taken unchanged from
//! Marathon's documentation, sources in its README) is accepted and read
//! back as Marathon would: each field given keeps its value, in Marathon's
//! canonical place for the older layouts (`AppNormalization.scala`); each
//! field left out reads back as Marathon's default (`app.raml`,
//! `healthCheck.raml`, `artifact.raml`); the answer parses with the
//! `marathon` client's models (which refuse unknown keys); and the definition
//! read back, sent again, changes nothing.

use crate::support::{Server, client, marathon_python};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const POST_APP: (reqwest::Method, &str) = (reqwest::Method::POST, "/v2/apps");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/marathon-docs");
const PARSE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/marathon_client/parse.py"
);

/// Marathon's defaults for what an app leaves out (app.raml).
fn app_defaults() -> Value {
    json!({
        "instances": 1, "cpus": 1.0, "mem": 128.0, "disk": 0.0, "gpus": 0,
        "backoffSeconds": 1, "backoffFactor": 1.15, "maxLaunchDelaySeconds": 300,
        "requirePorts": false, "killSelection": "YOUNGEST_FIRST", "labels": {},
        "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
    })
}

/// What Marathon writes for a health check's fields left out
/// (healthCheck.raml defaults; HealthCheckConversion.scala `create`: every
/// check has `ipProtocol` and `delaySeconds`, HTTP(S) ones `ignoreHttp1xx`).
fn health_check_defaults(protocol: &str) -> Value {
    let mut defaults = json!({
        "gracePeriodSeconds": 300, "intervalSeconds": 60, "timeoutSeconds": 20,
        "maxConsecutiveFailures": 3, "delaySeconds": 15, "ipProtocol": "IPv4",
    });
    if matches!(protocol, "HTTP" | "HTTPS") {
        defaults["ignoreHttp1xx"] = json!(false);
    }
    defaults
}

/// Each fixture of `kind`, by file name, parsed.
fn fixtures(kind: &str) -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(FIXTURES).join(kind))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {kind}");
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, value)
        })
        .collect()
}

/// `given`, as Marathon's canonical form places it: the older layouts
/// moved where `AppNormalization.forDeprecated` moves them, ids absolute.
fn canonical(given: &Value, group: &str) -> Value {
    let mut app = given.as_object().unwrap().clone();
    let id = app["id"].as_str().unwrap();
    let absolute = if id.starts_with('/') {
        id.to_owned()
    } else {
        format!("{}/{id}", group.trim_end_matches('/'))
    };
    app.insert("id".into(), json!(absolute));
    // Read-only fields of an App that a definition may carry: ignored.
    app.remove("version");
    app.remove("versionInfo");
    // Marathon leaves these out when empty (`omitEmpty` in app.raml).
    for key in [
        "args",
        "constraints",
        "dependencies",
        "env",
        "fetch",
        "healthChecks",
        "readinessChecks",
        "secrets",
    ] {
        if app.get(key).is_some_and(|v| {
            v.as_array().is_some_and(Vec::is_empty) || v.as_object().is_some_and(Map::is_empty)
        }) {
            app.remove(key);
        }
    }
    if let Some(ports) = app.remove("ports") {
        let definitions: Vec<Value> = ports
            .as_array()
            .unwrap()
            .iter()
            .map(|p| json!({"port": p, "protocol": "tcp"}))
            .collect();
        if !definitions.is_empty() {
            app.insert("portDefinitions".into(), json!(definitions));
        }
    }
    if let Some(uris) = app.remove("uris") {
        let fetch: Vec<Value> = uris
            .as_array()
            .unwrap()
            .iter()
            .map(|u| json!({"uri": u}))
            .collect();
        if !fetch.is_empty() {
            app.insert("fetch".into(), json!(fetch));
        }
    }
    if let Some(container) = app.get_mut("container").and_then(Value::as_object_mut) {
        let docker = container.get_mut("docker").and_then(Value::as_object_mut);
        let (network, mappings) = match docker {
            Some(docker) => (docker.remove("network"), docker.remove("portMappings")),
            None => (None, None),
        };
        if let Some(network) = network {
            let mode = match network.as_str().unwrap() {
                "BRIDGE" => "container/bridge",
                "USER" => "container",
                _ => "host",
            };
            app.insert("networks".into(), json!([{ "mode": mode }]));
        }
        if let Some(mappings) = mappings {
            let container = app["container"].as_object_mut().unwrap();
            container.insert("portMappings".into(), mappings);
        }
    }
    // `ports` count only on the host network; elsewhere port mappings do
    // (AppNormalization `applyDefaultPortDefinitions`).
    let mode = app.get("networks").and_then(|n| n[0]["mode"].as_str());
    let host = mode.is_none_or(|m| m == "host");
    if !host {
        app.remove("portDefinitions");
    }
    Value::Object(app)
}

/// Every field of `expected` is in `actual` with that value; numbers are
/// compared as numbers (Marathon reads `10.0` and `10` alike).
fn contains(actual: &Value, expected: &Value, path: &str) -> Vec<String> {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .flat_map(|(key, value)| match a.get(key) {
                Some(found) => contains(found, value, &format!("{path}/{key}")),
                None => vec![format!("{path}/{key}: missing, expected {value}")],
            })
            .collect(),
        (Value::Array(a), Value::Array(e)) if a.len() == e.len() => a
            .iter()
            .zip(e)
            .enumerate()
            .flat_map(|(i, (a, e))| contains(a, e, &format!("{path}/{i}")))
            .collect(),
        // Service port 0 asks for one: Marathon assigns it from its range.
        (Value::Number(a), Value::Number(e)) if e.as_u64() == Some(0) && is_service_port(path) => {
            if a.as_u64().is_some_and(|p| p > 0) {
                Vec::new()
            } else {
                vec![format!("{path}: {a}, expected an assigned service port")]
            }
        }
        (Value::Number(a), Value::Number(e)) if a.as_f64() == e.as_f64() => Vec::new(),
        (a, e) if a == e => Vec::new(),
        (a, e) => vec![format!("{path}: {a}, expected {e}")],
    }
}

fn is_service_port(path: &str) -> bool {
    (path.starts_with("/portDefinitions/") && path.ends_with("/port"))
        || path.ends_with("/servicePort")
}

/// What an app read back must hold: the given fields in their canonical
/// places and Marathon's default for every top-level field left out.
fn expected_app(given: &Value, group: &str) -> Value {
    let mut expected = canonical(given, group);
    let fields = expected.as_object_mut().unwrap();
    for (key, default) in app_defaults().as_object().unwrap() {
        fields.entry(key.clone()).or_insert(default.clone());
    }
    if let Some(checks) = fields.get_mut("healthChecks").and_then(Value::as_array_mut) {
        for check in checks {
            let protocol = check["protocol"].as_str().unwrap_or("HTTP").to_owned();
            let check = check.as_object_mut().unwrap();
            for (key, default) in health_check_defaults(&protocol).as_object().unwrap() {
                check.entry(key.clone()).or_insert(default.clone());
            }
        }
    }
    if let Some(fetch) = fields.get_mut("fetch").and_then(Value::as_array_mut) {
        for artifact in fetch {
            let artifact = artifact.as_object_mut().unwrap();
            // artifact.raml; `extract` defaults to true.
            for (key, default) in [("executable", false), ("extract", true), ("cache", false)] {
                artifact.entry(key).or_insert(json!(default));
            }
        }
    }
    expected
}

/// Sends `body` to `path` and checks the status Marathon answers with.
async fn expect(
    http: &reqwest::Client,
    server: &Server,
    (method, path): (reqwest::Method, &str),
    body: &Value,
    status: u16,
    what: &str,
) -> Value {
    let response = http
        .request(method, server.url(path))
        .json(body)
        .send()
        .await
        .unwrap();
    let got = response.status().as_u16();
    let answer = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{what}: {answer}");
    answer
}

async fn get(http: &reqwest::Client, url: String) -> Value {
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The definition in what `GET /v2/apps/{id}` shows: without what changes
/// with every version and the `AppInfo` parts (tasks, counts, deployments).
fn definition(app: &Value) -> Value {
    let mut app = app.clone();
    let fields = app.as_object_mut().unwrap();
    for key in [
        "version",
        "versionInfo",
        "deployments",
        "tasks",
        "tasksStaged",
        "tasksRunning",
        "tasksHealthy",
        "tasksUnhealthy",
        "lastTaskFailure",
        "readinessCheckResults",
        "taskStats",
    ] {
        fields.remove(key);
    }
    app
}

/// Parses each `(model, json)` with the marathon client's models.
fn parse_with_client(python: &str, items: Vec<Value>) {
    let mut child = Command::new(python)
        .arg(PARSE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_vec(&items).unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the marathon client refused an answer: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn check_app(
    http: &reqwest::Client,
    server: &Server,
    given: &Value,
    group: &str,
    name: &str,
    parsed: &mut Vec<Value>,
) {
    let expected = expected_app(given, group);
    let id = expected["id"].as_str().unwrap().to_owned();
    let shown = get(http, server.url(&format!("/v2/apps{id}"))).await["app"].clone();
    let problems = contains(&shown, &expected, "");
    assert!(
        problems.is_empty(),
        "{name}: read back differs from Marathon's:\n{}\nread back: {shown:#}",
        problems.join("\n")
    );
    parsed.push(json!({"model": "app", "json": shown}));
    // What was read back, sent back, is the same definition. Forced:
    // without Mesos, the deployment that created it never ends.
    let put = format!("/v2/apps{id}?force=true");
    let what = format!("{name}: PUT of the read-back");
    expect(
        http,
        server,
        (reqwest::Method::PUT, &put),
        &definition(&shown),
        200,
        &what,
    )
    .await;
    let again = get(http, server.url(&format!("/v2/apps{id}"))).await["app"].clone();
    assert_eq!(definition(&again), definition(&shown), "{name}: round trip");
}

/// A Stride of its own for each example: ids repeat across the docs.
fn fresh() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    (dir, server)
}

#[tokio::test]
async fn marathon_documentation_examples_are_accepted_and_read_back_as_marathon_would() {
    let Some(python) = marathon_python() else {
        return;
    };
    let http = client();
    let mut parsed = Vec::new();

    for (name, given) in fixtures("apps") {
        let (_dir, server) = fresh();
        let created = expect(&http, &server, POST_APP, &given, 201, &name).await;
        parsed.push(json!({"model": "app", "json": created}));
        check_app(&http, &server, &given, "/", &name, &mut parsed).await;
    }

    // Health checks shown alone in the docs, each on an app with one port.
    for (name, check) in fixtures("health-checks") {
        let given = json!({
            "id": format!("/checks/{name}"), "cmd": "sleep 1000",
            "portDefinitions": [{"port": 0}], "healthChecks": [check],
        });
        let (_dir, server) = fresh();
        expect(&http, &server, POST_APP, &given, 201, &name).await;
        check_app(&http, &server, &given, "/", &name, &mut parsed).await;
    }

    // Groups: the REST API's example is a root group as GET shows it, with
    // each group's `version`. Marathon refuses that as a PUT body (a
    // version only with an id: Group.scala `theOnlyDefinedOptionIn`), and so
    // does Stride; without the versions it is accepted.
    for (name, as_shown) in fixtures("groups") {
        let (_dir, server) = fresh();
        let put = (reqwest::Method::PUT, "/v2/groups");
        let refused = expect(&http, &server, put.clone(), &as_shown, 422, &name).await;
        assert_eq!(refused["details"][0]["path"], "/", "{refused}");
        let given = without_group_versions(&as_shown);
        expect(&http, &server, put, &given, 200, &name).await;
        let root = get(&http, server.url("/v2/groups")).await;
        parsed.push(json!({"model": "group", "json": root}));
        check_group(&http, &server, &given, &root, &name, &mut parsed).await;
    }

    // Lists of apps, as the REST API's examples PUT them to /v2/apps.
    for (name, given) in fixtures("apps-put") {
        let (_dir, server) = fresh();
        let put = (reqwest::Method::PUT, "/v2/apps");
        expect(&http, &server, put, &given, 200, &name).await;
        for app in given.as_array().unwrap() {
            check_app(&http, &server, app, "/", &name, &mut parsed).await;
        }
    }

    parse_with_client(&python, parsed);
}

/// Each group of `given` is in `root` with its dependencies, and each of
/// its apps reads back as Marathon would.
async fn check_group(
    http: &reqwest::Client,
    server: &Server,
    given: &Value,
    root: &Value,
    name: &str,
    parsed: &mut Vec<Value>,
) {
    let id = given["id"].as_str().unwrap();
    let shown = find_group(root, id).unwrap_or_else(|| panic!("{name}: group {id} missing"));
    let dependencies = given.get("dependencies").cloned().unwrap_or(json!([]));
    assert_eq!(shown["dependencies"], dependencies, "{name}: {id}");
    for app in given["apps"].as_array().into_iter().flatten() {
        check_app(http, server, app, id, name, parsed).await;
    }
    for child in given["groups"].as_array().into_iter().flatten() {
        Box::pin(check_group(http, server, child, root, name, parsed)).await;
    }
}

/// A group tree without the `version` of each group.
fn without_group_versions(group: &Value) -> Value {
    let mut group = group.clone();
    let fields = group.as_object_mut().unwrap();
    fields.remove("version");
    if let Some(children) = fields.get_mut("groups").and_then(Value::as_array_mut) {
        for child in children.iter_mut() {
            *child = without_group_versions(child);
        }
    }
    group
}

fn find_group<'a>(group: &'a Value, id: &str) -> Option<&'a Value> {
    if group["id"] == id {
        return Some(group);
    }
    group["groups"]
        .as_array()?
        .iter()
        .find_map(|child| find_group(child, id))
}
