//! Appending: one sled transaction per group-commit batch, covering the
//! events, their index entries and the idempotency records.

use super::keys::{IndexKeys, seq_key};
use super::{EventLog, StoreError};
use crate::codec;
use crate::event::{Envelope, Seq};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::sync::Arc;
use uuid::Uuid;

/// What a command produced, kept under its `Idempotency-Key` so a retry gets
/// the same answer without appending again. `first > last` means no events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub command_id: Uuid,
    pub first: Seq,
    pub last: Seq,
}

struct Encoded {
    seq: [u8; 8],
    record: Vec<u8>,
    index: IndexKeys,
}

impl EventLog {
    /// Writes a batch (not yet durable: call `sync`). The caller assigns
    /// dense seqs continuing from `head()`.
    pub fn append(
        &self,
        events: &[Arc<Envelope>],
        idempotent: &[(String, CommandRecord)],
    ) -> Result<(), StoreError> {
        let encoded = events
            .iter()
            .map(|e| {
                Ok(Encoded {
                    seq: seq_key(e.seq),
                    record: codec::encode(e)?,
                    index: IndexKeys::of(e),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let records = idempotent
            .iter()
            .map(|(key, record)| Ok((key.as_bytes(), codec::encode_value(record)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let trees = (
            &self.events,
            &self.idx_app,
            &self.idx_task,
            &self.idx_actor,
            &self.idx_kind,
            &self.idx_time,
            &self.idempotency,
        );
        let result = trees.transaction(|(events, app, task, actor, kind, time, idem)| {
            for e in &encoded {
                events.insert(&e.seq[..], &e.record[..])?;
                if let Some(key) = &e.index.app {
                    app.insert(&key[..], &[][..])?;
                }
                if let Some(key) = &e.index.task {
                    task.insert(&key[..], &[][..])?;
                }
                actor.insert(&e.index.actor[..], &[][..])?;
                kind.insert(&e.index.kind[..], &[][..])?;
                time.insert(&e.index.time[..], &[][..])?;
            }
            for (key, value) in &records {
                idem.insert(*key, &value[..])?;
            }
            Ok::<(), ConflictableTransactionError<()>>(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(e.into()),
            Err(TransactionError::Abort(())) => unreachable!("the append transaction never aborts"),
        }
    }

    pub fn idempotency_record(&self, key: &str) -> Result<Option<CommandRecord>, StoreError> {
        match self.idempotency.get(key.as_bytes())? {
            Some(bytes) => Ok(Some(codec::decode_value(&bytes)?)),
            None => Ok(None),
        }
    }
}
