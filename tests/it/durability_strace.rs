//! The proof that "2xx" means "on stable storage": the server runs under
//! `strace -f`, and before each 201 reply every file written since its last
//! fdatasync (sled's db, the watermark) has been fdatasync'd again, and the
//! watermark was synced for that reply's commit. sled's own flush only calls
//! sync_file_range, so without Stride's fdatasync this test fails. Large
//! definitions are split into bounded parts, so sled writes no blob file
//! (which it would neither sync nor open without a descriptor to spare).
//! Needs strace (`.ci/run` installs it).

use crate::support::real_parts;
use crate::support::{Server, app, client};
use std::collections::{HashMap, HashSet};

/// A completed system call of interest, in trace order.
#[derive(Debug, PartialEq)]
enum Call {
    Open {
        path: String,
        fd: i32,
    },
    Pwrite {
        fd: i32,
    },
    /// fdatasync, or fsync.
    Fdatasync {
        fd: i32,
    },
    Reply201,
}

/// The first argument of a call line (`name(5, ...` gives 5).
fn first_arg(line: &str, name: &str) -> Option<i32> {
    let args = line.split(&format!("{name}(")).nth(1)?;
    args.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Completed calls. Under `strace -f` a call another thread interrupts is
/// split in two lines (`name(args <unfinished ...>`, then `<... name
/// resumed> ...) = result`), so its start is kept per pid.
fn calls(trace: &str) -> Vec<Call> {
    let mut started: HashMap<String, String> = HashMap::new();
    let mut calls = Vec::new();
    for line in trace.lines() {
        if line.contains("HTTP/1.1 201") {
            calls.push(Call::Reply201);
            continue;
        }
        let pid = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        if line.contains("<unfinished") {
            started.insert(pid, line.to_owned());
            continue;
        }
        let whole = match line.contains(" resumed>") {
            true => format!("{}{line}", started.remove(&pid).unwrap_or_default()),
            false => line.to_owned(),
        };
        let result = whole.rsplit("= ").next().unwrap_or_default().trim();
        let Ok(result) = result
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .parse::<i64>()
        else {
            continue;
        };
        if result < 0 {
            continue;
        }
        if whole.contains("openat(") {
            let path = whole.split('"').nth(1).unwrap_or_default().to_owned();
            calls.push(Call::Open {
                path,
                fd: result as i32,
            });
        } else if let Some(fd) = first_arg(&whole, "pwrite64") {
            calls.push(Call::Pwrite { fd });
        } else if let Some(fd) = first_arg(&whole, "fdatasync").or(first_arg(&whole, "fsync")) {
            calls.push(Call::Fdatasync { fd });
        }
    }
    calls
}

#[tokio::test]
async fn every_201_follows_an_fdatasync_of_its_append_and_the_watermark() {
    if real_parts::program("strace", "strace").is_none() {
        return;
    }
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
    // Pages over a quarter of sled's segment would go to blob files.
    let env: serde_json::Map<String, serde_json::Value> = (0..40)
        .map(|i| (format!("VAR_{i}"), "x".repeat(4_000).into()))
        .collect();
    for i in 0..big_requests {
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
    let read_back: serde_json::Value = http
        .get(server.url("/v2/apps/durable/big3"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read_back["app"]["env"]["VAR_39"], env["VAR_39"]);
    server.kill();
    let blobs = std::fs::read_dir(data.join("blobs")).map_or(0, |d| d.count());
    assert_eq!(blobs, 0, "sled wrote blob files");
    let trace = std::fs::read_to_string(&trace_path).unwrap();
    let calls = calls(&trace);
    let replies = calls.iter().filter(|c| **c == Call::Reply201).count();
    assert_eq!(
        replies,
        requests + big_requests,
        "every reply is in the trace"
    );
    // Walk the trace: a reply may go out only when no file has writes since
    // its last fdatasync (through any descriptor of it), after a write to
    // the db since the previous reply (its own append) and a synced
    // watermark.
    let mut paths: HashMap<i32, String> = HashMap::new();
    let mut unsynced = HashSet::new();
    let mut appended = false;
    let mut marked = false;
    let mut watermarks = 0;
    for call in &calls {
        match call {
            Call::Open { path, fd } => {
                paths.insert(*fd, path.clone());
            }
            Call::Pwrite { fd } => {
                let path = paths.get(fd).cloned().unwrap_or_default();
                appended |= path.ends_with("/db");
                unsynced.insert(path);
            }
            Call::Fdatasync { fd } => {
                let path = paths.get(fd).cloned().unwrap_or_default();
                if path.ends_with("/watermark") {
                    marked = true;
                    watermarks += 1;
                }
                unsynced.remove(&path);
            }
            Call::Reply201 => {
                assert!(
                    unsynced.is_empty(),
                    "a 201 went out before fdatasync of {unsynced:?}"
                );
                assert!(appended, "a 201 went out with no append before it");
                assert!(marked, "a 201 went out before its watermark was synced");
                appended = false;
                marked = false;
            }
        }
    }
    assert!(watermarks >= replies);
    let fdatasyncs = calls
        .iter()
        .filter(|c| matches!(c, Call::Fdatasync { .. }))
        .count();
    let sync_file_ranges = trace.matches("sync_file_range(").count();
    println!("{replies} replies, {fdatasyncs} fdatasync, {sync_file_ranges} sync_file_range");
}
