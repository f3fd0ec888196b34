//! `/v1/state` and `/v1/events`: the state (`protocol::StateDocument`) and
//! the log as JSON.

use super::access::Who;
use super::{ApiError, Shared};
use crate::published::{self, LoadError};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use stride_auth::{Scope, Verb};
use stride_log::event::Seq;
use stride_log::event::json::envelope_json;
use stride_protocol::StateDocument;

const MAX_PAGE: usize = 10_000;

#[derive(Deserialize)]
pub struct StateQuery {
    at: Option<u64>,
}

/// The state document with the seq it reflects; `?at=N` rebuilds it as of
/// seq N from the nearest snapshot.
#[utoipa::path(
    get,
    path = "/v1/state",
    tag = "stride",
    summary = "The state document and the seq it reflects",
    params(
        ("at" = Option<u64>, Query, description = "Rebuild the state as of this seq"),
    ),
    responses(
        (status = 200, description = "The state", body = crate::api::openapi::StateAnswer),
        (status = 400, response = crate::api::openapi::BadRequest),
    )
)]
pub async fn state(
    State(shared): State<Shared>,
    who: Who,
    Query(query): Query<StateQuery>,
) -> Result<Response, ApiError> {
    let scope = who.scope(Verb::Read);
    let Some(at) = query.at else {
        // Copied under the lock, written outside it.
        let document = scoped(StateDocument::of(&shared.projection.read()), &scope);
        // Straight to bytes: the whole state can be tens of megabytes.
        let body = serde_json::to_vec(&document).map_err(ApiError::internal)?;
        return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
    };
    let log = shared.log.clone();
    let rebuilt = tokio::task::spawn_blocking(move || published::load(&log, Some(Seq(at))))
        .await
        .map_err(ApiError::internal)?;
    match rebuilt {
        Ok(state) => Ok(Json(scoped(StateDocument::of(&state), &scope)).into_response()),
        Err(LoadError::BeyondHead { at, head }) => Err(ApiError::BadRequest(format!(
            "at={at} is beyond the head of the log ({head})"
        ))),
        Err(error) => Err(ApiError::internal(error)),
    }
}

#[derive(Deserialize)]
pub struct ReplicaQuery {
    from: u64,
    to: Option<u64>,
}

/// `GET /v1/replica`: seqs `from` through `to` (default: the head), at most
/// 10,000, with their commands' idempotency records, as a replicated batch
/// (`stride-log`'s `store/replica.rs`): what an instance behind the
/// replicated log's oldest batch copies (high availability).
#[utoipa::path(
    get,
    path = "/v1/replica",
    tag = "stride",
    summary = "A range of the log as a replicated batch (high availability)",
    params(
        ("from" = u64, Query, minimum = 1, description = "The first seq"),
        ("to" = Option<u64>, Query, description = "The last seq (default and at most: the head)"),
    ),
    responses(
        (status = 200, description = "The batch", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 400, response = crate::api::openapi::BadRequest),
    )
)]
pub async fn replica(
    State(shared): State<Shared>,
    Query(query): Query<ReplicaQuery>,
) -> Result<Response, ApiError> {
    if query.from == 0 {
        return Err(ApiError::BadRequest("from must be at least 1".into()));
    }
    let head = shared.projection.head();
    let to = Seq(query.to.unwrap_or(head.0).min(head.0));
    let log = shared.log.clone();
    let bytes =
        tokio::task::spawn_blocking(move || log.replica_range(Seq(query.from), to, MAX_PAGE))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

#[derive(Deserialize)]
pub struct EventsQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

/// A page of the log: events with seq >= `from` (default 1), at most `limit`
/// (default 1,000, at most 10,000), and where the next page starts.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "stride",
    summary = "A page of the log",
    params(
        ("from" = Option<u64>, Query, description = "The first seq (default 1)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 10000, description = "At most this many (default 1000)"),
    ),
    responses(
        (status = 200, description = "Events from `from` on", body = crate::api::openapi::EventPage),
        (status = 400, response = crate::api::openapi::BadRequest),
    )
)]
pub async fn events(
    State(shared): State<Shared>,
    who: Who,
    Query(query): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let scope = who.scope(Verb::Read);
    let from = Seq(query.from.unwrap_or(1).max(1));
    let limit = query.limit.unwrap_or(1_000);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    // Only what is durable: the log may hold a batch still being synced.
    let head = shared.projection.head();
    let log = shared.log.clone();
    let page = tokio::task::spawn_blocking(move || {
        log.iter_from(from)
            .take_while(|e| e.as_ref().map_or(true, |e| e.seq <= head))
            .take(limit)
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let next = page.last().map_or(from, |e| e.seq.next());
    // `next` is past what was read, shown or not.
    let events: Vec<Value> = page
        .iter()
        .filter(|e| crate::stream::in_scope(&scope, e))
        .map(envelope_json)
        .collect();
    Ok(Json(json!({"events": events, "next": next, "head": head})))
}

/// The document with only the apps `scope` covers and their tasks (the
/// framework id is kept: a sidecar needs it and it names no app).
fn scoped(mut document: StateDocument, scope: &Scope) -> StateDocument {
    if !scope.is_all() {
        let view = &mut document.state;
        view.apps.retain(|id, _| scope.covers(id.as_str()));
        view.tasks
            .retain(|_, task| task.app.as_ref().is_some_and(|a| scope.covers(a.as_str())));
    }
    document
}
