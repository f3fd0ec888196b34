//! The HTTP API: Marathon's `/v2` for apps, Stride's `/v1` for the log and
//! the projection. Handlers turn requests into commands or read the
//! projection; they never write the log themselves.

mod app_routes;
mod apps;
mod audit;
mod deployable;
mod deployments;
mod error;
mod extract;
mod info;
mod label_selector;
mod log;
mod queue;
mod rendered;
mod subscriptions;
mod tasks;

pub use error::ApiError;
pub use extract::Caller;
pub use info::ServerInfo;

pub use rendered::Rendered;

use crate::command::Committer;
use crate::projection::Projection;
use crate::store::EventLog;
use crate::stream;
use axum::Router;
use axum::routing::{delete, get};
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct Shared {
    pub log: Arc<EventLog>,
    pub projection: Arc<Projection>,
    pub committer: Committer,
    pub stream: Arc<stream::Hub>,
    pub callbacks: crate::callbacks::Registry,
    /// Raw results of Stride-run health checks.
    pub health: crate::health::HealthResults,
    pub sidecars: stream::Sidecars,
    pub server: ServerInfo,
    /// What waits to launch and why, kept by the reconciler.
    pub queue: Arc<crate::reconciler::Queue>,
    /// The last app list rendered.
    pub rendered: Rendered,
    /// Readiness check results, kept by the readiness monitor.
    pub readiness: crate::health::Readiness,
}

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/ping", get(info::ping))
        .route("/v1/state", get(log::state))
        .route("/v1/events", get(log::events))
        .route("/v1/stream", get(stream::ws::handler))
        .route("/v1/audit", get(audit::audit))
        .route("/v1/sidecars", get(stream::sidecars::list))
        .route("/v2/events", get(stream::sse::handler))
        .route(
            "/v2/eventSubscriptions",
            get(subscriptions::list)
                .post(subscriptions::subscribe)
                .delete(subscriptions::unsubscribe),
        )
        .route("/v2/apps", get(apps::list).post(apps::create))
        .route(
            "/v2/apps/{*rest}",
            get(app_routes::get)
                .put(app_routes::put)
                .patch(app_routes::patch)
                .delete(app_routes::delete)
                .post(app_routes::post),
        )
        .route("/v2/tasks", get(tasks::list))
        .route("/v2/deployments", get(deployments::list))
        .route("/v2/deployments/{id}", delete(deployments::cancel))
        .route("/v2/queue", get(queue::list))
        .route("/v2/queue/{*rest}", delete(queue::reset_delay))
        .route("/v2/info", get(info::info))
        .route("/v2/leader", get(info::leader))
        .fallback(error::no_route)
        .layer(axum::middleware::map_response(error::json_errors))
        .with_state(shared)
}
