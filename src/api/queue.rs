//! `/v2/queue`: apps waiting for tasks. For now an app is queued when it has
//! fewer staged and running tasks than instances; the reconciler will add
//! why (offers declined, backoff).

use super::app_routes::app_id;
use super::apps::{Embed, app_json};
use super::deployable;
use super::extract::Caller;
use super::tasks::Counts;
use super::{ApiError, Shared};
use crate::command::Command;
use crate::event::json::timestamp;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub async fn list(State(shared): State<Shared>) -> Json<Value> {
    let state = shared.projection.read();
    let embed = Embed {
        counts: true,
        deployments: true,
        ..Embed::default()
    };
    let queue: Vec<Value> = state
        .apps
        .values()
        .filter_map(|app| {
            let counts = Counts::of(&state, &app.definition.id);
            let launched = u32::try_from(counts.staged + counts.running).unwrap_or(u32::MAX);
            let count = app.definition.instances.checked_sub(launched)?;
            (count > 0).then(|| {
                json!({
                    "count": count,
                    "delay": {"timeLeftSeconds": 0, "overdue": true},
                    "since": timestamp(app.version),
                    "app": app_json(app, &state, embed, &shared.health),
                })
            })
        })
        .collect();
    Json(json!({ "queue": queue }))
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
