//! Running out of file descriptors (EMFILE) must never end the process or
//! lose a write: the commit path opens none (the descriptors it needs are
//! opened at start). The server's limit is lowered with `prlimit` (util-linux)
//! to exactly the descriptors it holds, while a kept-alive connection still
//! lets requests in; every commit then runs with none to spare.

use crate::support::{Server, app, run_stride};
use std::time::Duration;

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Sets the soft limit (the hard one cannot be raised back unprivileged).
fn set_descriptor_limit(pid: u32, limit: usize) {
    let output = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:"))
        .output()
        .expect("prlimit (util-linux) is required for this test");
    assert!(
        output.status.success(),
        "prlimit failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One connection, kept alive: it was accepted before the limit came down.
fn one_connection() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(None)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test]
async fn commits_succeed_with_no_descriptor_to_spare_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let pid = server.child.id();
    let http = one_connection();
    let created = http
        .post(server.url("/v2/apps"))
        .json(&app("/before"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // Large definitions too: they must not make sled open a blob file.
    let mut big = app("/big");
    big["env"] = (0..40)
        .map(|i| (format!("VAR_{i}"), "x".repeat(4_000).into()))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let held = open_descriptors(pid);
    set_descriptor_limit(pid, held);
    let mut acknowledged = vec!["/before".to_owned()];
    for i in 0..20 {
        let id = format!("/starved/a{i}");
        let mut definition = if i % 5 == 0 { big.clone() } else { app("") };
        definition["id"] = id.clone().into();
        let response = http
            .post(server.url("/v2/apps"))
            .header("Idempotency-Key", format!("starved-{i}"))
            .json(&definition)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{id}: the server went away: {e}"));
        assert_eq!(
            response.status(),
            201,
            "{id}: {}",
            response.text().await.unwrap()
        );
        acknowledged.push(id);
    }
    // A retry reads its idempotency record; a scale reads the state.
    let retry = http
        .post(server.url("/v2/apps"))
        .header("Idempotency-Key", "starved-1")
        .json(&{
            let mut d = app("");
            d["id"] = "/starved/a1".into();
            d
        })
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 201);
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server ended while descriptors were exhausted"
    );
    assert_eq!(
        open_descriptors(pid),
        held,
        "the commit path opened a descriptor"
    );
    set_descriptor_limit(pid, 1024);
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.kill();
    let data_dir = dir.path().to_str().unwrap();
    let (ok, stdout, stderr) = run_stride(&["store", "verify", "--data-dir", data_dir]);
    assert!(ok, "{stdout}{stderr}");
    let (ok, exported, stderr) = run_stride(&["store", "export", "--data-dir", data_dir]);
    assert!(ok, "{stderr}");
    for id in &acknowledged {
        let needle = format!("\"app\":\"{id}\"");
        assert!(
            exported.contains(&needle),
            "{id} was acknowledged but is lost"
        );
    }
    let blobs = std::fs::read_dir(dir.path().join("blobs"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(blobs, 0, "sled wrote blob files");
}
