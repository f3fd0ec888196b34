//! `GET /v1/stream` refusing bad input cleanly: bad queries, a `from` beyond
//! the head, oversized and garbage frames, clients that stop reading. Other
//! subscribers never notice.

use crate::support::stream_client::{
    Received, read_until_caught_up, receive, subscribe, subscribe_small_window, write_apps,
    write_apps_padded, ws_url,
};
use crate::support::{Server, client, wait_until};
use futures::SinkExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{self, Message};

#[tokio::test]
async fn bad_queries_are_refused_with_400_before_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    for (query, needle) in [
        ("type=AppCreate", "known types"),
        ("from=abc", "from must be a seq"),
        ("from=-1", "from must be a seq"),
        ("from=1&from=2", "twice"),
        ("app=prod", "absolute"),
        ("task=", "task"),
        ("colour=red", "unknown query parameter"),
    ] {
        let error = tokio_tungstenite::connect_async(ws_url(&server, query))
            .await
            .expect_err(query);
        let tungstenite::Error::Http(response) = error else {
            panic!("{query}: expected an HTTP refusal, got {error}");
        };
        assert_eq!(response.status(), 400, "{query}");
        let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn from_beyond_the_head_is_an_error_message_then_close_4416() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    write_apps(&server, "a", 2, 1).await;
    // One past the head is fine: the next event.
    let mut ws = subscribe(&server, "from=3").await;
    assert!(read_until_caught_up(&mut ws).await.is_empty());
    let mut ws = subscribe(&server, "from=4").await;
    let Received::Error(error) = receive(&mut ws).await else {
        panic!("expected an error message");
    };
    assert_eq!(error["error"], "from_beyond_head");
    assert_eq!(error["head"], 2);
    assert!(matches!(
        receive(&mut ws).await,
        Received::Closed(Some(4416))
    ));
}

#[tokio::test]
async fn a_10mb_message_closes_that_client_with_1009_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut bystander = subscribe(&server, "from=1").await;
    read_until_caught_up(&mut bystander).await;
    let mut ws = subscribe(&server, "from=1").await;
    read_until_caught_up(&mut ws).await;
    let _ = ws.send(Message::binary(vec![b'x'; 10 << 20])).await;
    loop {
        match receive(&mut ws).await {
            Received::Closed(code) => {
                assert_eq!(code, Some(1009));
                break;
            }
            Received::Progress { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    write_apps(&server, "after", 2, 1).await;
    assert!(matches!(receive(&mut bystander).await, Received::Event(e) if e["seq"] == 1));
}

#[tokio::test]
async fn garbage_after_the_handshake_closes_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut bystander = subscribe(&server, "from=1").await;
    read_until_caught_up(&mut bystander).await;
    let addr = server.url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let handshake = format!(
        "GET /v1/stream HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.unwrap();
        response.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 101"));
    // Reserved bits set, unmasked, a bogus opcode: not a websocket frame.
    tcp.write_all(&[0xff, 0x7f, 0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3])
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server closes the connection");
    write_apps(&server, "after", 2, 1).await;
    assert!(matches!(receive(&mut bystander).await, Received::Event(e) if e["seq"] == 1));
    let ping = client().get(server.url("/ping")).send().await.unwrap();
    assert_eq!(ping.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_and_a_reading_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = Server::start_logged(
        dir.path(),
        &[
            "--no-mesos",
            "--stream-ping-interval",
            "200ms",
            "--stream-idle-timeout",
            "1s",
        ],
    );
    let mut stalled = subscribe_small_window(&server, "from=1").await;
    let mut reader = subscribe(&server, "from=1").await;
    let reading = tokio::spawn(async move {
        // Reading answers the server's pings.
        let mut events = 0;
        while events < 200 {
            match receive(&mut reader).await {
                Received::Event(_) => events += 1,
                Received::Progress { .. } => {}
                other => panic!("the reading client was cut off: {other:?}"),
            }
        }
    });
    write_apps_padded(&server, "big", 100, 2, 8192).await;
    // The server has given up on the stalled subscriber (no pong, or a
    // send pending, past the idle timeout), and the reading one reads on.
    wait_until(
        "the stalled subscriber dropped",
        Duration::from_secs(30),
        || {
            let dropped = log.text().contains("stream subscriber stopped");
            async move { dropped }
        },
    )
    .await;
    write_apps(&server, "late", 100, 2).await;
    reading.await.unwrap();
    // The stalled client finds what was buffered, then the end.
    let mut events = 0;
    let code = loop {
        match receive(&mut stalled).await {
            Received::Event(_) => events += 1,
            Received::Progress { .. } => {}
            Received::Closed(code) => break code,
            other => panic!("{other:?}"),
        }
    };
    println!("the stalled client got {events} of 200 events before the close ({code:?})");
    assert!(events < 200);
}
