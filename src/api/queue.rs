//! `/v2/queue`: apps waiting for tasks, and why (backoff, or what the last
//! offers lacked), as the reconciler's last plans saw it.

use super::app_routes::app_id;
use super::apps::{Embed, app_json};
use super::deployable;
use super::extract::Caller;
use super::tasks::Counts;
use super::{ApiError, Shared};
use crate::command::Command;
use crate::event::json::timestamp;
use crate::health::HealthResults;
use crate::projection::{App, State as ProjectionState};
use crate::reconciler::{QueueEntry, now_micros};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub async fn list(State(shared): State<Shared>) -> Json<Value> {
    let state = shared.projection.read();
    let now = now_micros();
    let queue: Vec<Value> = state
        .apps
        .values()
        .filter_map(|app| {
            let entry = if shared.queue.is_active() {
                shared.queue.get(&app.definition.id)?
            } else {
                // No reconciler (no Mesos): what is missing, no reasons.
                unlaunched(&state, app)?
            };
            Some(item(&state, app, &entry, now, &shared.health))
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

/// Marathon's queue item, plus `reason` in plain words.
fn item(
    state: &ProjectionState,
    app: &App,
    entry: &QueueEntry,
    now: u64,
    health: &HealthResults,
) -> Value {
    let embed = Embed {
        counts: true,
        deployments: true,
        ..Embed::default()
    };
    let left = entry.delayed_until.map_or(0, |u| u.saturating_sub(now));
    let rejections: Vec<Value> = entry
        .rejections
        .iter()
        .map(|(reason, declined)| {
            json!({"reason": reason.name(), "declined": declined, "processed": entry.offers_processed})
        })
        .collect();
    json!({
        "count": entry.count,
        "delay": {"timeLeftSeconds": left.div_ceil(1_000_000), "overdue": left == 0},
        "since": timestamp(entry.since),
        "reason": entry.reason(now),
        "processedOffersSummary": {
            "processedOffersCount": entry.offers_processed,
            "unusedOffersCount": entry.rejections.values().sum::<u32>(),
            "lastUnusedOfferAt": entry.offers_looked_at.map(timestamp),
            "rejectSummaryLastOffers": rejections,
        },
        "app": app_json(app, state, embed, health),
    })
}

/// `DELETE /v2/queue/{id}/delay`: 204 once the reset is durable.
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
