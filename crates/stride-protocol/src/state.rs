//! The `GET /v1/state` document: what a follower needs to fold the stream
//! into (every app with its definition, every task, the framework id), as
//! of a seq. Its own types, apart from `projection::State` (which is also
//! the snapshot format and changes shape freely), so a change inside Stride
//! does not change what followers read.
//!
//! Version 1. Fields are only added within a version, each with a default
//! so that a document without it reads; readers ignore fields they do not
//! know. Anything else (a field removed, renamed or given another meaning)
//! is a new version, which readers of this one refuse by name.

use crate::event::app::AppSpec;
use crate::event::condition::Condition;
use crate::event::{AgentId, AppId, FrameworkId, Seq, TaskId};
use crate::projection::{self, AppVersion, LaunchDelay, State};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateDocument {
    pub version: u32,
    /// The last event the state reflects: follow the stream from the next.
    pub seq: Seq,
    pub state: StateView,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateView {
    pub apps: BTreeMap<AppId, AppView>,
    pub tasks: BTreeMap<TaskId, TaskView>,
    pub framework: Option<FrameworkId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppView {
    /// Marathon's app definition.
    pub definition: AppSpec,
    /// When the current version was recorded (unix µs).
    pub version: u64,
    /// When the definition last changed other than by scaling.
    pub config_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    pub app: Option<AppId>,
    pub app_version: u64,
    pub agent: Option<AgentId>,
    pub host: String,
    pub ports: Vec<u32>,
    /// A condition a newer server knows and this build does not reads as
    /// `Unknown`: never in rotation.
    #[serde(deserialize_with = "condition_or_unknown")]
    pub condition: Condition,
    pub mesos_state: Option<String>,
    pub message: Option<String>,
    /// Unix µs, as every time here.
    pub staged_at: u64,
    pub started_at: Option<u64>,
    /// `None` until a health check has a verdict.
    pub healthy: Option<bool>,
    pub kill_requested: bool,
    pub unreachable_since: Option<u64>,
    /// Out of load-balancer rotation until killed.
    pub draining: bool,
    /// The seq of the `TaskDraining` event.
    pub drain_seq: Seq,
    pub drain_at: u64,
}

fn condition_or_unknown<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Condition, D::Error> {
    let name = String::deserialize(deserializer)?;
    let quoted = serde_json::Value::String(name);
    Ok(serde_json::from_value(quoted).unwrap_or(Condition::Unknown))
}

#[derive(Debug, thiserror::Error)]
#[error(
    "Stride serves /v1/state version {served}; this build reads version {STATE_VERSION}: upgrade it"
)]
pub struct UnknownVersion {
    pub served: u32,
}

impl StateDocument {
    pub fn of(state: &State) -> StateDocument {
        let apps = state.apps.iter().map(|(id, app)| {
            let view = AppView {
                definition: app.definition.clone(),
                version: app.version,
                config_version: app.config_version,
            };
            (id.clone(), view)
        });
        let tasks = state
            .tasks
            .iter()
            .map(|(id, task)| (id.clone(), TaskView::of(task)));
        StateDocument {
            version: STATE_VERSION,
            seq: state.seq,
            state: StateView {
                apps: apps.collect(),
                tasks: tasks.collect(),
                framework: state.framework.clone(),
            },
        }
    }

    /// The state a follower folds the stream's events into.
    pub fn into_state(self) -> Result<State, UnknownVersion> {
        if self.version != STATE_VERSION {
            return Err(UnknownVersion {
                served: self.version,
            });
        }
        let StateView {
            apps,
            tasks,
            framework,
        } = self.state;
        let apps = apps.into_iter().map(|(id, app)| (id, app.into_app()));
        let tasks = tasks.into_iter().map(|(id, task)| (id, task.into_task()));
        let mut state = State::of_apps_and_tasks(self.seq, apps, tasks);
        state.framework = framework;
        Ok(state)
    }
}

impl AppView {
    /// Its history is not in the document: the current version stands for it.
    fn into_app(self) -> projection::App {
        projection::App {
            versions: vec![AppVersion {
                version: self.version,
                definition: self.definition.clone(),
            }],
            definition: self.definition,
            version: self.version,
            config_version: self.config_version,
            launch_delay: LaunchDelay::default(),
            last_failure: None,
        }
    }
}

impl TaskView {
    fn of(task: &projection::Task) -> TaskView {
        TaskView {
            app: task.app.clone(),
            app_version: task.app_version,
            agent: task.agent.clone(),
            host: task.host.clone(),
            ports: task.ports.clone(),
            condition: task.condition,
            mesos_state: task.mesos_state.clone(),
            message: task.message.clone(),
            staged_at: task.staged_at,
            started_at: task.started_at,
            healthy: task.healthy,
            kill_requested: task.kill_requested,
            unreachable_since: task.unreachable_since,
            draining: task.draining,
            drain_seq: task.drain_seq,
            drain_at: task.drain_at,
        }
    }

    fn into_task(self) -> projection::Task {
        projection::Task {
            app: self.app,
            app_version: self.app_version,
            agent: self.agent,
            host: self.host,
            ports: self.ports,
            condition: self.condition,
            mesos_state: self.mesos_state,
            message: self.message,
            staged_at: self.staged_at,
            started_at: self.started_at,
            healthy: self.healthy,
            kill_requested: self.kill_requested,
            last_status_uuid: None,
            unreachable_since: self.unreachable_since,
            draining: self.draining,
            drain_seq: self.drain_seq,
            drain_at: self.drain_at,
        }
    }
}
