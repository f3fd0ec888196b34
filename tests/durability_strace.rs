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
        "trace=pwrite64,fdatasync,fsync,sync_file_range,write,writev,sendto,sendmsg",
        "-o",
        trace_arg,
    ];
    let mut server = Server::start_wrapped(&data, &[], &wrapper);
    let http = client();
    let requests = 20;
    for i in 0..requests {
        let response = http
            .post(server.url("/v2/apps"))
            .json(&app(&format!("/durable/a{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    server.kill();
    let trace = std::fs::read_to_string(&trace_path).unwrap();
    let calls = calls(&trace);
    let replies = calls.iter().filter(|c| **c == Call::Reply201).count();
    assert_eq!(replies, requests, "every reply is in the trace");
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
