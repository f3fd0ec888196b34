//! Launch throughput: how fast a local cluster takes N command tasks (or
//! Docker containers) from one ACCEPT to TASK_RUNNING, driven through
//! Stride's own Mesos client (every update acknowledged, as a real
//! framework does).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Url;

use stride_mesos::types::{
    CommandInfo, ContainerInfo, ContainerType, DockerInfo, DockerNetwork, Operation, Resource,
    TaskId, TaskInfo, TaskState,
};
use stride_mesos::{Scheduler, SchedulerConfig, SchedulerEvent};

use stride_local::{LocalCluster, LocalClusterConfig, LocalClusterError};

/// Per-task resources: small, so a thousand tasks fit one agent.
const TASK_CPUS: f64 = 0.01;
const TASK_MEM_MB: f64 = 1.0;
const BENCH_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
pub struct LaunchBenchmark {
    pub tasks: usize,
    /// From sending ACCEPT to receiving the last TASK_RUNNING.
    pub elapsed: Duration,
    pub launches_per_second: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchBenchmarkError {
    #[error(transparent)]
    Cluster(#[from] LocalClusterError),
    #[error("scheduler failed: {0}")]
    Scheduler(String),
    #[error("task {task_id} ended {state} before running: {message}")]
    TaskEnded {
        task_id: String,
        state: String,
        message: String,
    },
    #[error("only {running} of {tasks} tasks were running after {BENCH_TIMEOUT:?}")]
    Timeout { running: usize, tasks: usize },
}

/// What each task runs.
#[derive(Debug, Clone, Copy)]
pub enum Workload<'a> {
    /// A command task, e.g. `sleep 60`.
    Command(&'a str),
    /// `command` under `/bin/sh -c` in a container of `image` (host
    /// networking), on the engine at `socket`.
    Docker {
        image: &'a str,
        command: &'a str,
        socket: &'a Path,
    },
}

impl Workload<'_> {
    fn command(&self) -> &str {
        match self {
            Workload::Command(command) | Workload::Docker { command, .. } => command,
        }
    }

    fn container(&self) -> Option<ContainerInfo> {
        let Workload::Docker { image, .. } = self else {
            return None;
        };
        Some(ContainerInfo {
            kind: ContainerType::Docker,
            volumes: Vec::new(),
            hostname: None,
            docker: Some(DockerInfo {
                image: image.to_string(),
                network: Some(DockerNetwork::Host),
                port_mappings: Vec::new(),
                privileged: Some(false),
                parameters: Vec::new(),
                force_pull_image: Some(false),
            }),
            mesos: None,
            network_infos: Vec::new(),
        })
    }
}

/// Starts a local cluster sized for `tasks`, launches them all with one
/// ACCEPT running `workload`, and measures how long until all are
/// TASK_RUNNING. Sandboxes go under `work_dir` (temp dir if None).
pub async fn benchmark_launches(
    tasks: usize,
    workload: Workload<'_>,
    work_dir: Option<PathBuf>,
) -> Result<LaunchBenchmark, LaunchBenchmarkError> {
    let mut config = LocalClusterConfig {
        cpus: tasks as f64 * TASK_CPUS + 1.0,
        mem: tasks as f64 * TASK_MEM_MB + 64.0,
        work_dir,
        ..LocalClusterConfig::default()
    };
    if let Workload::Docker { socket, .. } = workload {
        config.docker_socket = socket.to_owned();
    }
    let cluster = LocalCluster::start(config).await?;
    let result = run_benchmark(&cluster, tasks, workload).await;
    cluster.shutdown().await;
    result
}

async fn run_benchmark(
    cluster: &LocalCluster,
    tasks: usize,
    workload: Workload<'_>,
) -> Result<LaunchBenchmark, LaunchBenchmarkError> {
    let scheduler_error =
        |e: &dyn std::fmt::Display| LaunchBenchmarkError::Scheduler(e.to_string());
    let master = Url::parse(&cluster.url()).map_err(|e| scheduler_error(&e))?;
    let config = SchedulerConfig::new(vec![master], "stride-launch-benchmark", "stride");
    let (handle, mut events) = Scheduler::spawn(config).map_err(|e| scheduler_error(&e))?;
    let deadline = tokio::time::Instant::now() + BENCH_TIMEOUT;
    let mut started: Option<Instant> = None;
    let mut running = 0;
    let outcome = loop {
        let event = match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => break Err(scheduler_error(&"event stream ended")),
            Err(_) => break Err(LaunchBenchmarkError::Timeout { running, tasks }),
        };
        match event {
            SchedulerEvent::Offers(offers) if started.is_none() => {
                let Some(offer) = offers.first() else {
                    continue;
                };
                let task_infos = (0..tasks)
                    .map(|index| TaskInfo {
                        name: format!("bench-{index}"),
                        task_id: TaskId::new(format!("bench-{index}")),
                        agent_id: offer.agent_id.clone(),
                        resources: vec![
                            Resource::scalar("cpus", TASK_CPUS),
                            Resource::scalar("mem", TASK_MEM_MB),
                        ],
                        command: Some(CommandInfo {
                            value: Some(workload.command().to_string()),
                            ..CommandInfo::default()
                        }),
                        container: workload.container(),
                        health_check: None,
                        kill_policy: None,
                        labels: None,
                        discovery: None,
                    })
                    .collect();
                started = Some(Instant::now());
                let accept = handle.accept(
                    vec![offer.id.clone()],
                    vec![Operation::launch(task_infos)],
                    None,
                );
                if let Err(error) = accept.await {
                    break Err(scheduler_error(&error));
                }
            }
            SchedulerEvent::Update(status) => {
                if status.needs_acknowledgement() {
                    let handle = handle.clone();
                    let acknowledged = status.clone();
                    tokio::spawn(async move {
                        if let Err(error) = handle.acknowledge(&acknowledged).await {
                            tracing::warn!(%error, "benchmark acknowledgement failed");
                        }
                    });
                }
                match status.state {
                    TaskState::Running => running += 1,
                    TaskState::Starting | TaskState::Staging => {}
                    ref other => {
                        break Err(LaunchBenchmarkError::TaskEnded {
                            task_id: status.task_id.value.clone(),
                            state: other.to_string(),
                            message: status.message.clone().unwrap_or_default(),
                        });
                    }
                }
                if running == tasks {
                    break Ok(());
                }
            }
            SchedulerEvent::Error(message) => break Err(scheduler_error(&message)),
            _ => {}
        }
    };
    handle.shutdown().await;
    outcome?;
    let elapsed = started.map_or(Duration::ZERO, |at| at.elapsed());
    Ok(LaunchBenchmark {
        tasks,
        elapsed,
        launches_per_second: tasks as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
    })
}
