//! The proof that "2xx" means "on stable storage": the server runs under
//! `strace -f`, and before each 201 reply every file written since its last
//! fdatasync (sled's db, the watermark) has been fdatasync'd again, and the
//! watermark was synced for that reply's commit. sled's own flush only calls
//! sync_file_range, so without Stride's fdatasync this test fails. Large
//! definitions are split into bounded parts, so sled writes no blob file
//! (which it would neither sync nor open without a descriptor to spare).
//! Snapshots are written to files of their own and synced by the snapshot
//! thread, never by the thread that syncs sled's db before replies.
//! Needs strace (`.ci/run` installs it).

use crate::support::real_parts;
use crate::support::{Server, app, client};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

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
    /// write(2), as std's `File` writes.
    Write {
        fd: i32,
    },
    Close {
        fd: i32,
    },
    Rename {
        to: String,
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

/// Completed calls, each with the thread that made it. Under `strace -f`
/// a call another thread interrupts is split in two lines (`name(args
/// <unfinished ...>`, then `<... name resumed> ...) = result`), so its
/// start is kept per pid.
fn calls(trace: &str) -> Vec<(String, Call)> {
    let mut started: HashMap<String, String> = HashMap::new();
    let mut calls = Vec::new();
    for line in trace.lines() {
        let pid = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        if line.contains("HTTP/1.1 201") {
            calls.push((pid, Call::Reply201));
            continue;
        }
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
        let call = if whole.contains("openat(") {
            let path = whole.split('"').nth(1).unwrap_or_default().to_owned();
            Call::Open {
                path,
                fd: result as i32,
            }
        } else if whole
            .split_whitespace()
            .nth(1)
            .is_some_and(|call| call.starts_with("rename"))
        {
            // The last quoted argument is where it went.
            let to = whole.rsplit('"').nth(1).unwrap_or_default().to_owned();
            Call::Rename { to }
        } else if let Some(fd) = first_arg(&whole, "pwrite64") {
            Call::Pwrite { fd }
        } else if let Some(fd) = first_arg(&whole, "write") {
            Call::Write { fd }
        } else if let Some(fd) = first_arg(&whole, "close") {
            Call::Close { fd }
        } else if let Some(fd) = first_arg(&whole, "fdatasync").or(first_arg(&whole, "fsync")) {
            Call::Fdatasync { fd }
        } else {
            continue;
        };
        calls.push((pid, call));
    }
    calls
}

/// `stride serve --no-mesos` and `extra` under strace, which follows its
/// threads and traces `calls`, in a temp dir of its own.
struct Traced {
    dir: tempfile::TempDir,
    server: Server,
}

impl Traced {
    fn start(calls: &str, extra: &[&str]) -> Traced {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace");
        let strace = ["strace", "-f", "-qq", "-s", "16", "-e", calls, "-o"];
        let wrapper = [&strace[..], &[trace.to_str().unwrap()]].concat();
        let args = [&["--no-mesos"][..], extra].concat();
        let server = Server::start_wrapped(&dir.path().join("data"), &args, &wrapper);
        Traced { dir, server }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Kills the server; what strace wrote.
    fn finish(&mut self) -> String {
        self.server.kill();
        std::fs::read_to_string(self.dir.path().join("trace")).unwrap()
    }
}

#[tokio::test]
async fn every_201_follows_an_fdatasync_of_its_append_and_the_watermark() {
    if real_parts::program("strace", "strace").is_none() {
        return;
    }
    let mut traced = Traced::start(
        "trace=openat,close,pwrite64,fdatasync,fsync,sync_file_range,write,writev,sendto,sendmsg",
        &[],
    );
    let server = &traced.server;
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
    let trace = traced.finish();
    let blobs = std::fs::read_dir(traced.data().join("blobs")).map_or(0, |d| d.count());
    assert_eq!(blobs, 0, "sled wrote blob files");
    let calls: Vec<Call> = calls(&trace).into_iter().map(|(_, call)| call).collect();
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
            Call::Close { fd } => {
                paths.remove(fd);
            }
            Call::Write { .. } | Call::Rename { .. } => {}
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

/// A snapshot is written into a file of its own, fdatasync'd before it is
/// renamed into place, all by one thread that never fdatasyncs sled's db;
/// the thread that does (the committer's sync thread, before each reply)
/// never writes a snapshot. Without the snapshot files (snapshots in sled,
/// as before store format 4), the committer's fdatasync carried them.
#[tokio::test]
async fn snapshots_are_written_and_synced_by_their_own_thread_not_the_committers() {
    if real_parts::program("strace", "strace").is_none() {
        return;
    }
    let mut traced = Traced::start(
        "trace=openat,close,write,pwrite64,fdatasync,fsync,rename,renameat,renameat2",
        &["--snapshot-every", "10"],
    );
    let server = &traced.server;
    let http = client();
    for i in 0..30 {
        let response = http
            .post(server.url("/v2/apps"))
            .json(&app(&format!("/snap/a{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let snapshots = traced.data().join("snapshots");
    crate::support::wait_until(
        "a snapshot file",
        std::time::Duration::from_secs(30),
        || async { std::fs::read_dir(&snapshots).is_ok_and(|mut d| d.next().is_some()) },
    )
    .await;
    let trace = traced.finish();
    let mut paths: HashMap<i32, String> = HashMap::new();
    // Per snapshot file: the threads that wrote it, whether it was synced
    // before its rename.
    let mut writers: HashMap<String, HashSet<String>> = HashMap::new();
    let mut synced: HashSet<String> = HashSet::new();
    let mut renamed = 0;
    let mut db_syncers = HashSet::new();
    for (pid, call) in calls(&trace) {
        let path_of = |fd: &i32| paths.get(fd).cloned().unwrap_or_default();
        match call {
            Call::Open { path, fd } => {
                paths.insert(fd, path);
            }
            Call::Close { fd } => {
                paths.remove(&fd);
            }
            Call::Write { fd } | Call::Pwrite { fd } => {
                let path = path_of(&fd);
                if path.contains("/snapshots/") {
                    writers.entry(path).or_default().insert(pid);
                }
            }
            Call::Fdatasync { fd } => {
                let path = path_of(&fd);
                if path.ends_with("/db") {
                    db_syncers.insert(pid);
                } else if path.contains("/snapshots/") {
                    assert!(
                        writers.get(&path).is_some_and(|w| w.contains(&pid)),
                        "{path} was synced by {pid}, not the thread that wrote it"
                    );
                    synced.insert(path);
                }
            }
            Call::Rename { to } if to.contains("/snapshots/snap-") => {
                let from = format!("{to}.partial");
                assert!(
                    synced.contains(&from),
                    "{to} was renamed into place unsynced"
                );
                renamed += 1;
            }
            Call::Rename { .. } | Call::Reply201 => {}
        }
    }
    assert!(
        renamed >= 1 && !writers.is_empty(),
        "no snapshot file was written"
    );
    assert!(!db_syncers.is_empty(), "nobody synced sled's db");
    for (path, threads) in &writers {
        assert_eq!(threads.len(), 1, "{path} was written by {threads:?}");
        assert!(
            threads.is_disjoint(&db_syncers),
            "{path} was written by {threads:?}, which also sync sled's db"
        );
    }
}
