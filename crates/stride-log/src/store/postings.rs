//! Index entries as postings. Each append writes one entry per index key
//! per batch instead of one per event: sled's cost is per insert, and the
//! actor, kind and time of a batch's events are nearly always shared.
//!
//! An entry is `key ++ first seq -> seqs`: the batch's seqs filed under
//! that key, ascending, as big-endian u64s. The time index files every
//! batch under its first event's time, and its value holds
//! `(recorded_at, seq)` pairs instead, so a time resolves to a seq without
//! decoding events. An empty value stands for the key's seq alone: store
//! format 1 wrote only such entries, which therefore read as they are.

use super::keys::{numbered_key, seq_key, seq_of};
use super::{EventLog, Index, StoreError};
use crate::event::Seq;

/// One index entry's value for `seqs` (ascending, filed under `seqs[0]`).
pub(super) fn encode_seqs(seqs: &[Seq]) -> Vec<u8> {
    if seqs.len() == 1 {
        return Vec::new();
    }
    seqs.iter().flat_map(|seq| seq.0.to_be_bytes()).collect()
}

/// The time index entry's value for `(recorded_at, seq)` pairs.
pub(super) fn encode_times(times: &[(u64, Seq)]) -> Vec<u8> {
    if times.len() == 1 {
        return Vec::new();
    }
    times
        .iter()
        .flat_map(|(at, seq)| at.to_be_bytes().into_iter().chain(seq.0.to_be_bytes()))
        .collect()
}

fn malformed(index: Index, key: &[u8]) -> StoreError {
    StoreError::MalformedIndex {
        index: index.name(),
        seq: seq_of(key),
    }
}

fn u64_at(chunk: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(chunk);
    u64::from_be_bytes(bytes)
}

/// The seqs of one entry: ascending, starting at the key's seq.
pub(crate) fn decode_seqs(index: Index, key: &[u8], value: &[u8]) -> Result<Vec<Seq>, StoreError> {
    if value.is_empty() {
        return Ok(vec![seq_of(key)]);
    }
    if value.len() % 8 != 0 {
        return Err(malformed(index, key));
    }
    let seqs: Vec<Seq> = value.chunks_exact(8).map(|c| Seq(u64_at(c))).collect();
    check_ascending_from(index, key, seqs.iter().copied())?;
    Ok(seqs)
}

/// The `(recorded_at, seq)` pairs of one time index entry.
pub(crate) fn decode_times(key: &[u8], value: &[u8]) -> Result<Vec<(u64, Seq)>, StoreError> {
    if value.is_empty() {
        return Ok(vec![(key.get(..8).map_or(0, u64_at), seq_of(key))]);
    }
    if value.len() % 16 != 0 {
        return Err(malformed(Index::Time, key));
    }
    let times: Vec<(u64, Seq)> = value
        .chunks_exact(16)
        .map(|c| (u64_at(&c[..8]), Seq(u64_at(&c[8..]))))
        .collect();
    check_ascending_from(Index::Time, key, times.iter().map(|(_, seq)| *seq))?;
    Ok(times)
}

fn check_ascending_from(
    index: Index,
    key: &[u8],
    seqs: impl Iterator<Item = Seq>,
) -> Result<(), StoreError> {
    let mut expected_first = Some(seq_of(key));
    let mut previous = Seq(0);
    for seq in seqs {
        if expected_first.take().is_some_and(|first| first != seq) || seq <= previous {
            return Err(malformed(index, key));
        }
        previous = seq;
    }
    Ok(())
}

/// Seqs in the order asked, each read or failed on its own.
pub type Seqs<'a> = Box<dyn Iterator<Item = Result<Seq, StoreError>> + 'a>;

