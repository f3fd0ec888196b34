//! Events: past-tense facts, the only thing Stride stores.
//!
//! Each variant wraps a payload struct; the codec stores the payload under a
//! stable kind number (see `codec.rs`), never the enum index, so variants may
//! be added in any order. Payloads must stay bincode-1 friendly: no tagged,
//! untagged or flattened enums, no `skip_serializing_if`, no `serde_json::Value`.

pub mod app;
mod envelope;
pub mod ids;
pub mod json;

pub use envelope::{Actor, Envelope, Seq};
pub use ids::{AgentId, AppId, DeploymentId, FrameworkId, TaskId};

use crate::mesos::condition::Condition;
use app::AppSpec;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    AppCreated(AppCreated),
    AppUpdated(AppUpdated),
    AppScaled(AppScaled),
    AppDeleted(AppDeleted),
    DeploymentStarted(DeploymentStarted),
    DeploymentStepFinished(DeploymentStepFinished),
    DeploymentFinished(DeploymentFinished),
    DeploymentFailed(DeploymentFailed),
    TaskLaunchRequested(TaskLaunchRequested),
    TaskStatusRecorded(TaskStatusRecorded),
    TaskKillRequested(TaskKillRequested),
    TaskExpunged(TaskExpunged),
    HealthChanged(HealthChanged),
    FrameworkSubscribed(FrameworkSubscribed),
    LaunchDelayReset(LaunchDelayReset),
    CallbackSubscribed(CallbackSubscribed),
    CallbackUnsubscribed(CallbackUnsubscribed),
    TaskDraining(TaskDraining),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppCreated {
    pub app: AppId,
    pub definition: AppSpec,
}

/// A new version of an app's definition; `previous` answers "from what".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppUpdated {
    pub app: AppId,
    pub previous: AppSpec,
    pub definition: AppSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppScaled {
    pub app: AppId,
    pub previous: u32,
    pub instances: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppDeleted {
    pub app: AppId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentKind {
    Create,
    Update,
    Scale,
    Restart,
    Delete,
    Rollback,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStarted {
    pub deployment: DeploymentId,
    pub app: AppId,
    pub kind: DeploymentKind,
    pub steps: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStepFinished {
    pub deployment: DeploymentId,
    pub app: AppId,
    pub step: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentFinished {
    pub deployment: DeploymentId,
    pub app: AppId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentFailed {
    pub deployment: DeploymentId,
    pub app: AppId,
    pub reason: String,
}

/// Intent before action: durable before the ACCEPT goes to Mesos, so after a
/// crash Stride knows every task that may exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLaunchRequested {
    pub task: TaskId,
    pub app: AppId,
    /// The app version (its `recorded_at`) the task runs.
    pub app_version: u64,
    pub agent: AgentId,
    pub host: String,
    pub ports: Vec<u32>,
    pub offer: String,
}

/// A Mesos status update, recorded before it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatusRecorded {
    pub task: TaskId,
    /// `None` when Mesos reports a task no app owns.
    pub app: Option<AppId>,
    pub condition: Condition,
    /// The raw Mesos state name, e.g. `TASK_RUNNING`.
    pub mesos_state: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub agent: Option<AgentId>,
    pub healthy: Option<bool>,
    /// The update's uuid; `None` for reconciliation answers.
    pub status_uuid: Option<Vec<u8>>,
    /// Mesos's timestamp, in unix microseconds.
    pub mesos_timestamp: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskKillRequested {
    pub task: TaskId,
    pub app: AppId,
    pub reason: String,
}

/// The task is about to be stopped: load balancers take it out of rotation
/// now, and the kill waits until they say they have (or a timeout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDraining {
    pub task: TaskId,
    pub app: AppId,
    pub reason: String,
}

/// The task is forgotten: terminal and no longer worth keeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskExpunged {
    pub task: TaskId,
    pub app: AppId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthChanged {
    pub task: TaskId,
    pub app: AppId,
    pub healthy: bool,
    pub cause: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameworkSubscribed {
    pub framework: FrameworkId,
    pub master: String,
}

/// An operator cleared the app's launch backoff: the next launch may go now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchDelayReset {
    pub app: AppId,
}

/// An HTTP endpoint that gets every event from here on, Marathon-style
/// (`POST /v2/eventSubscriptions`). Delivery starts at this event's seq.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackSubscribed {
    pub callback_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackUnsubscribed {
    pub callback_url: String,
}

impl Event {
    /// The variant name, as the stream and audit queries show it.
    pub fn type_name(&self) -> &'static str {
        self.kind().name()
    }

    /// The app this event is about, for the audit index.
    pub fn app(&self) -> Option<&AppId> {
        match self {
            Event::AppCreated(e) => Some(&e.app),
            Event::AppUpdated(e) => Some(&e.app),
            Event::AppScaled(e) => Some(&e.app),
            Event::AppDeleted(e) => Some(&e.app),
            Event::DeploymentStarted(e) => Some(&e.app),
            Event::DeploymentStepFinished(e) => Some(&e.app),
            Event::DeploymentFinished(e) => Some(&e.app),
            Event::DeploymentFailed(e) => Some(&e.app),
            Event::TaskLaunchRequested(e) => Some(&e.app),
            Event::TaskStatusRecorded(e) => e.app.as_ref(),
            Event::TaskKillRequested(e) => Some(&e.app),
            Event::TaskDraining(e) => Some(&e.app),
            Event::TaskExpunged(e) => Some(&e.app),
            Event::HealthChanged(e) => Some(&e.app),
            Event::LaunchDelayReset(e) => Some(&e.app),
            Event::FrameworkSubscribed(_)
            | Event::CallbackSubscribed(_)
            | Event::CallbackUnsubscribed(_) => None,
        }
    }

    /// The task this event is about, for the audit index.
    pub fn task(&self) -> Option<&TaskId> {
        match self {
            Event::TaskLaunchRequested(e) => Some(&e.task),
            Event::TaskStatusRecorded(e) => Some(&e.task),
            Event::TaskKillRequested(e) => Some(&e.task),
            Event::TaskDraining(e) => Some(&e.task),
            Event::TaskExpunged(e) => Some(&e.task),
            Event::HealthChanged(e) => Some(&e.task),
            _ => None,
        }
    }
}

pub use kind::Kind;
mod kind;
