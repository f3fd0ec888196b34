//! Store step 1, store format 3 -> 4: snapshots leave sled for files of
//! their own (`stride-log`'s `store/snapshot.rs`), so that the committer's
//! fdatasync of sled's db never carries one.
//!
//! The old `snapshots` tree is a cache, so it is not kept: its newest
//! complete snapshot that passes its checksum (format 2 markers have none:
//! the state's decode and seq check on load stand in) is written as a file,
//! then the tree is dropped. Moving the newest rather than dropping them
//! all spares a large store a full replay on its first start after the
//! upgrade; older ones were only fallbacks for a damaged newest.
//!
//! Old tree: key seq u64 BE, chunk u32 BE -> chunk bytes; chunk u32::MAX
//! marks a complete snapshot: chunk count u32 BE, then (format 3) the
//! CRC-32 of the bytes.

use crate::event::Seq;
use crate::store::StoreError;
use crate::store::snapshot;
use std::path::Path;

const TREE: &str = "snapshots";
const COMPLETE: [u8; 4] = u32::MAX.to_be_bytes();

/// Moves the newest snapshot of a store older than format 4 into a file
/// and drops the tree; returns the seq moved. Run before the store is
/// marked format 4, so a crash in between runs it again.
pub(crate) fn run(db: &sled::Db, data_dir: &Path) -> Result<Option<Seq>, StoreError> {
    if !db.tree_names().iter().any(|name| name == TREE.as_bytes()) {
        return Ok(None);
    }
    let tree = db.open_tree(TREE)?;
    let mut markers = Vec::new();
    for item in tree.iter() {
        let (key, value) = item?;
        if key.len() == 12 && key[8..] == COMPLETE {
            markers.push((key[..8].to_vec(), value));
        }
    }
    let mut moved = None;
    for (seq_key, marker) in markers.into_iter().rev() {
        if let Some(bytes) = complete(&tree, &seq_key, &marker)? {
            let seq = Seq(u64::from_be_bytes(seq_key.try_into().unwrap_or_default()));
            snapshot::write(&data_dir.join(snapshot::DIR), seq, &bytes)?;
            moved = Some(seq);
            break;
        }
        tracing::warn!("an old snapshot is incomplete or damaged; not moved");
    }
    db.drop_tree(TREE)?;
    Ok(moved)
}

/// The bytes of one old snapshot, if all its chunks are there and match.
fn complete(
    tree: &sled::Tree,
    seq_key: &[u8],
    marker: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(count) = marker.get(..4) else {
        return Ok(None);
    };
    let count = u32::from_be_bytes(count.try_into().unwrap_or_default());
    let mut bytes = Vec::new();
    for chunk in 0..count {
        let mut key = seq_key.to_vec();
        key.extend_from_slice(&chunk.to_be_bytes());
        match tree.get(key)? {
            Some(part) => bytes.extend_from_slice(&part),
            None => return Ok(None),
        }
    }
    match marker.get(4..8) {
        Some(sum) if crc32fast::hash(&bytes).to_be_bytes() != sum => Ok(None),
        _ => Ok(Some(bytes)),
    }
}
