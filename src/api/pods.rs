//! `/v2/pods`: a clear answer instead of an empty 404.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `/v2/pods`: pods need Mesos task groups, which Stride does not drive.
pub async fn pods() -> Response {
    (
        StatusCode::NOT_IMPLEMENTED,
        Json(json!({
            "message": "Pods are not supported by Stride: they need Mesos task groups. Run each container as an app (/v2/apps) and group them (/v2/groups)."
        })),
    )
        .into_response()
}
