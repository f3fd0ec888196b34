//! Request parts every write needs: the JSON body with field paths in its
//! errors, and the actor (the idempotency key: `idempotency.rs`).

use super::ApiError;
use super::access::Who;
use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use stride_core::command::error_pointer;
use stride_log::event::Actor;

/// Parses a JSON body. Malformed JSON is a 400; JSON of the wrong shape is a
/// 422 naming the field as a JSON pointer (`/portDefinitions/0/port`).
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let inner = error.inner();
        if inner.is_data() {
            ApiError::invalid_field(error_pointer(&error), inner.to_string())
        } else {
            ApiError::BadRequest(format!("Invalid JSON: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::BadRequest(format!("Invalid JSON: {e}")))?;
    Ok(value)
}

/// Reads already-parsed JSON as `T`; the wrong shape is a 422 naming the field.
pub fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value)
        .map_err(|error| ApiError::invalid_field(error_pointer(&error), error.inner().to_string()))
}

/// The query string as pairs, keeping repeats (`embed=a&embed=b`).
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
        Ok(Params(pairs))
    }
}

impl Params {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
        Params(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A boolean flag such as `force`, read as Marathon's JAX-RS resources
    /// read one: `true` in any case (Python clients send `True`), the first
    /// of repeated values, and absent or empty is false. Marathon takes any
    /// other word for false; that would turn `wipe=yes` into a silent no, so
    /// it is a 400 here.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        self.flag_or(name, false)
    }

    /// A flag whose default (when absent) is `default`.
    pub fn flag_or(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) if value.eq_ignore_ascii_case("true") => Ok(true),
            Some(value) if value.is_empty() || value.eq_ignore_ascii_case("false") => Ok(false),
            Some(value) => Err(ApiError::BadRequest(format!(
                "query parameter {name} must be true or false (in any case), got '{value}'"
            ))),
        }
    }
}

/// Who is asking, as the audit records it: the principal the auth layer
/// proved (`access.rs`; `anonymous` when no auth file is in force: no name
/// a client merely sends is believed) and the peer address.
pub struct Caller(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let remote = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.to_string());
        let Who(principal) = Who::from_request_parts(parts, state).await?;
        Ok(Caller(Actor::Api {
            principal: principal.name.clone(),
            remote,
        }))
    }
}
