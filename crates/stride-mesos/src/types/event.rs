//! `scheduler.proto` `Event`: what the master streams to a framework.
//!
//! An event type this build does not know becomes `Event::Unknown` (to be
//! logged and ignored), never a parse error.

use serde::{Deserialize, Serialize};

use super::{
    AgentId, AllocationInfo, Attribute, Base64Bytes, ExecutorId, FrameworkId, MissingPayload,
    OfferId, OperationId, Resource, TaskStatus, require,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WireEvent", into = "WireEvent")]
pub enum Event {
    Subscribed(Subscribed),
    Offers(Offers),
    Rescind(Rescind),
    Update(Update),
    UpdateOperationStatus(UpdateOperationStatus),
    Message(Message),
    Failure(Failure),
    Error(ErrorEvent),
    Heartbeat,
    /// An event type this build does not model (e.g. INVERSE_OFFERS).
    Unknown(String),
}

impl Event {
    /// The wire `type`, e.g. `OFFERS`.
    pub fn type_name(&self) -> &str {
        match self {
            Event::Subscribed(_) => "SUBSCRIBED",
            Event::Offers(_) => "OFFERS",
            Event::Rescind(_) => "RESCIND",
            Event::Update(_) => "UPDATE",
            Event::UpdateOperationStatus(_) => "UPDATE_OPERATION_STATUS",
            Event::Message(_) => "MESSAGE",
            Event::Failure(_) => "FAILURE",
            Event::Error(_) => "ERROR",
            Event::Heartbeat => "HEARTBEAT",
            Event::Unknown(name) => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    pub framework_id: FrameworkId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_info: Option<MasterInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterInfo {
    pub id: String,
    /// IPv4 address packed in network byte order, as Mesos sends it.
    pub ip: u32,
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<MasterCapability>,
}

/// Mesos 1.11 sends `{}` for capabilities its JSON writer cannot name, so
/// the type is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterCapability {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub port: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Url {
    pub scheme: String,
    pub address: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offers {
    #[serde(default)]
    pub offers: Vec<Offer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub id: OfferId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    /// Executors of this framework already running on the agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executor_ids: Vec<ExecutorId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rescind {
    pub offer_id: OfferId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub status: TaskStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateOperationStatus {
    pub status: OperationStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<OperationId>,
    /// An `OperationState` name such as `OPERATION_FINISHED`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The resources after the operation, once `OPERATION_FINISHED`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub converted_resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// Present when the update must be acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<OperationUuid>,
}

/// `mesos.UUID`: unlike `TaskStatus.uuid` this one is a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationUuid {
    pub value: Base64Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub agent_id: AgentId,
    pub executor_id: ExecutorId,
    pub data: Base64Bytes,
}

/// An agent was removed, or (with `executor_id`) an executor exited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    /// The executor's exit status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub message: String,
}

/// The proto's flat shape: `type` plus one optional field per event type.
#[derive(Serialize, Deserialize)]
struct WireEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subscribed: Option<Subscribed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offers: Option<Offers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rescind: Option<Rescind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    update: Option<Update>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    update_operation_status: Option<UpdateOperationStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<ErrorEvent>,
}

impl TryFrom<WireEvent> for Event {
    type Error = MissingPayload;

    fn try_from(wire: WireEvent) -> Result<Self, MissingPayload> {
        let name = wire.kind.as_str();
        Ok(match name {
            "SUBSCRIBED" => Event::Subscribed(require(wire.subscribed, name, "subscribed")?),
            "OFFERS" => Event::Offers(require(wire.offers, name, "offers")?),
            "RESCIND" => Event::Rescind(require(wire.rescind, name, "rescind")?),
            "UPDATE" => Event::Update(require(wire.update, name, "update")?),
            "UPDATE_OPERATION_STATUS" => Event::UpdateOperationStatus(require(
                wire.update_operation_status,
                name,
                "update_operation_status",
            )?),
            "MESSAGE" => Event::Message(require(wire.message, name, "message")?),
            "FAILURE" => Event::Failure(require(wire.failure, name, "failure")?),
            "ERROR" => Event::Error(require(wire.error, name, "error")?),
            "HEARTBEAT" => Event::Heartbeat,
            _ => Event::Unknown(wire.kind.clone()),
        })
    }
}

impl From<Event> for WireEvent {
    fn from(event: Event) -> Self {
        let mut wire = WireEvent {
            kind: event.type_name().to_string(),
            subscribed: None,
            offers: None,
            rescind: None,
            update: None,
            update_operation_status: None,
            message: None,
            failure: None,
            error: None,
        };
        match event {
            Event::Subscribed(payload) => wire.subscribed = Some(payload),
            Event::Offers(payload) => wire.offers = Some(payload),
            Event::Rescind(payload) => wire.rescind = Some(payload),
            Event::Update(payload) => wire.update = Some(payload),
            Event::UpdateOperationStatus(payload) => wire.update_operation_status = Some(payload),
            Event::Message(payload) => wire.message = Some(payload),
            Event::Failure(payload) => wire.failure = Some(payload),
            Event::Error(payload) => wire.error = Some(payload),
            Event::Heartbeat | Event::Unknown(_) => {}
        }
        wire
    }
}
