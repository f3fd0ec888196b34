//! SIGTERM ends the server in bounded time whatever clients do: it stops
//! accepting, closes websocket subscribers with 1001 and ends SSE streams,
//! lets requests in flight finish, and exits 0.

mod common;
#[path = "support/stream_client.rs"]
mod stream_client;

use common::{Server, all_events, app, client};
use futures::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};
use stream_client::{Received, read_until_caught_up, receive, subscribe, subscribe_small_window};
use tokio::io::AsyncWriteExt;

/// Waits for the child to exit; `None` if it is still running at `within`.
fn exit_within(server: &mut Server, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = server.child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[tokio::test]
async fn sigterm_closes_streams_with_1001_and_exits_0_whatever_clients_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let http = client();
    for i in 0..3 {
        let created = http
            .post(server.url("/v2/apps"))
            .json(&app(&format!("/before/a{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    // A websocket follower at the live edge, one that never reads, an SSE
    // client, a connection idle mid-headers, one idle between requests.
    let mut follower = subscribe(&server, "from=1").await;
    read_until_caught_up(&mut follower).await;
    let _stalled = subscribe_small_window(&server, "from=1").await;
    let sse = http
        .get(server.url("/v2/events"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    let mut sse_body = sse.bytes_stream();
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut half_head = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half_head
        .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let _idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // A write in flight when the signal lands finishes.
    let writer = {
        let http = http.clone();
        let url = server.url("/v2/apps");
        tokio::spawn(async move {
            http.post(url)
                .json(&app("/during/shutdown"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;

    kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM).unwrap();

    // The follower gets a close frame with 1001, not a bare EOF.
    let closed = loop {
        match receive(&mut follower).await {
            Received::Closed(code) => break code,
            Received::Event(_) | Received::Progress { .. } => {}
            Received::Error(error) => panic!("unexpected {error}"),
        }
    };
    assert_eq!(closed, Some(1001));
    // The SSE stream ends.
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(_)) = sse_body.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the SSE stream did not end");
    let status = tokio::task::spawn_blocking(move || {
        let status = exit_within(&mut server, Duration::from_secs(30));
        (status, server)
    })
    .await
    .unwrap();
    let (status, server) = status;
    let status = status.expect("still running 30 s after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status}");

    // The write that was in flight either finished or never began; if it
    // was acknowledged, it is in the log.
    let written = writer.await.unwrap();
    drop(server);
    let restarted = Server::start(dir.path(), &[]);
    let events = all_events(&http, &restarted).await;
    let created: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "AppCreated")
        .map(|e| e["app"].as_str().unwrap())
        .collect();
    if matches!(written, Ok(201)) {
        assert!(created.contains(&"/during/shutdown"), "{created:?}");
    }
    assert!(created.len() >= 3, "{created:?}");
}
