//! `/v2/queue`: apps waiting for tasks in Marathon's `QueueItem` shape
//! (QueueInfoConversion.scala), as the reconciler's last plans saw it; and
//! `/v1/queue`, the same with Stride's reason in words.

use super::app_routes::app_id;
use super::apps::definition_json;
use super::deployable;
use super::extract::{Caller, Params};
use super::tasks::Counts;
use super::{ApiError, Shared};
use crate::reconciler::{QueueEntry, RejectReason};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stride_core::command::Command;
use stride_core::projection::{App, State as ProjectionState};
use stride_log::event::json::timestamp;
use stride_runtime::clock::now_micros;

/// Marathon's `NoOfferMatchReason.reasonFunnel`: an unused offer counts
/// once, for the first of these it failed; Stride's reasons in their place.
const FUNNEL: [(&str, Option<RejectReason>); 10] = [
    ("UnfulfilledRole", None),
    (
        "UnfulfilledConstraint",
        Some(RejectReason::UnfulfilledConstraint),
    ),
    ("NoCorrespondingReservationFound", None),
    ("AgentMaintenance", None),
    ("InsufficientCpus", Some(RejectReason::InsufficientCpus)),
    ("InsufficientMemory", Some(RejectReason::InsufficientMemory)),
    ("InsufficientDisk", Some(RejectReason::InsufficientDisk)),
    ("InsufficientGpus", Some(RejectReason::InsufficientGpus)),
    ("InsufficientPorts", Some(RejectReason::InsufficientPorts)),
    ("DeclinedScarceResources", None),
];

/// What waits, with each app's entry.
pub(super) fn waiting<'a>(
    shared: &Shared,
    state: &'a ProjectionState,
    scope: &stride_auth::Scope,
) -> Vec<(QueueEntry, &'a App)> {
    state
        .apps
        .values()
        .filter(|app| scope.covers(app.definition.id.as_str()))
        .filter_map(|app| {
            let entry = if shared.queue.is_active() {
                shared.queue.get(&app.definition.id)?
            } else {
                // No reconciler (no Mesos): what is missing, no reasons.
                unlaunched(state, app)?
            };
            Some((entry, &**app))
        })
        .collect()
}

/// `GET /v2/queue` (`embed=lastUnusedOffers` adds the offers last declined:
/// Stride keeps counts per reason, not the offers, so that list is empty).
#[utoipa::path(
    get,
    path = "/v2/queue",
    tag = "deployments",
    summary = "What waits to launch (Marathon's QueueItem)",
    params(
        ("embed" = Option<String>, Query, description = "lastUnusedOffers"),
    ),
    responses(
        (status = 200, description = "The queue", body = crate::api::openapi::QueueAnswer),
        (status = 400, response = crate::api::openapi::BadRequest),
    )
)]
pub async fn list(
    State(shared): State<Shared>,
    who: super::access::Who,
    params: Params,
) -> Json<Value> {
    let with_offers = params.all("embed").any(|e| e == "lastUnusedOffers");
    let state = shared.projection.read();
    let now = now_micros();
    let queue: Vec<Value> = waiting(&shared, &state, &who.scope(stride_auth::Verb::Read))
        .iter()
        .map(|(entry, app)| {
            let mut item = item(app, entry, now);
            if with_offers {
                item["lastUnusedOffers"] = json!([]);
            }
            item
        })
        .collect();
    Json(json!({ "queue": queue }))
}

/// `GET /v1/queue`: Stride's view, with why each app waits in words.
#[utoipa::path(
    get,
    path = "/v1/queue",
    tag = "deployments",
    summary = "What waits to launch, and why in words",
    responses(
        (status = 200, description = "The queue", body = crate::api::openapi::QueueAnswer),
    )
)]
pub async fn explained(State(shared): State<Shared>, who: super::access::Who) -> Json<Value> {
    let state = shared.projection.read();
    let now = now_micros();
    let queue: Vec<Value> = waiting(&shared, &state, &who.scope(stride_auth::Verb::Read))
        .iter()
        .map(|(entry, app)| {
            json!({
                "app": app.definition.id,
                "count": entry.count,
                "since": timestamp(entry.since),
                "reason": entry.reason(now),
            })
        })
        .collect();
    Json(json!({ "queue": queue }))
}

fn unlaunched(state: &ProjectionState, app: &App) -> Option<QueueEntry> {
    let counts = Counts::of(state, &app.definition.id);
    let launched = u32::try_from(counts.staged + counts.running).unwrap_or(u32::MAX);
    let count = app.definition.instances.checked_sub(launched)?;
    (count > 0).then(|| QueueEntry {
        count,
        since: app.version,
        ..QueueEntry::default()
    })
}

/// Marathon's `QueueApp`. Its `role` is left out: the marathon client
/// (0.13.0) rejects the key, and every Stride app has the role `*`.
fn item(app: &App, entry: &QueueEntry, now: u64) -> Value {
    let left = entry.delayed_until.map_or(0, |u| u.saturating_sub(now));
    let mut definition = definition_json(&app.definition);
    definition.insert("version".into(), json!(timestamp(app.version)));
    definition.insert(
        "versionInfo".into(),
        json!({"lastScalingAt": timestamp(app.version),
               "lastConfigChangeAt": timestamp(app.config_version)}),
    );
    json!({
        "count": entry.count,
        "delay": {"timeLeftSeconds": left.div_ceil(1_000_000), "overdue": left == 0},
        "since": timestamp(entry.since),
        "processedOffersSummary": {
            "processedOffersCount": entry.offers_processed,
            "unusedOffersCount": entry.rejections.values().sum::<u32>(),
            "lastUnusedOfferAt": entry.offers_looked_at.map(timestamp),
            "rejectSummaryLastOffers": funnel(entry),
            "rejectSummaryLaunchAttempt": funnel(entry),
        },
        "app": definition,
    })
}

/// Each reason of the funnel with the offers it declined and the offers
/// that reached it (those not declined by an earlier reason).
fn funnel(entry: &QueueEntry) -> Vec<Value> {
    let mut processed = entry.offers_processed;
    FUNNEL
        .iter()
        .map(|(name, reason)| {
            let declined = reason
                .and_then(|r| entry.rejections.get(&r).copied())
                .unwrap_or(0);
            let step = json!({"reason": name, "declined": declined, "processed": processed});
            processed = processed.saturating_sub(declined);
            step
        })
        .collect()
}

/// `DELETE /v2/queue/{id}/delay`: 204 once the reset is durable.
#[utoipa::path(
    delete,
    path = "/v2/queue/{id}/delay",
    tag = "deployments",
    summary = "Reset an app's launch backoff",
    params(
        crate::api::openapi::AppPath,
    ),
    responses(
        (status = 204, description = "Reset"),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 404, response = crate::api::openapi::NotFound),
        (status = 503, response = crate::api::openapi::Unavailable),
    )
)]
pub async fn reset_delay(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(id) = rest.trim_end_matches('/').strip_suffix("/delay") else {
        return Err(ApiError::NotFound(format!("no queue resource at {rest}")));
    };
    let command = Command::ResetLaunchDelay { app: app_id(id) };
    deployable::commit(&shared, actor, &headers, command).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
