//! Commands: what callers ask for. One committer turns them into events
//! (`decide`, pure), appends, syncs, applies and publishes them, then replies.

mod committer;
mod decide;
mod validate;

pub use committer::{Committer, SubmitError};
pub use decide::decide;
pub use validate::validate_definition;

use crate::event::app::AppDefinition;
use crate::event::{AgentId, AppId, Envelope, FrameworkId, TaskId};
use crate::mesos::condition::Condition;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    CreateApp(AppDefinition),
    UpdateApp {
        definition: AppDefinition,
        force: bool,
    },
    ScaleApp {
        app: AppId,
        instances: u32,
        force: bool,
    },
    DeleteApp {
        app: AppId,
        force: bool,
    },
    RecordTaskStatus(TaskStatus),
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
