//! The proof that "2xx" means "on stable storage": the server runs under
//! `strace -f`, and between the write of each event (sled's pwrite64) and
//! each 201 reply there is a completed fdatasync. sled's own flush only
//! calls sync_file_range, so without Stride's fdatasync this test fails.
//! Needs strace (`.ci/run` installs it).

mod common;

use common::{Server, app, client};

#[derive(Debug, PartialEq)]
enum Call {
    Pwrite,
    Fdatasync,
    Reply201,
}

/// Completed pwrite64/fdatasync calls and 201 reply writes, in trace order.
fn calls(trace: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    for line in trace.lines() {
        let completed = !line.contains("<unfinished");
        if line.contains("HTTP/1.1 201") {
            calls.push(Call::Reply201);
        } else if completed
            && (line.contains("pwrite64(") || line.contains("<... pwrite64 resumed"))
        {
            calls.push(Call::Pwrite);
        } else if completed
            && (line.contains("fdatasync(") || line.contains("<... fdatasync resumed"))
            && line.trim_end().ends_with("= 0")
        {
            calls.push(Call::Fdatasync);
        }
    }
    calls
}

/// Names of files under `blobs/` that an fdatasync completed on. Under
/// `strace -f` a call another thread interrupts is split in two lines
/// (`openat(... <unfinished ...>`, then `<... openat resumed> ... = fd`),
/// so the path is kept per pid until its result shows up.
fn blobs_synced(trace: &str) -> std::collections::HashSet<String> {
    let mut fds = std::collections::HashMap::new();
    let mut pending: std::collections::HashMap<String, String> = Default::default();
    let mut synced = std::collections::HashSet::new();
    for line in trace.lines() {
        let pid = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let result = line.rsplit("= ").next().unwrap_or_default().trim();
        if let Some(open) = line.split("openat(").nth(1) {
            let path = open.split('"').nth(1).unwrap_or_default();
            let Some(blob) = path.split("/blobs/").nth(1) else {
                continue;
            };
            if line.contains("<unfinished") {
                pending.insert(pid.clone(), blob.to_owned());
            } else if let Ok(fd) = result.parse::<i32>() {
                fds.insert(fd, blob.to_owned());
            }
        } else if line.contains("<... openat resumed") {
            if let (Some(blob), Ok(fd)) = (pending.remove(&pid), result.parse::<i32>()) {
                fds.insert(fd, blob);
            }
        } else if let Some(call) = line.split("fdatasync(").nth(1) {
            let fd = call.split(')').next().unwrap_or_default();
            let fd = fd.split_whitespace().next().unwrap_or_default();
            if let (Ok(fd), true) = (fd.parse::<i32>(), line.trim_end().ends_with("= 0")) {
                if let Some(blob) = fds.get(&fd) {
                    synced.insert(blob.clone());
                }
            }
        } else if line.contains("<... fdatasync resumed") && line.trim_end().ends_with("= 0") {
            // The fd is on the line that started the call, kept below.
            if let Some(blob) = pending.remove(&format!("sync:{pid}")) {
                synced.insert(blob);
            }
        }
        if let Some(call) = line.split("fdatasync(").nth(1) {
            if line.contains("<unfinished") {
                let fd = call
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap_or_default();
                if let Some(blob) = fd.parse::<i32>().ok().and_then(|fd| fds.get(&fd)) {
                    pending.insert(format!("sync:{pid}"), blob.clone());
                }
            }
        }
    }
    synced
}

#[tokio::test]
async fn every_201_follows_an_fdatasync_of_its_append() {
    let strace = std::process::Command::new("strace").arg("-V").output();
    assert!(
        strace.is_ok_and(|o| o.status.success()),
        "strace is required for this test: apt-get install -y strace"
    );
    let dir = tempfile::tempdir().unwrap();
    let trace_path = dir.path().join("trace");
    let data = dir.path().join("data");
    let trace_arg = trace_path.to_str().unwrap();
    let wrapper = [
        "strace",
        "-f",
        "-qq",
        "-s",
        "16",
        "-e",
        "trace=openat,pwrite64,fdatasync,fsync,sync_file_range,write,writev,sendto,sendmsg",
        "-o",
        trace_arg,
    ];
    let mut server = Server::start_wrapped(&data, &["--no-mesos"], &wrapper);
    let http = client();
    let requests = 20;
    let big_requests = 6;
    for i in 0..requests {
        let response = http
            .post(server.url("/v2/apps"))
            .json(&app(&format!("/durable/a{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    // A page over a quarter of sled's segment goes to its own blob file,
    // which sled writes without syncing: Stride must fdatasync it too.
    let env: serde_json::Map<String, serde_json::Value> = (0..40)
        .map(|i| (format!("VAR_{i}"), "x".repeat(4_000).into()))
        .collect();
    for i in 0..6 {
        let mut big = app(&format!("/durable/big{i}"));
        big["env"] = env.clone().into();
        let response = http
            .post(server.url("/v2/apps"))
            .json(&big)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let blobs: Vec<String> = std::fs::read_dir(data.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    // sled's background flush may have just written a blob for no ack in
    // particular; the next acknowledged write must have synced it.
    let last = http
        .post(server.url("/v2/apps"))
        .json(&app("/durable/last"))
        .send()
        .await
        .unwrap();
    assert_eq!(last.status(), 201);
    server.kill();
    let trace = std::fs::read_to_string(&trace_path).unwrap();
    assert!(
        !blobs.is_empty(),
        "large definitions should have made sled write blobs"
    );
    let synced = blobs_synced(&trace);
    for blob in &blobs {
        assert!(synced.contains(blob), "blob {blob} was never fdatasync'd");
    }
    let calls = calls(&trace);
    let replies = calls.iter().filter(|c| **c == Call::Reply201).count();
    assert_eq!(
        replies,
        requests + big_requests + 1,
        "every reply is in the trace"
    );
    // Walk the trace: after a pwrite, no reply may go out until an
    // fdatasync has completed; and every reply must have a pwrite since the
    // previous reply (its own append).
    let mut unsynced_write = false;
    let mut wrote_since_reply = false;
    for call in &calls {
        match call {
            Call::Pwrite => {
                unsynced_write = true;
                wrote_since_reply = true;
            }
            Call::Fdatasync => unsynced_write = false,
            Call::Reply201 => {
                assert!(
                    !unsynced_write,
                    "a 201 went out before its append was fdatasync'd"
                );
                assert!(wrote_since_reply, "a 201 went out with no append before it");
                wrote_since_reply = false;
            }
        }
    }
    let fdatasyncs = calls.iter().filter(|c| **c == Call::Fdatasync).count();
    let sync_file_ranges = trace.matches("sync_file_range(").count();
    println!("{requests} replies, {fdatasyncs} fdatasync, {sync_file_ranges} sync_file_range");
    assert!(fdatasyncs >= requests);
}
