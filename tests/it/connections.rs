//! Connection hygiene against the real binary: the open-file limit raised
//! at start, idle and slow-header connections closed, a connection limit
//! below the descriptor limit (new ones refused, open ones served), and a
//! limit on stream subscribers. Run under `prlimit` to get a small
//! descriptor limit cheaply.

use crate::support::stream_client;

use crate::support::stream_client::{Received, receive, subscribe, ws_url};
use crate::support::{Server, app, client, holds_within, wait_until};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn start_limited(dir: &Path, nofile: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--no-mesos"];
    args.extend_from_slice(extra);
    Server::start_wrapped(dir, &args, &["prlimit", &format!("--nofile={nofile}")])
}

fn addr(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// A client that opens a new connection for every request.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Retries a GET of `/ping` on new connections until it answers.
async fn ping_answers(server: &Server, within: Duration) -> bool {
    let http = fresh_client();
    holds_within(within, || async {
        let answer = http.get(server.url("/ping")).send().await;
        answer.is_ok_and(|r| r.status() == 200)
    })
    .await
}

/// True once the server has closed `stream` (EOF or reset).
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {} // an error answer before the close
        }
    }
}

#[tokio::test]
async fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_limited(dir.path(), "256:4096", &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["4096", "4096"], "{line}");
}

#[tokio::test]
async fn an_idle_and_slowloris_flood_under_a_low_descriptor_limit_costs_no_availability() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_limited(dir.path(), "256:256", &["--http-header-timeout", "3s"]);
    // Connected before the flood, and reading (so answering pings)
    // throughout: it must keep being served.
    let mut follower = subscribe(&server, "from=now").await;
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let received = receive(&mut follower).await;
            let closed = matches!(received, Received::Closed(_));
            let _ = events_tx.send(received);
            if closed {
                return;
            }
        }
    });

    let mut idle = Vec::new();
    for _ in 0..600 {
        idle.push(TcpStream::connect(addr(&server)).await.unwrap());
    }
    // Slowloris: a request head that never ends, one header line a second.
    let trickling = Arc::new(AtomicUsize::new(0));
    let mut slow = Vec::new();
    for i in 0..300 {
        let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
        let trickling = trickling.clone();
        trickling.fetch_add(1, Ordering::SeqCst);
        slow.push(tokio::spawn(async move {
            let head = format!("GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: {i}\r\n");
            let mut sent = stream.write_all(head.as_bytes()).await;
            while sent.is_ok() {
                tokio::time::sleep(Duration::from_secs(1)).await;
                sent = stream.write_all(b"X-More: yes\r\n").await;
                // A closed connection may still take a write or two.
                let mut probe = [0u8; 1];
                if let Ok(Ok(0)) =
                    tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await
                {
                    break;
                }
            }
            trickling.fetch_sub(1, Ordering::SeqCst);
        }));
    }

    let flooded = Instant::now();
    assert!(
        ping_answers(&server, Duration::from_secs(60)).await,
        "/ping never answered during the flood"
    );
    eprintln!("/ping answered {:?} into the flood", flooded.elapsed());
    let http = fresh_client();
    let deadline = Instant::now() + Duration::from_secs(60);
    let created = loop {
        // The key makes the retry safe: a create that landed is not repeated.
        let sent = http
            .post(server.url("/v2/apps"))
            .header("Idempotency-Key", "flood-create")
            .json(&app("/during-flood"))
            .send()
            .await;
        if let Ok(response) = sent {
            break response;
        }
        assert!(Instant::now() < deadline, "the POST never got through");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(created.status(), 201);
    eprintln!("POST answered {:?} into the flood", flooded.elapsed());
    // The follower from before the flood saw the create.
    let created_seen = loop {
        match events.recv().await.unwrap() {
            Received::Event(event) => break event,
            Received::Progress { .. } => {}
            other => panic!("the follower was dropped: {other:?}"),
        }
    };
    assert_eq!(created_seen["type"], "AppCreated");

    // Every flood connection is closed by the server: refused at once or
    // timed out, slow headers included.
    for stream in &mut idle {
        assert!(closed_by_server(stream, Duration::from_secs(30)).await);
    }
    wait_until(
        "every slowloris connection closed",
        Duration::from_secs(30),
        || {
            let left = trickling.load(Ordering::SeqCst);
            async move { left == 0 }
        },
    )
    .await;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server died"
    );
    assert!(ping_answers(&server, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn beyond_the_connection_limit_new_connections_are_refused_and_open_ones_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--max-connections", "10", "--http-header-timeout", "60s"],
    );
    // A keep-alive client: its one connection stays open between requests.
    let kept = client();
    assert_eq!(
        kept.get(server.url("/ping")).send().await.unwrap().status(),
        200
    );
    let mut idle = Vec::new();
    for _ in 0..9 {
        idle.push(TcpStream::connect(addr(&server)).await.unwrap());
    }
    // Wait until the server has accepted all nine, then one more is refused:
    // closed long before the 60 s header timeout could close it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = TcpStream::connect(addr(&server)).await.unwrap();
    assert!(closed_by_server(&mut extra, Duration::from_secs(30)).await);
    assert!(
        fresh_client()
            .get(server.url("/ping"))
            .send()
            .await
            .is_err()
    );
    // The open keep-alive connection is still served.
    assert_eq!(
        kept.get(server.url("/ping")).send().await.unwrap().status(),
        200
    );
    // A freed place is taken again.
    drop(idle.pop());
    assert!(ping_answers(&server, Duration::from_secs(30)).await);
}

#[tokio::test]
async fn stream_subscribers_have_their_own_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-streams", "2"]);
    let first = subscribe(&server, "from=now").await;
    let http = client();
    let sse = http
        .get(server.url("/v2/events"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    let error = tokio_tungstenite::connect_async(ws_url(&server, "from=now"))
        .await
        .expect_err("a third subscriber");
    let tokio_tungstenite::tungstenite::Error::Http(refused) = error else {
        panic!("expected an HTTP refusal, got {error}");
    };
    assert_eq!(refused.status(), 503);
    let body: Value = serde_json::from_slice(refused.body().as_deref().unwrap()).unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("subscribers"),
        "{body}"
    );
    let third_sse = http
        .get(server.url("/v2/events"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(third_sse.status(), 503);
    // Plain requests are not streams.
    assert_eq!(
        http.get(server.url("/ping")).send().await.unwrap().status(),
        200
    );
    drop(first);
    drop(sse);
    wait_until("a freed stream place", Duration::from_secs(30), || async {
        tokio_tungstenite::connect_async(ws_url(&server, "from=now"))
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test]
async fn a_client_that_stops_reading_an_event_stream_gives_its_place_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--max-streams", "1", "--http-send-timeout", "2s"],
    );
    stream_client::write_apps_padded(&server, "big", 1_000, 8, 4_096).await;
    // Replays the whole log to a socket with a tiny window, never read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket
        .connect(addr(&server).parse().unwrap())
        .await
        .unwrap();
    let request = format!(
        "GET /v2/events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nLast-Event-ID: 0\r\n\r\n",
        addr(&server)
    );
    stalled.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stalled.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let http = client();
    let sse = || {
        http.get(server.url("/v2/events"))
            .header("accept", "text/event-stream")
            .send()
    };
    // Its place is taken while it streams ...
    assert_eq!(sse().await.unwrap().status(), 503);
    // ... and given back once the kernel gives up on it.
    wait_until(
        "the stalled stream's place",
        Duration::from_secs(60),
        || async { sse().await.unwrap().status() == 200 },
    )
    .await;
    drop(stalled);
}
