//! Tasks: launching supervisors, turning process reports into status
//! updates, reliable delivery (one outstanding update per task, resent
//! until acknowledged), KILL and reconciliation.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use stride_mesos::types::{
    AgentId, Base64Bytes, ContainerId, ContainerStatus, Event, ExecutorId, FrameworkCapabilityType,
    FrameworkId, IpAddress, Kill, NetworkInfo, StatusSource, TaskId, TaskInfo, TaskState,
    TaskStatus, Update,
};

use super::agent::ResourceSet;
use super::docker;
use super::health::HealthCheckRun;
use super::master::{Framework, Master, MasterState, now_seconds};
use super::process::{self, LaunchSpec, Program, TaskReport};
use super::sandbox::{Sandbox, task_environment};
use stride_runtime::Backoff;

/// A Mesos agent backs off status update retries up to this.
const MAX_UPDATE_RETRY: Duration = Duration::from_secs(600);

pub(crate) struct Task {
    pub(crate) info: TaskInfo,
    pub(crate) framework_id: FrameworkId,
    pub(crate) agent: usize,
    pub(crate) agent_id: AgentId,
    pub(crate) resources: ResourceSet,
    pub(crate) state: TaskState,
    pub(crate) container_id: String,
    /// A command task's process (also its process group id), or a Docker
    /// container's main process.
    pub(crate) pid: Option<u32>,
    /// Runs in a Docker container: `pid` is the engine's to signal.
    pub(crate) docker: bool,
    /// A container's own address, on bridge or user networks.
    ip: Option<String>,
    /// Each state with its timestamp and health, for `/master/state`;
    /// consecutive updates of one state keep the latest.
    pub(crate) statuses: Vec<(TaskState, f64, Option<bool>)>,
    /// Taken by the first KILL; a second one is a no-op.
    pub(super) kill: Option<oneshot::Sender<Duration>>,
    /// Reliable updates not yet acknowledged; only the front is in flight.
    pending: VecDeque<TaskStatus>,
    next_retry: Option<(Instant, Backoff)>,
    /// The health check, until the task runs and its checker starts.
    health_check: Option<HealthCheckRun>,
    /// Stops the health checker; cancelled when the task ends.
    health_stop: CancellationToken,
    /// The final update then says `healthy: false`, as the executor's does.
    pub(super) killed_by_health: bool,
}

pub(crate) fn is_terminal(state: &TaskState) -> bool {
    matches!(
        state,
        TaskState::Finished
            | TaskState::Failed
            | TaskState::Killed
            | TaskState::Error
            | TaskState::Lost
            | TaskState::Dropped
            | TaskState::Gone
            | TaskState::GoneByOperator
    )
}

impl Task {
    fn new(
        info: TaskInfo,
        framework_id: &FrameworkId,
        agent: usize,
        agent_id: AgentId,
        resources: ResourceSet,
        container_id: String,
    ) -> Self {
        Self {
            info,
            framework_id: framework_id.clone(),
            agent,
            agent_id,
            resources,
            state: TaskState::Staging,
            container_id,
            pid: None,
            docker: false,
            ip: None,
            statuses: Vec::new(),
            kill: None,
            pending: VecDeque::new(),
            next_retry: None,
            health_check: None,
            health_stop: CancellationToken::new(),
            killed_by_health: false,
        }
    }

    pub(super) fn container_status(&self) -> Option<ContainerStatus> {
        let pid = self.pid?;
        Some(ContainerStatus {
            container_id: Some(ContainerId::new(self.container_id.clone())),
            network_infos: vec![NetworkInfo {
                ip_addresses: vec![IpAddress {
                    protocol: Some("IPv4".to_string()),
                    ip_address: Some(self.ip.clone().unwrap_or_else(|| "127.0.0.1".to_string())),
                }],
                name: None,
            }],
            executor_pid: Some(pid),
        })
    }

    pub(super) fn kill_grace(&self, requested: Option<&Kill>, default: Duration) -> Duration {
        requested
            .and_then(|kill| kill.kill_policy)
            .or(self.info.kill_policy)
            .and_then(|policy| policy.grace_period)
            .map_or(default, |grace| {
                Duration::from_nanos(u64::try_from(grace.nanoseconds).unwrap_or(0))
            })
    }
}

