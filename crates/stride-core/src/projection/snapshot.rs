//! Snapshot encoding. A snapshot is a cache of the fold, never a source of
//! truth: one written by another state version is ignored and the log
//! replayed instead, so `State` can change shape without a migration.

use super::State;
use crate::codec::{self, CodecError};

/// Bump whenever `State` (or anything in it) changes shape.
pub const STATE_VERSION: u16 = 7;
const MAGIC: u8 = b'S';

#[derive(Debug, thiserror::Error)]
pub enum SnapshotDecodeError {
    #[error("not a snapshot (bad magic byte)")]
    BadMagic,
    #[error("snapshot state version {found} is not this build's {current}")]
    OtherVersion { found: u16, current: u16 },
    #[error(transparent)]
    Codec(#[from] CodecError),
}

pub fn encode(state: &State) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![MAGIC];
    out.extend_from_slice(&STATE_VERSION.to_be_bytes());
    out.extend_from_slice(&codec::encode_value(state)?);
    Ok(out)
}

pub fn decode(bytes: &[u8]) -> Result<State, SnapshotDecodeError> {
    if bytes.len() < 3 || bytes[0] != MAGIC {
        return Err(SnapshotDecodeError::BadMagic);
    }
    let found = u16::from_be_bytes([bytes[1], bytes[2]]);
    if found != STATE_VERSION {
        return Err(SnapshotDecodeError::OtherVersion {
            found,
            current: STATE_VERSION,
        });
    }
    let mut state: State = codec::decode_value(&bytes[3..])?;
    state.index_tasks();
    Ok(state)
}
