//! The projection: current state, a pure fold of the log.
//!
//! `apply` is deterministic and never fails: events are facts, so an event
//! about something unknown is recorded as best it can be, never rejected.

mod load;
mod shared;
pub mod snapshot;

pub(crate) use load::progress_bar;
pub use load::{LoadError, load};
pub use shared::Projection;

use crate::event::app::AppSpec;
use crate::event::{
    AgentId, AppId, DeploymentId, DeploymentKind, Envelope, Event, FrameworkId, Seq, TaskId,
};
use crate::mesos::condition::Condition;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The last event applied.
    pub seq: Seq,
    pub apps: BTreeMap<AppId, App>,
    pub tasks: BTreeMap<TaskId, Task>,
    pub tasks_by_app: BTreeMap<AppId, BTreeSet<TaskId>>,
    pub deployments: BTreeMap<DeploymentId, Deployment>,
    pub framework: Option<FrameworkId>,
    /// Event subscriptions: callback URL -> the seq that subscribed it.
    pub callbacks: BTreeMap<String, Seq>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub definition: AppSpec,
    /// When the current version was recorded (unix µs): Marathon's `version`.
    pub version: u64,
    /// When the definition last changed other than by scaling.
    pub config_version: u64,
    /// Every version, oldest first.
    pub versions: Vec<AppVersion>,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub app: AppId,
    pub kind: DeploymentKind,
    pub steps: u32,
    pub steps_finished: u32,
    pub started_at: u64,
}

impl State {
    pub fn apply(&mut self, envelope: &Envelope) {
        let at = envelope.recorded_at;
        match &envelope.event {
            Event::AppCreated(e) => {
                self.apps
                    .insert(e.app.clone(), App::new(e.definition.clone(), at));
            }
            Event::AppUpdated(e) => self.new_version(&e.app, e.definition.clone(), at, true),
            Event::AppScaled(e) => {
                if let Some(app) = self.apps.get(&e.app) {
                    let mut definition = (*app.definition).clone();
                    definition.instances = e.instances;
                    self.new_version(&e.app, AppSpec::new(definition), at, false);
                }
            }
            Event::AppDeleted(e) => {
                self.apps.remove(&e.app);
            }
            Event::DeploymentStarted(e) => {
                self.deployments.insert(
                    e.deployment,
                    Deployment {
                        app: e.app.clone(),
                        kind: e.kind,
                        steps: e.steps,
                        steps_finished: 0,
                        started_at: at,
                    },
                );
            }
            Event::DeploymentStepFinished(e) => {
                if let Some(d) = self.deployments.get_mut(&e.deployment) {
                    d.steps_finished = d.steps_finished.max(e.step);
                }
            }
            Event::DeploymentFinished(e) => {
                self.deployments.remove(&e.deployment);
            }
            Event::DeploymentFailed(e) => {
                self.deployments.remove(&e.deployment);
            }
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
                };
                self.insert_task(e.task.clone(), task);
            }
            Event::TaskStatusRecorded(e) => {
                if !self.tasks.contains_key(&e.task) {
                    // Mesos knows a task we do not: keep it so the
                    // reconciler can kill it.
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
                    };
                    self.insert_task(e.task.clone(), orphan);
                }
                if let Some(task) = self.tasks.get_mut(&e.task) {
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
                }
            }
            Event::TaskKillRequested(e) => {
                if let Some(task) = self.tasks.get_mut(&e.task) {
                    task.kill_requested = true;
                }
            }
            Event::TaskExpunged(e) => {
                if let Some(task) = self.tasks.remove(&e.task) {
                    if let Some(app) = task.app {
                        if let Some(set) = self.tasks_by_app.get_mut(&app) {
                            set.remove(&e.task);
                            if set.is_empty() {
                                self.tasks_by_app.remove(&app);
                            }
                        }
                    }
                }
            }
            Event::HealthChanged(e) => {
                if let Some(task) = self.tasks.get_mut(&e.task) {
                    task.healthy = Some(e.healthy);
                }
            }
            Event::FrameworkSubscribed(e) => {
                self.framework = Some(e.framework.clone());
            }
            // Launch backoff is the reconciler's to keep; it reads this event.
            Event::LaunchDelayReset(_) => {}
            Event::CallbackSubscribed(e) => {
                self.callbacks.insert(e.callback_url.clone(), envelope.seq);
            }
            Event::CallbackUnsubscribed(e) => {
                self.callbacks.remove(&e.callback_url);
            }
        }
        self.seq = envelope.seq;
    }

    fn new_version(&mut self, app: &AppId, definition: AppSpec, at: u64, config_change: bool) {
        if let Some(app) = self.apps.get_mut(app) {
            app.version = at;
            if config_change {
                app.config_version = at;
            }
            app.versions.push(AppVersion {
                version: at,
                definition: definition.clone(),
            });
            app.definition = definition;
        }
    }

    fn insert_task(&mut self, id: TaskId, task: Task) {
        if let Some(app) = &task.app {
            self.tasks_by_app
                .entry(app.clone())
                .or_default()
                .insert(id.clone());
        }
        self.tasks.insert(id, task);
    }

    /// The tasks of one app, in id order.
    pub fn tasks_of<'a>(&'a self, app: &AppId) -> impl Iterator<Item = (&'a TaskId, &'a Task)> {
        self.tasks_by_app
            .get(app)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get_key_value(id))
    }

    /// The deployment currently running for `app`, if any.
    pub fn deployment_of(&self, app: &AppId) -> Option<(&DeploymentId, &Deployment)> {
        self.deployments.iter().find(|(_, d)| &d.app == app)
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
        }
    }
}
