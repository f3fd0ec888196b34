//! The event log: an append-only sled tree keyed by big-endian seq, plus
//! secondary index trees for audit queries, written in the same transaction.
//!
//! Trees (all keys big-endian where numeric):
//!   events       seq                        -> record (see codec.rs), or a
//!                                              pointer to its parts
//!   event_parts  seq, part (u32)            -> part of a record (parts.rs)
//!   idx_app      app id, 0x00, first seq    -> seqs (see postings.rs)
//!   idx_task     task id, 0x00, first seq   -> seqs
//!   idx_actor    actor key, 0x00, first seq -> seqs
//!   idx_kind     kind number (u16), first seq -> seqs
//!   idx_time     recorded_at (u64 µs) of the first, first seq -> (recorded_at, seq) pairs
//!   idempotency  Idempotency-Key            -> CommandRecord
//!   meta         "format"                   -> store format (u32)
//!   cursors      callback URL               -> last delivered seq (u64)
//!
//! Beside sled's files, `watermark` records how far the log was
//! acknowledged (see watermark.rs); `integrity.rs` checks the two agree;
//! `snapshots/` holds snapshot files (see snapshot.rs).
//!
//! Only the committer appends (it alone holds the one `LogWriter`; readers
//! get an `EventLog`, which cannot), so seq order is commit order. `cursors` is
//! delivery progress, not history: callbacks (see `callbacks/`) write it
//! without syncing, since delivery is at-least-once anyway.

pub mod backup;
mod cursors;
mod durable;
mod engine;
pub mod integrity;
pub(crate) mod keys;
mod parts;
mod postings;
mod read;
pub mod replica;
pub mod restore;
pub(crate) mod snapshot;
pub mod watermark;
mod write;

pub use integrity::{Acknowledged, Problem, Report};
pub use keys::{IndexKeys, kind_prefix, name_prefix};
pub use postings::Seqs;
pub use read::Index;
pub use snapshot::SnapshotError;
pub use write::{CommandRecord, LogWriter, RequestDigest};

use crate::codec::CodecError;
use crate::event::Seq;
use durable::Durability;
use std::path::{Path, PathBuf};
use watermark::{Found, Mark, Watermark};

/// The store layout this build writes and reads. Bump it (with a migration
/// note in ARCHITECTURE.md) when trees or key shapes change.
/// 1: one index entry per event. 2: index entries are postings (see
/// `postings.rs`), which read format 1's entries as they are. 3: records
/// carry checksums, large ones are split into parts, a watermark file
/// records the acknowledged head, command records the request's digest and
/// snapshot markers a checksum; older records, command records and markers
/// read as they are. 4: snapshots are files of their own, not a tree
/// (store step `migrations/m0001_snapshot_files.rs`).
pub const STORE_FORMAT: u32 = 4;
/// The first store format with a watermark.
const WATERMARKED: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage engine error")]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(
        "{path}: store format {found} was written by a newer Stride; this build reads format {supported} and older"
    )]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path}: the store has events but no format marker; is it a Stride store?")]
    MissingFormat { path: PathBuf },
    #[error("{path}: {what}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("the {index} index entry filed at seq {seq} is malformed")]
    MalformedIndex { index: &'static str, seq: Seq },
    #[error("the log has a gap: expected seq {expected}, found {found}")]
    Gap { expected: Seq, found: Seq },
    #[error("the replicated batch at seq {first} is malformed: {reason}")]
    BadBatch { first: Seq, reason: &'static str },
    #[error("record {seq}: its pointer to its parts is malformed")]
    BrokenPointer { seq: Seq },
    #[error("record {seq}: part {part} is missing or malformed")]
    MissingPart { seq: Seq, part: u32 },
    #[error(
        "{path}: the store is damaged, so it is open only to be read; `stride store verify` says what was lost"
    )]
    ReadOnly { path: PathBuf },
    #[error(
        "{path}: sled cannot open the store's db file ({why}): {lost}; restore a backup: stride store restore --data-dir {path} --from BACKUP_FILE"
    )]
    Unopenable {
        path: PathBuf,
        why: String,
        lost: String,
    },
}

pub struct EventLog {
    path: PathBuf,
    db: sled::Db,
    events: sled::Tree,
    parts: sled::Tree,
    idx_app: sled::Tree,
    idx_task: sled::Tree,
    idx_actor: sled::Tree,
    idx_kind: sled::Tree,
    idx_time: sled::Tree,
    idempotency: sled::Tree,
    cursors: sled::Tree,
    /// None when the store was found damaged: nothing may be written then.
    durability: Option<Durability>,
    /// What opening found, for `check` (integrity.rs).
    opened: integrity::Opened,
}

