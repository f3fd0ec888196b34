//! API errors as Marathon shapes them: a JSON body with a `message`, and for
//! invalid objects the `details` naming each bad field.

use crate::command::{Rejection, RejectionKind, SubmitError};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{}", .0.message)]
    Rejected(Rejection),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("Stride is stopping")]
    Unavailable,
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
            ApiError::NotAcceptable(message) => {
                (StatusCode::NOT_ACCEPTABLE, json!({"message": message}))
            }
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"message": "method not allowed on this resource"}),
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"message": "Stride is stopping"}),
            ),
            ApiError::Internal(message) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"message": message}),
            ),
        };
        (status, Json(body)).into_response()
    }
}
