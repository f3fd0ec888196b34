//! The event log: an append-only sled tree keyed by big-endian seq, plus
//! secondary index trees for audit queries, written in the same transaction.
//!
//! Trees (all keys big-endian where numeric):
//!   events       seq                        -> record (see codec.rs)
//!   idx_app      app id, 0x00, first seq    -> seqs (see postings.rs)
//!   idx_task     task id, 0x00, first seq   -> seqs
//!   idx_actor    actor key, 0x00, first seq -> seqs
//!   idx_kind     kind number (u16), first seq -> seqs
//!   idx_time     recorded_at (u64 µs) of the first, first seq -> (recorded_at, seq) pairs
//!   idempotency  Idempotency-Key            -> CommandRecord
//!   snapshots    seq, chunk (u32)           -> snapshot bytes (see snapshot.rs)
//!   meta         "format"                   -> store format (u32)
//!   cursors      callback URL               -> last delivered seq (u64)
//!
//! Only the committer appends, so seq order is commit order. `cursors` is
//! delivery progress, not history: callbacks (see `callbacks/`) write it
//! without syncing, since delivery is at-least-once anyway.

mod cursors;
mod durable;
pub(crate) mod keys;
mod postings;
mod read;
mod snapshot;
mod write;

pub use durable::Durability;
pub use keys::IndexKeys;
pub use read::Index;
pub use snapshot::SnapshotError;
pub use write::CommandRecord;

use crate::codec::CodecError;
use crate::event::Seq;
use std::path::{Path, PathBuf};

/// The store layout this build writes and reads. Bump it (with a migration
/// note in ARCHITECTURE.md) when trees or key shapes change.
/// 1: one index entry per event. 2: index entries are postings (see
/// `postings.rs`), which read format 1's entries as they are.
pub const STORE_FORMAT: u32 = 2;

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
}

pub struct EventLog {
    path: PathBuf,
    db: sled::Db,
    events: sled::Tree,
    idx_app: sled::Tree,
    idx_task: sled::Tree,
    idx_actor: sled::Tree,
    idx_kind: sled::Tree,
    idx_time: sled::Tree,
    idempotency: sled::Tree,
    snapshots: sled::Tree,
    cursors: sled::Tree,
    durability: Durability,
}

impl EventLog {
    /// Opens (or creates) the store at `path`, refusing one written by a
    /// newer format.
    pub fn open(path: &Path) -> Result<EventLog, StoreError> {
        std::fs::create_dir_all(path).map_err(|source| StoreError::Io {
            path: path.to_owned(),
            what: "cannot create the data directory",
            source,
        })?;
        let db = sled::Config::new().path(path).open()?;
        let meta = db.open_tree("meta")?;
        let events = db.open_tree("events")?;
        check_format(path, &meta, &events)?;
        let durability = Durability::open(path)?;
        let log = EventLog {
            path: path.to_owned(),
            idx_app: db.open_tree("idx_app")?,
            idx_task: db.open_tree("idx_task")?,
            idx_actor: db.open_tree("idx_actor")?,
            idx_kind: db.open_tree("idx_kind")?,
            idx_time: db.open_tree("idx_time")?,
            idempotency: db.open_tree("idempotency")?,
            snapshots: db.open_tree("snapshots")?,
            cursors: db.open_tree("cursors")?,
            events,
            db,
            durability,
        };
        // A new store's format marker and tree creation must be durable
        // before anything is acknowledged on top of them.
        log.sync()?;
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The seq of the last event, or `Seq(0)` for an empty log.
    pub fn head(&self) -> Result<Seq, StoreError> {
        Ok(match self.events.last()? {
            Some((key, _)) => keys::seq_of(&key),
            None => Seq(0),
        })
    }

    /// Makes every write so far durable: sled's flush writes its buffers
    /// (ending in `sync_file_range`, which is not a barrier), then we
    /// fdatasync sled's files ourselves.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.durability.sync_data()
    }
}

fn check_format(path: &Path, meta: &sled::Tree, events: &sled::Tree) -> Result<(), StoreError> {
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
            if found < STORE_FORMAT {
                // Older entries stay as written; only what comes next is
                // in the new format, which an older build must not misread.
                meta.insert("format", &STORE_FORMAT.to_be_bytes())?;
                tracing::info!(from = found, to = STORE_FORMAT, "store format upgraded");
            }
        }
        None if !events.is_empty() => {
            return Err(StoreError::MissingFormat {
                path: path.to_owned(),
            });
        }
        None => {
            meta.insert("format", &STORE_FORMAT.to_be_bytes())?;
        }
    }
    Ok(())
}
