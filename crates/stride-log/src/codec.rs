//! The on-disk encoding: the only module that names bincode.
//!
//! Event record (the value under a seq key in the `events` tree):
//!
//! ```text
//!   byte 0      RECORD_FORMAT (= 2)
//!   bytes 1..5  CRC-32 (IEEE), u32 big-endian, of the seq (u64 big-endian)
//!               followed by every byte from 5 on
//!   bytes 5..7  kind number, u16 big-endian (event/kind.rs; never reused)
//!   bytes 7..9  payload schema version, u16 big-endian
//!   then        bincode(RecordMeta) then bincode(payload)
//! ```
//!
//! Record format 1 (store formats 1 and 2) is the same without the checksum:
//! `[1][kind][version]` then the body; it is read as it is, unchecked. The
//! checksum covers the seq so that a record read under another key is
//! caught too: sled's own checksums cover its log messages, but not which
//! page version it serves.
//!
//! bincode 1.3.3 with fixed-width little-endian integers. Payloads written by
//! an older schema version are upcast on read by `migrations/`; the log is
//! never rewritten. Snapshots and other stored values use `encode_value`.

use crate::event::{
    Actor, AppCreated, AppDeleted, AppScaled, AppUpdated, CallbackSubscribed, CallbackUnsubscribed,
    DeploymentFailed, DeploymentFinished, DeploymentPlanned, DeploymentStarted,
    DeploymentStepFinished, Envelope, Event, FrameworkSubscribed, GroupDeleted, GroupUpdated,
    HealthChanged, Kind, LaunchDelayReset, LeaderElected, Seq, TaskDraining, TaskExpunged,
    TaskKillRequested, TaskLaunchRequested, TaskStatusRecorded,
};
use bincode::Options;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::migrations;

pub const RECORD_FORMAT: u8 = 2;
/// Records written before checksums (store formats 1 and 2).
const UNCHECKED_FORMAT: u8 = 1;
/// Format byte and checksum, before the kind.
const CHECKSUM_END: usize = 5;
/// A corrupted length prefix must not make us allocate gigabytes.
const MAX_DECODED_BYTES: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("record {seq}: {len} bytes is shorter than its header")]
    Truncated { seq: Seq, len: usize },
    #[error(
        "record {seq}: unknown record format {format} (this build reads {RECORD_FORMAT} and older)"
    )]
    UnknownFormat { seq: Seq, format: u8 },
    #[error("record {seq}: checksum mismatch (the record is damaged)")]
    Checksum { seq: Seq },
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
    out.extend_from_slice(&[0; 4]);
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
    let sum = checksum(envelope.seq, &out[CHECKSUM_END..]);
    out[1..CHECKSUM_END].copy_from_slice(&sum.to_be_bytes());
    Ok(out)
}

fn checksum(seq: Seq, body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.0.to_be_bytes());
    hasher.update(body);
    hasher.finalize()
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
        Event::LeaderElected(p) => o.serialize_into(out, p),
    };
    result.map_err(CodecError::Encode)
}

/// The record header, readable without decoding the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    pub kind: Kind,
    pub version: u16,
}

/// The header, and the rest of the record after it (meta and payload).
/// Checks the checksum of a format-2 record.
fn split(seq: Seq, bytes: &[u8]) -> Result<(Header, &[u8]), CodecError> {
    let truncated = || CodecError::Truncated {
        seq,
        len: bytes.len(),
    };
    let body = match bytes.first() {
        None => return Err(truncated()),
        Some(&RECORD_FORMAT) => {
            let body = bytes.get(CHECKSUM_END..).ok_or_else(truncated)?;
            let stored = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
            if checksum(seq, body) != stored {
                return Err(CodecError::Checksum { seq });
            }
            body
        }
        Some(&UNCHECKED_FORMAT) => &bytes[1..],
        Some(&format) => return Err(CodecError::UnknownFormat { seq, format }),
    };
    if body.len() < 4 {
        return Err(truncated());
    }
    let number = u16::from_be_bytes([body[0], body[1]]);
    let kind = Kind::from_number(number).ok_or(CodecError::UnknownKind { seq, kind: number })?;
    let version = u16::from_be_bytes([body[2], body[3]]);
    let current = kind.current_version();
    if version > current {
        return Err(CodecError::NewerVersion {
            seq,
            kind,
            version,
            current,
        });
    }
    Ok((Header { kind, version }, &body[4..]))
}

