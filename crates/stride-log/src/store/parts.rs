//! Records too large for one bounded sled value, split into parts.
//!
//! sled 0.34.7 writes any log message over a quarter of its 512 KiB segment
//! (a large value, or a leaf page holding up to 17 of them) to a new file
//! under `blobs/`. That opens a descriptor on the commit path (under EMFILE
//! sled then fails, and stalls its write buffer), and sled never syncs the
//! file. Since store format 3 no value Stride writes exceeds `PART` bytes
//! (snapshots are chunked alike, postings are capped), so sled writes no blob.
//!
//! A record longer than `PART` is stored as a pointer under its seq in
//! `events`, `[POINTER][length u32 BE][parts u32 BE]`, and its bytes in
//! `event_parts` under `(seq u64 BE, part u32 BE)`. Record formats start
//! with 1 or 2, never with `POINTER`.

use super::keys::seq_key;
use super::{EventLog, StoreError};
use crate::event::Seq;

/// The largest value written to sled (a full leaf stays near 70 KiB).
pub(super) const PART: usize = 4 * 1024;
const POINTER: u8 = 0xff;
const POINTER_LEN: usize = 9;

fn part_key(seq: Seq, part: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&seq_key(seq));
    key[8..].copy_from_slice(&part.to_be_bytes());
    key
}

/// A part's key in `event_parts` and its bytes.
pub(super) type Part = ([u8; 12], Vec<u8>);

/// What to insert for one record: its `events` value and any parts.
pub(super) fn split(seq: Seq, record: Vec<u8>) -> (Vec<u8>, Vec<Part>) {
    if record.len() <= PART {
        return (record, Vec::new());
    }
    let parts: Vec<_> = record
        .chunks(PART)
        .enumerate()
        .map(|(i, chunk)| (part_key(seq, i as u32), chunk.to_vec()))
        .collect();
    let mut pointer = vec![POINTER];
    pointer.extend_from_slice(&(record.len() as u32).to_be_bytes());
    pointer.extend_from_slice(&(parts.len() as u32).to_be_bytes());
    (pointer, parts)
}

/// A stored `events` value: the record itself, or where its parts are.
pub(crate) enum Stored {
    Whole,
    Parted { len: usize, parts: u32 },
}

pub(crate) fn stored(seq: Seq, value: &[u8]) -> Result<Stored, StoreError> {
    if value.first() != Some(&POINTER) {
        return Ok(Stored::Whole);
    }
    if value.len() != POINTER_LEN {
        return Err(StoreError::BrokenPointer { seq });
    }
    let len = u32::from_be_bytes([value[1], value[2], value[3], value[4]]) as usize;
    let parts = u32::from_be_bytes([value[5], value[6], value[7], value[8]]);
    if len.div_ceil(PART) != parts as usize || parts < 2 {
        return Err(StoreError::BrokenPointer { seq });
    }
    Ok(Stored::Parted { len, parts })
}

impl EventLog {
    /// The record under `seq`, given its `events` value.
    pub(super) fn assemble(&self, seq: Seq, value: sled::IVec) -> Result<sled::IVec, StoreError> {
        let Stored::Parted { len, parts } = stored(seq, &value)? else {
            return Ok(value);
        };
        let mut record = Vec::with_capacity(len);
        for part in 0..parts {
            match self.parts.get(part_key(seq, part))? {
                Some(bytes) if bytes.len() <= PART => record.extend_from_slice(&bytes),
                _ => return Err(StoreError::MissingPart { seq, part }),
            }
        }
        if record.len() != len {
            return Err(StoreError::BrokenPointer { seq });
        }
        Ok(record.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_records_stay_whole_and_large_ones_split_into_bounded_parts() {
        let (value, parts) = split(Seq(3), vec![2; PART]);
        assert_eq!((value.len(), parts.len()), (PART, 0));
        let (pointer, parts) = split(Seq(3), vec![2; PART * 2 + 1]);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|(_, bytes)| bytes.len() <= PART));
        assert!(matches!(
            stored(Seq(3), &pointer).unwrap(),
            Stored::Parted { len, parts: 3 } if len == PART * 2 + 1
        ));
    }

    proptest! {
        /// Any bytes under a seq are a record, a valid pointer or an error.
        #[test]
        fn pointers_never_panic(value in prop::collection::vec(any::<u8>(), 0..16)) {
            let _ = stored(Seq(1), &value);
        }
    }
}
