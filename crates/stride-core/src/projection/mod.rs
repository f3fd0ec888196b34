//! The projection: current state, a pure fold of the log.
//!
//! `apply` is deterministic and never fails: events are facts, so an event
//! about something unknown is recorded as best it can be, never rejected.
//!
//! Its collections are persistent (`imbl`): a clone shares every node with
//! the original and a change copies only the path to what changed, so the
//! committer can publish each durable state as an immutable `Arc` and keep
//! folding (`shared.rs`). Large values sit behind an `Arc` of their own so
//! that copying a node copies pointers, not tasks.

mod backoff;
mod deployments;
mod groups;
pub mod snapshot;

pub use backoff::LaunchDelay;
pub use deployments::{AppChange, Deployment, GroupChange, Pending};
pub use groups::Group;

use crate::event::app::AppSpec;
use crate::event::condition::Condition;
use crate::event::{
    AgentId, AppId, DeploymentId, Envelope, Event, FrameworkId, LeaderElected, Seq, TaskId,
    TaskStatusRecorded,
};
use imbl::{OrdMap, OrdSet, Vector};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Serialized as the `BTreeMap`s, `BTreeSet`s, `Vec`s and `VecDeque` it
/// had before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The last event applied.
    pub seq: Seq,
    pub apps: OrdMap<AppId, Arc<App>>,
    pub tasks: OrdMap<TaskId, Arc<Task>>,
    /// The same tasks by app (orphans without an app aside): an app's
    /// tasks are one map, which is the same map (`ptr_eq`) in a later state
    /// while none of them changed. Rebuilt from `tasks` when a snapshot
    /// loads (`index_tasks`), not stored twice.
    #[serde(skip)]
    pub tasks_by_app: OrdMap<AppId, TasksOfApp>,
    pub deployments: OrdMap<DeploymentId, Arc<Deployment>>,
    pub framework: Option<FrameworkId>,
    /// Event subscriptions: callback URL -> the seq that subscribed it.
    pub callbacks: OrdMap<String, Seq>,
    /// Service port -> the apps declaring it (one, unless older events say
    /// otherwise), so assigning a port does not scan every app.
    pub service_ports: OrdMap<u32, OrdSet<AppId>>,
    /// The deployments of each app (one, unless older events say
    /// otherwise), so finding an app's deployment does not scan them all.
    pub deployments_by_app: OrdMap<AppId, OrdSet<DeploymentId>>,
    /// The groups of the tree but the root, by path.
    #[serde(default)]
    pub groups: OrdMap<AppId, Group>,
    /// Every version of the tree (unix µs) with the seq of the deployment
    /// that made it, oldest first.
    #[serde(default)]
    pub tree_versions: Vector<(u64, Seq)>,
    /// Changes of the command being applied, until its deployment takes them.
    #[serde(default)]
    pub pending: Pending,
    /// The latest finished deployments, oldest first.
    #[serde(default)]
    pub finished_deployments: Vector<(DeploymentId, Arc<Deployment>)>,
    /// The last election won (high availability).
    #[serde(default)]
    pub leader: Option<LeaderElected>,
}

