//! The on-disk encoding: the only module that names bincode.
//!
//! Event record (the value under a seq key in the `events` tree):
//!
//! ```text
//!   byte 0      RECORD_FORMAT (= 1)
//!   bytes 1..3  kind number, u16 big-endian (event/kind.rs; never reused)
//!   bytes 3..5  payload schema version, u16 big-endian
//!   then        bincode(RecordMeta) then bincode(payload)
//! ```
//!
//! bincode 1.3.3 with fixed-width little-endian integers. Payloads written by
//! an older schema version are upcast on read by `migrations/`; the log is
//! never rewritten. Snapshots and other stored values use `encode_value`.

use crate::event::{
    Actor, AppCreated, AppDeleted, AppScaled, AppUpdated, CallbackSubscribed, CallbackUnsubscribed,
    DeploymentFailed, DeploymentFinished, DeploymentPlanned, DeploymentStarted,
    DeploymentStepFinished, Envelope, Event, FrameworkSubscribed, GroupDeleted, GroupUpdated,
    HealthChanged, Kind, LaunchDelayReset, Seq, TaskDraining, TaskExpunged, TaskKillRequested,
    TaskLaunchRequested, TaskStatusRecorded,
};
use bincode::Options;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

#[path = "../migrations/mod.rs"]
mod migrations;

pub const RECORD_FORMAT: u8 = 1;
const HEADER_LEN: usize = 5;
/// A corrupted length prefix must not make us allocate gigabytes.
const MAX_DECODED_BYTES: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("record {seq}: {len} bytes is shorter than the {HEADER_LEN}-byte header")]
    Truncated { seq: Seq, len: usize },
    #[error("record {seq}: unknown record format {format} (this build reads {RECORD_FORMAT})")]
    UnknownFormat { seq: Seq, format: u8 },
    #[error("record {seq}: unknown event kind {kind}; was it written by a newer Stride?")]
    UnknownKind { seq: Seq, kind: u16 },
    #[error(
        "record {seq}: {kind:?} payload version {version} is newer than this build's {current}"
    )]
    NewerVersion {
        seq: Seq,
        kind: Kind,
        version: u16,
        current: u16,
    },
    #[error("record {seq}: upcasting {kind:?} from version {version}")]
    Upcast {
        seq: Seq,
        kind: Kind,
        version: u16,
        #[source]
        source: migrations::UpcastError,
    },
    #[error("record {seq}: cannot decode {kind:?}")]
    Payload {
        seq: Seq,
        kind: Kind,
        #[source]
        source: bincode::Error,
    },
    #[error("cannot encode a value")]
    Encode(#[source] bincode::Error),
    #[error("cannot decode a stored value")]
    Value(#[source] bincode::Error),
}

/// Everything in an envelope but the seq (the key) and the event (the payload).
#[derive(Serialize, Deserialize)]
struct RecordMeta {
    id: Uuid,
    recorded_at: u64,
    actor: Actor,
    command_id: Uuid,
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(MAX_DECODED_BYTES)
}

pub fn encode(envelope: &Envelope) -> Result<Vec<u8>, CodecError> {
    let kind = envelope.event.kind();
    let mut out = Vec::with_capacity(128);
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&kind.number().to_be_bytes());
    out.extend_from_slice(&kind.current_version().to_be_bytes());
    let meta = RecordMeta {
        id: envelope.id,
        recorded_at: envelope.recorded_at,
        actor: envelope.actor.clone(),
        command_id: envelope.command_id,
    };
    options()
        .serialize_into(&mut out, &meta)
        .map_err(CodecError::Encode)?;
    encode_payload(&envelope.event, &mut out)?;
    Ok(out)
}

fn encode_payload(event: &Event, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let o = options();
    let result = match event {
        Event::AppCreated(p) => o.serialize_into(out, p),
        Event::AppUpdated(p) => o.serialize_into(out, p),
        Event::AppScaled(p) => o.serialize_into(out, p),
        Event::AppDeleted(p) => o.serialize_into(out, p),
        Event::DeploymentStarted(p) => o.serialize_into(out, p),
        Event::DeploymentStepFinished(p) => o.serialize_into(out, p),
        Event::DeploymentFinished(p) => o.serialize_into(out, p),
        Event::DeploymentFailed(p) => o.serialize_into(out, p),
        Event::TaskLaunchRequested(p) => o.serialize_into(out, p),
        Event::TaskStatusRecorded(p) => o.serialize_into(out, p),
        Event::TaskKillRequested(p) => o.serialize_into(out, p),
        Event::TaskExpunged(p) => o.serialize_into(out, p),
        Event::HealthChanged(p) => o.serialize_into(out, p),
        Event::FrameworkSubscribed(p) => o.serialize_into(out, p),
        Event::LaunchDelayReset(p) => o.serialize_into(out, p),
        Event::CallbackSubscribed(p) => o.serialize_into(out, p),
        Event::CallbackUnsubscribed(p) => o.serialize_into(out, p),
        Event::TaskDraining(p) => o.serialize_into(out, p),
        Event::DeploymentPlanned(p) => o.serialize_into(out, p),
        Event::GroupUpdated(p) => o.serialize_into(out, p),
        Event::GroupDeleted(p) => o.serialize_into(out, p),
    };
    result.map_err(CodecError::Encode)
}

