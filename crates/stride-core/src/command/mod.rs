//! Commands: what callers ask for, validated and decided (`decide`, pure)
//! into the events they cause. The committer (in the `stride` crate)
//! appends, syncs, applies and publishes them, then replies.

mod decide;
mod ports;
mod validate;

pub use decide::decide;
pub use ports::{PortRange, PortRangeError};
pub use validate::error_pointer;

use crate::event::app::AppDefinition;
use crate::event::condition::Condition;
use crate::event::{AgentId, AppId, DeploymentId, Envelope, FrameworkId, TaskId};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    CreateApp(AppDefinition),
    /// Replaces an app's definition, or creates the app.
    UpdateApp {
        definition: AppDefinition,
        force: bool,
    },
    /// Merges the given top-level fields into the app's definition
    /// (Marathon's partial update); with `create`, a missing app is created
    /// from them.
    PatchApp {
        app: AppId,
        /// Commands are never stored, so a JSON object is fine here.
        patch: serde_json::Map<String, serde_json::Value>,
        force: bool,
        create: bool,
    },
    /// Several apps changed in one deployment (`PUT`/`PATCH /v2/apps`).
    UpdateApps {
        updates: Vec<AppUpdate>,
        force: bool,
    },
    /// Makes an earlier version (its `recorded_at`) the current one.
    RevertApp {
        app: AppId,
        version: u64,
        force: bool,
    },
    /// Replaces every task by making a new version of the same definition.
    RestartApp {
        app: AppId,
        force: bool,
    },
    DeleteApp {
        app: AppId,
        force: bool,
    },
    /// Kills tasks of one app; with `scale` the app also shrinks by as many
    /// instances as tasks were killed.
    KillTasks {
        app: AppId,
        which: TaskSelection,
        scale: bool,
        force: bool,
    },
    /// Kills tasks of any apps by id (`POST /v2/tasks/delete`); ids of no
    /// known task are ignored, as in Marathon.
    KillTasksById {
        tasks: Vec<TaskId>,
        scale: bool,
        force: bool,
    },
    /// A new group (`POST /v2/groups`); 409 if it exists.
    CreateGroup {
        group: GroupUpdate,
        force: bool,
    },
    /// Creates or restructures a group (`PUT /v2/groups/{id}`).
    UpdateGroup {
        group: GroupUpdate,
        force: bool,
    },
    /// Multiplies the instances of every app under a group, rounding up.
    ScaleGroup {
        group: AppId,
        by: f64,
        force: bool,
    },
    /// Removes a group with everything under it (the root: everything).
    DeleteGroup {
        group: AppId,
        force: bool,
    },
    /// `force` just stops the deployment; otherwise a new deployment rolls
    /// its app back to the version before it.
    CancelDeployment {
        deployment: DeploymentId,
        force: bool,
    },
    /// Lets the app's next launch go now instead of after its backoff.
    ResetLaunchDelay {
        app: AppId,
    },
    RecordTaskStatus(TaskStatus),
    /// What the reconciler is about to do, recorded before it does it.
    RecordPlan(PlanIntents),
    /// A Stride-run health check's verdict on a task; only a change is
    /// recorded.
    RecordHealth {
        task: TaskId,
        healthy: bool,
        cause: Option<String>,
    },
    /// A task failed its health check `failures` times in a row: kill it
    /// (the reconciler replaces it).
    KillUnhealthyTask {
        task: TaskId,
        failures: u32,
        cause: String,
    },
    RecordFrameworkSubscribed {
        framework: FrameworkId,
        master: String,
    },
    SubscribeCallback {
        callback_url: String,
    },
    UnsubscribeCallback {
        callback_url: String,
    },
    /// A high-availability leader's first write: its epoch, recorded.
    RecordElection(crate::event::LeaderElected),
}

