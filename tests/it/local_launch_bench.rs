//! Launch throughput of the local cluster: 1,000 `sleep 60` tasks from one
//! ACCEPT to TASK_RUNNING, through Stride's Mesos client. Ignored by
//! default (it is a measurement, and it needs a quiet machine):
//!
//! `cargo test --release --test it -- --ignored --nocapture local_launch_bench::`
//!
//! It also prints the machine's raw spawn rate for the same processes,
//! measured right before, since the figure means little without it on a
//! shared host. Two commands: `sleep 60`, which the local cluster execs
//! directly as a plain command, and `sleep 60; true`, which needs `sh -c`
//! (dash then forks `sleep`: two processes per task).

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::time::Instant;

use stride_bench::launch::{Workload, benchmark_launches};

const TASKS: usize = 1000;
const SPAWN_THREADS: usize = 2;

/// `argv` started from plain threads as fast as possible, with no sandbox,
/// no API and no acknowledgements: the ceiling.
fn raw_spawn_rate(count: usize, argv: &'static [&'static str]) -> f64 {
    let started = Instant::now();
    let threads: Vec<_> = (0..SPAWN_THREADS)
        .map(|_| {
            std::thread::spawn(move || {
                (0..count / SPAWN_THREADS)
                    .map(|_| {
                        Command::new(argv[0])
                            .args(&argv[1..])
                            .stdin(Stdio::null())
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            // Like a task: killing the group also kills
                            // the `sleep` that `sh` forked.
                            .process_group(0)
                            .spawn()
                            .expect("spawn")
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let children: Vec<_> = threads
        .into_iter()
        .flat_map(|thread| thread.join().expect("spawner thread"))
        .collect();
    let rate = children.len() as f64 / started.elapsed().as_secs_f64();
    for mut child in children {
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        let _ = child.wait();
    }
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly with --ignored"]
async fn thousand_sleep_tasks_reach_running() {
    for (command, raw) in [
        ("sleep 60", &["/bin/sleep", "60"][..]),
        ("sleep 60; true", &["/bin/sh", "-c", "sleep 60; true"][..]),
    ] {
        let baseline = tokio::task::spawn_blocking(move || raw_spawn_rate(TASKS, raw))
            .await
            .expect("baseline");
        println!("{command:?}: raw spawn baseline {baseline:.0} processes/s");
        // Sandboxes on tmpfs (`STRIDE_BENCH_DIR=/dev/shm`) take disk I/O out
        // of the measurement.
        let parent = std::env::var("STRIDE_BENCH_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string());
        let work_dir = tempfile::tempdir_in(parent).expect("tempdir");
        let result = benchmark_launches(
            TASKS,
            Workload::Command(command),
            Some(work_dir.path().to_path_buf()),
        )
        .await
        .expect("benchmark runs");
        println!(
            "{command:?}: {} tasks to TASK_RUNNING in {:.3} s: {:.0} launches/s ({:.0}% of the raw spawn rate)",
            result.tasks,
            result.elapsed.as_secs_f64(),
            result.launches_per_second,
            100.0 * result.launches_per_second / baseline
        );
        assert_eq!(result.tasks, TASKS);
    }
}
