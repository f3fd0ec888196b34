//! The projection as the rest of Stride reads it: the durable state behind a
//! lock, the head seq as a watch, and the most recent applied events; and
//! how it is loaded at start (`load.rs`).

mod load;

pub(crate) use load::progress_bar;
pub use load::{LoadError, load};

use crate::event::{Envelope, Seq};
use crate::projection::State;
use std::collections::VecDeque;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use tokio::sync::watch;

/// Applied events kept in memory for followers at the live edge; a follower
/// further behind reads the log instead (see `stream/`).
const RECENT_CAPACITY: usize = 16_384;

pub struct Projection {
    state: RwLock<State>,
    head: watch::Sender<Seq>,
    recent: RwLock<Recent>,
}

/// A contiguous run of the latest applied events.
#[derive(Default)]
struct Recent {
    events: VecDeque<Arc<Envelope>>,
}

impl Recent {
    fn first(&self) -> Option<Seq> {
        self.events.front().map(|e| e.seq)
    }
}

impl Projection {
    pub fn new(state: State) -> Projection {
        let (head, _) = watch::channel(state.seq);
        Projection {
            state: RwLock::new(state),
            head,
            recent: RwLock::new(Recent::default()),
        }
    }

    /// Applies durable events, then publishes them in seq order.
    pub fn apply(&self, envelopes: &[Arc<Envelope>]) {
        let Some(last) = envelopes.last() else {
            return;
        };
        {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            for envelope in envelopes {
                state.apply(envelope);
            }
        }
        {
            let mut recent = self.recent.write().unwrap_or_else(|p| p.into_inner());
            recent.events.extend(envelopes.iter().cloned());
            let excess = recent.events.len().saturating_sub(RECENT_CAPACITY);
            recent.events.drain(..excess);
        }
        // After `recent`: whoever sees the new head finds its events there
        // (or, evicted already, in the log).
        self.head.send_replace(last.seq);
    }

    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn head(&self) -> Seq {
        *self.head.borrow()
    }

    pub fn watch_head(&self) -> watch::Receiver<Seq> {
        self.head.subscribe()
    }

    /// Up to `max` published events from `from` on, out of memory; `None`
    /// when `from` is older than what is kept (read the log). Empty when
    /// nothing at or after `from` is published yet.
    pub fn recent(&self, from: Seq, max: usize) -> Option<Vec<Arc<Envelope>>> {
        let recent = self.recent.read().unwrap_or_else(|p| p.into_inner());
        let Some(first) = recent.first() else {
            return (from > self.head()).then(Vec::new);
        };
        if from < first {
            return None;
        }
        let skip = usize::try_from(from.0 - first.0)
            .unwrap_or(usize::MAX)
            .min(recent.events.len());
        Some(recent.events.range(skip..).take(max).cloned().collect())
    }
}
