//! Helpers for stream tests: websocket subscribers and concurrent writers.

use crate::support::{Server, app, client};
use futures::StreamExt;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn ws_url(server: &Server, query: &str) -> String {
    format!("{}/v1/stream?{query}", server.url.replacen("http", "ws", 1))
}

pub async fn subscribe(server: &Server, query: &str) -> Ws {
    let (ws, _) = connect_async(ws_url(server, query))
        .await
        .expect("websocket connects");
    ws
}

/// What a subscriber reads.
#[derive(Debug)]
pub enum Received {
    Event(Value),
    Progress { seq: u64, head: u64 },
    Error(Value),
    Closed(Option<u16>),
}

/// The next stream message, skipping pings and pongs.
pub async fn receive(ws: &mut Ws) -> Received {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a message within 30 s");
        let text = match message {
            None | Some(Err(_)) => return Received::Closed(None),
            Some(Ok(Message::Close(frame))) => {
                return Received::Closed(frame.map(|f| u16::from(f.code)));
            }
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
        };
        let value: Value = serde_json::from_str(&text).expect("stream messages are JSON");
        return match value["type"].as_str() {
            Some("progress") => Received::Progress {
                seq: value["seq"].as_u64().unwrap(),
                head: value["head"].as_u64().unwrap(),
            },
            Some("error") => Received::Error(value),
            _ => Received::Event(value),
        };
    }
}

/// Reads events until the first progress message says the subscriber has
/// seen everything up to the head it reports.
pub async fn read_until_caught_up(ws: &mut Ws) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        match receive(ws).await {
            Received::Event(e) => events.push(e),
            Received::Progress { seq, head } if seq >= head => return events,
            Received::Progress { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// `writers` concurrent clients create apps under `/{group}/` until at
/// least `events` events were appended (two per app). Returns the count.
pub async fn write_apps(server: &Server, group: &str, events: u64, writers: usize) -> u64 {
    write_apps_padded(server, group, events, writers, 0).await
}

/// Like `write_apps`, each app carrying a label of `padding` bytes, so
/// fewer events fill a socket's buffers.
pub async fn write_apps_padded(
    server: &Server,
    group: &str,
    events: u64,
    writers: usize,
    padding: usize,
) -> u64 {
    let appended = Arc::new(AtomicU64::new(0));
    let next_app = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let http = client();
        let url = server.url("/v2/apps");
        let (appended, next_app) = (appended.clone(), next_app.clone());
        let group = group.to_owned();
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next_app.fetch_add(2, Ordering::SeqCst);
                if n >= events {
                    break;
                }
                let id = format!("/{group}/a{n}-{}", uuid::Uuid::new_v4().simple());
                let mut body = app(&id);
                body["labels"] = serde_json::json!({"padding": "x".repeat(padding)});
                let response = http.post(&url).json(&body).send().await.expect("post");
                assert_eq!(response.status(), 201);
                appended.fetch_add(2, Ordering::SeqCst);
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    appended.load(Ordering::SeqCst)
}

pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A subscriber with a tiny TCP receive window: when it stops reading, the
/// server's send blocks after a few kilobytes instead of megabytes, so its
/// feed soon lags behind the live broadcast.
pub async fn subscribe_small_window(server: &Server, query: &str) -> Ws {
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (ws, _) =
        tokio_tungstenite::client_async(ws_url(server, query), MaybeTlsStream::Plain(stream))
            .await
            .expect("websocket connects");
    ws
}