/// One app's tasks, by id.
pub type TasksOfApp = OrdMap<TaskId, Arc<Task>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub definition: AppSpec,
    /// When the current version was recorded (unix µs): Marathon's `version`.
    pub version: u64,
    /// When the definition last changed other than by scaling.
    pub config_version: u64,
    /// Every version, oldest first.
    pub versions: Vec<AppVersion>,
    /// Launch backoff, from this app's task failures (see `backoff.rs`).
    pub launch_delay: LaunchDelay,
    /// The newest task that failed, for Marathon's `lastTaskFailure`; kept
    /// here because failed tasks are expunged once replaced.
    pub last_failure: Option<TaskFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFailure {
    pub task: TaskId,
    pub host: String,
    pub agent: Option<AgentId>,
    pub mesos_state: String,
    pub message: Option<String>,
    pub at: u64,
    pub app_version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppVersion {
    pub version: u64,
    pub definition: AppSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub app: Option<AppId>,
    pub app_version: u64,
    pub agent: Option<AgentId>,
    pub host: String,
    pub ports: Vec<u32>,
    pub condition: Condition,
    pub mesos_state: Option<String>,
    pub message: Option<String>,
    pub staged_at: u64,
    pub started_at: Option<u64>,
    pub healthy: Option<bool>,
    pub kill_requested: bool,
    /// The uuid of the last update recorded, to ignore Mesos's resends.
    pub last_status_uuid: Option<Vec<u8>>,
    /// When Mesos last reported the task unreachable (unix µs), while it is.
    pub unreachable_since: Option<u64>,
    /// Out of load-balancer rotation, to be killed once every sidecar has
    /// applied `drain_seq` (the `TaskDraining` event).
    #[serde(default)]
    pub draining: bool,
    #[serde(default)]
    pub drain_seq: Seq,
    /// When draining began (unix µs).
    #[serde(default)]
    pub drain_at: u64,
}

impl State {
    /// Just these apps and tasks as of `seq`, indexed: what a follower
    /// builds from `/v1/state` (`protocol::state`) to fold the stream into.
    pub fn of_apps_and_tasks(
        seq: Seq,
        apps: impl IntoIterator<Item = (AppId, App)>,
        tasks: impl IntoIterator<Item = (TaskId, Task)>,
    ) -> State {
        let mut state = State {
            seq,
            ..State::default()
        };
        for (id, app) in apps {
            state.index_service_ports(&id, &app.definition, true);
            state.apps.insert(id, Arc::new(app));
        }
        for (id, task) in tasks {
            state.insert_task(id, task);
        }
        state
    }

    pub fn apply(&mut self, envelope: &Envelope) {
        let at = envelope.recorded_at;
        match &envelope.event {
            Event::AppCreated(e) => {
                self.ensure_ancestors(envelope, &e.app);
                self.note_app(envelope, &e.app, Some(e.definition.clone()));
                // An empty group of the same name gives way, as in Marathon.
                self.groups.remove(&e.app);
                let created = Arc::new(App::new(e.definition.clone(), at));
                // Recreated without a delete between: only facts, so kept.
                if let Some(replaced) = self.apps.insert(e.app.clone(), created) {
                    self.index_service_ports(&e.app, &replaced.definition, false);
                }
                self.index_service_ports(&e.app, &e.definition, true);
            }
            Event::AppUpdated(e) => {
                self.note_app(envelope, &e.app, Some(e.definition.clone()));
                self.new_version(&e.app, e.definition.clone(), at, true);
            }
            Event::AppScaled(e) => {
                if let Some(app) = self.apps.get(&e.app) {
                    let mut definition = (*app.definition).clone();
                    definition.instances = e.instances;
                    let scaled = AppSpec::new(definition);
                    self.note_app(envelope, &e.app, Some(scaled.clone()));
                    self.new_version(&e.app, scaled, at, false);
                }
            }
            Event::AppDeleted(e) => {
                self.note_app(envelope, &e.app, None);
                if let Some(app) = self.apps.remove(&e.app) {
                    self.index_service_ports(&e.app, &app.definition, false);
                }
            }
            Event::DeploymentStarted(e) => self.start_deployment(
                envelope,
                e.deployment,
                e.kind,
                (e.app.clone(), e.app.parent()),
                e.steps(),
            ),
            Event::DeploymentPlanned(e) => self.start_deployment(
                envelope,
                e.deployment,
                e.kind,
                (e.app.clone(), e.group.clone()),
                e.steps.clone(),
            ),
            Event::DeploymentStepFinished(e) => self.step_finished(&e.deployment, e.step),
            Event::GroupUpdated(e) => self.update_group(envelope, &e.group, &e.dependencies),
            Event::GroupDeleted(e) => self.delete_group(envelope, &e.group),
            Event::DeploymentFinished(e) => self.remove_deployment(&e.deployment),
            Event::DeploymentFailed(e) => self.remove_deployment(&e.deployment),
            Event::TaskLaunchRequested(e) => {
                let task = Task {
                    app: Some(e.app.clone()),
                    app_version: e.app_version,
                    agent: Some(e.agent.clone()),
                    host: e.host.clone(),
                    ports: e.ports.clone(),
                    condition: Condition::Provisioned,
                    mesos_state: None,
                    message: None,
                    staged_at: at,
                    started_at: None,
                    healthy: None,
                    kill_requested: false,
                    last_status_uuid: None,
                    unreachable_since: None,
                    draining: false,
                    drain_seq: Seq(0),
                    drain_at: 0,
                };
                self.insert_task(e.task.clone(), task);
            }
            Event::TaskStatusRecorded(e) => self.record_status(e, at),
            Event::TaskKillRequested(e) => {
                self.update_task(&e.task, |task| task.kill_requested = true);
            }
            Event::TaskDraining(e) => {
                self.update_task(&e.task, |task| {
                    task.draining = true;
                    task.drain_seq = envelope.seq;
                    task.drain_at = at;
                });
            }
            Event::TaskExpunged(e) => self.remove_task(&e.task),
            Event::HealthChanged(e) => {
                self.update_task(&e.task, |task| task.healthy = Some(e.healthy));
            }
            Event::FrameworkSubscribed(e) => {
                self.framework = Some(e.framework.clone());
            }
            Event::LeaderElected(e) => self.leader = Some(e.clone()),
            Event::LaunchDelayReset(e) => {
                if let Some(app) = self.app_mut(&e.app) {
                    app.launch_delay = LaunchDelay::default();
                }
            }
            Event::CallbackSubscribed(e) => {
                self.callbacks.insert(e.callback_url.clone(), envelope.seq);
            }
            Event::CallbackUnsubscribed(e) => {
                self.callbacks.remove(&e.callback_url);
            }
        }
        self.seq = envelope.seq;
    }

    fn record_status(&mut self, e: &TaskStatusRecorded, at: u64) {
        if !self.tasks.contains_key(&e.task) {
            if e.condition.is_terminal() {
                // The end of a task nobody knows: nothing to remember.
                return;
            }
            // Mesos knows a task we do not: keep it so the reconciler can
            // kill it.
            let orphan = Task {
                app: e.app.clone(),
                app_version: 0,
                agent: e.agent.clone(),
                host: String::new(),
                ports: Vec::new(),
                condition: e.condition,
                mesos_state: None,
                message: None,
                staged_at: at,
                started_at: None,
                healthy: None,
                kill_requested: false,
                last_status_uuid: None,
                unreachable_since: None,
                draining: false,
                drain_seq: Seq(0),
                drain_at: 0,
            };
            self.insert_task(e.task.clone(), orphan);
        }
        let newly_terminal = self.update_task(&e.task, |task| {
            let newly_terminal = e.condition.is_terminal() && !task.condition.is_terminal();
            task.condition = e.condition;
            task.mesos_state = Some(e.mesos_state.clone());
            task.message = e.message.clone();
            if e.agent.is_some() {
                task.agent = e.agent.clone();
            }
            if e.healthy.is_some() {
                task.healthy = e.healthy;
            }
            if e.condition == Condition::Running && task.started_at.is_none() {
                task.started_at = Some(at);
            }
            if e.status_uuid.is_some() {
                task.last_status_uuid = e.status_uuid.clone();
            }
            task.unreachable_since = match e.condition {
                Condition::Unreachable => task.unreachable_since.or(Some(at)),
                _ => None,
            };
            newly_terminal
        });
        if newly_terminal != Some(true) {
            return;
        }
        let Some(task) = self.tasks.get(&e.task).cloned() else {
            return;
        };
        let Some(owner) = &task.app else {
            // An orphan that ended: nobody owns it, nothing to remember.
            self.remove_task(&e.task);
            return;
        };
        if let Some(app) = self.app_mut(owner) {
            app.task_ended(&e.task, &task, at);
        }
    }

    fn new_version(&mut self, id: &AppId, definition: AppSpec, at: u64, config_change: bool) {
        if let Some(old) = self.apps.get(id).map(|app| app.definition.clone()) {
            self.index_service_ports(id, &old, false);
            self.index_service_ports(id, &definition, true);
        }
        if let Some(app) = self.app_mut(id) {
            app.version = at;
            if config_change {
                app.config_version = at;
                // A new version starts without its predecessor's backoff.
                app.launch_delay = LaunchDelay::default();
            }
            app.versions.push(AppVersion {
                version: at,
                definition: definition.clone(),
            });
            app.definition = definition;
        }
    }

    /// Adds (or removes) `app`'s claim on the service ports `definition`
    /// declares; port 0 (not yet assigned) claims nothing.
    fn index_service_ports(&mut self, app: &AppId, definition: &AppSpec, claim: bool) {
        for (_, port) in definition.service_ports() {
            if port == 0 {
                continue;
            }
            if claim {
                self.service_ports
                    .entry(port)
                    .or_default()
                    .insert(app.clone());
            } else if let Some(owners) = self.service_ports.get_mut(&port) {
                owners.remove(app);
                if owners.is_empty() {
                    self.service_ports.remove(&port);
                }
            }
        }
    }

    /// Changes a task, in both maps that hold it.
    fn update_task<R>(&mut self, id: &TaskId, change: impl FnOnce(&mut Task) -> R) -> Option<R> {
        let shared = self.tasks.get_mut(id)?;
        let result = change(Arc::make_mut(shared));
        let changed = shared.clone();
        let of_app = changed
            .app
            .as_ref()
            .and_then(|app| self.tasks_by_app.get_mut(app));
        if let Some(of_app) = of_app {
            of_app.insert(id.clone(), changed);
        }
        Some(result)
    }

    fn app_mut(&mut self, id: &AppId) -> Option<&mut App> {
        self.apps.get_mut(id).map(Arc::make_mut)
    }

    fn insert_task(&mut self, id: TaskId, task: Task) {
        // A task id launched again (for another app, even) replaces it.
        self.remove_task(&id);
        let task = Arc::new(task);
        if let Some(app) = &task.app {
            self.tasks_by_app
                .entry(app.clone())
                .or_default()
                .insert(id.clone(), task.clone());
        }
        self.tasks.insert(id, task);
    }

    /// Rebuilds `tasks_by_app` from `tasks`, as after decoding a snapshot.
    pub fn index_tasks(&mut self) {
        self.tasks_by_app = OrdMap::new();
        for (id, task) in &self.tasks {
            if let Some(app) = &task.app {
                self.tasks_by_app
                    .entry(app.clone())
                    .or_default()
                    .insert(id.clone(), task.clone());
            }
        }
    }

    fn remove_task(&mut self, id: &TaskId) {
        let Some(task) = self.tasks.remove(id) else {
            return;
        };
        if let Some(app) = &task.app {
            if let Some(of_app) = self.tasks_by_app.get_mut(app) {
                of_app.remove(id);
                if of_app.is_empty() {
                    self.tasks_by_app.remove(app);
                }
            }
        }
    }

    /// The tasks of one app, in id order.
    pub fn tasks_of<'a>(&'a self, app: &AppId) -> impl Iterator<Item = (&'a TaskId, &'a Task)> {
        self.shared_tasks_of(app).map(|(id, task)| (id, &**task))
    }

    fn shared_tasks_of<'a>(
        &'a self,
        app: &AppId,
    ) -> impl Iterator<Item = (&'a TaskId, &'a Arc<Task>)> {
        self.tasks_by_app.get(app).into_iter().flatten()
    }
}

impl App {
    fn new(definition: AppSpec, at: u64) -> App {
        App {
            versions: vec![AppVersion {
                version: at,
                definition: definition.clone(),
            }],
            definition,
            version: at,
            config_version: at,
            launch_delay: LaunchDelay::default(),
            last_failure: None,
        }
    }

    /// A task of this app ended. Unless Stride asked for it, that is a
    /// failure: remembered, and (for the current version) backed off.
    fn task_ended(&mut self, id: &TaskId, task: &Task, at: u64) {
        if task.kill_requested {
            return;
        }
        if matches!(task.condition, Condition::Failed | Condition::Error) {
            self.last_failure = Some(TaskFailure {
                task: id.clone(),
                host: task.host.clone(),
                agent: task.agent.clone(),
                mesos_state: task.mesos_state.clone().unwrap_or_default(),
                message: task.message.clone(),
                at,
                app_version: task.app_version,
            });
        }
        if task.app_version >= self.config_version {
            self.launch_delay.failed(&self.definition, at);
        }
    }
}
