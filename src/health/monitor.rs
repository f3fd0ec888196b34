//! The health monitor: one probe loop per running task and Stride-run
//! check, started and stopped as the projection changes. It only reads the
//! projection and submits commands; Mesos is the reconciler's to call.

use super::HealthError;
use super::probe::{self, Target};
use super::results::HealthResults;
use super::rules::{Policy, Recorded, target_port};
use crate::command::{Command, Committer, SubmitError};
use crate::event::app::{AppDefinition, HealthCheck, HealthCheckProtocol};
use crate::event::{Actor, TaskId};
use crate::mesos::condition::Condition;
use crate::projection::{Projection, State, Task};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The checks Stride runs itself; the rest go to Mesos in the TaskInfo.
pub fn run_by_stride(protocol: HealthCheckProtocol) -> bool {
    matches!(
        protocol,
        HealthCheckProtocol::Http | HealthCheckProtocol::Https | HealthCheckProtocol::Tcp
    )
}

pub struct HealthMonitor {
    shared: Arc<Shared>,
}

/// What every probe loop reaches.
struct Shared {
    projection: Arc<Projection>,
    committer: Committer,
    results: HealthResults,
    client: reqwest::Client,
}

/// One check of one task, as a probe loop runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Probe {
    task: TaskId,
    /// The check's index in the app's `healthChecks`.
    index: usize,
    /// Why there is nothing to probe: the task lacks the check's port.
    target: Result<Target, String>,
    policy: Policy,
    /// When probing starts (unix µs): `delaySeconds` after the task started.
    first_at: u64,
    interval: Duration,
    /// How many Stride-run checks the task has, for its verdict.
    checks: usize,
}

impl HealthMonitor {
    pub fn new(
        projection: Arc<Projection>,
        committer: Committer,
        results: HealthResults,
    ) -> Result<HealthMonitor, HealthError> {
        let client = probe::client(false).map_err(HealthError::Client)?;
        Ok(HealthMonitor {
            shared: Arc::new(Shared {
                projection,
                committer,
                results,
                client,
            }),
        })
    }