/// One app of `UpdateApps`.
#[derive(Debug, Clone, PartialEq)]
pub enum AppUpdate {
    /// A whole definition (`partialUpdate=false`).
    Replace(Box<AppDefinition>),
    /// Fields to merge; `create` allows a missing app to be created.
    Patch {
        app: AppId,
        patch: serde_json::Map<String, serde_json::Value>,
        create: bool,
    },
}

/// A group as `/v2/groups` takes one, ids resolved: each part given
/// replaces that part of the group; a part not given stays as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupUpdate {
    pub id: AppId,
    /// The apps directly in the group; any other app there is removed.
    pub apps: Option<Vec<AppDefinition>>,
    /// The groups directly in it; any other is removed with its contents.
    pub groups: Option<Vec<GroupUpdate>>,
    pub dependencies: Option<Vec<AppId>>,
}

/// Which of an app's tasks a kill is for. Chosen in `decide`, against the
/// state the kill applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskSelection {
    One(TaskId),
    /// Every live task, or only those on one host (`*`: on any host).
    All {
        host: Option<String>,
    },
}

/// What `decide` may depend on besides the state: fixed at start, so
/// deciding stays a pure function of its inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    pub service_ports: PortRange,
}

/// The reconciler's intentions. `decide` drops any that the state no
/// longer supports (an app scaled or deleted since the plan was made), and
/// the reconciler acts only on the events that come back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanIntents {
    pub launches: Vec<LaunchIntent>,
    pub kills: Vec<KillIntent>,
    /// Tasks to take out of load-balancer rotation before they are killed.
    pub drains: Vec<KillIntent>,
    pub expunges: Vec<TaskId>,
    /// Deployments whose steps are done up to the given count.
    pub finished: Vec<(DeploymentId, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchIntent {
    pub task: TaskId,
    pub app: AppId,
    /// The app's `version` the plan was made for.
    pub app_version: u64,
    pub agent: AgentId,
    pub host: String,
    pub ports: Vec<u32>,
    pub offer: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillIntent {
    pub task: TaskId,
    pub app: AppId,
    pub reason: String,
}

/// A status update as Mesos reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    pub task: TaskId,
    pub condition: Condition,
    pub mesos_state: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub agent: Option<AgentId>,
    pub healthy: Option<bool>,
    pub uuid: Option<Vec<u8>>,
    pub timestamp: Option<u64>,
}

/// Why a command caused no events; maps to a 4xx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    #[serde(skip)]
    pub kind: RejectionKind,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    Invalid,
    Conflict,
    NotFound,
}

/// Marathon's error detail: a JSON pointer and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub path: String,
    pub errors: Vec<String>,
}

impl Rejection {
    pub fn conflict(message: impl Into<String>) -> Rejection {
        Rejection {
            kind: RejectionKind::Conflict,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Rejection {
        Rejection {
            kind: RejectionKind::NotFound,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn invalid_field(path: String, error: String) -> Rejection {
        Rejection::invalid(vec![FieldError {
            path,
            errors: vec![error],
        }])
    }

    /// An `Idempotency-Key` reused for another request. Marathon has no such
    /// rule; Stride answers as for an invalid field, naming the header.
    pub fn reused_key() -> Rejection {
        Rejection {
            kind: RejectionKind::Invalid,
            message: "Idempotency-Key was already used for a different request \
                      (another method, path or body); use a new key"
                .into(),
            details: vec![FieldError {
                path: "Idempotency-Key".into(),
                errors: vec!["already used for a different request".into()],
            }],
        }
    }

    pub fn invalid(details: Vec<FieldError>) -> Rejection {
        Rejection {
            kind: RejectionKind::Invalid,
            message: "Object is not valid".to_owned(),
            details,
        }
    }
}

/// What a committed command produced, durable by the time the caller sees it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub command_id: Uuid,
    pub events: Vec<std::sync::Arc<Envelope>>,
    /// True when an `Idempotency-Key` matched an earlier command: nothing new
    /// was appended and `events` are that command's.
    pub replayed: bool,
}
