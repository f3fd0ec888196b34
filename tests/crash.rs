//! Crash safety with the real binary: writers post while the server is
//! SIGKILLed at random moments; after every restart each acknowledged write
//! is present, seqs are dense, and `stride store verify` passes.
//!
//! Rounds default to 20; `scripts/crash-soak.sh` runs 1,000.

mod common;

use common::{Server, app, client, run_stride};
use rand::{Rng, SeedableRng};
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
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let http = client();
    let mut checker = Checker::default();
    for round in 0..rounds {
        let mut server = Server::start(dir.path(), &["--snapshot-every", "500"]);
        let known = acknowledged.lock().unwrap().clone();
        checker.check(&http, &server, &known, &mut rng).await;
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
                                acknowledged.lock().unwrap().push(id);
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
    }
    // After the last kill: everything, in full.
    let last = Server::start(dir.path(), &[]);
    let known = acknowledged.lock().unwrap().clone();
    checker.check(&http, &last, &known, &mut rng).await;
    let state: serde_json::Value = http
        .get(last.url("/v1/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["seq"].as_u64(), Some(checker.head));
    let apps = state["state"]["apps"].as_object().unwrap();
    for id in &known {
        assert!(apps.contains_key(id), "acknowledged {id} was lost");
    }
    drop(last);
    let (ok, stdout, stderr) = run_stride(&[
        "store",
        "verify",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(ok, "verify failed:\n{stdout}\n{stderr}");
    println!(
        "crash test: {rounds} rounds, {} acknowledged creates, {} events, verify ok",
        known.len(),
        checker.head
    );
}

/// Checks each restart incrementally, so a long soak stays linear: the new
/// part of the log is dense, every write acknowledged since the last check is
/// there, and so is a random sample of older ones (all of them at the end).
#[derive(Default)]
struct Checker {
    head: u64,
    verified: usize,
}

impl Checker {
    async fn check(
        &mut self,
        http: &reqwest::Client,
        server: &Server,
        acknowledged: &[String],
        rng: &mut rand::rngs::StdRng,
    ) {
        loop {
            let page: serde_json::Value = http
                .get(server.url(&format!("/v1/events?from={}&limit=10000", self.head + 1)))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let events = page["events"].as_array().unwrap();
            if events.is_empty() {
                assert_eq!(
                    page["head"].as_u64(),
                    Some(self.head),
                    "the head is the last event"
                );
                break;
            }
            for event in events {
                self.head += 1;
                assert_eq!(event["seq"].as_u64(), Some(self.head), "seqs are dense");
            }
        }
        let sample = (0..20.min(self.verified)).map(|_| rng.gen_range(0..self.verified));
        let to_check: Vec<&String> = acknowledged[self.verified..]
            .iter()
            .chain(sample.map(|i| &acknowledged[i]))
            .collect();
        for id in to_check {
            let response = http
                .get(server.url(&format!("/v2/apps{id}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "acknowledged {id} was lost");
        }
        self.verified = acknowledged.len();
    }
}
