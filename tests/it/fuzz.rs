//! Property-driven fuzzing of what clients send, against the real binary
//! (nightly fuzzers are not available here): app definitions, query
//! strings on every read route and the stream's, `Last-Event-ID`, and the
//! stream's client messages. Whatever the input: no 5xx, every refusal a
//! 4xx with a JSON `message`, and the server keeps answering. The RecordIO
//! decoder's own fuzzing is in `stride-mesos`'s `recordio.rs`.
//!
//! `PROPTEST_CASES` sets the cases per property (default 256).

use crate::support;

use crate::support::{Server, client};
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, Message};

/// The server under test, as each case sees it.
#[derive(Clone)]
struct Target {
    base: String,
    http: reqwest::Client,
}

impl Target {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Escaped as a browser would: the websocket client refuses raw `"`.
    fn stream_url(&self, query: &str) -> String {
        let url = format!("{}/v1/stream?{query}", self.base.replacen("http", "ws", 1));
        reqwest::Url::parse(&url).map_or(url, String::from)
    }
}

/// Runs `check` on every generated case, on one runtime and one server.
fn fuzz<S: Strategy>(
    strategy: S,
    check: impl Fn(Target, S::Value) -> BoxFuture<'static, Result<(), TestCaseError>>,
) where
    S::Value: std::fmt::Debug,
{
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter();
    let target = Target {
        base: server.url.clone(),
        http: client(),
    };
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&strategy, |input| {
        runtime.block_on(check(target.clone(), input))
    });
    if let Err(error) = outcome {
        panic!("{error}");
    }
    let alive = runtime.block_on(target.http.get(target.url("/ping")).send());
    assert_eq!(alive.unwrap().status(), 200, "the server stopped answering");
}

/// A refusal must be a 4xx with a JSON message; nothing may be a 5xx.
async fn well_formed(response: reqwest::Response, what: &str) -> Result<u16, TestCaseError> {
    let status = response.status().as_u16();
    prop_assert!(status < 500, "{what}: {status}");
    if status >= 400 {
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{what}: {status} {e}: {text:?}")))?;
        prop_assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {status} {body}"
        );
    }
    Ok(status)
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        "[a-z0-9/._-]{0,12}".prop_map(Value::from),
        Just(Value::from("\u{0}")),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Fields of Marathon's app definition, each possibly given a wild value.
const APP_FIELDS: &[&str] = &[
    "id",
    "cmd",
    "args",
    "user",
    "instances",
    "cpus",
    "mem",
    "disk",
    "gpus",
    "env",
    "labels",
    "constraints",
    "networks",
    "portDefinitions",
    "ports",
    "requirePorts",
    "container",
    "fetch",
    "backoffSeconds",
    "backoffFactor",
    "maxLaunchDelaySeconds",
    "upgradeStrategy",
    "taskKillGracePeriodSeconds",
    "killSelection",
    "unreachableStrategy",
    "healthChecks",
    "readinessChecks",
    "dependencies",
    "acceptedResourceRoles",
    "executor",
    "secrets",
];

/// A plausible definition with some fields replaced by anything.
fn app_definition() -> impl Strategy<Value = Value> {
    let overrides = prop::collection::vec((prop::sample::select(APP_FIELDS), json_value()), 0..5);
    (
        "[a-z0-9]{1,8}",
        overrides,
        prop::collection::vec(prop::sample::select(APP_FIELDS), 0..2),
    )
        .prop_map(|(name, overrides, removed)| {
            let mut body = support::app(&format!("/fuzz/{name}"));
            let object = body.as_object_mut().unwrap();
            for (field, value) in overrides {
                object.insert(field.to_owned(), value);
            }
            for field in removed {
                object.remove(field);
            }
            body
        })
}

/// A body: a definition, any JSON, a definition cut short, or bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => app_definition().prop_map(|v| v.to_string().into_bytes()),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => (app_definition(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            let end = cut.index(text.len());
            text[..end].to_vec()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

#[test]
fn app_definitions_never_get_a_5xx() {
    let strategy = (
        prop::sample::select(vec!["POST", "PUT", "PATCH"]),
        "[a-z0-9]{1,6}",
        body(),
    );
    fuzz(strategy, |target, (method, name, body)| {
        Box::pin(async move {
            let (method, path) = match method {
                "POST" => (reqwest::Method::POST, "/v2/apps".to_owned()),
                "PUT" => (
                    reqwest::Method::PUT,
                    format!("/v2/apps/fuzz/{name}?force=true"),
                ),
                _ => (
                    reqwest::Method::PATCH,
                    format!("/v2/apps/fuzz/{name}?force=true"),
                ),
            };
            let response = target
                .http
                .request(method.clone(), target.url(&path))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let what = format!("{method} {path} {}", String::from_utf8_lossy(&body));
            well_formed(response, &what).await.map(drop)
        })
    });
}

/// Query values that have broken parsers before, and anything else.
fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-1".to_owned()),
        Just("0".to_owned()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("now".to_owned()),
        Just("TRUE".to_owned()),
        Just("%FF%FE".to_owned()),
        Just("%".to_owned()),
        Just("%zz".to_owned()),
        Just("/".to_owned()),
        Just("/prod/".to_owned()),
        Just("2026-01-02T03:04:05Z".to_owned()),
        "[0-9]{1,22}",
        "[a-zA-Z0-9=_-]{0,16}",
        "\\PC{0,12}".prop_map(|s| s.replace(['&', '#'], "")),
    ]
}

