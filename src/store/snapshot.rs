//! Snapshot storage: opaque bytes under a seq, split into chunks so sled
//! keeps them inline in its log (sled 0.34.7 writes values too big for a
//! segment to separate blob files without syncing them).

use super::keys::seq_key;
use super::{EventLog, StoreError};
use crate::event::Seq;

/// Small enough that a full sled leaf (17 entries) stays under the blob
/// threshold (a quarter of a 512 KiB segment).
const CHUNK: usize = 4 * 1024;
/// Chunk number of the marker that says a snapshot is complete; its value is
/// the chunk count.
const COMPLETE: u32 = u32::MAX;
/// Older snapshots are dropped beyond this many.
const KEEP: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot at seq {seq} is missing chunk {chunk}")]
    MissingChunk { seq: Seq, chunk: u32 },
}

fn chunk_key(seq: Seq, chunk: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&seq_key(seq));
    key[8..].copy_from_slice(&chunk.to_be_bytes());
    key
}

impl EventLog {
    /// Stores a snapshot taken at `seq` atomically and drops old ones. Not
    /// synced: a lost snapshot only means a longer replay.
    pub fn put_snapshot(&self, seq: Seq, bytes: &[u8]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut count = 0u32;
        for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
            batch.insert(&chunk_key(seq, i as u32)[..], chunk);
            count += 1;
        }
        batch.insert(&chunk_key(seq, COMPLETE)[..], &count.to_be_bytes()[..]);
        let mut older = self.snapshot_seqs()?;
        older.retain(|s| *s < seq);
        let drop_count = (older.len() + 1).saturating_sub(KEEP);
        for old in older.into_iter().take(drop_count) {
            for item in self.snapshots.scan_prefix(seq_key(old)) {
                batch.remove(item?.0);
            }
        }
        self.snapshots.apply_batch(batch)?;
        Ok(())
    }

    /// Seqs of the complete snapshots, oldest first.
    pub fn snapshot_seqs(&self) -> Result<Vec<Seq>, StoreError> {
        let mut seqs = Vec::new();
        for item in self.snapshots.iter() {
            let (key, _) = item?;
            if key.len() == 12 && key[8..] == COMPLETE.to_be_bytes() {
                seqs.push(Seq(super::keys::seq_of(&key[..8]).0));
            }
        }
        Ok(seqs)
    }

    /// The bytes of the complete snapshot taken at `seq`.
    pub fn snapshot(&self, seq: Seq) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(count) = self.snapshots.get(chunk_key(seq, COMPLETE))? else {
            return Ok(None);
        };
        let count = super::keys::u32_of(&count);
        let mut bytes = Vec::new();
        for chunk in 0..count {
            match self.snapshots.get(chunk_key(seq, chunk))? {
                Some(part) => bytes.extend_from_slice(&part),
                None => {
                    return Err(StoreError::Snapshot(SnapshotError::MissingChunk {
                        seq,
                        chunk,
                    }));
                }
            }
        }
        Ok(Some(bytes))
    }
}
