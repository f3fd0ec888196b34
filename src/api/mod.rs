//! The HTTP API: Marathon's `/v2` for apps, Stride's `/v1` for the log and
//! the projection. Handlers turn requests into commands or read the
//! projection; they never write the log themselves.

mod apps;
mod audit;
mod error;
mod extract;
mod log;
mod subscriptions;

pub use error::ApiError;
pub use extract::Caller;

use crate::command::Committer;
use crate::projection::Projection;
use crate::store::EventLog;
use crate::stream::{self, StreamConfig};
use axum::Router;
use axum::routing::get;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct Shared {
    pub log: Arc<EventLog>,
    pub projection: Arc<Projection>,
    pub committer: Committer,
    pub stream: StreamConfig,
    pub callbacks: crate::callbacks::Registry,
}

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route("/v1/state", get(log::state))
        .route("/v1/events", get(log::events))
        .route("/v1/stream", get(stream::ws::handler))
        .route("/v1/audit", get(audit::audit))
        .route("/v2/events", get(stream::sse::handler))
        .route(
            "/v2/eventSubscriptions",
            get(subscriptions::list)
                .post(subscriptions::subscribe)
                .delete(subscriptions::unsubscribe),
        )
        .route("/v2/apps", get(apps::list).post(apps::create))
        .route(
            "/v2/apps/{*id}",
            get(apps::show).put(apps::update).delete(apps::delete),
        )
        .with_state(shared)
}
