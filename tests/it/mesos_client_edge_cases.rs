//! Failure modes of the scheduler driver, against a SCRIPTED fake master:
//! a tiny axum server that answers each SUBSCRIBE from a script. It exists
//! because neither the real Mesos master nor the embedded local cluster can
//! be made to produce these on demand: leader redirects, 503 while no
//! leader is elected, silent connections, ERROR events, torn or oversized
//! RecordIO frames and garbage JSON. Each must end in a clear error and a
//! recovery, never a panic.

use std::time::{Duration, Instant};

use crate::support::fake_master::{FakeMaster, Part, Reply};
use crate::support::wait_until;
use axum::http::StatusCode;
use reqwest::Url;
use serde_json::{Value, json};
use stride_mesos::recordio::{RecordIoError, encode_record};
use stride_mesos::types::{FrameworkId, TaskState};
use stride_mesos::{
    BackoffConfig, CallError, Scheduler, SchedulerConfig, SchedulerEvent, SchedulerHandle,
    SubscriptionError,
};
use tokio::sync::mpsc::Receiver;

const FRAMEWORK: &str = "fake-framework-0001";

fn record(event: Value) -> Part {
    Part::Bytes(encode_record(event.to_string().as_bytes()))
}

fn subscribed(heartbeat_seconds: f64) -> Part {
    record(json!({"type": "SUBSCRIBED", "subscribed": {
        "framework_id": {"value": FRAMEWORK}, "heartbeat_interval_seconds": heartbeat_seconds}}))
}

fn update(task: &str) -> Part {
    record(json!({"type": "UPDATE", "update": {"status": {
        "task_id": {"value": task}, "state": "TASK_RUNNING", "source": "SOURCE_EXECUTOR",
        "agent_id": {"value": "agent-S0"}, "uuid": "AAECAwQFBgcICQoLDA0ODw=="}}}))
}

fn config(masters: Vec<Url>) -> SchedulerConfig {
    let mut config = SchedulerConfig::new(masters, "edge-cases", "nobody");
    config.backoff = BackoffConfig {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
    };
    config.subscribe_timeout = Duration::from_secs(2);
    config
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("stride=debug")
        .try_init();
}

async fn next(events: &mut Receiver<SchedulerEvent>) -> SchedulerEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("no event within 5 s")
        .expect("driver stopped")
}

async fn expect_subscribed(events: &mut Receiver<SchedulerEvent>) -> (FrameworkId, Url) {
    match next(events).await {
        SchedulerEvent::Subscribed {
            framework_id,
            master,
            ..
        } => (framework_id, master),
        other => panic!("wanted Subscribed, got {other:?}"),
    }
}

async fn expect_disconnected(events: &mut Receiver<SchedulerEvent>) -> SubscriptionError {
    match next(events).await {
        SchedulerEvent::Disconnected { reason } => reason,
        other => panic!("wanted Disconnected, got {other:?}"),
    }
}

fn spawn(config: SchedulerConfig) -> (SchedulerHandle, Receiver<SchedulerEvent>) {
    Scheduler::spawn(config).expect("valid config")
}

#[tokio::test]
async fn follows_a_scheme_relative_redirect_to_the_leader_after_a_dead_master() {
    init_tracing();
    let leader = FakeMaster::start(vec![Reply::Stream(vec![subscribed(15.0), Part::Hang])]).await;
    let location = format!("//{}/api/v1/scheduler", leader.url.authority());
    let follower = FakeMaster::start(vec![Reply::Redirect(location)]).await;
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        Url::parse(&format!("http://{}", listener.local_addr().expect("addr"))).expect("URL")
    };
    let (handle, mut events) = spawn(config(vec![dead, follower.url.clone()]));
    let (framework_id, master) = expect_subscribed(&mut events).await;
    assert_eq!(framework_id.value, FRAMEWORK);
    assert_eq!(master, leader.endpoint());

    // Calls go to the leader, with the stream id; SUBSCRIBE never has one.
    handle.revive(vec![]).await.expect("REVIVE");
    let requests = leader.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body["type"], "SUBSCRIBE");
    assert_eq!(requests[0].stream_id, None);
    assert_eq!(requests[1].body["type"], "REVIVE");
    assert_eq!(requests[1].stream_id.as_deref(), Some("stream-1"));
    assert_eq!(requests[1].body["framework_id"]["value"], FRAMEWORK);
    assert_eq!(follower.subscribes()[0].stream_id, None);
    handle.shutdown().await;
}