    /// Follows the projection forever, keeping one probe loop per running
    /// task and check; dropping a loop's guard stops it.
    pub async fn run(self) {
        let mut head = self.shared.projection.watch_head();
        let mut loops: HashMap<(TaskId, usize), DropGuard> = HashMap::new();
        loop {
            let (running, probes) = plan(&self.shared.projection.read(), now_micros());
            self.shared.results.retain(|task| running.contains(task));
            let wanted: HashSet<(TaskId, usize)> =
                probes.iter().map(|p| (p.task.clone(), p.index)).collect();
            loops.retain(|key, _| wanted.contains(key));
            for probe in probes {
                let key = (probe.task.clone(), probe.index);
                if loops.contains_key(&key) {
                    continue;
                }
                let stop = CancellationToken::new();
                match probe.target.clone() {
                    Ok(target) => {
                        tokio::spawn(probe_loop(self.shared.clone(), probe, target, stop.clone()));
                    }
                    // Kept as a loop that never ran, so this is said once.
                    Err(why) => {
                        tracing::warn!(task = %probe.task, index = probe.index, %why, "Not probing a health check.")
                    }
                }
                loops.insert(key, stop.drop_guard());
            }
            if head.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The definition a task runs: its own app version's, else the app's
/// current one.
pub fn definition_of<'a>(state: &'a State, task: &Task) -> Option<&'a AppDefinition> {
    let app = state.apps.get(task.app.as_ref()?)?;
    let version = app.versions.iter().find(|v| v.version == task.app_version);
    Some(version.map_or(&app.definition, |v| &v.definition))
}

/// The running tasks that have Stride-run checks, and the probes due for
/// those not being killed. A task runs the checks of its own app version.
fn plan(state: &State, now: u64) -> (HashSet<TaskId>, Vec<Probe>) {
    let mut running = HashSet::new();
    let mut probes = Vec::new();
    for (id, task) in &state.tasks {
        if task.condition != Condition::Running {
            continue;
        }
        let Some(definition) = definition_of(state, task) else {
            continue;
        };
        let checks: Vec<(usize, &HealthCheck)> = definition
            .health_checks
            .iter()
            .enumerate()
            .filter(|(_, check)| run_by_stride(check.protocol))
            .collect();
        if checks.is_empty() {
            continue;
        }
        running.insert(id.clone());
        if task.kill_requested {
            continue;
        }
        let started_at = task.started_at.unwrap_or(now);
        for &(index, check) in &checks {
            let target = target_port(check, &task.ports)
                .map(|port| Target {
                    protocol: check.protocol,
                    host: task.host.clone(),
                    port,
                    path: path_of(check),
                    // 0 would time out at once; the interval bounds it anyway.
                    timeout: Duration::from_secs(
                        match check.timeout_seconds {
                            0 => check.interval_seconds.max(1),
                            n => n,
                        }
                        .into(),
                    ),
                    ignore_1xx: check.ignore_http1xx,
                })
                .ok_or_else(|| {
                    format!(
                        "the task has no port at index {:?} (ports {:?})",
                        check.port_index.unwrap_or(0),
                        task.ports
                    )
                });
            probes.push(Probe {
                task: id.clone(),
                index,
                target,
                policy: Policy::new(check, started_at),
                first_at: started_at + u64::from(check.delay_seconds) * 1_000_000,
                interval: Duration::from_secs(check.interval_seconds.max(1).into()),
                checks: checks.len(),
            });
        }
    }
    (running, probes)
}

fn path_of(check: &HealthCheck) -> String {
    match check.path.as_deref() {
        Some(path) if path.starts_with('/') => path.to_owned(),
        Some(path) => format!("/{path}"),
        None => "/".to_owned(),
    }
}

/// Probes every `interval` from `first_at` until stopped or the task is
/// killed for failing.
async fn probe_loop(shared: Arc<Shared>, probe: Probe, target: Target, stop: CancellationToken) {
    let wait = Duration::from_micros(probe.first_at.saturating_sub(now_micros()));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + wait, probe.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            outcome = async {
                ticks.tick().await;
                probe::probe(&shared.client, &target).await
            } => outcome,
        };
        let update = shared.results.record(
            &probe.task,
            probe.index,
            outcome,
            now_micros(),
            &probe.policy,
            probe.checks,
        );
        let outcome = async {
            if let Some((healthy, cause)) = update.verdict {
                shared.report(&probe.task, healthy, cause).await?;
            }
            if let Recorded::Kill { failures, cause } = update.recorded {
                tracing::info!(task = %probe.task, failures, %cause, "Killing a task that keeps failing its health check.");
                let command = Command::KillUnhealthyTask {
                    task: probe.task.clone(),
                    failures,
                    cause,
                };
                shared
                    .committer
                    .submit(Actor::Reconciler, None, command)
                    .await?;
                return Ok(false);
            }
            Ok::<bool, SubmitError>(true)
        };
        match outcome.await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(task = %probe.task, %error, "cannot record a health result; probing stops");
                return;
            }
        }
    }
}

impl Shared {
    /// Submits the verdict only when the projection says otherwise, so a
    /// steady task costs no commands.
    async fn report(
        &self,
        task: &TaskId,
        healthy: bool,
        cause: Option<String>,
    ) -> Result<(), SubmitError> {
        let recorded = self
            .projection
            .read()
            .tasks
            .get(task)
            .and_then(|t| t.healthy);
        if recorded == Some(healthy) {
            return Ok(());
        }
        let command = Command::RecordHealth {
            task: task.clone(),
            healthy,
            cause,
        };
        self.committer
            .submit(Actor::Reconciler, None, command)
            .await?;
        Ok(())
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
