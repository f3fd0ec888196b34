//! SIGTERM ends the server in bounded time whatever clients do: it stops
//! accepting, closes websocket subscribers with 1001 and ends SSE streams,
//! lets requests in flight finish, stops the reconciler after its
//! activation, drains the committer, and exits 0.

use crate::support;
use crate::support::stream_client;

use crate::support::stream_client::{
    Received, read_until_caught_up, receive, subscribe, subscribe_small_window,
};
use crate::support::{Server, all_events, app, client};
use futures::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The close code the server ends `ws` with, skipping what comes before.
async fn close_code(ws: &mut stream_client::Ws) -> Option<u16> {
    loop {
        match receive(ws).await {
            Received::Closed(code) => return code,
            Received::Event(_) | Received::Progress { .. } => {}
            Received::Error(error) => panic!("unexpected {error}"),
        }
    }
}

/// The server's exit status, once it has exited (30 s at most).
async fn exited(mut server: Server) -> (std::process::ExitStatus, Server) {
    tokio::task::spawn_blocking(move || {
        let status = server.exit_within(Duration::from_secs(30));
        (status.expect("still running 30 s after SIGTERM"), server)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn sigterm_closes_streams_with_1001_and_exits_0_whatever_clients_do() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
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
    assert_eq!(close_code(&mut follower).await, Some(1001));
    // The SSE stream ends.
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(_)) = sse_body.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the SSE stream did not end");
    let (status, server) = exited(server).await;
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

/// SIGTERM while writers keep writing and the reconciler launches their
/// apps on the embedded cluster: every acknowledged write is in the log
/// after the exit, the subscriber gets 1001, the exit is 0, and the log
/// shows the shutdown order ARCHITECTURE.md states.
#[tokio::test]
async fn sigterm_during_writes_loses_no_acknowledged_write_and_stops_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = Server::start_logged(dir.path(), &[]);
    let http = client();
    support::wait_until(
        "the reconciler subscribed",
        Duration::from_secs(30),
        || async {
            let events = all_events(&http, &server).await;
            events.iter().any(|e| e["type"] == "FrameworkSubscribed")
        },
    )
    .await;
    let mut follower = subscribe(&server, "from=1").await;
    read_until_caught_up(&mut follower).await;
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let (http, url, acknowledged) =
                (http.clone(), server.url("/v2/apps"), acknowledged.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let id = format!("/w{writer}/a{i}");
                    let body = json!({"id": id, "cmd": "sleep 1000", "cpus": 0.01, "mem": 1});
                    match http.post(&url).json(&body).send().await {
                        Ok(answer) if answer.status() == 201 => {
                            acknowledged.lock().unwrap().push(id)
                        }
                        // Refused (or cut off) once the server stops.
                        _ => return,
                    }
                }
            })
        })
        .collect();
    support::wait_until("30 writes", Duration::from_secs(30), || async {
        acknowledged.lock().unwrap().len() >= 30
    })
    .await;

    kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM).unwrap();

    assert_eq!(close_code(&mut follower).await, Some(1001));
    let (status, server) = exited(server).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", log.text());
    for writer in writers {
        writer.await.unwrap();
    }

    crate::support::assert_in_order(
        &log.text(),
        &[
            "shutdown: stopped accepting connections",
            "shutdown: HTTP stopped: requests answered, streams closed",
            "shutdown: part stopped part=\"reconciler\"",
            "shutdown: background parts stopped",
            "shutdown: committer drained",
            "shutdown: local cluster stopped",
            "shutdown: every part ended",
        ],
    );

    drop(server);
    let restarted = Server::start(dir.path(), &[]);
    let created: HashSet<String> = all_events(&http, &restarted)
        .await
        .iter()
        .filter(|e| e["type"] == "AppCreated")
        .map(|e| e["app"].as_str().unwrap().to_owned())
        .collect();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 30);
    for id in &acknowledged {
        assert!(created.contains(id), "acknowledged {id} is not in the log");
    }
}
