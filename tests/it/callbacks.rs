//! `/v2/eventSubscriptions` against the real binary: in-order, at-least-once
//! POSTs with the seq in a header, retried with backoff, resumed from a
//! durable cursor after a restart; a dead endpoint delays nobody else.

use crate::support;

use crate::support::stream_client::write_apps;
use crate::support::{Server, client, wait_until};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An endpoint that records (seq, eventType) of what it accepted, after
/// refusing the first `fail_first` requests with a 500.
#[derive(Clone, Default)]
struct Receiver {
    accepted: Arc<Mutex<Vec<(u64, String)>>>,
    refused: Arc<AtomicUsize>,
    fail_first: usize,
}

impl Receiver {
    async fn start(fail_first: usize) -> (Receiver, String) {
        let receiver = Receiver {
            fail_first,
            ..Receiver::default()
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(accept))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    /// The seqs delivered, in order; one seq can be several Marathon
    /// events (a deployment starting is two), each POSTed.
    fn seqs(&self) -> Vec<u64> {
        let mut seqs: Vec<u64> = self
            .accepted
            .lock()
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect();
        seqs.dedup();
        seqs
    }
}

async fn accept(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> StatusCode {
    if receiver.refused.load(Ordering::SeqCst) < receiver.fail_first {
        receiver.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let seq = headers["x-stride-seq"].to_str().unwrap().parse().unwrap();
    let kind = body["eventType"].as_str().unwrap().to_owned();
    receiver.accepted.lock().unwrap().push((seq, kind));
    StatusCode::OK
}

/// Marathon's `callbackUrls` with Stride's delivery status beside them.
async fn subscriptions(server: &Server) -> Value {
    let get = |path: &'static str| async move {
        let value: Value = client()
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        value
    };
    let mut listed = get("/v2/eventSubscriptions").await;
    assert_eq!(
        listed.as_object().unwrap().len(),
        1,
        "Marathon's shape: {listed}"
    );
    listed["subscriptions"] = get("/v1/subscriptions").await["subscriptions"].clone();
    listed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_arrive_in_order_despite_failures_restarts_and_a_dead_peer() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--callback-max-backoff",
        "300ms",
        "--callback-timeout",
        "2s",
    ];
    let mut server = Server::start(dir.path(), &flags);
    let http = client();
    let (flaky, flaky_url) = Receiver::start(3).await;
    let dead_url = "http://127.0.0.1:1/dead";
    let subscribe = |url: String| {
        http.post(server.url("/v2/eventSubscriptions"))
            .query(&[("callbackUrl", url)])
            .send()
    };
    let first = subscribe(flaky_url.clone()).await.unwrap();
    assert_eq!(first.headers()["x-stride-seq"], "1");
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["eventType"], "subscribe_event");
    assert_eq!(first["callbackUrl"], flaky_url.as_str());
    assert!(
        first.get("seq").is_none(),
        "Marathon's subscribe_event: {first}"
    );
    assert_eq!(subscribe(dead_url.into()).await.unwrap().status(), 200);
    // Subscribing again changes nothing.
    assert_eq!(subscribe(flaky_url.clone()).await.unwrap().status(), 200);

    write_apps(&server, "hooked", 20, 4).await;
    wait_until(
        "the flaky endpoint has all 22 events",
        Duration::from_secs(30),
        || async { flaky.seqs().len() >= 22 },
    )
    .await;
    assert_eq!(flaky.seqs(), (1..=22).collect::<Vec<_>>());
    assert_eq!(flaky.accepted.lock().unwrap()[0].1, "subscribe_event");
    assert_eq!(flaky.refused.load(Ordering::SeqCst), 3, "it was retried");
    let listed = subscriptions(&server).await;
    assert_eq!(listed["callbackUrls"].as_array().unwrap().len(), 2);
    let dead = listed["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["callbackUrl"] == dead_url)
        .unwrap()
        .clone();
    assert_eq!(dead["subscribedAt"], 2);
    assert_eq!(dead["cursor"], 1, "nothing was delivered to the dead peer");
    assert!(dead["failures"].as_u64().unwrap() >= 1, "{dead}");
    assert!(
        dead["lastError"].as_str().unwrap().contains("seq 2"),
        "{dead}"
    );

    // After a crash, delivery resumes from the cursor: nothing is lost, and
    // anything repeated comes again in order.
    server.kill();
    let server = Server::start(dir.path(), &flags);
    write_apps(&server, "after", 4, 1).await;
    wait_until(
        "events after the restart",
        Duration::from_secs(30),
        || async { flaky.seqs().last() == Some(&26) },
    )
    .await;
    let seqs = flaky.seqs();
    let after_restart = &seqs[22..];
    assert!(
        after_restart.windows(2).all(|w| w[1] == w[0] + 1),
        "{seqs:?}"
    );
    assert!(after_restart[0] <= 23, "{seqs:?}");

    let http = client();
    let unsubscribed: Value = http
        .delete(server.url("/v2/eventSubscriptions"))
        .query(&[("callbackUrl", &flaky_url)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unsubscribed["eventType"], "unsubscribe_event");
    let listed = subscriptions(&server).await;
    assert_eq!(listed["callbackUrls"], serde_json::json!([dead_url]));
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_subscription_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let url = server.url("/v2/eventSubscriptions");
    assert_eq!(http.post(&url).send().await.unwrap().status(), 400);
    let ftp = http
        .post(&url)
        .query(&[("callbackUrl", "ftp://x/y")])
        .send()
        .await
        .unwrap();
    assert_eq!(ftp.status(), 422);
    let unknown = http
        .delete(&url)
        .query(&[("callbackUrl", "http://nobody/")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(support::all_events(&http, &server).await.len(), 0);
}
