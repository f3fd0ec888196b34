//! `scheduler.proto` `Call`: what a framework sends to the master.
//!
//! On the wire a call is `{"type":"ACCEPT","framework_id":{..},"accept":{..}}`.
//! In Rust it is a `Call` holding a `CallKind`, so a payload can never be
//! missing or mismatched with its type.

use serde::{Deserialize, Serialize};

use super::{
    AgentId, Base64Bytes, FrameworkId, KillPolicy, Labels, MissingPayload, OfferId, OperationId,
    TaskId, TaskInfo, require, string_enum,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WireCall", into = "WireCall")]
pub struct Call {
    /// Absent only on a first SUBSCRIBE.
    pub framework_id: Option<FrameworkId>,
    pub kind: CallKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CallKind {
    Subscribe(Box<Subscribe>),
    Teardown,
    Accept(Accept),
    Decline(Decline),
    Revive(Roles),
    Suppress(Roles),
    Kill(Kill),
    Acknowledge(Acknowledge),
    Reconcile(Reconcile),
    /// A call type this build does not model; the master answers 501 to
    /// truly unknown ones.
    Unknown(String),
}

impl CallKind {
    /// The wire `type`, e.g. `ACCEPT`.
    pub fn type_name(&self) -> &str {
        match self {
            CallKind::Subscribe(_) => "SUBSCRIBE",
            CallKind::Teardown => "TEARDOWN",
            CallKind::Accept(_) => "ACCEPT",
            CallKind::Decline(_) => "DECLINE",
            CallKind::Revive(_) => "REVIVE",
            CallKind::Suppress(_) => "SUPPRESS",
            CallKind::Kill(_) => "KILL",
            CallKind::Acknowledge(_) => "ACKNOWLEDGE",
            CallKind::Reconcile(_) => "RECONCILE",
            CallKind::Unknown(name) => name,
        }
    }
}

string_enum!(
    FrameworkCapabilityType {
        PartitionAware = "PARTITION_AWARE",
        TaskKillingState = "TASK_KILLING_STATE",
        MultiRole = "MULTI_ROLE",
        GpuResources = "GPU_RESOURCES",
        RevocableResources = "REVOCABLE_RESOURCES",
        SharedResources = "SHARED_RESOURCES",
        RegionAware = "REGION_AWARE",
        ReservationRefinement = "RESERVATION_REFINEMENT",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameworkCapability {
    #[serde(rename = "type")]
    pub kind: FrameworkCapabilityType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkInfo {
    pub user: String,
    pub name: String,
    /// Set when resubscribing, to reclaim the framework and its tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<FrameworkId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<bool>,
    /// Single-role frameworks only; with MULTI_ROLE use `roles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webui_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<FrameworkCapability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribe {
    pub framework_info: FrameworkInfo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Filters {
    /// How long the master holds back the declined resources (default 5 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_seconds: Option<f64>,
}

string_enum!(
    OperationType {
        Launch = "LAUNCH",
        LaunchGroup = "LAUNCH_GROUP",
        Reserve = "RESERVE",
        Unreserve = "UNRESERVE",
        Create = "CREATE",
        Destroy = "DESTROY",
    }
);

/// `Offer.Operation`. Only LAUNCH is modelled; others keep their type name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    #[serde(rename = "type")]
    pub kind: OperationType,
    /// Only for operations whose status the framework wants reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<OperationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
}

impl Operation {
    pub fn launch(task_infos: Vec<TaskInfo>) -> Self {
        Self {
            kind: OperationType::Launch,
            id: None,
            launch: Some(Launch { task_infos }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    pub task_infos: Vec<TaskInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accept {
    pub offer_ids: Vec<OfferId>,
    #[serde(default)]
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decline {
    pub offer_ids: Vec<OfferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// Payload of REVIVE and SUPPRESS; an empty list means every role.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Roles {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kill {
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// Overrides the task's own kill policy for this kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledge {
    pub agent_id: AgentId,
    pub task_id: TaskId,
    pub uuid: Base64Bytes,
}

/// Explicit reconciliation lists tasks; an empty list asks for all of them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reconcile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<ReconcileTask>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileTask {
    pub task_id: TaskId,
    /// Speeds up the answer while agents re-register after a failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
}

/// The proto's flat shape: `type` plus one optional field per call type.
#[derive(Serialize, Deserialize)]
struct WireCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    framework_id: Option<FrameworkId>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subscribe: Option<Subscribe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accept: Option<Accept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decline: Option<Decline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revive: Option<Roles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    suppress: Option<Roles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kill: Option<Kill>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acknowledge: Option<Acknowledge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reconcile: Option<Reconcile>,
}

fn has_roles(payload: &Roles) -> bool {
    !payload.roles.is_empty()
}

impl TryFrom<WireCall> for Call {
    type Error = MissingPayload;

    fn try_from(wire: WireCall) -> Result<Self, MissingPayload> {
        let name = wire.kind.as_str();
        let kind = match name {
            "SUBSCRIBE" => {
                CallKind::Subscribe(Box::new(require(wire.subscribe, name, "subscribe")?))
            }
            "TEARDOWN" => CallKind::Teardown,
            "ACCEPT" => CallKind::Accept(require(wire.accept, name, "accept")?),
            "DECLINE" => CallKind::Decline(require(wire.decline, name, "decline")?),
            // Mesos accepts REVIVE/SUPPRESS without a payload (all roles).
            "REVIVE" => CallKind::Revive(wire.revive.unwrap_or_default()),
            "SUPPRESS" => CallKind::Suppress(wire.suppress.unwrap_or_default()),
            "KILL" => CallKind::Kill(require(wire.kill, name, "kill")?),
            "ACKNOWLEDGE" => CallKind::Acknowledge(require(wire.acknowledge, name, "acknowledge")?),
            "RECONCILE" => CallKind::Reconcile(wire.reconcile.unwrap_or_default()),
            _ => CallKind::Unknown(wire.kind.clone()),
        };
        Ok(Call {
            framework_id: wire.framework_id,
            kind,
        })
    }
}

impl From<Call> for WireCall {
    fn from(call: Call) -> Self {
        let mut wire = WireCall {
            framework_id: call.framework_id,
            kind: call.kind.type_name().to_string(),
            subscribe: None,
            accept: None,
            decline: None,
            revive: None,
            suppress: None,
            kill: None,
            acknowledge: None,
            reconcile: None,
        };
        match call.kind {
            CallKind::Subscribe(payload) => wire.subscribe = Some(*payload),
            CallKind::Accept(payload) => wire.accept = Some(payload),
            CallKind::Decline(payload) => wire.decline = Some(payload),
            // "All roles" is sent as no payload at all, as Mesos's own
            // clients do.
            CallKind::Revive(payload) => wire.revive = Some(payload).filter(has_roles),
            CallKind::Suppress(payload) => wire.suppress = Some(payload).filter(has_roles),
            CallKind::Kill(payload) => wire.kill = Some(payload),
            CallKind::Acknowledge(payload) => wire.acknowledge = Some(payload),
            CallKind::Reconcile(payload) => wire.reconcile = Some(payload),
            CallKind::Teardown | CallKind::Unknown(_) => {}
        }
        wire
    }
}