/// The record header, readable without decoding the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub version: u16,
}

pub fn header(seq: Seq, bytes: &[u8]) -> Result<Header, CodecError> {
    if bytes.len() < HEADER_LEN {
        return Err(CodecError::Truncated {
            seq,
            len: bytes.len(),
        });
    }
    if bytes[0] != RECORD_FORMAT {
        return Err(CodecError::UnknownFormat {
            seq,
            format: bytes[0],
        });
    }
    let number = u16::from_be_bytes([bytes[1], bytes[2]]);
    let kind = Kind::from_number(number).ok_or(CodecError::UnknownKind { seq, kind: number })?;
    let version = u16::from_be_bytes([bytes[3], bytes[4]]);
    let current = kind.current_version();
    if version > current {
        return Err(CodecError::NewerVersion {
            seq,
            kind,
            version,
            current,
        });
    }
    Ok(Header { kind, version })
}

pub fn decode(seq: Seq, bytes: &[u8]) -> Result<Envelope, CodecError> {
    let Header { kind, version } = header(seq, bytes)?;
    let payload_error = |source| CodecError::Payload { seq, kind, source };
    let mut rest = &bytes[HEADER_LEN..];
    let meta: RecordMeta = options()
        .deserialize_from(&mut rest)
        .map_err(payload_error)?;
    let upcast;
    let payload = if version < kind.current_version() {
        upcast = migrations::upcast(kind.number(), version, kind.current_version(), rest).map_err(
            |source| CodecError::Upcast {
                seq,
                kind,
                version,
                source,
            },
        )?;
        &upcast[..]
    } else {
        rest
    };
    let event = decode_payload(kind, payload).map_err(payload_error)?;
    Ok(Envelope {
        seq,
        id: meta.id,
        recorded_at: meta.recorded_at,
        actor: meta.actor,
        command_id: meta.command_id,
        event,
    })
}

fn decode_payload(kind: Kind, bytes: &[u8]) -> Result<Event, bincode::Error> {
    fn de<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::Error> {
        options().reject_trailing_bytes().deserialize(bytes)
    }
    Ok(match kind {
        Kind::AppCreated => Event::AppCreated(de::<AppCreated>(bytes)?),
        Kind::AppUpdated => Event::AppUpdated(de::<AppUpdated>(bytes)?),
        Kind::AppScaled => Event::AppScaled(de::<AppScaled>(bytes)?),
        Kind::AppDeleted => Event::AppDeleted(de::<AppDeleted>(bytes)?),
        Kind::DeploymentStarted => Event::DeploymentStarted(de::<DeploymentStarted>(bytes)?),
        Kind::DeploymentStepFinished => {
            Event::DeploymentStepFinished(de::<DeploymentStepFinished>(bytes)?)
        }
        Kind::DeploymentFinished => Event::DeploymentFinished(de::<DeploymentFinished>(bytes)?),
        Kind::DeploymentFailed => Event::DeploymentFailed(de::<DeploymentFailed>(bytes)?),
        Kind::TaskLaunchRequested => Event::TaskLaunchRequested(de::<TaskLaunchRequested>(bytes)?),
        Kind::TaskStatusRecorded => Event::TaskStatusRecorded(de::<TaskStatusRecorded>(bytes)?),
        Kind::TaskKillRequested => Event::TaskKillRequested(de::<TaskKillRequested>(bytes)?),
        Kind::TaskExpunged => Event::TaskExpunged(de::<TaskExpunged>(bytes)?),
        Kind::HealthChanged => Event::HealthChanged(de::<HealthChanged>(bytes)?),
        Kind::FrameworkSubscribed => Event::FrameworkSubscribed(de::<FrameworkSubscribed>(bytes)?),
        Kind::LaunchDelayReset => Event::LaunchDelayReset(de::<LaunchDelayReset>(bytes)?),
        Kind::CallbackSubscribed => Event::CallbackSubscribed(de::<CallbackSubscribed>(bytes)?),
        Kind::CallbackUnsubscribed => {
            Event::CallbackUnsubscribed(de::<CallbackUnsubscribed>(bytes)?)
        }
        Kind::TaskDraining => Event::TaskDraining(de::<TaskDraining>(bytes)?),
        Kind::DeploymentPlanned => Event::DeploymentPlanned(de::<DeploymentPlanned>(bytes)?),
        Kind::GroupUpdated => Event::GroupUpdated(de::<GroupUpdated>(bytes)?),
        Kind::GroupDeleted => Event::GroupDeleted(de::<GroupDeleted>(bytes)?),
    })
}

/// Encodes a stored value other than an event (snapshots, command records).
pub fn encode_value<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    options().serialize(value).map_err(CodecError::Encode)
}

pub fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    options()
        .reject_trailing_bytes()
        .deserialize(bytes)
        .map_err(CodecError::Value)
}
