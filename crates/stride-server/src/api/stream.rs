//! The endpoints that follow the log: `GET /v1/stream` (websocket),
//! Marathon's `GET /v2/events` (Server-Sent Events) and `GET /v1/sidecars`.
//! Requests are checked here, so a bad one is a plain HTTP error; the
//! sessions themselves are `stream::ws` and `stream::sse`.

use super::access::Who;
use super::{ApiError, Caller, Shared};
use crate::stream::marathon::PlanFormat;
use crate::stream::revocation::Revoked;
use crate::stream::sse::{self, Wanted};
use crate::stream::ws::{self, StreamQuery};
use crate::stream::{Feed, Filter, Protocol, Start};
use axum::Json;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use stride_auth::{Scope, Verb};
use stride_log::event::Actor;

/// `GET /v1/stream`: validates the query before upgrading.
#[utoipa::path(
    get,
    path = "/v1/stream",
    tag = "events",
    summary = "The log over a websocket, gapless from any seq (docs/stream.md)",
    params(
        ("from" = Option<String>, Query, description = "A seq or now"),
        ("type" = Option<Vec<String>>, Query),
        ("app" = Option<String>, Query),
        ("task" = Option<String>, Query),
    ),
    responses(
        (status = 101, description = "Switching to the websocket protocol"),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 503, response = crate::api::openapi::Unavailable),
    )
)]
pub async fn websocket(
    State(shared): State<Shared>,
    who: Who,
    Query(pairs): Query<Vec<(String, String)>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let mut query =
        StreamQuery::parse(&pairs).map_err(|bad| ApiError::BadRequest(bad.to_string()))?;
    // Resolved at subscribe, and checked again on each auth file reload.
    let scope = who.scope(Verb::Stream);
    query.filter.scope = Some(scope.clone());
    let subscribed = shared
        .stream
        .subscribe(Protocol::Websocket)
        .map_err(|full| ApiError::Busy(full.to_string()))?;
    let revoked = revocation(&shared, &who, scope);
    Ok(ws::accept(
        upgrade,
        shared.stream_sources(),
        query,
        subscribed,
        revoked,
    ))
}

/// Ends the stream `who` opened with `scope` once a reload of the auth
/// file takes it away.
fn revocation(shared: &Shared, who: &Who, scope: Scope) -> Revoked {
    crate::stream::revocation::watch(
        shared.auth.clone(),
        who.0.clone(),
        scope,
        shared.stream.auth_reloads(),
    )
}

/// `GET /v2/events`.
#[utoipa::path(
    get,
    path = "/v2/events",
    tag = "events",
    summary = "Marathon's Server-Sent Events",
    params(
        ("event_type" = Option<Vec<String>>, Query),
        ("plan-format" = Option<String>, Query, description = "light or full"),
    ),
    responses(
        (status = 200, description = "The event stream", body = String, content_type = "text/event-stream"),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 406, response = crate::api::openapi::BadRequest),
        (status = 503, response = crate::api::openapi::Unavailable),
    )
)]
pub async fn marathon_events(
    State(shared): State<Shared>,
    who: Who,
    Caller(actor): Caller,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let accepts = headers
        .get_all("accept")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    if !accepts {
        return Err(ApiError::NotAcceptable(
            "/v2/events serves Server-Sent Events: send 'Accept: text/event-stream'".into(),
        ));
    }
    // Marathon ignores parameters it does not know, so this does too.
    let format = match pairs.iter().find(|(key, _)| key == "plan-format") {
        Some((_, value)) if value == "light" => PlanFormat::Light,
        _ => PlanFormat::Full,
    };
    let types: BTreeSet<String> = pairs
        .into_iter()
        .filter(|(key, _)| key == "event_type")
        .map(|(_, value)| value)
        .collect();
    let (start, skip) = match headers.get("last-event-id") {
        None => (Start::Now, None),
        Some(value) => {
            let last = value
                .to_str()
                .ok()
                .and_then(sse::parse_event_id)
                .ok_or_else(|| {
                    ApiError::BadRequest("Last-Event-ID must be an id this server sent".into())
                })?;
            match last {
                (seq, None) => {
                    // u64::MAX has no successor; it is as far beyond the
                    // head as any.
                    let after = seq.checked_next().ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "Last-Event-ID: {seq} is beyond the head of the log ({})",
                            shared.projection.head()
                        ))
                    })?;
                    (Start::At(after), None)
                }
                (seq, Some(seen)) => (Start::At(seq), Some((seq, seen + 1))),
            }
        }
    };
    let sources = shared.stream_sources();
    let scope = who.scope(Verb::Stream);
    let revoked = revocation(&shared, &who, scope.clone());
    let feed = Feed::open(
        sources.log.clone(),
        sources.projection.clone(),
        start,
        Filter {
            scope: Some(scope),
            ..Filter::default()
        },
    )
    .map_err(|error| ApiError::BadRequest(format!("Last-Event-ID: {error}")))?
    .following(sources.hub.paced_head());
    // Counted among the subscribers the hub paces for, while it streams.
    let subscribed = sources
        .hub
        .subscribe(Protocol::Sse)
        .map_err(|full| ApiError::Busy(full.to_string()))?;
    let remote = match &actor {
        Actor::Api { remote, .. } => remote.clone(),
        _ => String::new(),
    };
    let wanted = Wanted {
        format,
        types,
        skip,
        remote,
    };
    Ok(sse::respond(&sources, feed, subscribed, wanted, revoked))
}

/// `GET /v1/sidecars`.
#[utoipa::path(
    get,
    path = "/v1/sidecars",
    tag = "stride",
    summary = "Connected load-balancer sidecars and the seq each applied",
    responses(
        (status = 200, description = "Sidecars", body = crate::api::openapi::SidecarList),
    )
)]
pub async fn sidecars(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({"sidecars": shared.sidecars.all()}))
}
