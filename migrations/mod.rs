//! Upcasting steps for event payloads, applied in order on read; the log is
//! never rewritten. Compiled into `stride-log` (its `lib.rs`).
//!
//! Store steps change the store's layout, not its history: each runs once,
//! when a build opens an older store for writing, before the store is
//! marked with the new format (`stride-log`'s `store/mod.rs`):
//! - `m0001_snapshot_files.rs`, store format 3 -> 4: snapshots move from
//!   the `snapshots` tree to files.
//!
//! To change an event payload's shape: bump its version in
//! `stride-log`'s `event/kind.rs`, add `mNNNN_<what>.rs` here with a frozen copy of the
//! old struct and an `upcast(&[u8]) -> Result<Vec<u8>, UpcastError>` that
//! decodes the old bytes and encodes the new payload, register it in
//! `STEPS`, and commit a fixture store written by the previous build under
//! `fixtures/` with a test in `tests/it/format.rs` that opens it. Never edit
//! a step that has shipped.
//!
//! Event payloads are all still at their first version: no steps yet.
//! Store format 2 changed only the index trees' entries, which it reads in
//! their format-1 shape as they are (see `stride-log`'s `store/postings.rs`), so it
//! needs no step either. Nor does store format 3: its record checksums wrap
//! the payload (record format 1, unchecked, still decodes), and its command
//! records and snapshot markers read their older shapes as they are.
//! `fixtures/store-v1` to `store-v4` are opened by `tests/it/format.rs`.

#[cfg(feature = "store")]
pub(crate) mod m0001_snapshot_files;

/// One upcast: payload bytes of `kind` at version `from` to version `from + 1`.
pub(crate) struct Step {
    pub number: u32,
    pub kind: u16,
    pub from: u16,
    pub upcast: fn(&[u8]) -> Result<Vec<u8>, UpcastError>,
}

pub(crate) const STEPS: &[Step] = &[];

#[derive(Debug, thiserror::Error)]
pub enum UpcastError {
    #[error("no migration step upcasts kind {kind} from version {from}")]
    Missing { kind: u16, from: u16 },
    #[error("migration step {step} failed: {reason}")]
    Failed { step: u32, reason: String },
}

/// Upcasts `bytes` of `kind` from version `from` to `to`, one step at a time.
pub(crate) fn upcast(kind: u16, from: u16, to: u16, bytes: &[u8]) -> Result<Vec<u8>, UpcastError> {
    let mut current = bytes.to_vec();
    for version in from..to {
        let step = STEPS
            .iter()
            .find(|s| s.kind == kind && s.from == version)
            .ok_or(UpcastError::Missing {
                kind,
                from: version,
            })?;
        current = (step.upcast)(&current).map_err(|e| match e {
            UpcastError::Failed { reason, .. } => UpcastError::Failed {
                step: step.number,
                reason,
            },
            other => other,
        })?;
    }
    Ok(current)
}
