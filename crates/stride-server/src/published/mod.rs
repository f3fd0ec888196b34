//! The projection as the rest of Stride reads it: the state after the last
//! durable batch and the events that led to it, published together as one
//! immutable `Arc`; the head seq as a watch; and how it is loaded at start
//! (`load.rs`).
//!
//! Only the committer's sync thread publishes, after each fsync, a state the
//! decide thread has already folded: nothing here folds. Readers (the API,
//! the planner, health checks, the stream, the snapshotter) take the `Arc`
//! without a lock; one who keeps it keeps a consistent state, however long
//! it takes, and never holds up the next publication.

mod load;

pub(crate) use load::progress_bar;
pub use load::{LoadError, load};

use arc_swap::ArcSwap;
use imbl::Vector;
use std::sync::Arc;
use stride_core::projection::State;
use stride_log::event::{Envelope, Seq};
use tokio::sync::watch;

/// Applied events kept in memory for followers at the live edge; a follower
/// further behind reads the log instead (see `stream/`).
const RECENT_CAPACITY: usize = 16_384;

pub struct Projection {
    published: ArcSwap<Published>,
    head: watch::Sender<Seq>,
}

/// One publication: a state and a contiguous run of the latest events,
/// ending with the one that state was folded up to.
struct Published {
    state: Arc<State>,
    recent: Vector<Arc<Envelope>>,
}

impl Projection {
    pub fn new(state: State) -> Projection {
        let (head, _) = watch::channel(state.seq);
        Projection {
            published: ArcSwap::from_pointee(Published {
                state: Arc::new(state),
                recent: Vector::new(),
            }),
            head,
        }
    }

    /// Publishes `state`, the fold of the published state and `envelopes`
    /// (durable events, in seq order). Called from one thread only.
    pub fn publish(&self, state: Arc<State>, envelopes: &[Arc<Envelope>]) {
        let mut recent = self.published.load().recent.clone();
        recent.extend(envelopes.iter().cloned());
        if recent.len() > RECENT_CAPACITY {
            recent = recent.skip(recent.len() - RECENT_CAPACITY);
        }
        let seq = state.seq;
        self.published.store(Arc::new(Published { state, recent }));
        // After the store: whoever sees the new head finds its state and
        // events published (or, evicted already, in the log).
        self.head.send_replace(seq);
    }

    /// The state as last published.
    pub fn read(&self) -> Arc<State> {
        self.published.load().state.clone()
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
        let published = self.published.load();
        let recent = &published.recent;
        let Some(first) = recent.front().map(|e| e.seq) else {
            return (from > published.state.seq).then(Vec::new);
        };
        if from < first {
            return None;
        }
        let skip = usize::try_from(from.0 - first.0)
            .unwrap_or(usize::MAX)
            .min(recent.len());
        Some(recent.skip(skip).iter().take(max).cloned().collect())
    }
}
