//! Launch throughput of the local cluster: 1,000 `sleep 60` tasks from one
//! ACCEPT to TASK_RUNNING, through Stride's Mesos client. Ignored by
//! default (it is a measurement, and it needs a quiet machine):
//!
//! `cargo test --release --test local_launch_bench -- --ignored --nocapture`

use stride::local::benchmark_launches;

const TASKS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly with --ignored"]
async fn thousand_sleep_tasks_reach_running() {
    let work_dir = tempfile::tempdir().expect("tempdir");
    let result = benchmark_launches(TASKS, "sleep 60", Some(work_dir.path().to_path_buf()))
        .await
        .expect("benchmark runs");
    println!(
        "{} tasks to TASK_RUNNING in {:.3} s: {:.0} launches/s",
        result.tasks,
        result.elapsed.as_secs_f64(),
        result.launches_per_second
    );
    assert_eq!(result.tasks, TASKS);
}
