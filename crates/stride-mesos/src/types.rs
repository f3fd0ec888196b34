//! Serde types for the Mesos v1 scheduler API in its JSON form.
//!
//! Field names are the proto field names; enums travel as their string
//! names; proto `bytes` fields travel as base64. These types are only ever
//! JSON on the wire, never stored, so optional fields are simply omitted.
//! Unknown fields are ignored and unknown enum values are kept verbatim, so
//! a newer master never breaks parsing.

mod call;
mod container;
mod event;
mod master;
mod task;

pub use call::*;
pub use container::*;
pub use event::*;
pub use master::*;
pub use task::*;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a proto enum carried as its string name. Values this build does
/// not know land in `Other` with the original spelling, so they survive a
/// round trip and can be logged.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this build does not know, spelled as received.
            Other(String),
        }

        impl $name {
            /// The proto name, as sent on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(name) => name,
                }
            }
        }

        impl From<String> for $name {
            fn from(name: String) -> Self {
                match name.as_str() {
                    $($wire => Self::$variant,)+
                    _ => Self::Other(name),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::from)
            }
        }
    };
}
pub(crate) use string_enum;

/// Declares a proto ID message: `{"value": "..."}`.
macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name {
            pub value: String,
        }

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self { value: value.into() }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.value)
            }
        }
    )+};
}

id_type!(
    FrameworkId,
    AgentId,
    OfferId,
    TaskId,
    ExecutorId,
    ContainerId,
    OperationId,
);

/// A proto `bytes` field: raw bytes in memory, base64 on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Base64Bytes(pub Vec<u8>);

impl Serialize for Base64Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        BASE64
            .decode(text.as_bytes())
            .map(Base64Bytes)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64 in bytes field: {e}")))
    }
}

/// A proto `DurationInfo` / `TimeInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurationInfo {
    pub nanoseconds: i64,
}

impl DurationInfo {
    pub fn from_duration(duration: std::time::Duration) -> Self {
        Self {
            nanoseconds: i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Labels {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A message (call or event) whose `type` names a payload field that is
/// missing, e.g. `{"type":"OFFERS"}` without `"offers"`.
#[derive(Debug, thiserror::Error)]
#[error("{kind} message has no `{field}` payload")]
pub struct MissingPayload {
    pub kind: String,
    pub field: &'static str,
}

pub(crate) fn require<T>(
    value: Option<T>,
    kind: &str,
    field: &'static str,
) -> Result<T, MissingPayload> {
    value.ok_or_else(|| MissingPayload {
        kind: kind.to_string(),
        field,
    })
}
