//! The messages of `GET /v1/stream` (`docs/stream.md`).
//!
//! A server message is an event (its envelope as `GET /v1/events` shows
//! it, `type` being the event type, CamelCase) or a control message
//! (`type` in lower case: `progress`, `error`). A client ignores a control
//! message it does not know; the server sends a new kind only to clients
//! that asked for it.

use crate::event::json::{EnvelopeJsonError, envelope_from_json, envelope_json};
use crate::event::{Envelope, Seq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::sync::Arc;

/// One message from the server. `E` is how an event is held: typed
/// (`Arc<Envelope>`, what the sidecar folds) or as its JSON (`Value`, what
/// `stride events` prints, whatever the event type).
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage<E = Arc<Envelope>> {
    Event(E),
    /// The subscriber has seen every matching event up to `seq`; `head` is
    /// the log's durable head.
    Progress {
        seq: Seq,
        head: Seq,
    },
    /// Sent before the server closes the stream.
    Error(StreamError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamError {
    pub error: ErrorCode,
    pub message: String,
    /// With `from_beyond_head`: the log's head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<Seq>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// `from` is beyond `head + 1`.
    FromBeyondHead,
    /// Reading the log failed.
    Internal,
    /// A code this build does not know (a newer server's).
    #[serde(other)]
    Other,
}

/// How a follower holds an event it receives.
pub trait StreamEvent: Sized {
    fn to_json(&self) -> Value;
    fn from_json(value: Value) -> Result<Self, EnvelopeJsonError>;
}

impl StreamEvent for Arc<Envelope> {
    fn to_json(&self) -> Value {
        envelope_json(self)
    }

    fn from_json(value: Value) -> Result<Self, EnvelopeJsonError> {
        envelope_from_json(&value).map(Arc::new)
    }
}

impl StreamEvent for Value {
    fn to_json(&self) -> Value {
        self.clone()
    }

    fn from_json(value: Value) -> Result<Self, EnvelopeJsonError> {
        Ok(value)
    }
}

/// The control messages, as serde writes and reads them.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Control {
    Progress { seq: Seq, head: Seq },
    Error(StreamError),
}

/// Why a text is not a server message this build can use.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("a stream message is not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("a stream message has no type")]
    NoType,
    #[error("a {kind} message is malformed")]
    Malformed {
        kind: String,
        #[source]
        source: serde_json::Error,
    },
    /// A control message of a newer server: ignore it.
    #[error("unknown message type {0}")]
    Unknown(String),
    #[error("an event does not decode")]
    Event(#[source] EnvelopeJsonError),
}

impl<E: StreamEvent> ServerMessage<E> {
    pub fn parse(text: &str) -> Result<ServerMessage<E>, MessageError> {
        let value: Value = serde_json::from_str(text).map_err(MessageError::NotJson)?;
        let kind = value["type"].as_str().ok_or(MessageError::NoType)?;
        if !kind.starts_with(|c: char| c.is_ascii_lowercase()) {
            return E::from_json(value)
                .map(ServerMessage::Event)
                .map_err(MessageError::Event);
        }
        if !matches!(kind, "progress" | "error") {
            return Err(MessageError::Unknown(kind.to_owned()));
        }
        let kind = kind.to_owned();
        match serde_json::from_value(value) {
            Ok(Control::Progress { seq, head }) => Ok(ServerMessage::Progress { seq, head }),
            Ok(Control::Error(error)) => Ok(ServerMessage::Error(error)),
            Err(source) => Err(MessageError::Malformed { kind, source }),
        }
    }

    /// The message as one websocket text frame.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("stream messages have string keys only")
    }
}

impl<E: StreamEvent> Serialize for ServerMessage<E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ServerMessage::Event(event) => event.to_json().serialize(serializer),
            ServerMessage::Progress { seq, head } => Control::Progress {
                seq: *seq,
                head: *head,
            }
            .serialize(serializer),
            ServerMessage::Error(error) => Control::Error(error.clone()).serialize(serializer),
        }
    }
}

/// The text of an event message; what the hub renders once for everyone.
pub fn event_text(envelope: &Envelope) -> String {
    envelope_json(envelope).to_string()
}

/// What a client may send; the server ignores anything else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Registers the connection as a load balancer sidecar (a second hello
    /// replaces the first).
    Hello {
        name: String,
        /// Drained tasks wait for this sidecar before their kill.
        #[serde(default)]
        drain_confirmation: bool,
    },
    /// The sidecar's proxy serves every change up to `seq`.
    Applied { seq: Seq },
}

impl ClientMessage {
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("client messages have string keys only")
    }
}
