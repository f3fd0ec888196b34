//! Events for the stream's unit tests.

use crate::event::{Actor, AppDeleted, AppId, Envelope, Event, Seq};
use std::sync::Arc;

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
