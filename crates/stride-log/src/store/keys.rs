//! Key shapes of the log and its index trees.

use super::Index;
use crate::event::{Envelope, Kind, Seq};

pub fn seq_key(seq: Seq) -> [u8; 8] {
    seq.0.to_be_bytes()
}

/// The seq in the last eight bytes of any log or index key.
pub fn seq_of(key: &[u8]) -> Seq {
    let mut tail = [0u8; 8];
    if key.len() >= 8 {
        tail.copy_from_slice(&key[key.len() - 8..]);
    }
    Seq(u64::from_be_bytes(tail))
}

pub fn u32_of(bytes: &[u8]) -> u32 {
    let mut buf = [0u8; 4];
    if bytes.len() >= 4 {
        buf.copy_from_slice(&bytes[..4]);
    }
    u32::from_be_bytes(buf)
}

/// Every entry of one name in a named index starts with this.
pub fn name_prefix(name: &str) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    key.push(0);
    key
}

/// Every entry of one kind in the kind index starts with this.
pub fn kind_prefix(kind: Kind) -> Vec<u8> {
    kind.number().to_be_bytes().to_vec()
}

pub fn numbered_key(number: &[u8], seq: Seq) -> Vec<u8> {
    let mut key = number.to_vec();
    key.extend_from_slice(&seq.0.to_be_bytes());
    key
}

/// Where one event is filed: the key prefix in each index (a name and
/// 0x00, or a number), before the entry's first seq; and its time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexKeys {
    pub app: Option<Vec<u8>>,
    pub task: Option<Vec<u8>>,
    pub actor: Vec<u8>,
    pub kind: Vec<u8>,
    pub recorded_at: u64,
}

impl IndexKeys {
    pub fn of(envelope: &Envelope) -> IndexKeys {
        IndexKeys {
            app: envelope.event.app().map(|a| name_prefix(a.as_str())),
            task: envelope.event.task().map(|t| name_prefix(t.as_str())),
            actor: name_prefix(&envelope.actor.index_key()),
            kind: kind_prefix(envelope.event.kind()),
            recorded_at: envelope.recorded_at,
        }
    }

    /// The (index, prefix) pairs other than time.
    pub fn prefixes(self) -> impl Iterator<Item = (Index, Vec<u8>)> {
        [
            (Index::App, self.app),
            (Index::Task, self.task),
            (Index::Actor, Some(self.actor)),
            (Index::Kind, Some(self.kind)),
        ]
        .into_iter()
        .filter_map(|(index, prefix)| Some((index, prefix?)))
    }
}

/// The seq of the last event, or `Seq(0)` for an empty log.
pub fn head(events: &sled::Tree) -> Result<Seq, super::StoreError> {
    Ok(match events.last()? {
        Some((key, _)) => seq_of(&key),
        None => Seq(0),
    })
}
