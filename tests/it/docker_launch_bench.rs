//! Launch throughput of Docker tasks on the local cluster against the real
//! engine, with the baseline measured in the same run: `docker run -d
//! --network host` of the same image and command through the docker CLI,
//! as many at once as the cluster's launches overlap here. Ignored by
//! default (a measurement; it needs a quiet machine):
//!
//! `cargo test --release --test it -- --ignored --nocapture docker_launch_bench::`
//!
//! `STRIDE_BENCH_DOCKER_TASKS` sets the number of containers (default 100).

use crate::support::docker::{self, IMAGE};
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use stride_bench::launch::{Workload, benchmark_launches};

/// `docker run` CLI processes at once for the baseline.
const BASELINE_PARALLELISM: usize = 8;
const COMMAND: &str = "sleep 600";

fn tasks() -> usize {
    std::env::var("STRIDE_BENCH_DOCKER_TASKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
}

/// Containers per second that `docker run -d` starts, `parallelism` CLI
/// processes at a time; the containers are removed afterwards.
fn raw_docker_run_rate(count: usize, parallelism: usize) -> f64 {
    let socket = format!("unix://{}", docker::socket());
    let label = format!("stride-bench-baseline={}", std::process::id());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..parallelism {
            let (socket, label) = (&socket, &label);
            scope.spawn(move || {
                for _ in (worker..count).step_by(parallelism) {
                    let status = Command::new("docker")
                        .args(["-H", socket, "run", "-d", "--network", "host"])
                        .args(["--label", label, IMAGE, "/bin/sh", "-c", COMMAND])
                        .stdout(std::process::Stdio::null())
                        .status()
                        .expect("docker run");
                    assert!(status.success(), "docker run failed");
                }
            });
        }
    });
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let names = docker::containers(&label);
    let mut remove = vec!["rm", "-f"];
    remove.extend(names.iter().map(String::as_str));
    docker::docker(&remove);
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly with --ignored"]
async fn docker_tasks_reach_running() {
    let Some(socket) = docker::engine() else {
        return;
    };
    let count = tasks();
    let baseline =
        tokio::task::spawn_blocking(move || raw_docker_run_rate(count, BASELINE_PARALLELISM))
            .await
            .expect("baseline");
    println!(
        "docker run -d ({BASELINE_PARALLELISM} at once): {count} containers at {baseline:.1} containers/s"
    );
    let work_dir = tempfile::tempdir().expect("tempdir");
    let workload = Workload::Docker {
        image: IMAGE,
        command: COMMAND,
        socket: Path::new(&socket),
    };
    let result = benchmark_launches(count, workload, Some(work_dir.path().to_path_buf()))
        .await
        .expect("benchmark runs");
    println!(
        "local cluster: {} Docker tasks to TASK_RUNNING in {:.3} s: {:.1} launches/s ({:.0}% of docker run)",
        result.tasks,
        result.elapsed.as_secs_f64(),
        result.launches_per_second,
        100.0 * result.launches_per_second / baseline
    );
    assert_eq!(result.tasks, count);
    let left = docker::containers("stride.container");
    assert!(
        left.is_empty(),
        "the cluster's shutdown removes its containers: {left:?}"
    );
}