impl EventLog {
    /// Every seq in `lo..=hi`, from the log's own keys: for walks that no
    /// index narrows.
    pub fn seqs_between(&self, (lo, hi): (Seq, Seq), descending: bool) -> Seqs<'_> {
        let entries = self
            .events
            .range(seq_key(lo)..=seq_key(hi))
            .map(|item| Ok(seq_of(&item?.0)));
        if descending {
            Box::new(entries.rev())
        } else {
            Box::new(entries)
        }
    }

    /// The distinct app ids the app index files under `prefix`, hopping
    /// from one app's entries to the next instead of reading them all.
    pub fn apps_under(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let tree = self.index_tree(Index::App);
        let mut names = Vec::new();
        let mut from = prefix.as_bytes().to_vec();
        while let Some((key, _)) = tree.range(from.clone()..).next().transpose()? {
            // A name, 0x00, then the entry's first seq.
            if !key.starts_with(prefix.as_bytes()) || key.len() < 9 {
                break;
            }
            let name = &key[..key.len() - 9];
            names.push(String::from_utf8_lossy(name).into_owned());
            // Names never contain 0x00, so "name\x01" sorts after all of
            // this name's entries and before the next name.
            from = name.to_vec();
            from.push(1);
        }
        Ok(names)
    }

    /// Seqs filed under `prefix` (a name and 0x00, or a kind number) in
    /// `lo..=hi`, ascending or descending.
    pub fn indexed_seqs(
        &self,
        index: Index,
        prefix: &[u8],
        (lo, hi): (Seq, Seq),
        descending: bool,
    ) -> Seqs<'_> {
        // The entry holding `lo` may start before it.
        let start = match self.entry_at(index, prefix, lo) {
            Ok(Some((key, _))) => key.to_vec(),
            Ok(None) => numbered_key(prefix, lo),
            Err(error) => return Box::new(std::iter::once(Err(error))),
        };
        let entries = self
            .index_tree(index)
            .range(start..=numbered_key(prefix, hi));
        let expand = move |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let seqs = item
                .map_err(StoreError::from)
                .and_then(|(key, value)| decode_seqs(index, &key, &value));
            match seqs {
                Ok(seqs) => seqs.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(error) => vec![Err(error)],
            }
        };
        let in_window = move |item: &Result<Seq, StoreError>| {
            item.as_ref().map_or(true, |seq| (lo..=hi).contains(seq))
        };
        if descending {
            Box::new(
                entries
                    .rev()
                    .flat_map(move |item| expand(item).into_iter().rev())
                    .filter(in_window),
            )
        } else {
            Box::new(entries.flat_map(expand).filter(in_window))
        }
    }

    /// Whether `seq` is filed under `prefix` in `index`.
    pub fn is_indexed(&self, index: Index, prefix: &[u8], seq: Seq) -> Result<bool, StoreError> {
        let Some((key, value)) = self.entry_at(index, prefix, seq)? else {
            return Ok(false);
        };
        Ok(decode_seqs(index, &key, &value)?
            .binary_search(&seq)
            .is_ok())
    }

    /// Whether the time index files `seq` at `recorded_at`.
    pub fn is_timed(&self, recorded_at: u64, seq: Seq) -> Result<bool, StoreError> {
        let entry = self
            .index_tree(Index::Time)
            .range(..=numbered_key(&recorded_at.to_be_bytes(), seq))
            .next_back()
            .transpose()?;
        Ok(match entry {
            Some((key, value)) => decode_times(&key, &value)?.contains(&(recorded_at, seq)),
            None => false,
        })
    }

    /// The first seq recorded at or after `micros`.
    pub fn first_at_or_after(&self, micros: u64) -> Result<Option<Seq>, StoreError> {
        let tree = self.index_tree(Index::Time);
        let at = numbered_key(&micros.to_be_bytes(), Seq(0));
        // An entry filed before `micros` may still hold later events.
        if let Some((key, value)) = tree.range(..at.clone()).next_back().transpose()? {
            let found = decode_times(&key, &value)?
                .into_iter()
                .find(|(recorded_at, _)| *recorded_at >= micros);
            if let Some((_, seq)) = found {
                return Ok(Some(seq));
            }
        }
        Ok(tree
            .range(at..)
            .next()
            .transpose()?
            .map(|(key, _)| seq_of(&key)))
    }

    /// The last seq recorded at or before `micros`.
    pub fn last_at_or_before(&self, micros: u64) -> Result<Option<Seq>, StoreError> {
        let last = self
            .index_tree(Index::Time)
            .range(..=numbered_key(&micros.to_be_bytes(), Seq(u64::MAX)))
            .next_back()
            .transpose()?;
        let Some((key, value)) = last else {
            return Ok(None);
        };
        Ok(decode_times(&key, &value)?
            .into_iter()
            .take_while(|(recorded_at, _)| *recorded_at <= micros)
            .last()
            .map(|(_, seq)| seq))
    }

    /// How many seqs an index files, checking every entry decodes.
    pub fn indexed_count(&self, index: Index) -> Result<u64, StoreError> {
        let mut count = 0;
        for item in self.index_tree(index).iter() {
            let (key, value) = item?;
            count += match index {
                Index::Time => decode_times(&key, &value)?.len(),
                _ => decode_seqs(index, &key, &value)?.len(),
            } as u64;
        }
        Ok(count)
    }

    /// The last entry under `prefix` starting at or before `seq`.
    fn entry_at(
        &self,
        index: Index,
        prefix: &[u8],
        seq: Seq,
    ) -> Result<Option<(sled::IVec, sled::IVec)>, StoreError> {
        Ok(self
            .index_tree(index)
            .range(numbered_key(prefix, Seq(0))..=numbered_key(prefix, seq))
            .next_back()
            .transpose()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn seqs_round_trip(first in 1u64..1_000_000, gaps in prop::collection::vec(1u64..50, 0..40)) {
            let mut seqs = vec![Seq(first)];
            for gap in gaps {
                seqs.push(Seq(seqs.last().unwrap().0 + gap));
            }
            let key = numbered_key(b"app\0", seqs[0]);
            let value = encode_seqs(&seqs);
            prop_assert_eq!(decode_seqs(Index::App, &key, &value).unwrap(), seqs);
        }

        #[test]
        fn times_round_trip(first in 1u64..1_000_000, count in 1usize..40) {
            let times: Vec<(u64, Seq)> = (0..count as u64).map(|i| (1_000 + i / 3, Seq(first + i))).collect();
            let key = numbered_key(&times[0].0.to_be_bytes(), times[0].1);
            prop_assert_eq!(decode_times(&key, &encode_times(&times)).unwrap(), times);
        }
    }

    #[test]
    fn a_format_1_entry_is_its_own_seq() {
        let key = numbered_key(b"/web\0", Seq(7));
        assert_eq!(decode_seqs(Index::App, &key, &[]).unwrap(), vec![Seq(7)]);
        let key = numbered_key(&42u64.to_be_bytes(), Seq(9));
        assert_eq!(decode_times(&key, &[]).unwrap(), vec![(42, Seq(9))]);
    }

    #[test]
    fn malformed_entries_are_errors_naming_the_index_and_seq() {
        let key = numbered_key(b"/web\0", Seq(7));
        for value in [
            vec![1u8; 5],
            encode_seqs(&[Seq(8), Seq(9)]),
            [7u64, 7].iter().flat_map(|s| s.to_be_bytes()).collect(),
            [7u64, 3].iter().flat_map(|s| s.to_be_bytes()).collect(),
        ] {
            let error = decode_seqs(Index::App, &key, &value)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("app index") && error.contains('7'),
                "{error}"
            );
        }
    }
}
