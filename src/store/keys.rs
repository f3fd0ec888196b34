//! Key shapes of the log and its index trees.

use crate::event::{Envelope, Seq};

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

/// `name`, a 0x00 separator (names never contain it), then the seq.
pub fn named_key(name: &str, seq: Seq) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 9);
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.0.to_be_bytes());
    key
}

/// Every entry of one name in a named index starts with this.
pub fn name_prefix(name: &str) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    key.push(0);
    key
}

pub fn numbered_key(number: &[u8], seq: Seq) -> Vec<u8> {
    let mut key = number.to_vec();
    key.extend_from_slice(&seq.0.to_be_bytes());
    key
}

/// The index entries one event gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexKeys {
    pub app: Option<Vec<u8>>,
    pub task: Option<Vec<u8>>,
    pub actor: Vec<u8>,
    pub kind: Vec<u8>,
    pub time: Vec<u8>,
}

impl IndexKeys {
    pub fn of(envelope: &Envelope) -> IndexKeys {
        let seq = envelope.seq;
        IndexKeys {
            app: envelope.event.app().map(|a| named_key(a.as_str(), seq)),
            task: envelope.event.task().map(|t| named_key(t.as_str(), seq)),
            actor: named_key(&envelope.actor.index_key(), seq),
            kind: numbered_key(&envelope.event.kind().number().to_be_bytes(), seq),
            time: numbered_key(&envelope.recorded_at.to_be_bytes(), seq),
        }
    }
}
