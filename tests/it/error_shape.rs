//! Every error answer is Marathon's JSON `{"message": ...}`, including the
//! ones the HTTP framework produces (rejected extractors, 404 of unknown
//! routes, 405 with `Allow`, 413), so clients that parse error bodies never
//! meet plain text or an empty body.

use crate::support::{Server, all_events, client};
use reqwest::Method;
use serde_json::Value;
use std::io::{Read, Write};

/// The status, headers and body of a refused request, checked for the one
/// error shape: JSON with a non-empty string `message`.
async fn refused(
    response: reqwest::Response,
    status: u16,
    what: &str,
) -> reqwest::header::HeaderMap {
    assert_eq!(response.status(), status, "{what}");
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{what}: content-type {content_type:?}, body {text:?}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text:?}"));
    let message = body["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{what}: {body}");
    headers
}

#[tokio::test]
async fn framework_errors_are_json_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let get = |path: &str| http.get(server.url(path)).send();

    refused(get("/nope").await.unwrap(), 404, "unknown route").await;
    refused(
        get("/v2/nope/deeper").await.unwrap(),
        404,
        "unknown /v2 route",
    )
    .await;
    for (query, what) in [
        ("/v1/events?from=-1", "negative from"),
        ("/v1/events?limit=many", "non-numeric limit"),
        ("/v1/state?at=x", "non-numeric at"),
        ("/v1/events?from=18446744073709551616", "from beyond u64"),
    ] {
        refused(get(query).await.unwrap(), 400, what).await;
    }
    // A websocket route asked without the upgrade.
    let plain = get("/v1/stream").await.unwrap();
    let status = plain.status().as_u16();
    assert!((400..500).contains(&status), "{status}");
    refused(plain, status, "websocket route without upgrade").await;

    for (method, path, allowed) in [
        (Method::PUT, "/v2/tasks", "GET"),
        (Method::POST, "/ping", "GET"),
        (Method::DELETE, "/v2/info", "GET"),
        (Method::DELETE, "/v2/apps", "POST"),
        (Method::POST, "/v2/apps/web/versions", "GET"),
        (Method::GET, "/v2/apps/web/restart", "POST"),
    ] {
        let what = format!("{method} {path}");
        let response = http.request(method, server.url(path)).send().await.unwrap();
        let headers = refused(response, 405, &what).await;
        let allow = headers
            .get("allow")
            .unwrap_or_else(|| panic!("{what}: no Allow header"))
            .to_str()
            .unwrap();
        assert!(allow.contains(allowed), "{what}: Allow: {allow}");
    }

    let huge = vec![b' '; 3 << 20];
    // Its own connection: the server closes it with most of the body unread.
    let too_big = client()
        .post(server.url("/v2/apps"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    refused(too_big, 413, "3 MB body").await;
    assert!(all_events(&http, &server).await.is_empty());
}

/// reqwest cannot send invalid UTF-8 in a path, so this speaks HTTP itself.
#[test]
fn invalid_utf8_in_a_path_is_a_json_400() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let addr = server.url.trim_start_matches("http://").to_owned();
    for path in [
        "/v2/apps/%FF%FE",
        "/v2/apps/web/tasks/%C3%28",
        "/v2/queue/%FF/delay",
    ] {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let request =
            format!("DELETE {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400"), "{path}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{path}: {head}"
        );
        let body: Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {body:?}"));
        assert!(body["message"].is_string(), "{path}: {body}");
    }
}
