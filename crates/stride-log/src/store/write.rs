//! Appending: one sled transaction per group-commit batch, covering the
//! events (split into parts when large, see `parts.rs`), their index
//! entries (postings, see `postings.rs`) and the idempotency records.

use super::keys::{IndexKeys, numbered_key, seq_key};
use super::parts;
use super::postings::{encode_seqs, encode_times};
use super::{EventLog, Index, StoreError};
use crate::codec;
use crate::event::{Envelope, Seq};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::collections::HashMap;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

/// SHA-256 of a request's method, path and body (see `api/idempotency.rs`).
pub type RequestDigest = [u8; 32];

/// What a command produced, kept under its `Idempotency-Key` so a retry gets
/// the same answer without appending again. `first > last` means no events.
/// `request` is the digest of the request that used the key; records of
/// store formats 1 and 2 have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub command_id: Uuid,
    pub first: Seq,
    pub last: Seq,
    pub request: Option<RequestDigest>,
}

/// A command record as store formats 1 and 2 wrote it.
#[derive(Deserialize)]
struct UndigestedRecord {
    command_id: Uuid,
    first: Seq,
    last: Seq,
}

impl CommandRecord {
    pub(crate) fn decode(bytes: &[u8]) -> Result<CommandRecord, StoreError> {
        match codec::decode_value::<CommandRecord>(bytes) {
            Ok(record) => Ok(record),
            Err(error) => match codec::decode_value::<UndigestedRecord>(bytes) {
                Ok(old) => Ok(CommandRecord {
                    command_id: old.command_id,
                    first: old.first,
                    last: old.last,
                    request: None,
                }),
                Err(_) => Err(error.into()),
            },
        }
    }
}

/// Seqs per index entry at most: 2 KiB of postings, 17 to a sled leaf
/// (see `parts.rs` for why values stay small).
const MAX_POSTING: usize = 256;

/// A batch's index entries (see `postings.rs`): per index, one per key
/// prefix (split every `MAX_POSTING` seqs), holding the seqs of the batch
/// filed under it; and time entries.
pub(super) struct Postings {
    entries: Vec<(Index, Vec<u8>, Vec<u8>)>,
}

impl Postings {
    pub(super) fn of(events: &[Arc<Envelope>]) -> Postings {
        let mut grouped: HashMap<(Index, Vec<u8>), Vec<Seq>> = HashMap::new();
        let mut times = Vec::with_capacity(events.len());
        for event in events {
            let keys = IndexKeys::of(event);
            times.push((keys.recorded_at, event.seq));
            for key in keys.prefixes() {
                grouped.entry(key).or_default().push(event.seq);
            }
        }
        let mut entries = Vec::new();
        for ((index, prefix), seqs) in grouped {
            for seqs in seqs.chunks(MAX_POSTING) {
                entries.push((index, numbered_key(&prefix, seqs[0]), encode_seqs(seqs)));
            }
        }
        // Two u64s a pair: half as many per entry.
        for times in times.chunks(MAX_POSTING / 2) {
            let (at, first) = times[0];
            entries.push((
                Index::Time,
                numbered_key(&at.to_be_bytes(), first),
                encode_times(times),
            ));
        }
        Postings { entries }
    }
}

/// Everything one append writes, encoded.
pub(super) struct Batch {
    /// `(seq, record)`, in seq order.
    pub records: Vec<(Seq, Vec<u8>)>,
    pub postings: Postings,
    /// `(Idempotency-Key, encoded CommandRecord)`.
    pub idempotency: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The one handle that appends to a log: opened once, moved into the
/// committer. Readers get the `EventLog` it reads through (`reader`), which
/// has no way to append, sync or seal; the compiler holds them to it:
///
/// ```compile_fail,E0624
/// # let dir = tempfile::tempdir().unwrap();
/// let writer = stride_log::store::LogWriter::open(dir.path()).unwrap();
/// let reader = writer.reader();
/// reader.append(&[], &[]).unwrap();
/// ```
///
/// and it is not `Clone`, so the committer that owns it is the only writer:
///
/// ```compile_fail,E0599
/// # let dir = tempfile::tempdir().unwrap();
/// let writer = stride_log::store::LogWriter::open(dir.path()).unwrap();
/// let second = writer.clone();
/// ```
///
/// while the writer itself appends:
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let writer = stride_log::store::LogWriter::open(dir.path()).unwrap();
/// writer.append(&[], &[]).unwrap();
/// writer.sync().unwrap();
/// ```
pub struct LogWriter {
    log: Arc<EventLog>,
}

impl LogWriter {
    /// Opens (or creates) the store at `path` to write it (`EventLog::open`
    /// says what opening checks).
    pub fn open(path: &Path) -> Result<LogWriter, StoreError> {
        EventLog::open(path).map(|log| LogWriter { log: Arc::new(log) })
    }

