//! What the server's threads ask of the kernel's scheduler (`stride_sched`),
//! read back from `/proc/PID/task/TID/sched`: the write path's threads (the
//! API runtime, the committer) ask for the shortest time slice, so that a
//! writer's acknowledgement does not wait at each handoff for the stream's
//! fan-out to finish a slice; the fan-out and the snapshots run 10 nice
//! levels lower at the default slice; a task of the embedded cluster runs
//! at the defaults, not with what its parent asked for.

use crate::support::real_parts::not_run;
use crate::support::{Server, app, client, send_ok, wait_until};
use std::collections::BTreeMap;
use std::time::Duration;

const PROMPT_SLICE_NS: u64 = 100_000;

/// A thread's or process's slice (ns) and nice, as the kernel reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sched {
    slice: u64,
    nice: i64,
}

fn sched(path: &str) -> Sched {
    let text = std::fs::read_to_string(format!("{path}/sched")).expect("a sched file");
    let field = |name: &str| -> i64 {
        text.lines()
            .find(|line| line.split(':').next().is_some_and(|key| key.trim() == name))
            .and_then(|line| line.split(':').nth(1))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {path}/sched"))
    };
    Sched {
        slice: field("se.slice") as u64,
        nice: field("prio") - 120,
    }
}

/// Each of `pid`'s threads by name (the kernel's 15 characters).
fn threads(pid: u32) -> BTreeMap<String, Vec<Sched>> {
    let mut threads: BTreeMap<String, Vec<Sched>> = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let path = task.expect("a task").path();
        let Ok(name) = std::fs::read_to_string(path.join("comm")) else {
            continue; // gone meanwhile
        };
        threads
            .entry(name.trim().to_owned())
            .or_default()
            .push(sched(&path.to_string_lossy()));
    }
    threads
}

/// The direct children of `pid` whose command line holds `marker`.
fn children_running(pid: u32, marker: &str) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("tasks")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|child| child.parse().ok())
                .collect::<Vec<u32>>()
        })
        .filter(|child| {
            std::fs::read(format!("/proc/{child}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains(marker))
        })
        .collect()
}

struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0 as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

/// Custom slices came with Linux 6.12; older kernels take and ignore them.
fn kernel_has_custom_slices() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    version >= (6, 12)
        && std::fs::read_to_string("/proc/self/sched").is_ok_and(|s| s.contains("se.slice"))
}

#[tokio::test]
async fn the_write_path_asks_for_short_slices_the_fan_out_steps_back_and_tasks_keep_the_defaults() {
    if !kernel_has_custom_slices() {
        return not_run("Linux 6.12 or later", "custom time slices (sched_setattr)");
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_mesos(dir.path(), &[]);
    let pid = server.child.id();
    let http = client();
    let mut sleeper = app("/sched/sleeper");
    sleeper["cmd"] = "sleep 7123".into();
    send_ok(
        &http,
        &server,
        reqwest::Method::POST,
        "/v2/apps",
        Some(sleeper),
    )
    .await;
    wait_until("the task's process", Duration::from_secs(30), || async {
        !children_running(pid, "7123").is_empty()
    })
    .await;

    let threads = threads(pid);
    let one = |name: &str| -> Vec<Sched> {
        threads
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no thread named {name} in {threads:?}"))
    };
    let main = one("stride")[0];
    assert_eq!(main.slice, PROMPT_SLICE_NS, "the main thread asks first");
    for name in ["stride-committe", "tokio-rt-worker", "stride-watermar"] {
        for thread in one(name) {
            assert_eq!(
                thread,
                Sched {
                    slice: PROMPT_SLICE_NS,
                    nice: main.nice
                },
                "{name}: on the write path"
            );
        }
    }
    let task_pid = children_running(pid, "7123")[0];
    // `Server::kill` kills the main thread's children; this one is a
    // worker thread's.
    let _task = KillOnDrop(task_pid);
    let task = sched(&format!("/proc/{task_pid}"));
    assert_ne!(
        task.slice, PROMPT_SLICE_NS,
        "a task runs at the default slice"
    );
    assert_eq!(task.nice, main.nice);
    for name in ["stride-stream", "stride-snapshot"] {
        for thread in one(name) {
            assert_eq!(
                thread,
                Sched {
                    slice: task.slice,
                    nice: (main.nice + 10).min(19)
                },
                "{name}: work nobody waits on"
            );
        }
    }
}
