//! The projection as the rest of Stride reads it: the durable state behind a
//! lock, the head seq as a watch, and a live feed of applied events.

use super::State;
use crate::event::{Envelope, Seq};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use tokio::sync::{broadcast, watch};

/// Events buffered for live followers; a follower that falls further behind
/// reads the log instead (see `stream/`).
const LIVE_CAPACITY: usize = 16_384;

pub struct Projection {
    state: RwLock<State>,
    head: watch::Sender<Seq>,
    live: broadcast::Sender<Arc<Envelope>>,
}

impl Projection {
    pub fn new(state: State) -> Projection {
        let (head, _) = watch::channel(state.seq);
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        Projection {
            state: RwLock::new(state),
            head,
            live,
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
        // Head first: a follower that sees an event live may reconnect at
        // once from the next seq, which must not yet look beyond the head.
        self.head.send_replace(last.seq);
        for envelope in envelopes {
            // No receivers is fine: nobody is following.
            let _ = self.live.send(envelope.clone());
        }
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

    /// Subscribe before reading the log, then drop what was already read:
    /// that order leaves no gap.
    pub fn follow(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.live.subscribe()
    }
}
