//! `GET /v1/stream` against the real binary: every event exactly once, in
//! order, across disconnects, lag and concurrent writers.
//!
//! Sizes are configurable: STRIDE_TEST_SUBSCRIBERS and STRIDE_TEST_EVENTS
//! for the resume test (the full run is 100 and 50000),
//! STRIDE_TEST_STALL_EVENTS for the stalled-reader test.

use crate::support;

use crate::support::stream_client::{
    Received, env_or, read_until_caught_up, receive, subscribe, subscribe_small_window, write_apps,
    write_apps_padded,
};
use crate::support::{Server, app, client};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribers_that_drop_and_resume_at_random_get_every_event_once_in_order() {
    let subscribers = env_or("STRIDE_TEST_SUBSCRIBERS", 20);
    let events = env_or("STRIDE_TEST_EVENTS", 4_000);
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start(dir.path(), &[]));
    let final_head = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut readers = Vec::new();
    for id in 0..subscribers {
        let (server, final_head) = (server.clone(), final_head.clone());
        readers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(id);
            let mut last = 0u64;
            let mut reconnects = 0u64;
            loop {
                let mut ws = subscribe(&server, &format!("from={}", last + 1)).await;
                let budget = rng.gen_range(1..2_000);
                for _ in 0..budget {
                    match receive(&mut ws).await {
                        Received::Event(event) => {
                            let seq = event["seq"].as_u64().unwrap();
                            assert_eq!(seq, last + 1, "subscriber {id}: gap or duplicate");
                            last = seq;
                        }
                        Received::Progress { seq, head } => assert!(seq <= head),
                        other => panic!("subscriber {id}: unexpected {other:?}"),
                    }
                    let done = final_head.load(Ordering::SeqCst);
                    if done != 0 && last == done {
                        return reconnects;
                    }
                }
                // Leave abruptly half the time, politely otherwise.
                if rng.gen_bool(0.5) {
                    let _ = ws.close(None).await;
                }
                drop(ws);
                reconnects += 1;
                if rng.gen_bool(0.3) {
                    tokio::time::sleep(Duration::from_millis(rng.gen_range(1..50))).await;
                }
            }
        }));
    }
    let appended = write_apps(&server, "load", events, 16).await;
    let write_time = started.elapsed();
    final_head.store(appended, Ordering::SeqCst);
    let mut reconnects = 0;
    for reader in readers {
        reconnects += tokio::time::timeout(Duration::from_secs(120), reader)
            .await
            .expect("every subscriber finishes")
            .expect("subscriber");
    }
    println!(
        "{subscribers} subscribers, {appended} events in {write_time:.1?} ({:.0} events/s), \
         {reconnects} reconnects, all delivered after {:.1?}",
        appended as f64 / write_time.as_secs_f64(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_reader_catches_up_completely_while_a_fast_one_keeps_flowing() {
    // More than the broadcast keeps (16,384) plus what the stalled
    // socket's buffers hold (~500 of these 8 KiB events), so the server's
    // feed for it lags and must recover from the log.
    let events = env_or("STRIDE_TEST_STALL_EVENTS", 18_000);
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start(
        dir.path(),
        &["--stream-idle-timeout", "300s"],
    ));
    let mut slow = subscribe_small_window(&server, "from=1").await;
    let fast_server = server.clone();
    let fast = tokio::spawn(async move {
        let mut ws = subscribe(&fast_server, "from=1").await;
        let mut last = 0;
        let mut lag_max = Duration::ZERO;
        while last < events {
            if let Received::Event(event) = receive(&mut ws).await {
                let seq = event["seq"].as_u64().unwrap();
                assert_eq!(seq, last + 1);
                last = seq;
                let at =
                    chrono::DateTime::parse_from_rfc3339(event["at"].as_str().unwrap()).unwrap();
                let lag = chrono::Utc::now().signed_duration_since(at);
                lag_max = lag_max.max(lag.to_std().unwrap_or_default());
            }
        }
        lag_max
    });
    let started = Instant::now();
    let appended = write_apps_padded(&server, "stall", events, 16, 8192).await;
    let write_time = started.elapsed();
    let fast_lag = fast.await.unwrap();
    let fast_done = started.elapsed();
    // Only now does the slow reader read anything.
    let mut last = 0;
    while last < appended {
        if let Received::Event(event) = receive(&mut slow).await {
            let seq = event["seq"].as_u64().unwrap();
            assert_eq!(seq, last + 1, "the stalled reader skipped or repeated");
            last = seq;
        }
    }
    println!(
        "{appended} events written in {write_time:.1?}; fast reader done at {fast_done:.1?} \
         (worst append-to-receipt {fast_lag:.1?}); stalled reader caught up {:.1?} after it \
         started reading",
        started.elapsed() - fast_done
    );
}

#[tokio::test]
async fn filters_select_by_type_app_prefix_and_task() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    for id in [
        "/prod/a",
        "/prod/b",
        "/prod/c",
        "/production/x",
        "/production/y",
    ] {
        let created = http
            .post(server.url("/v2/apps"))
            .json(&app(id))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let deleted = http
        .delete(server.url("/v2/apps/prod/b?force=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);

    let mut ws = subscribe(&server, "from=1&app=/prod/&type=AppCreated").await;
    let events = read_until_caught_up(&mut ws).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e["type"] == "AppCreated" && e["app"].as_str().unwrap().starts_with("/prod/"))
    );

    let mut ws = subscribe(&server, "from=1&type=AppCreated&type=DeploymentPlanned").await;
    assert_eq!(read_until_caught_up(&mut ws).await.len(), 11);

    let mut ws = subscribe(&server, "from=1&app=/prod/b").await;
    let types: Vec<_> = read_until_caught_up(&mut ws)
        .await
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    // The forced delete first fails the create's deployment.
    assert_eq!(
        types,
        [
            "AppCreated",
            "DeploymentPlanned",
            "DeploymentFailed",
            "AppDeleted",
            "DeploymentPlanned"
        ]
    );

    let mut ws = subscribe(&server, "from=1&task=nosuch.task").await;
    assert!(read_until_caught_up(&mut ws).await.is_empty());
}

#[tokio::test]
async fn from_now_and_resume_after_a_filtered_progress() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--stream-progress-interval", "200ms"]);
    write_apps(&server, "old", 4, 1).await;
    let mut ws = subscribe(&server, "from=now").await;
    assert!(read_until_caught_up(&mut ws).await.is_empty());
    write_apps(&server, "new", 2, 1).await;
    match receive(&mut ws).await {
        Received::Event(e) => assert_eq!(e["seq"], 5),
        other => panic!("{other:?}"),
    }
    // A filter matching nothing still learns how far it has seen.
    let mut ws = subscribe(&server, "from=1&type=AppDeleted").await;
    loop {
        match receive(&mut ws).await {
            Received::Progress { seq: 6, .. } => break,
            Received::Progress { .. } => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn the_events_cli_prints_the_log_and_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    write_apps(&server, "cli", 6, 1).await;
    let (ok, out, err) =
        support::run_stride(&["events", "--from", "2", "--json", "--stride", &server.url]);
    assert!(ok, "{err}");
    let seqs: Vec<u64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [2, 3, 4, 5, 6]);
    let (ok, out, err) = support::run_stride(&[
        "events",
        "--type",
        "AppCreated",
        "--app",
        "/cli/",
        "--stride",
        &server.url,
    ]);
    assert!(ok, "{err}");
    assert!(out.starts_with("     SEQ"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains("AppCreated")).count(),
        3,
        "{out}"
    );
    let (ok, _, err) = support::run_stride(&["events", "--from", "99", "--stride", &server.url]);
    assert!(!ok);
    assert!(err.contains("beyond the head"), "{err}");

    let mut follower = std::process::Command::new(support::BIN)
        .args([
            "events",
            "--from",
            "7",
            "--follow",
            "--json",
            "--stride",
            &server.url,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .take(4)
            .map(|l| l.unwrap())
            .collect::<Vec<_>>()
    });
    write_apps(&server, "later", 4, 1).await;
    let lines = lines.join().unwrap();
    follower.kill().unwrap();
    let _ = follower.wait();
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [7, 8, 9, 10]);
}
