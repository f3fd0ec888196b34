//! `/v2/pods`: a clear answer instead of an empty 404.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `/v2/pods`: pods need Mesos task groups, which Stride does not drive.
/// Every method PodsResource takes answers 501 (so `HEAD /v2/pods`, which
/// clients ask to learn whether pods are supported, says no); the others
/// 405.
#[utoipa::path(
    method(get, post),
    path = "/v2/pods",
    tag = "server",
    summary = "Pods: not supported (every method answers 501)",
    responses(
        (status = 501, description = "Pods are not supported: they need Mesos task groups", body = crate::api::openapi::ErrorBody),
    )
)]
pub async fn pods() -> Response {
    (
        StatusCode::NOT_IMPLEMENTED,
        Json(json!({
            "message": "Pods are not supported by Stride: they need Mesos task groups. Run each container as an app (/v2/apps) and group them (/v2/groups)."
        })),
    )
        .into_response()
}

#[utoipa::path(
    method(get, put, delete),
    path = "/v2/pods/{id}",
    tag = "server",
    summary = "Pods: not supported (every method answers 501)",
    params(("id" = String, Path, description = "The pod id")),
    responses(
        (status = 501, description = "Pods are not supported: they need Mesos task groups", body = crate::api::openapi::ErrorBody),
    )
)]
pub async fn pod() -> Response {
    pods().await
}
