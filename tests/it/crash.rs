//! Crash safety with the real binary: writers post while the server is
//! SIGKILLed at random moments; after every restart each acknowledged write
//! is present, seqs are dense, and `stride store verify` passes.
//!
//! Rounds default to 20; `scripts/crash-soak.sh` runs 1,000.

use crate::support::{Server, app, client, run_stride};
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WRITERS: usize = 8;
/// Every this many creates, the app is kept; the others are deleted again,
/// so a 1,000-round soak keeps a small state (and stays within the 10,001
/// service ports) while every round both creates and deletes.
const KEEP_EVERY: u64 = 50;

/// What the server acknowledged: creates, and deletes of those ids.
#[derive(Default, Clone)]
struct Acknowledged {
    creates: Vec<String>,
    deletes: Vec<String>,
}

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
    let acknowledged: Arc<Mutex<Acknowledged>> = Arc::default();
    let http = client();
    let mut checker = Checker::default();
    for round in 0..rounds {
        let mut server = Server::start(dir.path(), &["--snapshot-every", "500"]);
        let known = acknowledged.lock().unwrap().clone();
        checker.check(&http, &server, &known, &mut rng).await;
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let http = http.clone();
                let base = server.url("/v2/apps");
                let acknowledged = acknowledged.clone();
                tokio::spawn(async move {
                    for n in 0.. {
                        let id = format!("/crash/r{round}-w{w}-{n}");
                        let mut body = app(&id);
                        body["portDefinitions"] = serde_json::json!([]);
                        let mut request = http.post(&base).json(&body);
                        if n % 3 == 0 {
                            request = request.header("Idempotency-Key", id.clone());
                        }
                        let Some(()) = expect(request, 201, &id).await else {
                            return; // the server was killed
                        };
                        acknowledged.lock().unwrap().creates.push(id.clone());
                        if n % KEEP_EVERY == 0 {
                            continue;
                        }
                        // Its create deployment never ends without Mesos.
                        let request = http.delete(format!("{base}{id}?force=true"));
                        let Some(()) = expect(request, 200, &id).await else {
                            return;
                        };
                        acknowledged.lock().unwrap().deletes.push(id);
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
    let deleted: HashSet<&String> = known.deletes.iter().collect();
    for id in &known.creates {
        if deleted.contains(id) {
            assert!(
                !apps.contains_key(id),
                "acknowledged delete of {id} was lost"
            );
        } else {
            // A delete the kill cut off before its reply may have landed.
            assert!(
                apps.contains_key(id) || checker.deleted.contains(id),
                "acknowledged create of {id} was lost"
            );
        }
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
        "crash test: {rounds} rounds, {} acknowledged creates, {} acknowledged deletes, {} events, verify ok",
        known.creates.len(),
        known.deletes.len(),
        checker.head
    );
}

/// Sends `request`: `None` when the server is gone (it was killed), and a
/// panic on any answer but `status`.
async fn expect(request: reqwest::RequestBuilder, status: u16, id: &str) -> Option<()> {
    let response = request.send().await.ok()?;
    if response.status() != status {
        let got = response.status();
        let body = response.text().await.unwrap_or_default();
        panic!("unexpected status {got} for {id}: {body}");
    }
    Some(())
}

/// Checks each restart incrementally, so a long soak stays linear: the new
/// part of the log is dense and holds every write acknowledged since the
/// last check, and a random sample of older creates is still found through
/// the audit index (all acknowledged writes are checked in full at the end).
#[derive(Default)]
struct Checker {
    head: u64,
    created: HashSet<String>,
    deleted: HashSet<String>,
    verified_creates: usize,
    verified_deletes: usize,
}

impl Checker {
    async fn check(
        &mut self,
        http: &reqwest::Client,
        server: &Server,
        acknowledged: &Acknowledged,
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
                let app = event["app"].as_str().unwrap_or_default().to_string();
                match event["type"].as_str() {
                    Some("AppCreated") => self.created.insert(app),
                    Some("AppDeleted") => self.deleted.insert(app),
                    _ => false,
                };
            }
        }
        for id in &acknowledged.creates[self.verified_creates..] {
            assert!(
                self.created.contains(id),
                "acknowledged create of {id} was lost"
            );
        }
        for id in &acknowledged.deletes[self.verified_deletes..] {
            assert!(
                self.deleted.contains(id),
                "acknowledged delete of {id} was lost"
            );
        }
        for _ in 0..20.min(self.verified_creates) {
            let id = &acknowledged.creates[rng.gen_range(0..self.verified_creates)];
            let found: serde_json::Value = http
                .get(server.url(&format!("/v1/audit?app={id}&type=AppCreated")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let events = found["events"].as_array().unwrap();
            assert_eq!(events.len(), 1, "the create of {id} is no longer found");
        }
        self.verified_creates = acknowledged.creates.len();
        self.verified_deletes = acknowledged.deletes.len();
    }
}
