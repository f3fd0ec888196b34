//! A scripted fake Mesos master: a tiny axum server that answers each
//! SUBSCRIBE from a script (redirect, 503, or a hand-made RecordIO body)
//! and records every request. Scripted on purpose: see the test file.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::Url;
use serde_json::Value;

/// What the fake master does with one SUBSCRIBE.
#[derive(Clone)]
pub enum Reply {
    Redirect(String),
    Unavailable,
    Stream(Vec<Part>),
}

/// A piece of a SUBSCRIBE response body. The body ends (the connection
/// closes cleanly) after the last part, unless that part is `Hang`.
#[derive(Clone)]
pub enum Part {
    Bytes(Vec<u8>),
    Hang,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub stream_id: Option<String>,
    pub body: Value,
}

#[derive(Default)]
pub struct Script {
    subscribes: VecDeque<Reply>,
    requests: Vec<Request>,
    subscribe_count: usize,
    /// Answer to non-SUBSCRIBE calls; 202 unless set.
    pub call_reply: Option<(StatusCode, String)>,
}

#[derive(Clone)]
pub struct FakeMaster {
    pub url: Url,
    pub script: Arc<Mutex<Script>>,
}

impl FakeMaster {
    pub async fn start(replies: Vec<Reply>) -> Self {
        let script = Arc::new(Mutex::new(Script {
            subscribes: replies.into(),
            ..Script::default()
        }));
        let app = axum::Router::new()
            .route("/api/v1/scheduler", axum::routing::post(answer))
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = Url::parse(&format!("http://{addr}")).expect("URL");
        Self { url, script }
    }

    pub fn endpoint(&self) -> Url {
        self.url.join("api/v1/scheduler").expect("URL")
    }

    pub fn requests(&self) -> Vec<Request> {
        self.script.lock().expect("script").requests.clone()
    }

    pub fn subscribes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.body["type"] == "SUBSCRIBE")
            .collect()
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let stream_id = headers
        .get("Mesos-Stream-Id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let is_subscribe = body["type"] == "SUBSCRIBE";
    let mut script = script.lock().expect("script");
    script.requests.push(Request { stream_id, body });
    if !is_subscribe {
        let (status, message) = script
            .call_reply
            .clone()
            .unwrap_or((StatusCode::ACCEPTED, String::new()));
        return Response::builder()
            .status(status)
            .body(Body::from(message))
            .expect("response");
    }
    script.subscribe_count += 1;
    // Once the script runs out, the master has no leader.
    match script.subscribes.pop_front().unwrap_or(Reply::Unavailable) {
        Reply::Redirect(location) => Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header("Location", location)
            .body(Body::empty())
            .expect("response"),
        Reply::Unavailable => Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(Body::from("No leader elected"))
            .expect("response"),
        Reply::Stream(parts) => {
            let chunks = futures::stream::iter(parts)
                .then(|part| async move {
                    match part {
                        Part::Bytes(bytes) => Some(Ok::<_, std::io::Error>(Bytes::from(bytes))),
                        Part::Hang => futures::future::pending().await,
                    }
                })
                .filter_map(futures::future::ready);
            Response::builder()
                .status(StatusCode::OK)
                .header("Content-Type", "application/json")
                .header(
                    "Mesos-Stream-Id",
                    format!("stream-{}", script.subscribe_count),
                )
                .body(Body::from_stream(chunks))
                .expect("response")
        }
    }
}
