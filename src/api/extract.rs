//! Request parts every write needs: the JSON body with field paths in its
//! errors, the actor, and the idempotency key.

use super::ApiError;
use crate::command::json_pointer;
use crate::event::Actor;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

/// Parses a JSON body. Malformed JSON is a 400; JSON of the wrong shape is a
/// 422 naming the field as a JSON pointer (`/portDefinitions/0/port`).
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let inner = error.inner();
        if inner.is_data() {
            ApiError::invalid_field(json_pointer(error.path()), inner.to_string())
        } else {
            ApiError::BadRequest(format!("Invalid JSON: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::BadRequest(format!("Invalid JSON: {e}")))?;
    Ok(value)
}

/// Who is asking: the HTTP basic-auth user (or `anonymous`) and the peer
/// address.
pub struct Caller(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let remote = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.to_string());
        let principal = basic_auth_user(&parts.headers).unwrap_or_else(|| "anonymous".to_owned());
        Ok(Caller(Actor::Api { principal, remote }))
    }
}

fn basic_auth_user(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split(':').next()?;
    (!user.is_empty()).then(|| user.to_owned())
}

/// The `Idempotency-Key` header: a retry with the same key appends nothing.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => {
            let key = value.to_str().map_err(|_| {
                ApiError::BadRequest("header Idempotency-Key must be visible ASCII".into())
            })?;
            if key.is_empty() || key.len() > 255 {
                return Err(ApiError::BadRequest(
                    "header Idempotency-Key must be 1 to 255 characters".into(),
                ));
            }
            Ok(Some(key.to_owned()))
        }
    }
}
