//! The health monitor: one probe loop per running task and Stride-run
//! check, started and stopped as the projection changes. It only reads the
//! projection and submits commands; Mesos is the reconciler's to call.

use super::HealthError;
use super::probe::{self, Target};
use super::results::{HealthResults, Update};
use super::rules::{Outcome, Policy, Recorded, Verdict, target_port};
use crate::committer::{Committer, SubmitError};
use crate::metrics::Metrics;
use crate::published::Projection;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use stride_core::command::Command;
use stride_core::projection::{State, Task};
use stride_log::event::app::{AppDefinition, HealthCheck, HealthCheckProtocol};
use stride_log::event::condition::Condition;
use stride_log::event::{Actor, TaskId};
use stride_runtime::probe::client;
use stride_runtime::{Clock, SubtaskPanicked, Subtasks};
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
    metrics: Metrics,
    /// What grace periods and first probes are measured by.
    clock: Clock,
}

/// One check of one task, as a probe loop runs it.
#[derive(Debug)]
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
        metrics: Metrics,
        clock: Clock,
    ) -> Result<HealthMonitor, HealthError> {
        let client = client(false).map_err(HealthError::Client)?;
        Ok(HealthMonitor {
            shared: Arc::new(Shared {
                projection,
                committer,
                results,
                client,
                metrics,
                clock,
            }),
        })
    }

    /// Follows the projection until told to stop, keeping one probe loop
    /// per running task and check; dropping a loop's guard stops it. The
    /// loops are its own: stopped and waited for with it, and one that
    /// panics ends it (and so the process) saying so.
    pub async fn run(self, stop: CancellationToken) -> Result<(), SubtaskPanicked> {
        let mut head = self.shared.projection.watch_head();
        let mut probing = Subtasks::new("health probe loop", &stop);
        let mut loops: HashMap<(TaskId, usize), Option<DropGuard>> = HashMap::new();
        loop {
            let (running, probes) = plan(
                &self.shared.projection.read(),
                self.shared.clock.now_micros(),
            );
            self.shared.results.retain(|task| running.contains(task));
            let wanted: HashSet<(TaskId, usize)> =
                probes.iter().map(|p| (p.task.clone(), p.index)).collect();
            loops.retain(|key, _| wanted.contains(key));
            for probe in probes {
                let key = (probe.task.clone(), probe.index);
                if loops.contains_key(&key) {
                    continue;
                }
                let guard = match probe.target.clone() {
                    Ok(target) => {
                        let shared = self.shared.clone();
                        let token = probing.spawn(|stop| probe_loop(shared, probe, target, stop));
                        Some(token.drop_guard())
                    }
                    // Kept as a loop that never ran, so this is said once.
                    Err(why) => {
                        tracing::warn!(task = %probe.task, index = probe.index, %why, "not probing a health check");
                        None
                    }
                };
                loops.insert(key, guard);
            }
            tokio::select! {
                changed = head.changed() => if changed.is_err() { break },
                () = stop.cancelled() => break,
                panicked = probing.panicked() => return Err(panicked),
            }
        }
        probing.close().await
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
                    ignore_1xx: check.ignore_http1xx.unwrap_or(false),
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
    let first = shared.clock.instant_at(probe.first_at);
    let mut ticks = tokio::time::interval_at(first, probe.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            outcome = async {
                ticks.tick().await;
                probe::probe(&shared.client, &target).await
            } => outcome,
        };
        match &outcome {
            Outcome::Healthy => shared
                .metrics
                .health_probed(protocol_name(target.protocol), true),
            Outcome::Unhealthy(_) => shared
                .metrics
                .health_probed(protocol_name(target.protocol), false),
            Outcome::Ignored => {}
        }
        let update = shared.results.record(
            &probe.task,
            probe.index,
            outcome,
            shared.clock.now_micros(),
            &probe.policy,
            probe.checks,
        );
        match shared.act(&probe.task, update).await {
            Ok(Next::Probe) => {}
            Ok(Next::Stop) => return,
            Err(error) => {
                tracing::warn!(task = %probe.task, %error, "cannot record a health result; probing stops");
                return;
            }
        }
    }
}

/// The protocol as the definition names it, for metrics.
fn protocol_name(protocol: HealthCheckProtocol) -> &'static str {
    match protocol {
        HealthCheckProtocol::Http => "HTTP",
        HealthCheckProtocol::Https => "HTTPS",
        HealthCheckProtocol::Tcp => "TCP",
        HealthCheckProtocol::Command => "COMMAND",
        HealthCheckProtocol::MesosHttp => "MESOS_HTTP",
        HealthCheckProtocol::MesosHttps => "MESOS_HTTPS",
        HealthCheckProtocol::MesosTcp => "MESOS_TCP",
    }
}

enum Next {
    Probe,
    /// The task is being killed.
    Stop,
}

