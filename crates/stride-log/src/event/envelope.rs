//! The envelope is what the log stores and what subscribers receive.

use super::Event;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Position in the log. Dense (1, 2, 3, ...): a subscriber can tell a gap
/// from a quiet log.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// The following seq. Only for seqs of the log, which never come near
    /// the top of the range; a client's seq goes through `checked_next`.
    pub fn next(self) -> Seq {
        self.checked_next()
            .expect("the log's seqs stay far below u64::MAX")
    }

    /// The following seq, or `None` past `u64::MAX` (never a wrap to 0).
    pub fn checked_next(self) -> Option<Seq> {
        self.0.checked_add(1).map(Seq)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Who caused an event; answers "who changed what, when".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Actor {
    /// A user of the HTTP API.
    Api { principal: String, remote: String },
    /// Stride's own reconciler acting on the cluster.
    Reconciler,
    /// A fact reported by Mesos (status updates, subscription).
    Mesos,
}

impl Actor {
    /// The key the audit index files this actor under: `api:<principal>`,
    /// `reconciler` or `mesos`.
    pub fn index_key(&self) -> String {
        match self {
            Actor::Api { principal, .. } => format!("api:{principal}"),
            Actor::Reconciler => "reconciler".to_owned(),
            Actor::Mesos => "mesos".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub seq: Seq,
    /// UUIDv7: unique across stores, roughly time-ordered.
    pub id: Uuid,
    /// Unix microseconds, never lower than the previous event's (the
    /// committer clamps), so a time range maps to a seq range.
    pub recorded_at: u64,
    pub actor: Actor,
    /// Groups the events one command produced.
    pub command_id: Uuid,
    pub event: Event,
}