/// A master-generated update (no uuid, never retried).
pub(crate) fn master_status(
    task_id: TaskId,
    state: TaskState,
    message: String,
    reason: &str,
    agent_id: Option<AgentId>,
) -> TaskStatus {
    TaskStatus {
        task_id,
        state,
        message: Some(message),
        source: Some(StatusSource::Master),
        reason: Some(reason.to_string()),
        data: None,
        agent_id,
        executor_id: None,
        timestamp: Some(now_seconds()),
        uuid: None,
        healthy: None,
        labels: None,
        container_status: None,
        unreachable_time: None,
    }
}

pub(crate) fn update_event(status: TaskStatus) -> Event {
    Event::Update(Update { status })
}

impl Framework {
    /// Sends the task's oldest unacknowledged update, to be resent from
    /// `retry` on, backing off, until acknowledged.
    fn forward_head(&mut self, task_id: &TaskId, retry: Duration) {
        self.forward(task_id, Backoff::new(retry, MAX_UPDATE_RETRY));
    }

    fn forward(&mut self, task_id: &TaskId, mut backoff: Backoff) {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        let Some(head) = task.pending.front() else {
            task.next_retry = None;
            return;
        };
        let event = update_event(head.clone());
        task.next_retry = Some((Instant::now() + backoff.next_delay(), backoff));
        self.send(&event);
    }

    pub(crate) fn resend_all_pending(&mut self, retry: Duration) {
        let task_ids: Vec<TaskId> = self.tasks.keys().cloned().collect();
        for task_id in task_ids {
            self.forward_head(&task_id, retry);
        }
    }

    pub(crate) fn resend_due_updates(&mut self, now: Instant) {
        let due: Vec<(TaskId, Backoff)> = self
            .tasks
            .iter()
            .filter_map(|(id, task)| match &task.next_retry {
                Some((at, backoff)) if *at <= now => Some((id.clone(), backoff.clone())),
                _ => None,
            })
            .collect();
        for (task_id, backoff) in due {
            tracing::debug!(%task_id, "resending unacknowledged status update");
            self.forward(&task_id, backoff);
        }
    }
}

/// A new task state as the agent or executor reports it.
pub(super) struct StatusChange {
    state: TaskState,
    message: Option<String>,
    source: StatusSource,
    reason: Option<&'static str>,
    healthy: Option<bool>,
}

impl StatusChange {
    fn executor(state: TaskState, message: Option<String>) -> Self {
        Self {
            state,
            message,
            source: StatusSource::Executor,
            reason: None,
            healthy: None,
        }
    }

    /// A health check result, repeating the running state.
    pub(super) fn health(healthy: bool) -> Self {
        Self {
            reason: Some("REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"),
            healthy: Some(healthy),
            ..Self::executor(TaskState::Running, None)
        }
    }

    fn launch_failed(message: String) -> Self {
        Self {
            state: TaskState::Failed,
            message: Some(message),
            source: StatusSource::Agent,
            reason: Some("REASON_CONTAINER_LAUNCH_FAILED"),
            healthy: None,
        }
    }
}

impl MasterState {
    /// Records a new state for a task and queues its reliable update,
    /// forwarding it at once if no earlier update is outstanding.
    pub(super) fn push_update(
        &mut self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        change: StatusChange,
        retry: Duration,
    ) {
        let StatusChange {
            state,
            message,
            source,
            reason,
            healthy,
        } = change;
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(task) = framework.tasks.get_mut(task_id) else {
            return;
        };
        let timestamp = now_seconds();
        task.state = state.clone();
        // A real master keeps one entry per run of the same state, the
        // latest: health updates replace the TASK_RUNNING before them.
        if task
            .statuses
            .last()
            .is_some_and(|(last, ..)| *last == state)
        {
            task.statuses.pop();
        }
        task.statuses.push((state.clone(), timestamp, healthy));
        if is_terminal(&state) {
            task.kill = None;
            task.health_stop.cancel();
            if let Some(agent) = self.agents.get_mut(task.agent) {
                agent.used.subtract(&task.resources);
            }
        }
        if framework.removed {
            // Nobody to tell; the task is done once it is terminal.
            if is_terminal(&state) {
                framework.complete_task(task_id);
            }
            return;
        }
        let status = TaskStatus {
            task_id: task_id.clone(),
            state,
            message,
            source: Some(source),
            reason: reason.map(str::to_string),
            data: None,
            agent_id: Some(task.agent_id.clone()),
            executor_id: Some(ExecutorId::new(task_id.value.clone())),
            timestamp: Some(timestamp),
            uuid: Some(Base64Bytes(uuid::Uuid::new_v4().as_bytes().to_vec())),
            healthy,
            labels: None,
            container_status: task.container_status(),
            unreachable_time: None,
        };
        task.pending.push_back(status);
        if task.pending.len() == 1 {
            framework.forward_head(task_id, retry);
        }
    }

