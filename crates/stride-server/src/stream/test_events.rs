//! Events for the stream's unit tests, and publishing them as the
//! committer does.

use crate::published::Projection;
use std::sync::Arc;
use stride_core::projection::State;
use stride_log::event::{Actor, AppDeleted, AppId, Envelope, Event, Seq};

/// An event at `seq` about `app`.
pub fn about(app: &str, seq: u64) -> Arc<Envelope> {
    Arc::new(Envelope {
        seq: Seq(seq),
        id: uuid::Uuid::now_v7(),
        recorded_at: seq,
        actor: Actor::Reconciler,
        command_id: uuid::Uuid::now_v7(),
        event: Event::AppDeleted(AppDeleted {
            app: AppId::from(app),
        }),
    })
}

/// Folds `batch` into the published state and publishes the result.
pub fn publish(projection: &Projection, batch: &[Arc<Envelope>]) {
    let mut state = State::clone(&projection.read());
    for envelope in batch {
        state.apply(envelope);
    }
    projection.publish(Arc::new(state), batch);
}