const QUERY_KEYS: &[&str] = &[
    "from",
    "limit",
    "at",
    "type",
    "app",
    "task",
    "actor",
    "since",
    "until",
    "order",
    "cursor",
    "embed",
    "force",
    "label",
    "id",
    "cmd",
    "event_type",
    "plan-format",
    "wipe",
    "scale",
];

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => prop::sample::select(QUERY_KEYS).prop_map(str::to_owned),
        1 => "[a-zA-Z%]{1,6}",
    ];
    prop::collection::vec((key, query_value()), 1..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

const READ_ROUTES: &[&str] = &[
    "/v1/events",
    "/v1/state",
    "/v1/audit",
    "/v1/sidecars",
    "/v2/apps",
    "/v2/apps/fuzz/a",
    "/v2/apps/fuzz/a/tasks",
    "/v2/apps/fuzz/a/versions",
    "/v2/tasks",
    "/v2/deployments",
    "/v2/queue",
    "/v2/eventSubscriptions",
    "/v2/info",
    "/v2/leader",
    "/ping",
];

#[test]
fn query_strings_never_get_a_5xx() {
    // The routes that parse their queries most, chosen as often as the rest.
    let route = prop_oneof![
        prop::sample::select(&["/v1/events", "/v1/state", "/v1/audit"][..]),
        prop::sample::select(READ_ROUTES),
    ];
    let strategy = (route, query());
    fuzz(strategy, |target, (route, query)| {
        Box::pin(async move {
            let url = target.url(&format!("{route}?{query}"));
            let response = target.http.get(&url).send().await.unwrap();
            well_formed(response, &url).await.map(drop)
        })
    });
}

#[test]
fn stream_queries_and_last_event_ids_never_get_a_5xx() {
    let last_event_id = prop::option::of(query_value());
    let strategy = (query(), last_event_id, any::<bool>());
    fuzz(strategy, |target, (query, last_event_id, websocket)| {
        Box::pin(async move {
            if websocket {
                let url = target.stream_url(&query);
                match tokio_tungstenite::connect_async(&url).await {
                    Ok((mut ws, _)) => {
                        let _ = ws.close(None).await;
                    }
                    Err(tungstenite::Error::Http(refused)) => {
                        let status = refused.status().as_u16();
                        prop_assert!((400..500).contains(&status), "{url}: {status}");
                        let body: Value =
                            serde_json::from_slice(refused.body().as_deref().unwrap_or_default())
                                .map_err(|e| TestCaseError::fail(format!("{url}: {e}")))?;
                        prop_assert!(body["message"].is_string(), "{url}: {body}");
                    }
                    Err(other) => prop_assert!(false, "{url}: {other}"),
                }
                return Ok(());
            }
            let url = target.url(&format!("/v2/events?{query}"));
            let mut request = target.http.get(&url).header("accept", "text/event-stream");
            if let Some(id) = &last_event_id {
                request = request.header("last-event-id", id.as_str());
            }
            let what = format!("{url} Last-Event-ID {last_event_id:?}");
            // A 200 is a stream: dropping the response ends it.
            well_formed(request.send().await.unwrap(), &what)
                .await
                .map(drop)
        })
    });
}

/// What a stream client may send: sidecar messages with wild fields,
/// any JSON, any text or bytes, pings.
fn client_message() -> impl Strategy<Value = Message> {
    let sidecar = (
        prop::sample::select(vec!["hello", "applied", "Hello", "bye", ""]),
        json_value(),
        json_value(),
    )
        .prop_map(|(kind, a, b)| {
            let mut object = Map::new();
            object.insert("type".into(), json!(kind));
            object.insert("name".into(), a);
            object.insert("seq".into(), b.clone());
            object.insert("drain_confirmation".into(), b);
            Message::text(Value::Object(object).to_string())
        });
    prop_oneof![
        4 => sidecar,
        2 => json_value().prop_map(|v| Message::text(v.to_string())),
        1 => "\\PC{0,64}".prop_map(Message::text),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Message::binary),
        1 => prop::collection::vec(any::<u8>(), 0..125).prop_map(|b| Message::Ping(b.into())),
    ]
}

#[test]
fn stream_client_messages_never_break_the_stream() {
    let strategy = prop::collection::vec(client_message(), 1..8);
    fuzz(strategy, |target, messages| {
        Box::pin(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(target.stream_url("from=now"))
                .await
                .unwrap();
            for message in messages {
                ws.send(message).await.unwrap();
            }
            // Still listened to: a ping of ours comes back as a pong.
            ws.send(Message::Ping(b"still there?".to_vec().into()))
                .await
                .unwrap();
            let answered = tokio::time::timeout(Duration::from_secs(30), async {
                while let Some(Ok(message)) = ws.next().await {
                    if message == Message::Pong(b"still there?".to_vec().into()) {
                        return true;
                    }
                }
                false
            })
            .await;
            prop_assert_eq!(answered, Ok(true));
            let sidecars = target
                .http
                .get(target.url("/v1/sidecars"))
                .send()
                .await
                .unwrap();
            prop_assert_eq!(well_formed(sidecars, "/v1/sidecars").await?, 200);
            Ok(())
        })
    });
}
