//! Marathon's `readinessChecks`: a new task counts as ready for its
//! deployment (so an old one may go) only once every readiness check has
//! answered one of `httpStatusCodesForReady`. Results are memory only, like
//! health results; a task that was ready stays ready, as in Marathon.

use crate::published::Projection;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use stride_core::projection::State;
use stride_log::event::TaskId;
use stride_log::event::app::{AppDefinition, ReadinessProtocol};
use stride_log::event::condition::Condition;
use stride_runtime::{SubtaskPanicked, Subtasks, probe};
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Which tasks have passed their readiness checks, and the last answer of
/// each check (for `/v2/deployments`). Cheap to clone; clones share.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    results: Arc<Mutex<HashMap<TaskId, BTreeMap<String, CheckAnswer>>>>,
    ready: Arc<Mutex<HashSet<TaskId>>>,
    /// Woken when a task becomes ready (its one waiter: the reconciler).
    moved: Arc<Notify>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAnswer {
    pub ready: bool,
    /// The HTTP status, or why there was none.
    pub answer: Result<u16, String>,
}

impl Readiness {
    pub fn ready_tasks(&self) -> HashSet<TaskId> {
        lock(&self.ready).clone()
    }

    pub fn results_of(&self, task: &TaskId) -> BTreeMap<String, CheckAnswer> {
        lock(&self.results).get(task).cloned().unwrap_or_default()
    }

    pub async fn moved(&self) {
        self.moved.notified().await;
    }

    fn record(&self, task: &TaskId, check: &str, answer: CheckAnswer, checks: usize) {
        let mut results = lock(&self.results);
        let answers = results.entry(task.clone()).or_default();
        answers.insert(check.to_owned(), answer);
        let all_ready = answers.len() == checks && answers.values().all(|a| a.ready);
        if all_ready && lock(&self.ready).insert(task.clone()) {
            self.moved.notify_one();
        }
    }

    fn retain(&self, keep: &HashSet<TaskId>) {
        lock(&self.results).retain(|task, _| keep.contains(task));
        lock(&self.ready).retain(|task| keep.contains(task));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// One probe loop per running task and readiness check, until it is ready.
pub struct ReadinessMonitor {
    projection: Arc<Projection>,
    readiness: Readiness,
    client: reqwest::Client,
}

struct Check {
    task: TaskId,
    name: String,
    url: String,
    statuses: Vec<u16>,
    interval: Duration,
    timeout: Duration,
    checks: usize,
}

impl ReadinessMonitor {
    pub fn new(
        projection: Arc<Projection>,
        readiness: Readiness,
    ) -> Result<ReadinessMonitor, super::HealthError> {
        let client = probe::client(false).map_err(super::HealthError::Client)?;
        Ok(ReadinessMonitor {
            projection,
            readiness,
            client,
        })
    }

    /// Follows the projection until told to stop, with one probe loop per
    /// check due, its own (as the health monitor's are).
    pub async fn run(self, stop: CancellationToken) -> Result<(), SubtaskPanicked> {
        let mut head = self.projection.watch_head();
        let mut probing = Subtasks::new("readiness probe loop", &stop);
        let mut loops: HashMap<(TaskId, String), DropGuard> = HashMap::new();
        loop {
            let (running, checks) = due(&self.projection.read(), &self.readiness.ready_tasks());
            self.readiness.retain(&running);
            let wanted: HashSet<(TaskId, String)> = checks
                .iter()
                .map(|c| (c.task.clone(), c.name.clone()))
                .collect();
            loops.retain(|key, _| wanted.contains(key));
            for check in checks {
                let key = (check.task.clone(), check.name.clone());
                if loops.contains_key(&key) {
                    continue;
                }
                let readiness = self.readiness.clone();
                let client = self.client.clone();
                let token = probing.spawn(|stop| probe_loop(readiness, client, check, stop));
                loops.insert(key, token.drop_guard());
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

/// Running tasks with readiness checks, and the checks of those not yet
/// ready.
fn due(state: &State, ready: &HashSet<TaskId>) -> (HashSet<TaskId>, Vec<Check>) {
    let mut running = HashSet::new();
    let mut checks = Vec::new();
    for (id, task) in &state.tasks {
        if task.condition != Condition::Running {
            continue;
        }
        let Some(definition) = super::definition_of(state, task) else {
            continue;
        };
        if definition.readiness_checks.is_empty() {
            continue;
        }
        running.insert(id.clone());
        if ready.contains(id) || task.kill_requested || task.draining {
            continue;
        }
        let count = definition.readiness_checks.len();
        for check in &definition.readiness_checks {
            let Some(port) = port_named(definition, &check.port_name, &task.ports) else {
                tracing::warn!(task = %id, port = %check.port_name, "readiness check names no port of the task");
                continue;
            };
            let scheme = match check.protocol {
                ReadinessProtocol::Http => "http",
                ReadinessProtocol::Https => "https",
            };
            checks.push(Check {
                task: id.clone(),
                name: check.name.clone(),
                url: format!("{scheme}://{}:{port}{}", task.host, check.path),
                statuses: check.http_status_codes_for_ready.clone(),
                interval: Duration::from_secs(check.interval_seconds.max(1).into()),
                timeout: Duration::from_secs(check.timeout_seconds.max(1).into()),
                checks: count,
            });
        }
    }
    (running, checks)
}

/// The host port of the port called `name`, in the order the task got them.
fn port_named(definition: &AppDefinition, name: &str, ports: &[u32]) -> Option<u32> {
    let names: Vec<Option<&str>> = if definition.uses_port_mappings() {
        let mappings = definition.container.iter().flat_map(|c| &c.port_mappings);
        mappings
            .filter(|m| m.host_port.is_some())
            .map(|m| m.name.as_deref())
            .collect()
    } else {
        let definitions = definition.port_definitions.iter();
        definitions.map(|d| d.name.as_deref()).collect()
    };
    let index = names.iter().position(|n| *n == Some(name))?;
    ports.get(index).copied()
}

async fn probe_loop(
    readiness: Readiness,
    client: reqwest::Client,
    check: Check,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(check.interval);
    loop {
        let answer = tokio::select! {
            () = stop.cancelled() => return,
            answer = async {
                ticks.tick().await;
                probe::http_status(&client, &check.url, check.timeout).await
            } => answer,
        };
        let ready = answer.as_ref().is_ok_and(|s| check.statuses.contains(s));
        readiness.record(
            &check.task,
            &check.name,
            CheckAnswer { ready, answer },
            check.checks,
        );
        if ready {
            return;
        }
    }
}
