//! Bounds on what clients may send: app ids have a maximum length and depth
//! (so every task id stays within what Mesos accepts), and seqs and cursors
//! at the top of the u64 range are refused instead of wrapping around to
//! replay the whole log.

use crate::support::stream_client;

use crate::support::stream_client::write_apps;
use crate::support::{Server, all_events, app, client};
use serde_json::Value;

async fn field_paths(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    assert!(
        text.len() < 4096,
        "the error echoes the input: {} bytes",
        text.len()
    );
    let error: Value = serde_json::from_str(&text).unwrap();
    assert!(error["message"].is_string(), "{error}");
    error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn ids_longer_or_deeper_than_the_limit_are_a_422_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let long = format!("/{}", "a".repeat(1_500_000));
    let deep = "/a".repeat(40);
    let just_too_long = format!("/{}", "a".repeat(219));
    for (id, what) in [
        (&long, "1.5 MB"),
        (&deep, "40 deep"),
        (&just_too_long, "220 chars"),
    ] {
        let created = http
            .post(server.url("/v2/apps"))
            .json(&app(id))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 422, "{what}");
        assert!(created.headers().get("location").is_none(), "{what}");
        assert_eq!(field_paths(created).await, ["/id"], "{what}");
    }
    let mut body = app("/has-deps");
    body["dependencies"] = serde_json::json!([deep]);
    let deps = http
        .post(server.url("/v2/apps"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(deps.status(), 422);
    assert_eq!(field_paths(deps).await, ["/dependencies/0"]);
    // PUT creates too; the id there comes from the path.
    let put = http
        .put(server.url(&format!("/v2/apps{deep}")))
        .json(&serde_json::json!({"cmd": "sleep 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 422);
    assert_eq!(field_paths(put).await, ["/id"]);
    assert!(all_events(&http, &server).await.is_empty());

    // The longest and deepest allowed ids work end to end, by path too.
    let longest = format!("/{}", "a".repeat(218));
    let deepest = "/a".repeat(32);
    for id in [&longest, &deepest] {
        let created = http
            .post(server.url("/v2/apps"))
            .json(&app(id))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{id}");
        for (method, path) in [
            (reqwest::Method::GET, format!("/v2/apps{id}")),
            (reqwest::Method::DELETE, format!("/v2/apps{id}?force=true")),
        ] {
            let response = http.request(method, server.url(&path)).send().await;
            assert_eq!(response.unwrap().status(), 200, "{path}");
        }
    }
}

#[tokio::test]
async fn seqs_and_cursors_at_u64_max_are_refused_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    write_apps(&server, "w", 4, 1).await;
    let max = u64::MAX;
    for last in [max, max - 1] {
        let response = http
            .get(server.url("/v2/events"))
            .header("accept", "text/event-stream")
            .header("last-event-id", last.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "Last-Event-ID {last}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("beyond"),
            "{body}"
        );
    }
    // Audit cursors are opaque, but a client can forge one: "v1a<seq>".
    use base64::Engine;
    for (order, last) in [("a", max), ("a", max - 1), ("d", max), ("a", 5)] {
        let cursor =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1{order}{last}"));
        let desc = if order == "d" { "&order=desc" } else { "" };
        let response = http
            .get(server.url(&format!("/v1/audit?cursor={cursor}{desc}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "cursor {order}{last}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("cursor"),
            "{body}"
        );
    }
    // The cursor of the last event is fine: an empty last page.
    let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("v1a4");
    let page: Value = http
        .get(server.url(&format!("/v1/audit?cursor={cursor}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["events"], serde_json::json!([]));
    for query in [format!("from={max}"), format!("from={}", max - 1)] {
        let error = tokio_tungstenite::connect_async(stream_client::ws_url(&server, &query)).await;
        // A from beyond the head is refused after the upgrade (4416).
        let (mut ws, _) = error.unwrap();
        assert!(matches!(
            stream_client::receive(&mut ws).await,
            stream_client::Received::Error(_)
        ));
    }
    let state = http
        .get(server.url(&format!("/v1/state?at={max}")))
        .send()
        .await
        .unwrap();
    assert_eq!(state.status(), 400);
}
