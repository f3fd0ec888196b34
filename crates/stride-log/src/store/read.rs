//! Reading the log: by seq, in pages, and through the index trees.

use super::keys::{seq_key, seq_of};
use super::{EventLog, StoreError};
use crate::codec;
use crate::event::{Envelope, Seq};

/// The secondary indexes, for audit queries and verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Index {
    App,
    Task,
    Actor,
    Kind,
    Time,
}

impl Index {
    pub const ALL: [Index; 5] = [
        Index::App,
        Index::Task,
        Index::Actor,
        Index::Kind,
        Index::Time,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Index::App => "app",
            Index::Task => "task",
            Index::Actor => "actor",
            Index::Kind => "kind",
            Index::Time => "time",
        }
    }
}

impl EventLog {
    pub fn get(&self, seq: Seq) -> Result<Option<Envelope>, StoreError> {
        match self.events.get(seq_key(seq))? {
            Some(value) => Ok(Some(codec::decode(seq, &self.assemble(seq, value)?)?)),
            None => Ok(None),
        }
    }

    /// Up to `limit` events with seq >= `from`, in seq order.
    pub fn read_page(&self, from: Seq, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        self.iter_from(from).take(limit).collect()
    }

    /// Every event with seq >= `from`, decoded lazily, in seq order.
    pub fn iter_from(&self, from: Seq) -> impl Iterator<Item = Result<Envelope, StoreError>> + '_ {
        self.raw_from(from).map(|item| {
            let (seq, bytes) = item?;
            Ok(codec::decode(seq, &bytes)?)
        })
    }

    /// Records as stored (parts assembled), for verification and backups.
    pub fn raw_from(
        &self,
        from: Seq,
    ) -> impl Iterator<Item = Result<(Seq, sled::IVec), StoreError>> + '_ {
        self.events.range(seq_key(from)..).map(|item| {
            let (key, value) = item?;
            let seq = seq_of(&key);
            Ok((seq, self.assemble(seq, value)?))
        })
    }

    /// Number of records in the log (not the head: a damaged log may differ).
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub(crate) fn index_tree(&self, index: Index) -> &sled::Tree {
        match index {
            Index::App => &self.idx_app,
            Index::Task => &self.idx_task,
            Index::Actor => &self.idx_actor,
            Index::Kind => &self.idx_kind,
            Index::Time => &self.idx_time,
        }
    }
}