    /// Asks a task's process to die because its framework is gone.
    pub(crate) fn kill_for_removal(
        &mut self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        grace: Duration,
    ) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(task) = framework.tasks.get_mut(task_id) else {
            return;
        };
        task.pending.clear();
        task.next_retry = None;
        if is_terminal(&task.state) {
            framework.complete_task(task_id);
        } else if let Some(kill) = task.kill.take() {
            let _ = kill.send(grace);
        }
    }
}

impl Master {
    /// Creates the task record and starts its process, or its container
    /// on the Docker engine for a DOCKER container.
    pub(crate) fn start_task(
        self: &Arc<Self>,
        state: &mut MasterState,
        framework_id: &FrameworkId,
        info: TaskInfo,
        agent: usize,
        resources: ResourceSet,
    ) {
        let Some(agent_record) = state.agents.get_mut(agent) else {
            return;
        };
        agent_record.used.add(&resources);
        let agent_id = agent_record.id.clone();
        let hostname = agent_record.hostname.clone();
        let container_id = uuid::Uuid::new_v4().to_string();
        let sandbox = Sandbox::new(
            &self.settings.work_dir,
            &agent_id,
            framework_id,
            &info,
            &container_id,
        );
        let ports: Vec<u64> = resources.port_list().collect();
        let env = task_environment(&info, framework_id, &agent_id, &hostname, &sandbox, &ports);
        let command = info.command.clone().unwrap_or_default();
        let program = match command.shell {
            Some(false) => Program::Exec {
                path: command.value.unwrap_or_default(),
                argv: command.arguments,
            },
            _ => Program::Shell(command.value.unwrap_or_default()),
        };
        let health_check = info.health_check.clone().map(|check| HealthCheckRun {
            check,
            sandbox: sandbox.dir.clone(),
            env: env.clone(),
        });
        let docker = docker::docker_info(&info)
            .is_some()
            .then(|| docker::Checkpoint {
                info: info.clone(),
                framework_id: framework_id.clone(),
                agent_id: agent_id.clone(),
                container_id: container_id.clone(),
                sandbox: sandbox.dir.clone(),
            });
        let task_id = info.task_id.clone();
        let task = Task::new(info, framework_id, agent, agent_id, resources, container_id);
        let kill_rx = self.register(state, task, health_check);
        let report = self.reporter(framework_id, &task_id);
        match docker {
            Some(owner) => {
                let engine = Arc::clone(&self.docker);
                self.supervisors
                    .spawn(docker::supervise(engine, owner, kill_rx, report));
            }
            None => {
                let spec = LaunchSpec {
                    program,
                    env,
                    sandbox,
                };
                let spawner = self.spawner.clone();
                self.supervisors
                    .spawn(process::supervise(spawner, spec, kill_rx, report));
            }
        }
    }

    /// Takes over a container found on the engine at start, under a
    /// framework that is expected to resubscribe (as a Mesos master learns
    /// of frameworks from re-registering agents): a running one is followed
    /// again, one that ended meanwhile is reported ended.
    pub(crate) fn adopt(self: &Arc<Self>, state: &mut MasterState, found: docker::Recovered) {
        let docker::Recovered { owner, ended } = found;
        let Some(agent) = state.agents.iter().position(|a| a.id == owner.agent_id) else {
            return;
        };
        let resources = ResourceSet::from_mesos(&owner.info.resources);
        let framework_id = owner.framework_id.clone();
        state.recovered_framework(&framework_id);
        let task_id = owner.info.task_id.clone();
        let mut task = Task::new(
            owner.info.clone(),
            &framework_id,
            agent,
            owner.agent_id.clone(),
            resources.clone(),
            owner.container_id.clone(),
        );
        task.docker = true;
        task.state = TaskState::Running;
        task.statuses
            .push((TaskState::Running, now_seconds(), None));
        if let Some(record) = state.agents.get_mut(agent) {
            record.used.add(&resources);
        }
        let kill_rx = self.register(state, task, None);
        match ended {
            None => {
                let engine = Arc::clone(&self.docker);
                let report = self.reporter(&framework_id, &task_id);
                self.supervisors
                    .spawn(docker::adopt(engine, owner, kill_rx, report));
            }
            Some((message, success)) => {
                let state_now = if success {
                    TaskState::Finished
                } else {
                    TaskState::Failed
                };
                let change = StatusChange::executor(state_now, Some(message));
                state.push_update(&framework_id, &task_id, change, self.settings.update_retry);
            }
        }
    }

