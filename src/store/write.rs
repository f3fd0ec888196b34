//! Appending: one sled transaction per group-commit batch, covering the
//! events, their index entries (postings, see `postings.rs`) and the
//! idempotency records.

use super::keys::{IndexKeys, numbered_key, seq_key};
use super::postings::{encode_seqs, encode_times};
use super::{EventLog, Index, StoreError};
use crate::codec;
use crate::event::{Envelope, Seq};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::collections::HashMap;
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

/// A batch's index entries (see `postings.rs`): per index, one per key
/// prefix, holding every seq of the batch filed under it; one time entry.
struct Postings {
    entries: Vec<(Index, Vec<u8>, Vec<u8>)>,
}

impl Postings {
    fn of(events: &[Arc<Envelope>]) -> Postings {
        let mut grouped: HashMap<(Index, Vec<u8>), Vec<Seq>> = HashMap::new();
        let mut times = Vec::with_capacity(events.len());
        for event in events {
            let keys = IndexKeys::of(event);
            times.push((keys.recorded_at, event.seq));
            for key in keys.prefixes() {
                grouped.entry(key).or_default().push(event.seq);
            }
        }
        let mut entries: Vec<_> = grouped
            .into_iter()
            .map(|((index, prefix), seqs)| {
                (index, numbered_key(&prefix, seqs[0]), encode_seqs(&seqs))
            })
            .collect();
        if let Some(&(at, first)) = times.first() {
            entries.push((
                Index::Time,
                numbered_key(&at.to_be_bytes(), first),
                encode_times(&times),
            ));
        }
        Postings { entries }
    }
}

impl EventLog {
    /// Writes a batch (not yet durable: call `sync`). The caller assigns
    /// dense seqs continuing from `head()`.
    pub fn append(
        &self,
        events: &[Arc<Envelope>],
        idempotent: &[(String, CommandRecord)],
    ) -> Result<(), StoreError> {
        let records = events
            .iter()
            .map(|e| Ok((seq_key(e.seq), codec::encode(e)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let postings = Postings::of(events);
        let idempotency = idempotent
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
            for (key, record) in &records {
                events.insert(&key[..], &record[..])?;
            }
            for (index, key, value) in &postings.entries {
                let tree = match index {
                    Index::App => app,
                    Index::Task => task,
                    Index::Actor => actor,
                    Index::Kind => kind,
                    Index::Time => time,
                };
                tree.insert(&key[..], &value[..])?;
            }
            for (key, value) in &idempotency {
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