/// Checks a record: one with a checksum by its checksum and header (no
/// decoding), one from before checksums by decoding it. True when the
/// record carries a checksum.
pub fn check(seq: Seq, bytes: &[u8]) -> Result<bool, CodecError> {
    if bytes.first() == Some(&UNCHECKED_FORMAT) {
        decode(seq, bytes)?;
        return Ok(false);
    }
    split(seq, bytes)?;
    Ok(true)
}

pub fn decode(seq: Seq, bytes: &[u8]) -> Result<Envelope, CodecError> {
    let (Header { kind, version }, mut rest) = split(seq, bytes)?;
    let payload_error = |source| CodecError::Payload { seq, kind, source };
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
        Kind::LeaderElected => Event::LeaderElected(de::<LeaderElected>(bytes)?),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AppDeleted, AppId};
    use proptest::prelude::*;

    fn sample(seq: u64) -> Envelope {
        Envelope {
            seq: Seq(seq),
            id: Uuid::from_u128(1),
            recorded_at: 1_700_000_000_000_000,
            actor: Actor::Api {
                principal: "alice".into(),
                remote: "10.0.0.1:1".into(),
            },
            command_id: Uuid::from_u128(2),
            event: Event::AppDeleted(AppDeleted {
                app: AppId("/prod/web".into()),
            }),
        }
    }

    /// A record of format 2 with a valid checksum around any body, so that
    /// the payload decoders, not the checksum, meet the bytes.
    fn checked(seq: Seq, kind: u16, version: u16, body: &[u8]) -> Vec<u8> {
        let mut record = vec![RECORD_FORMAT, 0, 0, 0, 0];
        record.extend_from_slice(&kind.to_be_bytes());
        record.extend_from_slice(&version.to_be_bytes());
        record.extend_from_slice(body);
        let sum = checksum(seq, &record[CHECKSUM_END..]);
        record[1..CHECKSUM_END].copy_from_slice(&sum.to_be_bytes());
        record
    }

    proptest! {
        /// The record decoder on any bytes: an error or an event, no panic.
        #[test]
        fn any_bytes_decode_or_fail_without_panic(seq in any::<u64>(), bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(Seq(seq), &bytes);
            let _ = check(Seq(seq), &bytes);
        }

        /// Any header (known kinds and beyond, any version) over any body,
        /// in both record formats.
        #[test]
        fn any_body_under_any_header_decodes_or_fails_without_panic(
            kind in 0u16..40,
            version in 0u16..4,
            body in prop::collection::vec(any::<u8>(), 0..400),
        ) {
            let _ = decode(Seq(7), &checked(Seq(7), kind, version, &body));
            let mut unchecked = vec![UNCHECKED_FORMAT];
            unchecked.extend_from_slice(&checked(Seq(7), kind, version, &body)[CHECKSUM_END..]);
            let _ = decode(Seq(7), &unchecked);
        }

        /// CRC-32 catches every single-bit error, and a record read under
        /// another seq.
        #[test]
        fn a_flipped_bit_or_another_seq_fails_the_checksum(at in any::<prop::sample::Index>(), bit in 0u8..8, other in 1u64..u64::MAX) {
            let mut record = encode(&sample(5)).unwrap();
            prop_assert!(decode(Seq(5), &record).is_ok());
            let seq = if other == 5 { 6 } else { other };
            let misfiled = matches!(decode(Seq(seq), &record), Err(CodecError::Checksum { .. }));
            prop_assert!(misfiled, "a record read under seq {} passed", seq);
            let at = at.index(record.len());
            record[at] ^= 1 << bit;
            prop_assert!(decode(Seq(5), &record).is_err());
        }
    }

    #[test]
    fn a_record_round_trips_and_names_its_seq_when_damaged() {
        let record = encode(&sample(5)).unwrap();
        assert_eq!(record[0], RECORD_FORMAT);
        assert_eq!(decode(Seq(5), &record).unwrap(), sample(5));
        assert!(check(Seq(5), &record).unwrap());
        let error = decode(Seq(5), &record[..record.len() - 1]).unwrap_err();
        assert!(
            error.to_string().contains("record 5: checksum mismatch"),
            "{error}"
        );
    }
}
