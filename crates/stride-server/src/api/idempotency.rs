//! `Idempotency-Key`: a retry of the same request with the same key appends
//! nothing and gets the first answer; the key on any other request is a 422
//! naming the header (see `committer.rs`).
//!
//! The key is bound to its request by a SHA-256 of the method, the path
//! with its query, and the body. The `digest` middleware computes it before
//! a handler reads the body and hands it on in a header of Stride's own,
//! always replacing whatever a client sent under that name, so handlers
//! (which see the headers) need no other extractor.

use super::ApiError;
use crate::committer::Idempotency;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const KEY: &str = "idempotency-key";
const DIGEST: &str = "x-stride-request-digest";

/// Middleware: digests requests that carry an `Idempotency-Key`.
pub async fn digest(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    parts.headers.remove(DIGEST);
    if !parts.headers.contains_key(KEY) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    // Read as a handler would, under the same body limit and rejections.
    let mut probe = Request::new(body);
    *probe.method_mut() = parts.method.clone();
    *probe.uri_mut() = parts.uri.clone();
    *probe.headers_mut() = parts.headers.clone();
    *probe.extensions_mut() = parts.extensions.clone();
    let bytes = match Bytes::from_request(probe, &()).await {
        Ok(bytes) => bytes,
        Err(rejection) => return rejection.into_response(),
    };
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |p| p.as_str());
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for field in [parts.method.as_str().as_bytes(), target.as_bytes()] {
        context.update(field);
        context.update(&[0]);
    }
    context.update(&bytes);
    let encoded = URL_SAFE_NO_PAD.encode(context.finish());
    if let Ok(value) = encoded.parse() {
        parts.headers.insert(DIGEST, value);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The request's `Idempotency-Key` and digest, if it has a key.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<Idempotency>, ApiError> {
    let Some(value) = headers.get(KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("header Idempotency-Key must be visible ASCII".into()))?;
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::BadRequest(
            "header Idempotency-Key must be 1 to 255 characters".into(),
        ));
    }
    let request = headers
        .get(DIGEST)
        .and_then(|d| URL_SAFE_NO_PAD.decode(d.as_bytes()).ok())
        .and_then(|d| <[u8; 32]>::try_from(d).ok())
        .ok_or_else(|| ApiError::internal("a request with an Idempotency-Key was not digested"))?;
    Ok(Some(Idempotency {
        key: key.to_owned(),
        request,
    }))
}
