//! Following the log: every durable event, in seq order, exactly once.
//!
//! `Feed` is the gapless cursor (log replay joined to the live broadcast);
//! `ws` serves it as a websocket session, `sse` as Marathon's event
//! stream; the API's `api/stream.rs` routes requests to them.
//! `Sidecars` tracks the load balancer sidecars among the subscribers and
//! how far each has applied the log; `revocation` ends a stream whose
//! grant a reload of the auth file took away.
//! The message schema is documented in `docs/stream.md`.

mod feed;
mod filter;
mod hub;
pub mod marathon;
pub mod revocation;
pub mod sidecars;
pub mod sse;
#[cfg(test)]
mod test_events;
pub mod ws;

pub use feed::{Feed, FeedError, Item, Start};
pub use filter::{AppMatch, Filter, FilterError, in_scope, parse_kind};
pub use hub::{Hub, Protocol, Subscribed};
pub use sidecars::Sidecars;

use crate::published::Projection;
use std::sync::Arc;
use std::time::Duration;
use stride_log::store::EventLog;

/// What a subscription reads: the log for history, the projection for the
/// live edge, the hub that paces it, and the sidecars it may register.
#[derive(Clone)]
pub struct Sources {
    pub log: Arc<EventLog>,
    pub projection: Arc<Projection>,
    pub hub: Arc<Hub>,
    pub sidecars: Sidecars,
}

/// Timings of websocket subscribers; `stride serve` flags set them.
#[derive(Debug, Clone, Copy)]
pub struct StreamConfig {
    /// How often the server pings each subscriber.
    pub ping_interval: Duration,
    /// A subscriber whose last pong (or whose pending send) is older than
    /// this is disconnected: it has stopped reading.
    pub idle_timeout: Duration,
    /// How often a `progress` message tells a subscriber how far it has seen.
    pub progress_interval: Duration,
}