impl EventLog {
    /// Opens (or creates) the store at `path`, refusing one written by a
    /// newer format. A store whose log ends before its watermark (or whose
    /// watermark is gone) opens read-only: writing would bury the damage.
    /// `check` (integrity.rs) says whether it is intact.
    pub fn open(path: &Path) -> Result<EventLog, StoreError> {
        std::fs::create_dir_all(path).map_err(|source| StoreError::Io {
            path: path.to_owned(),
            what: "cannot create the data directory",
            source,
        })?;
        let mut repairs = Vec::new();
        let db = engine::open(path, &mut repairs)?;
        let meta = db.open_tree("meta")?;
        let events = db.open_tree("events")?;
        let read = stored_format(path, &meta, &events)
            .and_then(|format| Ok((format, keys::head(&events)?)));
        let (format, head, unreadable) = match read {
            Ok((format, head)) => (format, head, None),
            // Opened only to be read and reported on (`check`).
            Err(StoreError::Sled(error)) => (Some(STORE_FORMAT), Seq(0), Some(error)),
            Err(error) => return Err(error),
        };
        let found = watermark::read(path)?;
        let acknowledged = match (&found, format) {
            (Found::Missing, Some(format)) if format >= WATERMARKED => Acknowledged::Missing,
            (Found::Missing, _) => Acknowledged::Created,
            (Found::Damaged, _) => Acknowledged::Damaged,
            (&Found::Read { mark, .. }, _) => Acknowledged::Mark(mark),
        };
        let durability = match (&acknowledged, found) {
            _ if unreadable.is_some() => None,
            (Acknowledged::Created, _) => {
                // A new store, or one from before watermarks: all it has is
                // what was acknowledged.
                let mark = Mark::at(head);
                Some(Durability::open(
                    path,
                    Watermark::create(path, mark)?,
                    mark,
                )?)
            }
            (&Acknowledged::Mark(mark), Found::Read { generation, .. }) if head >= mark.durable => {
                Some(Durability::open(
                    path,
                    Watermark::open(path, generation)?,
                    mark,
                )?)
            }
            _ => None,
        };
        if let Found::Read {
            one_slot_damaged: true,
            ..
        } = found
        {
            repairs.push("one of the watermark's two slots was damaged; the other was read".into());
        }
        let log = EventLog {
            path: path.to_owned(),
            parts: db.open_tree("event_parts")?,
            idx_app: db.open_tree("idx_app")?,
            idx_task: db.open_tree("idx_task")?,
            idx_actor: db.open_tree("idx_actor")?,
            idx_kind: db.open_tree("idx_kind")?,
            idx_time: db.open_tree("idx_time")?,
            idempotency: db.open_tree("idempotency")?,
            cursors: db.open_tree("cursors")?,
            events,
            db,
            durability,
            opened: integrity::Opened {
                acknowledged,
                repairs,
                problems: unreadable
                    .map(|error| Problem::Tree {
                        tree: "events",
                        error: format!("its head or the format marker cannot be read: {error}"),
                    })
                    .into_iter()
                    .collect(),
            },
        };
        if log.durability.is_some() {
            if format != Some(STORE_FORMAT) {
                if format.is_some_and(|f| f < 4) {
                    let moved = crate::migrations::m0001_snapshot_files::run(&log.db, path)?;
                    tracing::info!(?moved, "snapshots moved out of sled");
                }
                // Older entries stay as written; only what comes next is
                // in the new format, which an older build must not misread.
                meta.insert("format", &STORE_FORMAT.to_be_bytes())?;
                if let Some(from) = format {
                    tracing::info!(from, to = STORE_FORMAT, "store format upgraded");
                }
            }
            // The format marker and tree creation must be durable before
            // anything is acknowledged on top of them.
            log.sync()?;
        }
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The seq of the last event, or `Seq(0)` for an empty log.
    pub fn head(&self) -> Result<Seq, StoreError> {
        keys::head(&self.events)
    }

    /// Makes every write so far durable (`LogWriter::sync`).
    fn sync(&self) -> Result<(), StoreError> {
        let durability = self.durability()?;
        // Read before the flush, so that everything up to it is flushed.
        let head = self.head()?;
        durability.sync(head, || Ok(self.db.flush().map(drop)?))
    }

    fn durability(&self) -> Result<&Durability, StoreError> {
        self.durability
            .as_ref()
            .ok_or_else(|| StoreError::ReadOnly {
                path: self.path.clone(),
            })
    }

    fn writable(&self) -> Result<(), StoreError> {
        self.durability().map(drop)
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        if let Some(durability) = &self.durability {
            if let Err(error) = durability.seal() {
                tracing::warn!(%error, "cannot seal the watermark");
            }
        }
    }
}

/// The store format the marker names; None for a new, empty store.
fn stored_format(
    path: &Path,
    meta: &sled::Tree,
    events: &sled::Tree,
) -> Result<Option<u32>, StoreError> {
    match meta.get("format")? {
        Some(bytes) => {
            let found = keys::u32_of(&bytes);
            if found > STORE_FORMAT {
                return Err(StoreError::NewerFormat {
                    path: path.to_owned(),
                    found,
                    supported: STORE_FORMAT,
                });
            }
            Ok(Some(found))
        }
        None if !events.is_empty() => Err(StoreError::MissingFormat {
            path: path.to_owned(),
        }),
        None => Ok(None),
    }
}
