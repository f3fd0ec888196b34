//! Callbacks cannot feed themselves: a callback URL that leads back to
//! Stride's own listener is a 422 naming `callbackUrl` (whatever spelling of
//! the address), and a loop through another host is held to
//! `--callback-max-rate` POSTs a second.

use crate::support;

use crate::support::{Server, all_events, app, client, wait_until};
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn port(server: &Server) -> u16 {
    server.url.rsplit(':').next().unwrap().parse().unwrap()
}

async fn subscribe(server: &Server, callback: &str) -> reqwest::Response {
    client()
        .post(server.url("/v2/eventSubscriptions"))
        .query(&[("callbackUrl", callback)])
        .send()
        .await
        .unwrap()
}

async fn assert_refused(server: &Server, callback: &str) {
    let response = subscribe(server, callback).await;
    assert_eq!(response.status(), 422, "{callback}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["details"][0]["path"], "/callbackUrl",
        "{callback}: {body}"
    );
}

async fn assert_accepted(server: &Server, callback: &str) {
    let response = subscribe(server, callback).await;
    assert_eq!(response.status(), 200, "{callback}");
}

/// The app a looping callback restarts.
async fn create_loop_app(server: &Server) {
    let created = client()
        .post(server.url("/v2/apps"))
        .json(&app("/loop"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
}

/// Starts a server listening on `listen`.
fn start_on(dir: &std::path::Path, listen: &str) -> Server {
    Server::start_on(dir, listen, &["--no-mesos"])
}

/// This host's IPv4 addresses other than loopback.
fn host_ipv4s() -> Vec<IpAddr> {
    nix::ifaddrs::getifaddrs()
        .unwrap()
        .filter_map(|i| i.address?.as_sockaddr_in().map(|a| IpAddr::V4(a.ip())))
        .filter(|ip| !ip.is_loopback())
        .collect()
}

#[tokio::test]
async fn callback_urls_that_lead_back_to_stride_are_a_422_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let p = port(&server);
    for host in [
        "127.0.0.1",
        "localhost",
        "0.0.0.0",
        "127.1",
        "[::ffff:127.0.0.1]",
        "LOCALHOST",
    ] {
        assert_refused(
            &server,
            &format!("http://{host}:{p}/v2/apps/loop/restart?force=true"),
        )
        .await;
    }
    assert!(
        all_events(&client(), &server).await.is_empty(),
        "nothing was subscribed"
    );
    // Same host, other port; or an address this listener does not take.
    assert_accepted(
        &server,
        &format!("http://127.0.0.1:{}/hook", p.wrapping_add(1).max(1)),
    )
    .await;
    assert_accepted(&server, &format!("http://127.0.0.2:{p}/hook")).await;
    assert_accepted(&server, &format!("http://[::1]:{p}/hook")).await;

    // Listening on every IPv4 address: the host's own addresses too.
    let wide_dir = tempfile::tempdir().unwrap();
    let wide = start_on(wide_dir.path(), "0.0.0.0:0");
    let p = port(&wide);
    for ip in host_ipv4s() {
        assert_refused(&wide, &format!("http://{ip}:{p}/hook")).await;
    }
    assert_refused(&wide, &format!("http://127.0.0.9:{p}/hook")).await;
    assert_refused(&wide, &format!("https://localhost:{p}/hook")).await;
    assert_accepted(&wide, &format!("http://[::1]:{p}/hook")).await;

    // Listening on [::] (dual-stack): IPv4 and IPv6 loopback alike.
    let dual_dir = tempfile::tempdir().unwrap();
    let dual = start_on(dual_dir.path(), "[::]:0");
    let p = port(&dual);
    assert_refused(&dual, &format!("http://[::1]:{p}/hook")).await;
    assert_refused(&dual, &format!("http://127.0.0.1:{p}/hook")).await;
}

/// An endpoint elsewhere that restarts an app in Stride on every callback:
/// a loop through another host, which no address check can see.
#[derive(Clone)]
struct Amplifier {
    stride: String,
    http: reqwest::Client,
    received: Arc<AtomicU64>,
}

async fn amplify(State(amplifier): State<Amplifier>) -> StatusCode {
    amplifier.received.fetch_add(1, Ordering::SeqCst);
    let _ = amplifier
        .http
        .post(format!(
            "{}/v2/apps/loop/restart?force=true",
            amplifier.stride
        ))
        .send()
        .await;
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_subscriber_drives_the_log_faster_than_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    let rate = 10;
    let server = Server::start(dir.path(), &["--callback-max-rate", &rate.to_string()]);
    let http = client();
    create_loop_app(&server).await;
    let amplifier = Amplifier {
        stride: server.url.clone(),
        http: client(),
        received: Arc::default(),
    };
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(amplify))
        .with_state(amplifier.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let started = Instant::now();
    assert_accepted(&server, &hook).await;
    // The loop has run for a few rounds: each callback appended events
    // that drove the next.
    let rounds = 3 * rate as u64;
    wait_until(
        &format!("{rounds} callbacks"),
        Duration::from_secs(60),
        || async { amplifier.received.load(Ordering::SeqCst) >= rounds },
    )
    .await;
    let events = all_events(&http, &server).await.len() as u64;
    let received = amplifier.received.load(Ordering::SeqCst);
    let elapsed = started.elapsed().as_secs_f64();
    // An upper bound only: a slow machine delivers fewer, never more.
    let most = (rate as f64 * elapsed).ceil() as u64 + 1;
    eprintln!("{received} callbacks and {events} events in {elapsed:.1} s at {rate}/s");
    assert!(
        received <= most,
        "{received} callbacks in {elapsed:.1} s, more than {rate}/s"
    );
    // Each callback appended one restart's events at most.
    assert!(
        events <= 5 * (received + 2),
        "{events} events for {received} callbacks"
    );
}

#[tokio::test]
async fn a_recorded_subscription_that_leads_back_after_a_restart_is_not_delivered() {
    let dir = tempfile::tempdir().unwrap();
    // A port no one else takes meanwhile (support::ports holds it).
    let held = support::ports::ports(1);
    let later = held.first();
    let loop_url = format!("http://127.0.0.1:{later}/v2/apps/loop/restart?force=true");
    let server = Server::start(dir.path(), &[]);
    let http = client();
    create_loop_app(&server).await;
    // Not this server's address yet: accepted.
    assert_accepted(&server, &loop_url).await;
    drop(server);

    // The same store served on the port the subscription names.
    let server = start_on(dir.path(), &format!("127.0.0.1:{later}"));
    let before = all_events(&http, &server).await.len();
    support::wait_until("the refusal to show", Duration::from_secs(30), || async {
        let list = support::get_json(&http, &server.url("/v1/subscriptions")).await;
        list["subscriptions"][0]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("this server"))
    })
    .await;
    // The refusal ends the delivery task before its first POST (so no
    // later POST can come): nothing delivered, nothing tried, the cursor
    // still before the subscription's own event, and no event appended.
    let list = support::get_json(&http, &server.url("/v1/subscriptions")).await;
    let status = &list["subscriptions"][0];
    assert_eq!(status["delivered"], 0, "{status}");
    assert_eq!(status["failedAttempts"], 0, "{status}");
    let subscribed_at = status["subscribedAt"].as_u64().expect("subscribedAt");
    assert_eq!(status["cursor"], subscribed_at - 1, "{status}");
    assert_eq!(
        all_events(&http, &server).await.len(),
        before,
        "the loop ran"
    );
}
