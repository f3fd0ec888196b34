//! Events: past-tense facts, the only thing Stride stores.
//!
//! Each variant wraps a payload struct; the codec stores the payload under a
//! stable kind number (see `codec.rs`), never the enum index, so variants may
//! be added in any order. Payloads must stay bincode-1 friendly: no tagged,
//! untagged or flattened enums, no `skip_serializing_if`, no `serde_json::Value`.

pub mod app;
pub mod condition;
mod envelope;
pub mod ids;
pub mod json;

pub use envelope::{Actor, Envelope, Seq};
pub use ids::{AgentId, AppId, DeploymentId, FrameworkId, TaskId};

use app::AppSpec;
use condition::Condition;
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
    DeploymentPlanned(DeploymentPlanned),
    GroupUpdated(GroupUpdated),
    GroupDeleted(GroupDeleted),
    LeaderElected(LeaderElected),
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

/// Why a deployment was started. Stored: new variants go at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentKind {
    Create,
    Update,
    Scale,
    Restart,
    Delete,
    Rollback,
    /// A change made through `/v2/groups` or to several apps at once.
    Group,
}

/// A one-app deployment as the first store format wrote it; Stride now
/// writes `DeploymentPlanned`. Its steps follow from `kind`
/// (`DeploymentPlanned::steps_of_kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStarted {
    pub deployment: DeploymentId,
    pub app: AppId,
    pub kind: DeploymentKind,
    pub steps: u32,
}

/// What a deployment step does to an app, in Marathon's words
/// (`StartApplication`, ...). Stored: new variants go at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentAction {
    Start,
    Stop,
    Scale,
    Restart,
}

impl DeploymentAction {
    pub fn marathon_name(self) -> &'static str {
        match self {
            DeploymentAction::Start => "StartApplication",
            DeploymentAction::Stop => "StopApplication",
            DeploymentAction::Scale => "ScaleApplication",
            DeploymentAction::Restart => "RestartApplication",
        }
    }
}

/// One step of a deployment: its actions run together.
pub type DeploymentStep = Vec<(AppId, DeploymentAction)>;

/// A deployment and its plan, as Marathon computes one: stop removed apps,
/// start new ones, then scale or restart the rest in dependency order.
/// Steps run one after another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentPlanned {
    pub deployment: DeploymentId,
    pub kind: DeploymentKind,
    /// What the deployment is about, as in the other deployment events and
    /// for the audit index: its one app, or the group the change was made
    /// at.
    pub app: AppId,
    /// The group the change was made at (Marathon's `group_change_success`).
    pub group: AppId,
    pub steps: Vec<DeploymentStep>,
}

impl DeploymentStarted {
    /// The plan Marathon makes for a one-app change of this kind.
    pub fn steps(&self) -> Vec<DeploymentStep> {
        let one = |action| vec![(self.app.clone(), action)];
        match self.kind {
            DeploymentKind::Create => {
                vec![one(DeploymentAction::Start), one(DeploymentAction::Scale)]
            }
            DeploymentKind::Scale => vec![one(DeploymentAction::Scale)],
            DeploymentKind::Delete => vec![one(DeploymentAction::Stop)],
            DeploymentKind::Update
            | DeploymentKind::Restart
            | DeploymentKind::Rollback
            | DeploymentKind::Group => vec![one(DeploymentAction::Restart)],
        }
    }
}

/// A group was created or its dependencies set (groups are created as
/// needed for apps too, without an event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupUpdated {
    pub group: AppId,
    pub dependencies: Vec<AppId>,
}

/// A group and every group under it are gone; the apps under it are deleted
/// by their own events, before this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDeleted {
    pub group: AppId,
}

/// An instance won the election (high availability, `--zk`). Its epoch,
/// derived from ZooKeeper, grows with every win; every batch it writes to
/// the replicated log checks it, so a deposed leader writes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderElected {
    pub epoch: u64,
    /// The instance's id (`--zk-instance`, or its data directory's).
    pub instance: String,
    /// Where it serves its API.
    pub url: String,
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

/// How the reason of a kill for failed health checks begins: Marathon
/// clients are told of those kills (`unhealthy_instance_kill_event`).
pub const UNHEALTHY_KILL_REASON: &str = "health check failed";

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
            Event::DeploymentPlanned(e) => Some(&e.app),
            Event::GroupUpdated(e) => Some(&e.group),
            Event::GroupDeleted(e) => Some(&e.group),
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
            | Event::LeaderElected(_)
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
