//! API errors as Marathon shapes them: a JSON body with a `message`, and for
//! invalid objects the `details` naming each bad field. `json_errors` gives
//! the errors the framework itself produces (rejected extractors, 404, 405,
//! 413) the same shape.

use crate::committer::SubmitError;
use axum::Json;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use stride_core::command::{Rejection, RejectionKind};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{}", .0.message)]
    Rejected(Rejection),
    #[error("{0}")]
    NotFound(String),
    /// The principal may not do this (`access.rs`).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotAcceptable(String),
    /// Carries the `Allow` header's value.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("Stride is stopping")]
    Unavailable,
    /// A limit is reached; the client may try again later (503).
    #[error("{0}")]
    Busy(String),
    /// Something Stride asked on the caller's behalf (Mesos) failed (502).
    #[error("{0}")]
    BadGateway(String),
    /// A change too large to record (413).
    #[error("{0}")]
    TooLarge(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid_field(path: String, error: String) -> ApiError {
        ApiError::Rejected(Rejection::invalid_field(path, error))
    }

    /// For errors whose detail is logged, not sent.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "request failed");
        ApiError::Internal(error.to_string())
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> ApiError {
        match error {
            SubmitError::Rejected(rejection) => ApiError::Rejected(rejection),
            SubmitError::Stopped => ApiError::Unavailable,
            SubmitError::Unreadable(message) | SubmitError::NotLeader(message) => {
                ApiError::Busy(message)
            }
            SubmitError::TooLarge(message) => ApiError::TooLarge(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::BadRequest(message) => (StatusCode::BAD_REQUEST, json!({"message": message})),
            ApiError::Rejected(rejection) => {
                let status = match rejection.kind {
                    RejectionKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                    RejectionKind::Conflict => StatusCode::CONFLICT,
                    RejectionKind::NotFound => StatusCode::NOT_FOUND,
                };
                (status, json!(rejection))
            }
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, json!({"message": message})),
            ApiError::Forbidden(message) => (StatusCode::FORBIDDEN, json!({"message": message})),
            ApiError::NotAcceptable(message) => {
                (StatusCode::NOT_ACCEPTABLE, json!({"message": message}))
            }
            ApiError::MethodNotAllowed(allow) => {
                let body =
                    json!({"message": format!("method not allowed; this resource allows {allow}")});
                let mut response = (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response();
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
                return response;
            }
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"message": "Stride is stopping"}),
            ),
            ApiError::Busy(message) => {
                (StatusCode::SERVICE_UNAVAILABLE, json!({"message": message}))
            }
            ApiError::BadGateway(message) => (StatusCode::BAD_GATEWAY, json!({"message": message})),
            ApiError::TooLarge(message) => {
                (StatusCode::PAYLOAD_TOO_LARGE, json!({"message": message}))
            }
            ApiError::Internal(message) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"message": message}),
            ),
        };
        (status, Json(body)).into_response()
    }
}

/// Error bodies the framework writes are plain text or empty; longer than
/// this they are not worth quoting.
const MAX_QUOTED: usize = 4096;

/// Rewrites every 4xx/5xx answer that is not JSON already into
/// `{"message": ...}`: the text it had, else the status's reason. Headers
/// such as `Allow` are kept.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_QUOTED)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = match text.is_empty() {
        true => status.canonical_reason().unwrap_or("error").to_owned(),
        false => text,
    };
    let body = json!({"message": message}).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

/// Unknown routes: Marathon's 404 shape, naming the path.
pub async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no resource at {}", uri.path()))
}
