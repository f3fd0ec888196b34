//! `GET /v1/audit`: filtered, paged history from the index trees.

use super::{ApiError, Shared};
use crate::audit::diff::{Change, diff};
use crate::audit::{self, AuditQuery, Bound, Cursor, MAX_LIMIT, Order};
use crate::stream::{AppMatch, parse_kind};
use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};
use stride_log::event::json::envelope_json;
use stride_log::event::{Envelope, Event, Seq};

/// `app`, `task`, `actor`, repeatable `type`, `since`/`until` (RFC 3339 or
/// a seq, inclusive), `limit` (1..=1000, default 100), `order` (`asc` or
/// `desc`) and `cursor` (the previous page's `next`).
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "stride",
    summary = "Who changed what, when: filtered, paged history; definition changes carry their changes",
    params(
        ("app" = Option<String>, Query, description = "An app id, or a prefix ending in /"),
        ("task" = Option<String>, Query),
        ("actor" = Option<String>, Query, description = "api:<user>, reconciler or mesos"),
        ("type" = Option<Vec<String>>, Query, description = "Event types, e.g. AppUpdated"),
        ("since" = Option<String>, Query, description = "A seq or an RFC 3339 time, inclusive"),
        ("until" = Option<String>, Query, description = "A seq or an RFC 3339 time, inclusive"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000),
        ("order" = Option<String>, Query, description = "asc or desc"),
        ("cursor" = Option<String>, Query, description = "The previous page's next"),
    ),
    responses(
        (status = 200, description = "A page of matching events", body = crate::api::openapi::EventPage),
        (status = 400, response = crate::api::openapi::BadRequest),
    )
)]
pub async fn audit(
    State(shared): State<Shared>,
    who: super::access::Who,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let query = parse(&pairs)?;
    within_audit_scope(&who, query.app.as_ref())?;
    // Only what is durable: the log may hold a batch still being synced.
    let head = shared.projection.head();
    // A cursor names an event a page returned, so never one beyond the head.
    if query.cursor.is_some_and(|cursor| cursor.last > head) {
        return Err(ApiError::BadRequest(format!(
            "cursor is not one this server issued: it points beyond the head of the log ({head})"
        )));
    }
    let log = shared.log.clone();
    let page = tokio::task::spawn_blocking(move || audit::run(&log, head, &query))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let events: Vec<Value> = page.events.iter().map(audited).collect();
    Ok(Json(json!({
        "events": events,
        "next": page.next.map(|c| c.encode()),
        "head": head,
    })))
}

/// An audit grant short of `/` answers only questions about apps under it:
/// the query must name one (`app=/prod/web`, or a prefix `app=/prod/`).
fn within_audit_scope(who: &super::access::Who, app: Option<&AppMatch>) -> Result<(), ApiError> {
    let scope = who.scope(stride_auth::Verb::Audit);
    let asked = match app {
        Some(AppMatch::Exact(id)) => id.as_str(),
        Some(AppMatch::Prefix(prefix)) => prefix.as_str(),
        None if scope.is_all() => return Ok(()),
        None => "/",
    };
    match scope.covers(asked) {
        true => Ok(()),
        false => Err(super::access::denied(&format!(
            "audit {asked}: name an app or a prefix its audit grants cover, with app="
        ))),
    }
}

/// The envelope, and for a change of an app's definition the fields that
/// changed (`changes`: path, before, after).
fn audited(envelope: &Envelope) -> Value {
    let mut value = envelope_json(envelope);
    let changes = match &envelope.event {
        Event::AppUpdated(e) => diff(&json!(e.previous), &json!(e.definition)),
        Event::AppScaled(e) => vec![Change {
            path: "/instances".into(),
            before: Some(json!(e.previous)),
            after: Some(json!(e.instances)),
        }],
        _ => return value,
    };
    value["changes"] = json!(changes);
    value
}

fn parse(pairs: &[(String, String)]) -> Result<AuditQuery, ApiError> {
    let bad = |message: String| ApiError::BadRequest(message);
    let mut query = AuditQuery::default();
    let mut seen = std::collections::BTreeSet::new();
    for (key, value) in pairs {
        if key != "type" && !seen.insert(key.as_str()) {
            return Err(bad(format!("{key} is given twice")));
        }
        match key.as_str() {
            "app" => {
                query.app = Some(AppMatch::parse(value).map_err(|e| bad(e.to_string()))?);
            }
            "task" => query.task = Some(non_empty(key, value)?),
            "actor" => query.actor = Some(non_empty(key, value)?),
            "type" => {
                let kind = parse_kind(value).map_err(|e| bad(e.to_string()))?;
                query.types.insert(kind);
            }
            "since" => query.since = Some(bound(key, value)?),
            "until" => query.until = Some(bound(key, value)?),
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(format!("limit must be between 1 and {MAX_LIMIT}")))?;
            }
            "order" => {
                query.order = match value.as_str() {
                    "asc" => Order::Asc,
                    "desc" => Order::Desc,
                    _ => return Err(bad("order must be asc or desc".into())),
                };
            }
            "cursor" => {
                query.cursor = Some(Cursor::decode(value).map_err(|e| bad(e.to_string()))?);
            }
            other => {
                return Err(bad(format!(
                    "unknown query parameter '{other}'; expected app, task, actor, type, \
                     since, until, limit, order or cursor"
                )));
            }
        }
    }
    if let Some(cursor) = query.cursor {
        if cursor.order != query.order {
            return Err(bad("cursor belongs to a query in the other order".into()));
        }
    }
    Ok(query)
}

fn non_empty(key: &str, value: &str) -> Result<String, ApiError> {
    if value.is_empty() {
        return Err(ApiError::BadRequest(format!("{key} must not be empty")));
    }
    Ok(value.to_owned())
}

/// A seq (digits only) or an RFC 3339 time.
fn bound(key: &str, value: &str) -> Result<Bound, ApiError> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse()
            .map(|seq| Bound::Seq(Seq(seq)))
            .map_err(|_| ApiError::BadRequest(format!("{key}: seq out of range")));
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .and_then(|t| u64::try_from(t.timestamp_micros()).ok())
        .map(Bound::Time)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{key} must be a seq or an RFC 3339 time such as 2026-01-02T03:04:05Z, not '{value}'"
            ))
        })
}
