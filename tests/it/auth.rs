//! Who may do what, against the real binary: every route the router
//! serves (read from `/openapi.json`, which `tests/openapi.rs` holds equal
//! to the router) for anonymous, a wrong token, a reader, a writer scoped
//! to `/prod/` and an admin; lists and both streams filtered to the
//! principal's prefixes; the audit's principal proven; SIGHUP reloads.

use crate::support::{BIN, Log, Server, app, client, create_token, run_stride, wait_until};
use futures::StreamExt;
use rand::{Rng, SeedableRng, rngs::StdRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ROLES: &str = r#"
[roles.reader]
grants = [{ prefix = "/", verbs = ["read"] }]

[roles.writer]
grants = [{ prefix = "/prod/", verbs = ["read", "write", "stream"] }]

[roles.admin]
grants = [{ prefix = "/", verbs = ["read", "write", "stream", "audit", "admin"] }]
"#;

/// A server with an auth file holding `ROLES` and a token per role, each
/// made by `stride auth token create` (name = role).
struct Secured {
    server: Server,
    log: Log,
    file: PathBuf,
    tokens: Vec<(String, String)>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Secured {
    fn start(extra: &[&str]) -> Secured {
        let data = tempfile::tempdir().unwrap();
        let auth = tempfile::tempdir().unwrap();
        let file = auth.path().join("auth.toml");
        std::fs::write(&file, ROLES).unwrap();
        let tokens = ["reader", "writer", "admin"]
            .into_iter()
            .map(|role| (role.to_owned(), create_token(&file, role, role)))
            .collect();
        let mut args = vec!["--no-mesos", "--auth-file", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (server, log) = Server::start_logged(data.path(), &args);
        Secured {
            server,
            log,
            file,
            tokens,
            _dirs: (data, auth),
        }
    }

    fn token(&self, name: &str) -> &str {
        &self.tokens.iter().find(|(n, _)| n == name).unwrap().1
    }

    fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = client()
            .request(method, self.server.url(path))
            .timeout(Duration::from_secs(10));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn head(&self) -> u64 {
        let events: Value = self
            .request(Method::GET, "/v1/events?limit=1", Some(self.token("admin")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        events["head"].as_u64().unwrap()
    }
}

/// What a principal's roles grant, as this test models them (apart from
/// the server's own rules).
#[derive(Clone, Copy, Debug)]
enum Who {
    Anonymous,
    WrongToken,
    Reader,
    Writer,
    Admin,
}

impl Who {
    fn grants(self) -> &'static [(&'static str, &'static [&'static str])] {
        const ALL: &[&str] = &["read", "write", "stream", "audit", "admin"];
        match self {
            Who::Anonymous | Who::WrongToken => &[],
            Who::Reader => &[("/", &["read"])],
            Who::Writer => &[("/prod/", &["read", "write", "stream"])],
            Who::Admin => &[("/", ALL)],
        }
    }

    fn may(self, verb: &str, target: &Target, id: &str) -> bool {
        let covers =
            |prefix: &str, id: &str| format!("{}/", id.trim_end_matches('/')).starts_with(prefix);
        self.grants().iter().any(|(prefix, verbs)| {
            verbs.contains(&verb)
                && match target {
                    Target::Open => true,
                    Target::Root => *prefix == "/",
                    Target::Anywhere | Target::Body => true,
                    Target::Id => covers(prefix, id),
                    // A group read shows what lies in scope inside it.
                    Target::Within => {
                        covers(prefix, id)
                            || prefix.starts_with(&format!("{}/", id.trim_end_matches('/')))
                    }
                }
        })
    }
}

/// Where a route's verb must be granted.
#[derive(Debug)]
enum Target {
    /// Anyone (liveness).
    Open,
    /// On `/`: the whole tree or the server itself.
    Root,
    /// Somewhere: the answer is filtered.
    Anywhere,
    /// Somewhere, and the ids the body names are judged by the write door
    /// (`writes_are_judged_by_every_id_they_touch`): a 403 is still possible.
    Body,
    /// On the `{id}` of the path.
    Id,
    /// On the group `{id}` or part of it.
    Within,
}

/// Every operation `/openapi.json` describes: its verb and target.
fn rule(method: &str, path: &str) -> Option<(&'static str, Target)> {
    use Target::*;
    let reading = method == "GET";
    Some(match (method, path) {
        ("GET", "/ping") => ("", Open),
        ("GET", "/metrics") => ("read", Root),
        ("GET", "/openapi.json" | "/v1/state" | "/v1/events" | "/v1/sidecars" | "/v1/queue")
        | ("GET", "/v1/leader")
        | ("GET", "/v1/info" | "/v2/info" | "/v2/leader" | "/v2/apps" | "/v2/tasks")
        | ("GET", "/v2/deployments" | "/v2/queue" | "/v2/pods" | "/v2/pods/{id}") => {
            ("read", Anywhere)
        }
        ("GET", "/v1/stream" | "/v2/events") => ("stream", Anywhere),
        ("GET", "/v1/audit") => ("audit", Anywhere),
        ("GET", "/v1/apps/{id}/diff") => ("read", Id),
        // An unknown task is the root's.
        ("GET", "/v1/tasks/{id}/files/{name}") => ("read", Root),
        ("GET", "/v1/subscriptions" | "/v1/backup" | "/v1/replica") | ("DELETE", "/v2/leader") => {
            ("admin", Root)
        }
        (_, "/v2/eventSubscriptions") => ("admin", Root),
        ("PUT" | "POST" | "PATCH", "/v2/apps") => ("write", Body),
        (_, p) if p.starts_with("/v2/apps/{id}") => (if reading { "read" } else { "write" }, Id),
        ("GET", "/v2/groups") => ("read", Within),
        ("DELETE", "/v2/groups") => ("write", Root),
        ("PUT" | "POST", "/v2/groups") | ("POST", "/v2/groups/{id}") => ("write", Body),
        ("GET", p) if p.starts_with("/v2/groups/{id}") => ("read", Within),
        (_, p) if p.starts_with("/v2/groups/{id}") => ("write", Id),
        (_, "/v2/pods" | "/v2/pods/{id}") => ("write", Body),
        ("POST", "/v2/tasks/delete") | ("DELETE", "/v2/deployments/{id}") => ("write", Body),
        ("DELETE", "/v2/queue/{id}/delay") => ("write", Id),
        _ => return None,
    })
}

/// The route with `{id}` filled: an app, or a group for group routes.
fn concrete(path: &str, inside: bool) -> (String, String) {
    let group = path.starts_with("/v2/groups");
    let id = match (group, inside) {
        (true, true) => "prod",
        (true, false) => "dev",
        (false, true) => "prod/web",
        (false, false) => "dev/api",
    };
    let filled = path
        .replace("/v1/tasks/{id}", "/v1/tasks/nope.1")
        .replace("/v2/deployments/{id}", "/v2/deployments/nope")
        .replace("{id}", id)
        .replace("{taskId}", "nope.1")
        .replace("{name}", "stdout")
        .replace("{version}", "2020-01-01T00:00:00.000Z");
    match path.contains("{id}") {
        true => (filled, format!("/{id}")),
        false => (filled, "/".to_owned()),
    }
}

/// Every operation in `/openapi.json`, and whether it says it is open to
/// all (`security: [{}]`) rather than asking for credentials.
async fn operations(secured: &Secured) -> Vec<(String, String, bool)> {
    let spec: Value = secured
        .request(Method::GET, "/openapi.json", Some(secured.token("reader")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut operations = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if ["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) {
                let open = operation["security"] == json!([{}]);
                operations.push((method.to_uppercase(), path.clone(), open));
            }
        }
    }
    operations
}

#[tokio::test]
async fn every_route_answers_each_principal_as_its_roles_say() {
    let secured = Secured::start(&[]);
    for id in ["/prod/web", "/dev/api"] {
        let created = secured
            .request(Method::POST, "/v2/apps", Some(secured.token("admin")))
            .json(&app(id))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let operations = operations(&secured).await;
    assert!(operations.len() > 50, "{operations:?}");
    let unruled: Vec<_> = operations
        .iter()
        .filter(|(m, p, _)| rule(m, p).is_none())
        .collect();
    assert!(
        unruled.is_empty(),
        "routes this test has no rule for: {unruled:?}"
    );

    let wrong = "stride_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let mut checked = 0;
    // The admin last: its writes (deleting the root group) change what
    // later requests find, never whether they are allowed.
    for who in [
        Who::Anonymous,
        Who::WrongToken,
        Who::Reader,
        Who::Writer,
        Who::Admin,
    ] {
        let token = match who {
            Who::Anonymous => None,
            Who::WrongToken => Some(wrong),
            Who::Reader => Some(secured.token("reader")),
            Who::Writer => Some(secured.token("writer")),
            Who::Admin => Some(secured.token("admin")),
        };
        for (method, path, open) in &operations {
            let (verb, target) = rule(method, path).unwrap();
            // The document says which operations take no credentials.
            assert_eq!(*open, matches!(target, Target::Open), "{method} {path}");
            for inside in [true, false] {
                let (url, id) = concrete(path, inside);
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                let mut request = secured.request(method.clone(), &url, token);
                if method != Method::GET && method != Method::DELETE {
                    request = request.json(&json!({}));
                }
                let answer = request.send().await.unwrap();
                let status = answer.status();
                let challenge = answer.headers().get_all("www-authenticate").iter().count();
                let body: Value = answer.json().await.unwrap_or(Value::Null);
                let context = format!("{who:?} {method} {url}: {status} {body}");
                let expected = match (who, &target) {
                    (_, Target::Open) => None,
                    (Who::Anonymous | Who::WrongToken, _) => Some(StatusCode::UNAUTHORIZED),
                    _ if who.may(verb, &target, &id) => None,
                    _ => Some(StatusCode::FORBIDDEN),
                };
                match expected {
                    None if matches!(target, Target::Body) => {
                        assert_ne!(status, StatusCode::UNAUTHORIZED, "{context}")
                    }
                    None => assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "allowed, yet {context}"
                    ),
                    Some(expected) => {
                        assert_eq!(status, expected, "{context}");
                        assert!(body["message"].is_string(), "Marathon's shape: {context}");
                    }
                }
                if status == StatusCode::UNAUTHORIZED {
                    assert_eq!(challenge, 2, "Bearer and Basic challenges: {context}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, operations.len() * 10);
}

/// Writes whose ids come in the body are judged by those ids, and a
/// refused one appends nothing.
#[tokio::test]
async fn writes_are_judged_by_every_id_they_touch() {
    let secured = Secured::start(&[]);
    let writer = Some(secured.token("writer"));
    let post = |path: &'static str, body: Value| {
        secured
            .request(Method::POST, path, writer)
            .json(&body)
            .send()
    };
    assert_eq!(
        post("/v2/apps", app("/prod/a")).await.unwrap().status(),
        201
    );
    let before = secured.head().await;
    let refused = [
        post("/v2/apps", app("/dev/a")).await.unwrap(),
        post("/v2/apps", app("/production/a")).await.unwrap(),
        secured
            .request(Method::PUT, "/v2/apps", writer)
            .json(&json!([app("/prod/b"), app("/dev/b")]))
            .send()
            .await
            .unwrap(),
        post(
            "/v2/groups",
            json!({"id": "/dev/g", "apps": [app("/dev/g/x")]}),
        )
        .await
        .unwrap(),
        post(
            "/v2/groups",
            json!({"id": "/prod/g", "apps": [app("/dev/x")]}),
        )
        .await
        .unwrap(),
        secured
            .request(Method::PUT, "/v2/groups", writer)
            .json(&json!({"id": "/", "apps": [app("/prod/c")]}))
            .send()
            .await
            .unwrap(),
    ];
    for answer in refused {
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(status, 403, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("Not Authorized to perform this action: writer may not"),
            "{body}"
        );
    }
    assert_eq!(
        secured.head().await,
        before,
        "a refused write appends nothing"
    );
    let group = post(
        "/v2/groups",
        json!({"id": "/prod/g", "apps": [app("/prod/g/x")]}),
    );
    assert_eq!(group.await.unwrap().status(), 201);
}

async fn ids(
    secured: &Secured,
    token: &str,
    path: &str,
    pick: impl Fn(&Value) -> Vec<String>,
) -> BTreeSet<String> {
    let answer = secured
        .request(Method::GET, path, Some(token))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{path}");
    pick(&answer.json().await.unwrap()).into_iter().collect()
}

#[tokio::test]
async fn lists_show_only_what_the_principal_may_read() {
    let secured = Secured::start(&[]);
    let all = [
        "/prod/web",
        "/prod/db",
        "/production/web",
        "/dev/api",
        "/prod",
    ];
    for id in &all[..4] {
        let answer = secured
            .request(Method::POST, "/v2/apps", Some(secured.token("admin")))
            .json(&app(id))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
    }
    let writer = secured.token("writer");
    let prod: BTreeSet<String> = ["/prod/db", "/prod/web"].map(String::from).into();
    let apps = |v: &Value| {
        v["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&secured, writer, "/v2/apps", apps).await, prod);
    assert_eq!(
        ids(&secured, secured.token("reader"), "/v2/apps", apps)
            .await
            .len(),
        4
    );
    let state = |v: &Value| {
        v["state"]["apps"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(ids(&secured, writer, "/v1/state", state).await, prod);
    let events = |v: &Value| {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["app"].as_str().unwrap_or("-").to_owned())
            .collect()
    };
    assert_eq!(ids(&secured, writer, "/v1/events", events).await, prod);
    let deployments = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|d| {
                d["affectedApps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
            })
            .collect()
    };
    assert!(
        ids(&secured, writer, "/v2/deployments", deployments)
            .await
            .is_subset(&prod)
    );
    let queue = |v: &Value| {
        v["queue"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["app"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&secured, writer, "/v2/queue", queue).await, prod);
    // The tree from the root: /prod with its two apps, nothing beside it.
    let tree = |v: &Value| {
        let mut seen = Vec::new();
        fn walk(group: &Value, seen: &mut Vec<String>) {
            seen.push(group["id"].as_str().unwrap().to_owned());
            for app in group["apps"].as_array().unwrap() {
                seen.push(app["id"].as_str().unwrap().to_owned());
            }
            for inner in group["groups"].as_array().unwrap() {
                walk(inner, seen);
            }
        }
        walk(v, &mut seen);
        seen
    };
    let seen = ids(&secured, writer, "/v2/groups", tree).await;
    let expected: BTreeSet<String> = ["/", "/prod", "/prod/db", "/prod/web"]
        .map(String::from)
        .into();
    assert_eq!(seen, expected);
    // A scoped audit grant must name what it asks about; here none at all.
    let audit = secured
        .request(Method::GET, "/v1/audit", Some(writer))
        .send()
        .await
        .unwrap();
    assert_eq!(audit.status(), 403);
}

/// Many apps across look-alike prefixes, written while a `/prod/`-scoped
/// principal follows both streams: every event it gets is of an app under
/// `/prod/`, and every such app's events arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_streams_never_deliver_an_event_outside_the_prefix() {
    let secured = Secured::start(&[]);
    let writer = secured.token("writer").to_owned();
    let mut rng = StdRng::seed_from_u64(16);
    let groups = [
        "/prod/",
        "/prod/inner/",
        "/production/",
        "/prod-x/",
        "/dev/prod/",
        "/",
    ];
    let mut ids = Vec::new();
    for i in 0..120 {
        let group = groups[rng.gen_range(0..groups.len())];
        ids.push(format!("{group}app{i}"));
    }
    ids.push("/prod/last".to_owned());
    let expected: BTreeSet<String> = ids
        .iter()
        .filter(|id| id.starts_with("/prod/"))
        .cloned()
        .collect();

    let mut request = format!(
        "{}/v1/stream?from=1",
        secured.server.url.replacen("http", "ws", 1)
    )
    .into_client_request()
    .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {writer}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let sse = secured
        .request(Method::GET, "/v2/events", Some(&writer))
        .header("accept", "text/event-stream")
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);

    for id in &ids {
        let answer = secured
            .request(Method::POST, "/v2/apps", Some(secured.token("admin")))
            .json(&app(id))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201, "{id}");
    }

    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.contains("/prod/last") {
        assert!(Instant::now() < deadline, "saw {seen:?}");
        let message = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .unwrap();
        let Some(Ok(Message::Text(text))) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        if value["type"] == "progress" {
            continue;
        }
        let app = value["app"]
            .as_str()
            .unwrap_or_else(|| panic!("an event of no app: {value}"));
        assert!(
            app.starts_with("/prod/"),
            "delivered outside /prod/: {value}"
        );
        seen.insert(app.to_owned());
    }
    assert_eq!(seen, expected);

    let mut body = sse.bytes_stream();
    let mut text = String::new();
    while !text.contains("\"/prod/last\"") {
        assert!(Instant::now() < deadline, "SSE so far: {text}");
        let chunk = tokio::time::timeout(Duration::from_secs(30), body.next())
            .await
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
    for outside in ["/production/", "/prod-x/", "/dev/prod/", "\"/app"] {
        assert!(!text.contains(outside), "SSE delivered {outside}: {text}");
    }
    for id in &expected {
        assert!(text.contains(&format!("\"{id}\"")), "SSE lacks {id}");
    }
}

#[tokio::test]
async fn the_audit_records_the_proven_principal_and_a_forged_name_appends_nothing() {
    let secured = Secured::start(&[]);
    let (ok, _, err) = {
        let mut child = std::process::Command::new(BIN)
            .args([
                "auth",
                "user",
                "set",
                "--name",
                "alice",
                "--role",
                "writer",
                "--auth-file",
            ])
            .arg(&secured.file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"wonderland\n").unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status.success(),
            (),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert!(ok, "{err}");
    assert!(reload(&secured).await);

    let answer = secured
        .request(Method::POST, "/v2/apps", Some(secured.token("writer")))
        .json(&app("/prod/by-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let by_user = client()
        .post(secured.server.url("/v2/apps"))
        .basic_auth("alice", Some("wonderland"))
        .json(&app("/prod/by-alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_user.status(), 201);

    let before = secured.head().await;
    for (user, password) in [("admin", "guess"), ("alice", "wrong"), ("mallory", "")] {
        let forged = client()
            .post(secured.server.url("/v2/apps"))
            .basic_auth(user, Some(password))
            .json(&app("/prod/forged"))
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 401, "{user}");
        assert!(forged.headers().contains_key("www-authenticate"));
        let body: Value = forged.json().await.unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("Not Authenticated"),
            "{body}"
        );
    }
    assert_eq!(
        secured.head().await,
        before,
        "a forged name appends nothing"
    );

    let audit: Value = secured
        .request(
            Method::GET,
            "/v1/audit?type=AppCreated",
            Some(secured.token("admin")),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actors: Vec<(String, String)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["app"].as_str().unwrap().to_owned(),
                e["actor"]["principal"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actors,
        [
            ("/prod/by-token".to_owned(), "writer".to_owned()),
            ("/prod/by-alice".to_owned(), "alice".to_owned())
        ]
    );
    for event in audit["events"].as_array().unwrap() {
        let remote = event["actor"]["remote"].as_str().unwrap();
        assert!(remote.starts_with("127.0.0.1:"), "{event}");
    }
}

/// Sends SIGHUP and waits for the server to log what came of it: whether
/// the file was loaded.
async fn reload(secured: &Secured) -> bool {
    let outcomes = |text: &str| {
        text.matches("auth file reloaded").count() + text.matches("auth file not reloaded").count()
    };
    let before = outcomes(&secured.log.text());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(secured.server.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    wait_until("a reload logged", Duration::from_secs(10), || {
        let logged = outcomes(&secured.log.text()) > before;
        async move { logged }
    })
    .await;
    let text = secured.log.text();
    text.rfind("auth file reloaded") > text.rfind("auth file not reloaded")
}

#[tokio::test]
async fn sighup_loads_new_tokens_drops_revoked_ones_and_keeps_the_file_when_the_new_one_is_bad() {
    let secured = Secured::start(&[]);
    let path = secured.file.to_str().unwrap();
    let status = |token: String| {
        let request = secured
            .request(Method::GET, "/v2/apps", Some(&token))
            .send();
        async move { request.await.unwrap().status().as_u16() }
    };
    let fresh = create_token(&secured.file, "ci", "reader");
    assert_eq!(status(fresh.clone()).await, 401, "not loaded before SIGHUP");
    assert!(reload(&secured).await);
    assert_eq!(status(fresh.clone()).await, 200);

    let (ok, rotated, err) = run_stride(&[
        "auth",
        "token",
        "rotate",
        "--name",
        "ci",
        "--auth-file",
        path,
    ]);
    assert!(ok, "{err}");
    let rotated = rotated.trim().to_owned();
    assert!(reload(&secured).await);
    assert_eq!(status(fresh.clone()).await, 401, "the rotated-out secret");
    assert_eq!(status(rotated.clone()).await, 200);

    // A damaged file: the one in force stays, and the log says why.
    let good = std::fs::read_to_string(&secured.file).unwrap();
    std::fs::write(&secured.file, good.replace("\"read\"]", "\"raed\"]")).unwrap();
    assert!(!reload(&secured).await);
    let text = secured.log.text();
    assert!(
        text.contains("auth.toml:3: unknown variant `raed`"),
        "{text}"
    );
    assert_eq!(
        status(rotated.clone()).await,
        200,
        "the old file stays in force"
    );

    std::fs::write(&secured.file, &good).unwrap();
    let (ok, _, err) = run_stride(&["auth", "revoke", "--name", "ci", "--auth-file", path]);
    assert!(ok, "{err}");
    assert!(reload(&secured).await);
    assert_eq!(status(rotated).await, 401);
}

#[tokio::test]
async fn http_credentials_are_marathon_s_one_user() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--http_credentials", "marathon:s3cret"]);
    let http = client();
    let anonymous = http.get(server.url("/v2/apps")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let ping = http.get(server.url("/ping")).send().await.unwrap();
    assert_eq!(ping.status(), 200, "liveness needs no credentials");
    let created = http
        .post(server.url("/v2/apps"))
        .basic_auth("marathon", Some("s3cret"))
        .json(&app("/web"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let wrong = http
        .get(server.url("/v2/apps"))
        .basic_auth("marathon", Some("s3cre"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

#[test]
fn a_bad_auth_file_stops_the_server_from_starting_and_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth.toml");
    std::fs::write(
        &file,
        "[roles.x]\ngrants = [{ prefix = \"/prod\", verbs = [\"read\"] }]\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let output = std::process::Command::new(BIN)
        .args([
            "serve",
            "--no-mesos",
            "--listen",
            "127.0.0.1:0",
            "--auth-file",
        ])
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("auth.toml:2: roles.x.grants[0].prefix"),
        "{stderr}"
    );
}

/// `stride events`, `stride audit`, `stride app` and `stride lb haproxy`
/// carry `--token` or `STRIDE_TOKEN`, and without one say what to give.
#[tokio::test]
async fn clients_carry_the_token() {
    let secured = Secured::start(&[]);
    for id in ["/prod/web", "/dev/api"] {
        let answer = secured
            .request(Method::POST, "/v2/apps", Some(secured.token("admin")))
            .json(&app(id))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
    }
    let url = secured.server.url.clone();
    let stride = |args: &[&str], token: Option<&str>| {
        let mut command = std::process::Command::new(BIN);
        command
            .args(args)
            .args(["--stride", &url])
            .env("STRIDE_LOG", "warn");
        command.env_remove("STRIDE_TOKEN");
        if let Some(token) = token {
            command.env("STRIDE_TOKEN", token);
        }
        let output = command.output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    let (ok, _, err) = stride(&["events", "--json"], None);
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
    let writer = secured.token("writer");
    let (ok, out, err) = stride(&["events", "--json", "--token", writer], None);
    assert!(ok, "{err}");
    assert!(
        out.contains("\"/prod/web\"") && !out.contains("/dev/api"),
        "{out}"
    );
    let (ok, out, err) = stride(&["events", "--json"], Some(writer));
    assert!(ok && out.contains("\"/prod/web\""), "STRIDE_TOKEN: {err}");

    let (ok, _, err) = stride(&["audit", "--json"], None);
    assert!(!ok && err.contains("--token or STRIDE_TOKEN"), "{err}");
    let (ok, out, err) = stride(&["audit", "--json"], Some(secured.token("admin")));
    assert!(ok && out.contains("/dev/api"), "{err}");

    let (ok, _, err) = stride(&["app", "list"], None);
    assert!(!ok && err.contains("--token or STRIDE_TOKEN"), "{err}");
    let (ok, out, err) = stride(&["app", "list", "--token", writer], None);
    assert!(ok, "{err}");
    assert!(
        out.contains("/prod/web") && !out.contains("/dev/api"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("haproxy.cfg");
    let lb = [
        "lb",
        "haproxy",
        "--dry-run",
        "--config",
        config.to_str().unwrap(),
    ];
    let (ok, _, err) = stride(&lb, None);
    assert!(!ok && err.contains("401"), "{err}");
    let (ok, out, err) = stride(&lb, Some(secured.token("reader")));
    assert!(ok, "{err}");
    assert!(out.starts_with("# Written by `stride lb haproxy`"), "{out}");
}

/// A websocket on `/v1/stream` with `token`, from the first event.
async fn open_ws(
    secured: &Secured,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = secured.server.url.replacen("http", "ws", 1);
    let mut request = format!("{url}/v1/stream?from=1")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// The close frame a websocket ends with (code, reason), reading past
/// whatever comes before it.
async fn close_of(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> (u16, String) {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("the stream ended without a close frame: {other:?}"),
        }
    }
}

/// SIGHUP after revoking a token closes its open `/v1/stream` (1008, the
/// reason) and `/v2/events` (a last `: closed: ...` comment); a token whose
/// role's stream grant changed is closed too (reconnecting gets the new
/// one); a stream whose grant stands is untouched.
#[tokio::test]
async fn sighup_closes_the_streams_a_reload_takes_away_saying_why() {
    let secured = Secured::start(&[]);
    let path = secured.file.to_str().unwrap().to_owned();
    let lb = create_token(&secured.file, "lb", "writer");
    assert!(reload(&secured).await);
    let writer = secured.token("writer").to_owned();
    let admin = secured.token("admin").to_owned();
    let mut revoked_ws = open_ws(&secured, &writer).await;
    let mut changed_ws = open_ws(&secured, &lb).await;
    let mut kept_ws = open_ws(&secured, &admin).await;
    let sse = secured
        .request(Method::GET, "/v2/events", Some(&writer))
        .header("accept", "text/event-stream")
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);

    let (ok, _, err) = run_stride(&["auth", "revoke", "--name", "writer", "--auth-file", &path]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&secured.file).unwrap();
    let narrowed = text.replace(
        r#"prefix = "/prod/", verbs = ["read", "write", "stream"]"#,
        r#"prefix = "/prod/web/", verbs = ["read", "write", "stream"]"#,
    );
    assert_ne!(text, narrowed, "the writer role's grant is in the file");
    std::fs::write(&secured.file, narrowed).unwrap();
    assert!(reload(&secured).await);

    let (code, reason) = close_of(&mut revoked_ws).await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("credentials were revoked"), "{reason}");
    let (code, reason) = close_of(&mut changed_ws).await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("stream grant changed"), "{reason}");
    let body = tokio::time::timeout(Duration::from_secs(30), sse.text())
        .await
        .expect("the SSE stream ends")
        .unwrap();
    assert!(
        body.trim_end()
            .ends_with(": closed: the credentials were revoked (auth file reloaded)"),
        "{body}"
    );

    // The admin's stream still delivers.
    let created = secured
        .request(Method::POST, "/v2/apps", Some(&admin))
        .json(&app("/after/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let delivered = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(message)) = kept_ws.next().await {
            if let Message::Text(text) = message {
                if text.contains("/after/reload") {
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert_eq!(delivered, Ok(true), "the admin's stream was cut");
}