    /// Records the task under its framework; its kill request comes back.
    fn register(
        &self,
        state: &mut MasterState,
        mut task: Task,
        health_check: Option<HealthCheckRun>,
    ) -> oneshot::Receiver<Duration> {
        let (kill_tx, kill_rx) = oneshot::channel();
        task.kill = Some(kill_tx);
        task.health_check = health_check;
        task.docker = docker::docker_info(&task.info).is_some();
        if let Some(framework) = state.frameworks.get_mut(&task.framework_id) {
            framework.tasks.insert(task.info.task_id.clone(), task);
        }
        kill_rx
    }

    /// Where a task's supervisor sends what happens to it (it takes the
    /// lock: never call it while holding it).
    fn reporter(
        self: &Arc<Self>,
        framework_id: &FrameworkId,
        task_id: &TaskId,
    ) -> impl Fn(TaskReport) + Send + Sync + 'static {
        let master = Arc::clone(self);
        let (framework_id, task_id) = (framework_id.clone(), task_id.clone());
        move |report| master.on_report(&framework_id, &task_id, report)
    }

    fn on_report(
        self: &Arc<Self>,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        report: TaskReport,
    ) {
        let retry = self.settings.update_retry;
        let mut state = self.lock();
        match report {
            TaskReport::Adopted { pid, ip } => {
                let task = state
                    .frameworks
                    .get_mut(framework_id)
                    .and_then(|f| f.tasks.get_mut(task_id));
                if let Some(task) = task {
                    (task.pid, task.ip) = (Some(pid), ip);
                }
            }
            TaskReport::Started { pid, ip } => {
                let task = state
                    .frameworks
                    .get_mut(framework_id)
                    .and_then(|f| f.tasks.get_mut(task_id));
                let health = task.and_then(|task| {
                    (task.pid, task.ip) = (Some(pid), ip);
                    let run = task.health_check.take()?;
                    Some((run, task.health_stop.clone()))
                });
                // The command executor reports both right after forking.
                for step in [TaskState::Starting, TaskState::Running] {
                    let change = StatusChange::executor(step, None);
                    state.push_update(framework_id, task_id, change, retry);
                }
                if let Some((run, stop)) = health {
                    self.start_health_check(framework_id, task_id, run, stop);
                }
            }
            TaskReport::LaunchFailed { message } => {
                let change =
                    StatusChange::launch_failed(format!("Failed to launch container: {message}"));
                state.push_update(framework_id, task_id, change, retry);
            }
            TaskReport::ExecutorFailed { message } => {
                let change = StatusChange::executor(TaskState::Failed, Some(message));
                state.push_update(framework_id, task_id, change, retry);
            }
            TaskReport::Killing => {
                let wants_killing = state.frameworks.get(framework_id).is_some_and(|f| {
                    !f.removed && f.has_capability(&FrameworkCapabilityType::TaskKillingState)
                });
                if wants_killing {
                    let change = StatusChange::executor(TaskState::Killing, None);
                    state.push_update(framework_id, task_id, change, retry);
                }
            }
            TaskReport::Exited {
                killed,
                message,
                success,
            } => {
                let final_state = match (killed, success) {
                    (true, _) => TaskState::Killed,
                    (false, true) => TaskState::Finished,
                    (false, false) => TaskState::Failed,
                };
                let killed_by_health = state
                    .frameworks
                    .get(framework_id)
                    .and_then(|f| f.tasks.get(task_id))
                    .is_some_and(|t| t.killed_by_health);
                let change = StatusChange {
                    healthy: killed_by_health.then_some(false),
                    ..StatusChange::executor(final_state, Some(message))
                };
                state.push_update(framework_id, task_id, change, retry);
            }
        }
    }

    /// ACKNOWLEDGE: retires the in-flight update if the uuid matches and
    /// forwards the next one. Stale or duplicate acks are ignored (202).
    pub(crate) fn acknowledge(
        &self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        uuid: &Base64Bytes,
    ) {
        let retry = self.settings.update_retry;
        let mut state = self.lock();
        let Some(framework) = state.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(task) = framework.tasks.get_mut(task_id) else {
            return;
        };
        if task.pending.front().and_then(|s| s.uuid.as_ref()) != Some(uuid) {
            return;
        }
        task.pending.pop_front();
        if task.pending.is_empty() && is_terminal(&task.state) {
            framework.complete_task(task_id);
        } else {
            framework.forward_head(task_id, retry);
        }
    }
}
