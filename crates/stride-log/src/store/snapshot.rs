//! Snapshot storage: opaque bytes under a seq, split into chunks so sled
//! keeps them inline in its log (see `parts.rs`). The marker that completes
//! a snapshot holds its chunk count and, since store format 3, a CRC-32 of
//! its bytes: a snapshot is a cache, so one that fails it is dropped and the
//! log replayed instead.

use super::keys::seq_key;
use super::{EventLog, StoreError};
use crate::event::Seq;

const CHUNK: usize = super::parts::PART;
/// Chunk number of the marker that says a snapshot is complete; its value is
/// the chunk count (u32 BE), then the CRC-32 of the bytes (u32 BE).
const COMPLETE: u32 = u32::MAX;
/// Older snapshots are dropped beyond this many.
const KEEP: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot at seq {seq} is missing chunk {chunk}")]
    MissingChunk { seq: Seq, chunk: u32 },
    #[error("snapshot at seq {seq} fails its checksum")]
    Checksum { seq: Seq },
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
        self.writable()?;
        let mut batch = sled::Batch::default();
        let mut count = 0u32;
        for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
            batch.insert(&chunk_key(seq, i as u32)[..], chunk);
            count += 1;
        }
        let mut marker = count.to_be_bytes().to_vec();
        marker.extend_from_slice(&crc32fast::hash(bytes).to_be_bytes());
        batch.insert(&chunk_key(seq, COMPLETE)[..], marker);
        let mut older = self.snapshot_seqs()?;
        older.retain(|s| *s < seq);
        let drop_count = (older.len() + 1).saturating_sub(KEEP);
        for old in older.into_iter().take(drop_count) {
            self.remove_snapshot(&mut batch, old)?;
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
        let Some(marker) = self.snapshots.get(chunk_key(seq, COMPLETE))? else {
            return Ok(None);
        };
        let count = super::keys::u32_of(&marker);
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
        // Store format 2 markers hold the count alone.
        if let Some(sum) = marker.get(4..8) {
            if crc32fast::hash(&bytes).to_be_bytes() != sum {
                return Err(StoreError::Snapshot(SnapshotError::Checksum { seq }));
            }
        }
        Ok(Some(bytes))
    }

    /// Drops the snapshot taken at `seq` (a cache found damaged).
    pub fn drop_snapshot(&self, seq: Seq) -> Result<(), StoreError> {
        self.writable()?;
        let mut batch = sled::Batch::default();
        self.remove_snapshot(&mut batch, seq)?;
        self.snapshots.apply_batch(batch)?;
        Ok(())
    }

    fn remove_snapshot(&self, batch: &mut sled::Batch, seq: Seq) -> Result<(), StoreError> {
        for item in self.snapshots.scan_prefix(seq_key(seq)) {
            batch.remove(item?.0);
        }
        Ok(())
    }
}
