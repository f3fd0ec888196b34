//! Marathon's `GET /v2/events` (Server-Sent Events) against the real binary:
//! Marathon's event shapes, `event_type` filters, and resuming with
//! `Last-Event-ID` without gap or duplicate while writers append.

use crate::support::stream_client;

use crate::support::stream_client::write_apps;
use crate::support::{Server, client};
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug)]
struct SseEvent {
    kind: String,
    /// `42`, or `42.0` for the first of several events of seq 42.
    id: Option<String>,
    data: Value,
}

impl SseEvent {
    /// The seq the event's id names.
    fn seq(&self) -> Option<u64> {
        let id = self.id.as_deref()?;
        id.split('.').next()?.parse().ok()
    }
}

/// An open `/v2/events` response, parsed event by event.
struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    async fn open(server: &Server, query: &str, last_id: Option<&str>) -> SseReader {
        let mut request = client()
            .get(server.url(&format!("/v2/events{query}")))
            .header("Accept", "text/event-stream");
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        SseReader {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    kind: String::new(),
                    id: None,
                    data: Value::Null,
                };
                for line in block.lines() {
                    if let Some(kind) = line.strip_prefix("event: ") {
                        event.kind = kind.to_owned();
                    } else if let Some(id) = line.strip_prefix("id: ") {
                        event.id = Some(id.to_owned());
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(data).unwrap();
                    }
                }
                if event.kind.is_empty() {
                    continue; // a keep-alive comment
                }
                return event;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.body.next())
                .await
                .expect("an event within 30 s")
                .expect("the stream stays open")
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn marathon_shapes_and_the_attached_greeting() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut sse = SseReader::open(&server, "", None).await;
    let attached = sse.next().await;
    assert_eq!(attached.kind, "event_stream_attached");
    assert_eq!(attached.id, None);
    assert!(
        attached.data["remoteAddress"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1")
    );
    write_apps(&server, "m", 2, 1).await;
    let post = sse.next().await;
    assert_eq!(
        (post.kind.as_str(), post.id.as_deref()),
        ("api_post_event", Some("1"))
    );
    assert_eq!(post.data["eventType"], "api_post_event");
    assert_eq!(post.data["uri"], "/v2/apps");
    assert_eq!(post.data["clientIp"], "127.0.0.1");
    let id = post.data["appDefinition"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("/m/"));
    assert!(post.data["timestamp"].as_str().unwrap().ends_with('Z'));
    // The deployment starting is two Marathon events, in Marathon's order.
    let changed = sse.next().await;
    assert_eq!(
        (changed.kind.as_str(), changed.id.as_deref()),
        ("group_change_success", Some("2.0"))
    );
    assert_eq!(changed.data["groupId"], "/m");
    let info = sse.next().await;
    assert_eq!(
        (info.kind.as_str(), info.id.as_deref()),
        ("deployment_info", Some("2"))
    );
    assert_eq!(changed.data["version"], info.data["plan"]["version"]);
    let plan = &info.data["plan"];
    let mut keys: Vec<&String> = plan.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["id", "original", "steps", "target", "version"]);
    assert_eq!(
        plan["steps"],
        serde_json::json!([{"actions": [{"action": "StartApplication", "app": id}]},
                           {"actions": [{"action": "ScaleApplication", "app": id}]}])
    );
    assert_eq!(info.data["currentStep"], plan["steps"][0]);
    // The trees before and after: the app only in the target, in /m.
    assert_eq!(plan["original"]["id"], "/");
    assert_eq!(plan["original"]["apps"], serde_json::json!([]));
    assert_eq!(plan["target"]["groups"][0]["id"], "/m");
    assert_eq!(plan["target"]["groups"][0]["apps"][0]["id"], id.as_str());

    let deleted = client()
        .delete(server.url(&format!("/v2/apps{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        deleted.status(),
        200,
        "DELETE forces by default, as in Marathon"
    );
    let mut kinds = Vec::new();
    for _ in 0..4 {
        kinds.push(sse.next().await.kind);
    }
    assert_eq!(
        kinds,
        [
            "deployment_failed",
            "app_terminated_event",
            "group_change_success",
            "deployment_info"
        ]
    );
}

#[tokio::test]
async fn event_type_filters_and_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    write_apps(&server, "f", 4, 1).await;
    let mut sse = SseReader::open(
        &server,
        "?event_type=deployment_info&plan-format=light",
        Some("0"),
    )
    .await;
    let first = sse.next().await;
    assert_eq!(first.kind, "deployment_info");
    assert!(
        first.data["plan"].get("original").is_none(),
        "plan-format=light leaves the trees out: {}",
        first.data
    );
    let second = sse.next().await;
    assert_eq!(
        (second.kind, second.id),
        ("deployment_info".to_owned(), Some("4".to_owned()))
    );

    let http = client();
    let plain = http.get(server.url("/v2/events")).send().await.unwrap();
    assert_eq!(plain.status(), 406);
    for bad in ["abc", "-1", "99"] {
        let response = http
            .get(server.url("/v2/events"))
            .header("Accept", "text/event-stream")
            .header("Last-Event-ID", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "Last-Event-ID {bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resuming_with_last_event_id_skips_and_repeats_nothing() {
    let events = stream_client::env_or("STRIDE_TEST_SSE_EVENTS", 1_000);
    let dir = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(Server::start(dir.path(), &[]));
    let writer_server = server.clone();
    let writer = tokio::spawn(async move { write_apps(&writer_server, "sse", events, 8).await });
    // Each app is seq 2n-1 (one event) and seq 2n (two: a deployment
    // starting); across resumes each must come exactly once, in order.
    let expected: Vec<String> = (1..=events)
        .flat_map(|seq| match seq % 2 {
            1 => vec![seq.to_string()],
            _ => vec![format!("{seq}.0"), seq.to_string()],
        })
        .collect();
    let mut seen: Vec<String> = Vec::new();
    let mut resumes = 0;
    while seen.len() < expected.len() {
        let last = seen.last().cloned();
        let mut sse = SseReader::open(&server, "", Some(last.as_deref().unwrap_or("0"))).await;
        assert_eq!(sse.next().await.kind, "event_stream_attached");
        for _ in 0..(37 + resumes * 13 % 101) {
            let event = sse.next().await;
            assert!(event.seq().is_some());
            seen.push(event.id.unwrap());
            assert_eq!(
                seen.last(),
                expected.get(seen.len() - 1),
                "gap or duplicate after {resumes} resumes"
            );
            if seen.len() == expected.len() {
                break;
            }
        }
        resumes += 1;
    }
    assert_eq!(writer.await.unwrap(), events);
    println!("{events} events over {resumes} SSE connections");
}
