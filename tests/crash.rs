//! Crash safety with the real binary: writers post while the server is
//! SIGKILLed at random moments; after every restart each acknowledged write
//! is present, seqs are dense, and `stride store verify` passes.
//!
//! Rounds default to 20; `scripts/crash-soak.sh` runs 1,000.

mod common;

use common::{Server, all_events, app, client, run_stride};
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WRITERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_never_loses_an_acknowledged_write() {
    let rounds: usize = std::env::var("STRIDE_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("STRIDE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test: {rounds} rounds, seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let acknowledged: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let http = client();
    let mut total_events = 0;
    for round in 0..rounds {
        let mut server = Server::start(dir.path(), &["--snapshot-every", "50"]);
        let known = acknowledged.lock().unwrap().clone();
        check_after_restart(&http, &server, &known).await;
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let http = http.clone();
                let url = server.url("/v2/apps");
                let acknowledged = acknowledged.clone();
                tokio::spawn(async move {
                    for n in 0.. {
                        let id = format!("/crash/r{round}-w{w}-{n}");
                        let mut request = http.post(&url).json(&app(&id));
                        if n % 3 == 0 {
                            request = request.header("Idempotency-Key", id.clone());
                        }
                        match request.send().await {
                            Ok(r) if r.status() == 201 => {
                                acknowledged.lock().unwrap().insert(id);
                            }
                            Ok(r) => panic!("unexpected status {} for {id}", r.status()),
                            Err(_) => return, // the server was killed
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(20..400))).await;
        server.kill();
        for writer in writers {
            writer.await.unwrap();
        }
        let after = Server::start(dir.path(), &[]);
        let known = acknowledged.lock().unwrap().clone();
        total_events = check_after_restart(&http, &after, &known).await;
        drop(after);
    }
    let (ok, stdout, stderr) = run_stride(&[
        "store",
        "verify",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(ok, "verify failed:\n{stdout}\n{stderr}");
    println!(
        "crash test: {rounds} rounds, {} acknowledged creates, {total_events} events, verify ok",
        acknowledged.lock().unwrap().len()
    );
}

/// Every acknowledged app exists and seqs are dense from 1; returns the head.
async fn check_after_restart(
    http: &reqwest::Client,
    server: &Server,
    acknowledged: &BTreeSet<String>,
) -> usize {
    let events = all_events(http, server).await;
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["seq"].as_u64(), Some(i as u64 + 1), "seqs are dense");
    }
    let state: serde_json::Value = http
        .get(server.url("/v1/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["seq"].as_u64(), Some(events.len() as u64));
    let apps = state["state"]["apps"].as_object().unwrap();
    for id in acknowledged {
        assert!(apps.contains_key(id), "acknowledged {id} was lost");
    }
    events.len()
}