    /// A read-only handle on the same log, for everyone but the committer.
    pub fn reader(&self) -> Arc<EventLog> {
        self.log.clone()
    }

    /// Writes a batch (not yet durable: call `sync`). The caller assigns
    /// dense seqs continuing from `head()`.
    pub fn append(
        &self,
        events: &[Arc<Envelope>],
        idempotent: &[(String, CommandRecord)],
    ) -> Result<(), StoreError> {
        self.log.append(events, idempotent)
    }

    /// Makes every write so far durable: sled's flush writes its buffers
    /// (ending in `sync_file_range`, which is not a barrier), then we
    /// fdatasync sled's db file ourselves while the watermark is written.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.log.sync()
    }

    /// Records in the watermark that everything synced was acknowledged.
    pub fn seal(&self) -> Result<(), StoreError> {
        self.log.durability()?.seal()
    }
}

/// The writer reads what it wrote like any reader.
impl Deref for LogWriter {
    type Target = EventLog;

    fn deref(&self) -> &EventLog {
        &self.log
    }
}

impl EventLog {
    fn append(
        &self,
        events: &[Arc<Envelope>],
        idempotent: &[(String, CommandRecord)],
    ) -> Result<(), StoreError> {
        let records = events
            .iter()
            .map(|e| Ok((e.seq, codec::encode(e)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let idempotency = idempotent
            .iter()
            .map(|(key, record)| Ok((key.as_bytes().to_vec(), codec::encode_value(record)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write(Batch {
            records,
            postings: Postings::of(events),
            idempotency,
        })
    }

    /// Writes encoded records as they are, in one transaction.
    pub(super) fn write(&self, batch: Batch) -> Result<(), StoreError> {
        self.writable()?;
        let mut records = Vec::with_capacity(batch.records.len());
        let mut parts = Vec::new();
        for (seq, record) in batch.records {
            let (value, split) = parts::split(seq, record);
            records.push((seq_key(seq), value));
            parts.extend(split);
        }
        let trees = (
            &self.events,
            &self.parts,
            &self.idx_app,
            &self.idx_task,
            &self.idx_actor,
            &self.idx_kind,
            &self.idx_time,
            &self.idempotency,
        );
        let result = trees.transaction(
            |(events, event_parts, app, task, actor, kind, time, idem)| {
                for (key, record) in &records {
                    events.insert(&key[..], &record[..])?;
                }
                for (key, part) in &parts {
                    event_parts.insert(&key[..], &part[..])?;
                }
                for (index, key, value) in &batch.postings.entries {
                    let tree = match index {
                        Index::App => app,
                        Index::Task => task,
                        Index::Actor => actor,
                        Index::Kind => kind,
                        Index::Time => time,
                    };
                    tree.insert(&key[..], &value[..])?;
                }
                for (key, value) in &batch.idempotency {
                    idem.insert(&key[..], &value[..])?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            },
        );
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(e.into()),
            Err(TransactionError::Abort(())) => unreachable!("the append transaction never aborts"),
        }
    }

    pub fn idempotency_record(&self, key: &str) -> Result<Option<CommandRecord>, StoreError> {
        match self.idempotency.get(key.as_bytes())? {
            Some(bytes) => Ok(Some(CommandRecord::decode(&bytes)?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn records_of_store_format_2_read_without_a_digest() {
        #[derive(Serialize)]
        struct Old {
            command_id: Uuid,
            first: Seq,
            last: Seq,
        }
        let id = Uuid::from_u128(7);
        let bytes = codec::encode_value(&Old {
            command_id: id,
            first: Seq(3),
            last: Seq(4),
        })
        .unwrap();
        let record = CommandRecord::decode(&bytes).unwrap();
        assert_eq!(
            (record.command_id, record.first, record.last),
            (id, Seq(3), Seq(4))
        );
        assert_eq!(record.request, None);
        let new = CommandRecord {
            request: Some([9; 32]),
            ..record
        };
        let bytes = codec::encode_value(&new).unwrap();
        assert_eq!(CommandRecord::decode(&bytes).unwrap(), new);
    }

    proptest! {
        #[test]
        fn command_records_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            let _ = CommandRecord::decode(&bytes);
        }
    }
}