impl Shared {
    /// Commits what a result changed: the task's health, only when the
    /// projection says otherwise (a steady task costs no commands), and a
    /// kill once the check has failed too often.
    async fn act(&self, task: &TaskId, update: Update) -> Result<Next, SubmitError> {
        if let Some(Verdict { healthy, cause }) = update.verdict {
            let recorded = self
                .projection
                .read()
                .tasks
                .get(task)
                .and_then(|t| t.healthy);
            if recorded != Some(healthy) {
                let command = Command::RecordHealth {
                    task: task.clone(),
                    healthy,
                    cause,
                };
                self.committer
                    .submit(Actor::Reconciler, None, command)
                    .await?;
            }
        }
        let Recorded::Kill { failures, cause } = update.recorded else {
            return Ok(Next::Probe);
        };
        tracing::info!(%task, failures, %cause, "killing a task that keeps failing its health check");
        let command = Command::KillUnhealthyTask {
            task: task.clone(),
            failures,
            cause,
        };
        self.committer
            .submit(Actor::Reconciler, None, command)
            .await?;
        Ok(Next::Stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stride_log::event::app::AppSpec;
    use stride_log::event::{Actor, AppCreated, AppUpdated, Envelope, Event, Seq};
    use stride_log::event::{TaskKillRequested, TaskLaunchRequested, TaskStatusRecorded};

    fn spec(checks: serde_json::Value) -> AppSpec {
        AppSpec::new(
            serde_json::from_value(serde_json::json!({"id": "/a", "healthChecks": checks}))
                .expect("a definition"),
        )
    }

    /// Applies `events`, the n-th recorded at n seconds.
    fn state(events: Vec<Event>) -> State {
        let mut state = State::default();
        for (event, seq) in events.into_iter().zip(1..) {
            state.apply(&Envelope {
                seq: Seq(seq),
                id: uuid::Uuid::nil(),
                recorded_at: seq * 1_000_000,
                actor: Actor::Reconciler,
                command_id: uuid::Uuid::nil(),
                event,
            });
        }
        state
    }

    fn launched(task: &str, app_version: u64, ports: Vec<u32>) -> Event {
        Event::TaskLaunchRequested(TaskLaunchRequested {
            task: task.into(),
            app: "/a".into(),
            app_version,
            agent: "S0".into(),
            host: "h".into(),
            ports,
            offer: "O".into(),
        })
    }

    fn status(task: &str, condition: Condition) -> Event {
        Event::TaskStatusRecorded(TaskStatusRecorded {
            task: task.into(),
            app: Some("/a".into()),
            condition,
            mesos_state: String::new(),
            reason: None,
            message: None,
            agent: None,
            healthy: None,
            status_uuid: None,
            mesos_timestamp: None,
        })
    }

    /// Which tasks keep results and which checks get probed: running tasks
    /// only, each with its own version's Stride-run checks, none for a task
    /// being killed, and none (said once) for a port the task lacks.
    #[test]
    fn plans_probes_for_running_tasks_and_their_own_checks() {
        let old = spec(serde_json::json!([
            {"protocol": "COMMAND", "command": {"value": "true"}},
            {"protocol": "TCP", "portIndex": 0, "delaySeconds": 2, "gracePeriodSeconds": 5},
            {"protocol": "HTTP", "portIndex": 1}
        ]));
        let new = spec(serde_json::json!([{"protocol": "HTTPS", "port": 443}]));
        let state = state(vec![
            Event::AppCreated(AppCreated {
                app: "/a".into(),
                definition: old.clone(),
            }),
            launched("old", 1_000_000, vec![31000]),
            status("old", Condition::Running),
            Event::AppUpdated(AppUpdated {
                app: "/a".into(),
                previous: old,
                definition: new,
            }),
            launched("new", 4_000_000, vec![]),
            status("new", Condition::Running),
            launched("staging", 4_000_000, vec![]),
            status("staging", Condition::Staging),
            launched("dying", 4_000_000, vec![]),
            status("dying", Condition::Running),
            Event::TaskKillRequested(TaskKillRequested {
                task: "dying".into(),
                app: "/a".into(),
                reason: "API".into(),
            }),
        ]);
        let (running, probes) = plan(&state, 99_000_000);
        let mut running: Vec<&str> = running.iter().map(TaskId::as_str).collect();
        running.sort_unstable();
        assert_eq!(running, ["dying", "new", "old"]);
        let mut got: Vec<(&str, usize, Option<u32>, usize)> = probes
            .iter()
            .map(|p| {
                let port = p.target.as_ref().ok().map(|t| t.port);
                (p.task.as_str(), p.index, port, p.checks)
            })
            .collect();
        got.sort_unstable();
        assert_eq!(
            got,
            [
                ("new", 0, Some(443), 1),
                ("old", 1, Some(31000), 2),
                ("old", 2, None, 2)
            ]
        );
        let tcp = probes.iter().find(|p| p.index == 1).expect("the TCP check");
        // Started when its running status was recorded, at 3 s.
        assert_eq!(tcp.first_at, 5_000_000);
        assert_eq!(tcp.policy.grace_until, 8_000_000);
    }
}