#[tokio::test]
async fn retries_with_backoff_while_no_leader_is_elected() {
    init_tracing();
    let master = FakeMaster::start(vec![
        Reply::Unavailable,
        Reply::Unavailable,
        Reply::Stream(vec![subscribed(15.0), Part::Hang]),
    ])
    .await;
    let (handle, mut events) = spawn(config(vec![master.url.clone()]));
    for _ in 0..2 {
        let reason = expect_disconnected(&mut events).await;
        assert!(
            matches!(reason, SubscriptionError::NoLeader { .. }),
            "{reason}"
        );
    }
    expect_subscribed(&mut events).await;
    assert_eq!(master.subscribes().len(), 3);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_silent_connection_is_dropped_after_five_heartbeats_and_resubscribed() {
    init_tracing();
    let heartbeat = 0.1;
    let master = FakeMaster::start(vec![
        Reply::Stream(vec![subscribed(heartbeat), Part::Hang]),
        Reply::Stream(vec![
            subscribed(heartbeat),
            record(json!({"type": "HEARTBEAT"})),
            Part::Hang,
        ]),
    ])
    .await;
    let mut config = config(vec![master.url.clone()]);
    config.framework_id = Some(FrameworkId::new("from-a-previous-run"));
    let (handle, mut events) = spawn(config);
    expect_subscribed(&mut events).await;
    let subscribed_at = Instant::now();
    let reason = expect_disconnected(&mut events).await;
    let silent_for = subscribed_at.elapsed();
    assert!(
        matches!(reason, SubscriptionError::HeartbeatTimeout(d) if d == Duration::from_millis(500)),
        "{reason}"
    );
    assert!(
        silent_for >= Duration::from_millis(500) && silent_for < Duration::from_secs(3),
        "{silent_for:?}"
    );
    expect_subscribed(&mut events).await;

    // The first SUBSCRIBE reclaims the configured id; the second uses the
    // id the master assigned.
    let subscribes = master.subscribes();
    let ids: Vec<&Value> = subscribes
        .iter()
        .map(|r| &r.body["framework_id"]["value"])
        .collect();
    assert_eq!(ids, [&json!("from-a-previous-run"), &json!(FRAMEWORK)]);
    let info = &subscribes[1].body["subscribe"]["framework_info"];
    assert_eq!(info["id"]["value"], FRAMEWORK);
    assert_eq!(info["failover_timeout"], 604800.0);
    handle.shutdown().await;
}

#[tokio::test]
async fn an_error_event_ends_the_driver() {
    init_tracing();
    let error = json!({"type": "ERROR", "error": {"message": "Framework has been removed"}});
    let master = FakeMaster::start(vec![Reply::Stream(vec![
        subscribed(15.0),
        record(error),
        Part::Hang,
    ])])
    .await;
    let (handle, mut events) = spawn(config(vec![master.url.clone()]));
    expect_subscribed(&mut events).await;
    match next(&mut events).await {
        SchedulerEvent::Error(message) => assert_eq!(message, "Framework has been removed"),
        other => panic!("wanted Error, got {other:?}"),
    }
    let closed = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("channel closes");
    assert!(closed.is_none(), "no event after ERROR");
    assert_eq!(
        master.subscribes().len(),
        1,
        "no resubscription after ERROR"
    );
    let err = handle.suppress(vec![]).await.expect_err("driver stopped");
    assert!(matches!(err, CallError::NotSubscribed), "{err}");
}

/// One scripted stream that breaks after SUBSCRIBED, then a good one.
async fn breaks_then_recovers(broken: Vec<Part>, max_record_len: usize) -> SubscriptionError {
    init_tracing();
    let mut first = vec![subscribed(15.0)];
    first.extend(broken);
    let master = FakeMaster::start(vec![
        Reply::Stream(first),
        Reply::Stream(vec![subscribed(15.0), update("after-recovery"), Part::Hang]),
    ])
    .await;
    let mut config = config(vec![master.url.clone()]);
    config.max_record_len = max_record_len;
    let (handle, mut events) = spawn(config);
    expect_subscribed(&mut events).await;
    let reason = expect_disconnected(&mut events).await;
    expect_subscribed(&mut events).await;
    match next(&mut events).await {
        SchedulerEvent::Update(status) => assert_eq!(status.task_id.value, "after-recovery"),
        other => panic!("wanted Update, got {other:?}"),
    }
    handle.shutdown().await;
    reason
}

#[tokio::test]
async fn a_stream_torn_mid_record_is_reported_and_resubscribed() {
    let torn = Part::Bytes(b"120\n{\"type\":\"UPDATE\",\"upd".to_vec());
    let reason = breaks_then_recovers(vec![torn], 1024).await;
    assert!(
        matches!(
            reason,
            SubscriptionError::Framing(RecordIoError::Truncated { buffered: 21, .. })
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn an_oversized_record_is_refused_without_reading_it() {
    let huge = Part::Bytes(b"999999999\n{\"type\":".to_vec());
    let reason = breaks_then_recovers(vec![huge, Part::Hang], 1024).await;
    assert!(
        matches!(
            reason,
            SubscriptionError::Framing(RecordIoError::RecordTooLarge {
                length: 999_999_999,
                max: 1024
            })
        ),
        "{reason}"
    );
    assert!(
        reason.to_string().contains("over the 1024-byte limit"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_garbage_length_line_is_reported_and_resubscribed() {
    let garbage = Part::Bytes(b"4x2\n{\"type\":\"HEARTBEAT\"}".to_vec());
    let reason = breaks_then_recovers(vec![garbage, Part::Hang], 1024).await;
    assert!(
        matches!(
            reason,
            SubscriptionError::Framing(RecordIoError::InvalidLength { .. })
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn garbage_json_and_unknown_events_are_skipped_without_disconnecting() {
    init_tracing();
    let master = FakeMaster::start(vec![Reply::Stream(vec![
        subscribed(15.0),
        Part::Bytes(encode_record(b"{not json")),
        record(json!({"type": "UPDATE", "update": {}})),
        record(json!({"type": "INVERSE_OFFERS", "inverse_offers": {"inverse_offers": []}})),
        update("still-here"),
        Part::Hang,
    ])])
    .await;
    let (handle, mut events) = spawn(config(vec![master.url.clone()]));
    expect_subscribed(&mut events).await;
    match next(&mut events).await {
        SchedulerEvent::Update(status) => {
            assert_eq!(status.task_id.value, "still-here");
            assert_eq!(status.state, TaskState::Running);
            assert!(status.needs_acknowledgement());
            handle.acknowledge(&status).await.expect("ACKNOWLEDGE");
        }
        other => panic!("wanted the update after the garbage, got {other:?}"),
    }
    let ack = master
        .requests()
        .into_iter()
        .find(|r| r.body["type"] == "ACKNOWLEDGE")
        .expect("ACKNOWLEDGE sent");
    assert_eq!(ack.body["acknowledge"]["uuid"], "AAECAwQFBgcICQoLDA0ODw==");
    assert_eq!(ack.body["acknowledge"]["agent_id"]["value"], "agent-S0");
    assert_eq!(master.subscribes().len(), 1);
    handle.shutdown().await;
}

#[tokio::test]
async fn records_split_across_tiny_chunks_decode_as_captured() {
    init_tracing();
    let captured = include_bytes!("../../fixtures/mesos/subscribe-stream-first-records.recordio");
    let mut parts: Vec<Part> = captured
        .chunks(7)
        .map(|c| Part::Bytes(c.to_vec()))
        .collect();
    parts.push(Part::Hang);
    let master = FakeMaster::start(vec![Reply::Stream(parts)]).await;
    let (handle, mut events) = spawn(config(vec![master.url.clone()]));
    let (framework_id, _) = expect_subscribed(&mut events).await;
    assert_eq!(
        framework_id.value,
        "9a141452-b8f3-47bf-9016-17ea722098e9-0001"
    );
    match next(&mut events).await {
        SchedulerEvent::Offers(offers) => {
            assert_eq!(offers.len(), 1);
            assert_eq!(offers[0].hostname, "localhost");
        }
        other => panic!("wanted Offers, got {other:?}"),
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn rejected_calls_return_the_masters_reason() {
    init_tracing();
    let master = FakeMaster::start(vec![Reply::Stream(vec![subscribed(15.0), Part::Hang])]).await;
    let (handle, mut events) = spawn(config(vec![master.url.clone()]));
    let early = handle.reconcile(vec![]).await;
    expect_subscribed(&mut events).await;
    if let Err(err) = early {
        assert!(matches!(err, CallError::NotSubscribed), "{err}");
    }
    let message = "The stream ID 'x' included in this request didn't match";
    master.script.lock().expect("script").call_reply =
        Some((StatusCode::BAD_REQUEST, message.to_string()));
    let err = handle
        .kill(
            stride_mesos::types::TaskId::new("t"),
            None,
            Some(Duration::from_millis(1500)),
        )
        .await
        .expect_err("400");
    match err {
        CallError::Rejected {
            status,
            message: got,
            ..
        } => {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(got, message);
        }
        other => panic!("wanted Rejected, got {other}"),
    }
    let kill = master
        .requests()
        .into_iter()
        .find(|r| r.body["type"] == "KILL")
        .expect("KILL sent");
    assert_eq!(
        kill.body["kill"]["kill_policy"]["grace_period"]["nanoseconds"],
        1_500_000_000
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_consumer_that_stopped_reading() {
    init_tracing();
    // SUBSCRIBED fills the one-slot channel; the stream then closes, and
    // the driver blocks trying to report Disconnected.
    let master = FakeMaster::start(vec![Reply::Stream(vec![subscribed(15.0)])]).await;
    let mut config = config(vec![master.url.clone()]);
    config.event_buffer = 1;
    let (handle, events) = spawn(config);
    // Subscribed (SUBSCRIBED fills the channel), then the session is gone:
    // the stream ended and the driver is at its report of Disconnected,
    // which cannot go in.
    wait_until("the subscription to end", Duration::from_secs(10), || {
        let ended = events.len() == 1 && handle.framework_id().is_none();
        async move { ended }
    })
    .await;
    assert_eq!(master.subscribes().len(), 1, "blocked before resubscribing");
    tokio::time::timeout(Duration::from_secs(2), handle.shutdown())
        .await
        .expect("shutdown returns while the channel is full");
    drop(events);
}

/// Not scripted: the exact bytes a real master sent (HTTP/1.1 chunked
/// framing around RecordIO), replayed over a raw socket.
#[tokio::test]
async fn decodes_a_real_masters_raw_http_response() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    init_tracing();
    let raw = include_bytes!("../../fixtures/mesos/subscribe-wire-raw.txt");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = Url::parse(&format!("http://{}", listener.local_addr().expect("addr"))).expect("URL");
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut request = vec![0; 64 * 1024];
        let _ = socket.read(&mut request).await;
        socket.write_all(raw).await.expect("write");
        // Keep the connection (owned by this task) open, as a master does.
        futures::future::pending::<()>().await;
    });
    let (handle, mut events) = spawn(config(vec![url]));
    let (framework_id, _) = expect_subscribed(&mut events).await;
    assert_eq!(
        framework_id.value,
        "9a141452-b8f3-47bf-9016-17ea722098e9-0000"
    );
    match next(&mut events).await {
        SchedulerEvent::Offers(offers) => assert_eq!(offers[0].resources.len(), 4),
        other => panic!("wanted Offers, got {other:?}"),
    }
    handle.shutdown().await;
}
