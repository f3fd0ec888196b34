//! `GET /v1/apps/{id}/diff?from=A&to=B`: what changed in an app's
//! definition between two of its versions (`/v2/apps/{id}/versions`), as
//! `audit::diff` changes. `to` defaults to the current version, `from` to
//! the version before `to`.

use super::apps::{definition_json, parse_version};
use super::{ApiError, Shared};
use crate::audit::diff::{Change, diff};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Serialize;
use serde_json::Value;
use stride_core::projection::App;
use stride_log::event::AppId;
use stride_log::event::json::timestamp;

#[derive(Debug, Serialize)]
pub struct VersionDiff {
    pub app: AppId,
    pub from: String,
    pub to: String,
    pub changes: Vec<Change>,
}

#[utoipa::path(
    get,
    path = "/v1/apps/{id}/diff",
    tag = "stride",
    summary = "What changed in an app's definition between two versions",
    params(
        crate::api::openapi::AppPath,
        ("from" = Option<String>, Query, description = "A version (default: the one before to)"),
        ("to" = Option<String>, Query, description = "A version (default: the current one)"),
    ),
    responses(
        (status = 200, description = "The changed fields", body = crate::api::openapi::VersionDiffDoc),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 404, response = crate::api::openapi::NotFound),
    )
)]
pub async fn app_diff(
    State(shared): State<Shared>,
    Path(rest): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<VersionDiff>, ApiError> {
    let Some(raw) = rest.trim_end_matches('/').strip_suffix("/diff") else {
        return Err(ApiError::NotFound(format!(
            "no resource at /v1/apps/{rest}: Stride's app resources are /v1/apps/{{id}}/diff"
        )));
    };
    let id = super::app_routes::app_id(raw);
    let (mut from, mut to) = (None, None);
    for (key, value) in &pairs {
        let slot = match key.as_str() {
            "from" => &mut from,
            "to" => &mut to,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter '{other}'; expected from or to"
                )));
            }
        };
        if slot.replace(version(key, value)?).is_some() {
            return Err(ApiError::BadRequest(format!("{key} is given twice")));
        }
    }
    let state = shared.projection.read();
    let app = state
        .apps
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("App '{id}' does not exist")))?;
    let to_index = match to {
        Some(at) => index_of(app, at)?,
        None => app.versions.len() - 1,
    };
    let from_index = match from {
        Some(at) => index_of(app, at)?,
        None => to_index.checked_sub(1).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "from is required: {} is the first version of {id}",
                timestamp(app.versions[to_index].version)
            ))
        })?,
    };
    let (before, after) = (&app.versions[from_index], &app.versions[to_index]);
    let changes = diff(
        &Value::Object(definition_json(&before.definition)),
        &Value::Object(definition_json(&after.definition)),
    );
    Ok(Json(VersionDiff {
        app: id,
        from: timestamp(before.version),
        to: timestamp(after.version),
        changes,
    }))
}

/// An RFC 3339 version, as unix µs.
fn version(key: &str, value: &str) -> Result<u64, ApiError> {
    parse_version(value).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{key} must be a version as /v2/apps/{{id}}/versions lists them (RFC 3339), not '{value}'"
        ))
    })
}

fn index_of(app: &App, at: u64) -> Result<usize, ApiError> {
    app.versions
        .iter()
        .position(|v| v.version == at)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "App '{}' has no version {}",
                app.definition.id,
                timestamp(at)
            ))
        })
}
