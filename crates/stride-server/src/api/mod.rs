//! The HTTP API: Marathon's `/v2` for apps, Stride's `/v1` for the log and
//! the projection. Handlers turn requests into commands or read the
//! projection; they never write the log themselves.

mod access;
mod app_routes;
mod app_view;
mod apps;
mod audit;
mod backup;
mod definitions;
mod deployable;
mod deployments;
mod diff;
mod error;
mod extract;
mod fragments;
mod groups;
mod idempotency;
mod info;
mod label_selector;
mod log;
mod metrics;
pub mod openapi;
mod pods;
mod queue;
mod rendered;
mod stream;
mod subscriptions;
mod task_files;
mod tasks;

pub use error::ApiError;
pub use extract::Caller;
pub use info::ServerInfo;

pub use rendered::Rendered;

use crate::committer::Committer;
use crate::published::Projection;
use axum::Router;
use axum::routing::{delete, get, post};
use std::sync::Arc;
use stride_log::store::EventLog;

/// What every handler can reach.
#[derive(Clone)]
pub struct Shared {
    pub log: Arc<EventLog>,
    pub projection: Arc<Projection>,
    pub committer: Committer,
    pub stream: Arc<crate::stream::Hub>,
    pub callbacks: crate::callbacks::Registry,
    /// Raw results of Stride-run health checks.
    pub health: crate::health::HealthResults,
    pub sidecars: crate::stream::Sidecars,
    pub server: ServerInfo,
    /// What waits to launch and why, kept by the reconciler.
    pub queue: Arc<crate::reconciler::Queue>,
    /// The last app list rendered.
    pub rendered: Rendered,
    /// Readiness check results, kept by the readiness monitor.
    pub readiness: crate::health::Readiness,
    /// The Mesos subscription, while this instance drives Mesos.
    pub mesos: MesosSlot,
    pub metrics: crate::metrics::Metrics,
    /// Who may do what: the auth file in force (`access.rs`).
    pub auth: Arc<stride_auth::Keeper>,
}

/// The Mesos subscription: set once by a lone Stride, and by each win of
/// a high-availability instance (emptied when it steps down).
#[derive(Clone, Default)]
pub struct MesosSlot(Arc<std::sync::RwLock<Option<stride_mesos::SchedulerHandle>>>);

impl MesosSlot {
    pub fn get(&self) -> Option<stride_mesos::SchedulerHandle> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, handle: Option<stride_mesos::SchedulerHandle>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = handle;
    }
}

impl Shared {
    /// What a websocket or SSE subscription reads.
    pub fn stream_sources(&self) -> crate::stream::Sources {
        crate::stream::Sources {
            log: self.log.clone(),
            projection: self.projection.clone(),
            hub: self.stream.clone(),
            sidecars: self.sidecars.clone(),
        }
    }
}

pub fn router(shared: Shared) -> Router {
    let recorded = shared.metrics.clone();
    let routes = Router::new()
        .route("/ping", get(info::ping))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::spec))
        .route("/v1/state", get(log::state))
        .route("/v1/events", get(log::events))
        .route("/v1/replica", get(log::replica))
        .route("/v1/stream", get(stream::websocket))
        .route("/v1/audit", get(audit::audit))
        .route("/v1/apps/{*rest}", get(diff::app_diff))
        .route("/v1/sidecars", get(stream::sidecars))
        .route("/v1/subscriptions", get(subscriptions::deliveries))
        .route("/v2/events", get(stream::marathon_events))
        .route(
            "/v2/eventSubscriptions",
            get(subscriptions::list)
                .post(subscriptions::subscribe)
                .delete(subscriptions::unsubscribe),
        )
        .route(
            "/v2/apps",
            get(apps::list)
                .post(apps::create)
                .put(apps::put_many)
                .patch(apps::patch_many),
        )
        .route(
            "/v2/apps/{*rest}",
            get(app_routes::get)
                .put(app_routes::put)
                .patch(app_routes::patch)
                .delete(app_routes::delete)
                .post(app_routes::post)
                .fallback(app_routes::other_method),
        )
        .route(
            "/v2/groups",
            get(groups::get_root)
                .post(groups::create_root)
                .put(groups::update_root)
                .delete(groups::delete_root),
        )
        .route(
            "/v2/groups/{*rest}",
            get(groups::get)
                .post(groups::create)
                .put(groups::update)
                .patch(groups::patch)
                .delete(groups::delete)
                .fallback(groups::other_method),
        )
        .route("/v2/pods", get(pods::pods).post(pods::pods))
        .route(
            "/v2/pods/{*rest}",
            get(pods::pod).put(pods::pod).delete(pods::pod),
        )
        .route("/v1/tasks/{id}/files/{name}", get(task_files::read))
        .route("/v2/tasks", get(tasks::list))
        .route("/v2/tasks/delete", post(tasks::kill_by_id))
        .route("/v2/deployments", get(deployments::list))
        .route("/v2/deployments/{id}", delete(deployments::cancel))
        .route("/v2/queue", get(queue::list))
        .route("/v1/queue", get(queue::explained))
        .route("/v2/queue/{*rest}", delete(queue::reset_delay))
        .route("/v2/info", get(info::info))
        .route("/v1/info", get(info::stride))
        .route("/v1/leader", get(info::election_v1))
        .route("/v2/leader", get(info::leader).delete(info::abdicate))
        .route("/v1/backup", get(backup::backup))
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            access::guard,
        ))
        .with_state(shared)
        .layer(axum::middleware::from_fn(idempotency::digest))
        .merge(crate::ui::router());
    let tracking = crate::metrics::Tracking {
        metrics: recorded,
        refine: metrics::refine,
    };
    with_error_shape(routes).layer(axum::middleware::from_fn_with_state(
        tracking,
        crate::metrics::track,
    ))
}

/// Unknown routes answer 404, a handler that panics answers 500 (logged)
/// instead of dropping the connection, and every error gets the one shape.
fn with_error_shape(router: Router) -> Router {
    router
        .fallback(error::no_route)
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(axum::middleware::map_response(error::json_errors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    async fn answer(router: Router, uri: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let response = with_error_shape(router).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_json_500() {
        let router = Router::new().route(
            "/boom",
            get(|| async {
                panic!("boom");
                #[allow(unreachable_code)]
                ""
            }),
        );
        let (status, body) = answer(router, "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body["message"].is_string(), "{body}");
        let (status, body) = answer(Router::new(), "/nowhere").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["message"], "no resource at /nowhere");
    }
}
