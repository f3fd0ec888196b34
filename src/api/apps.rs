//! `/v2/apps`: Marathon's app endpoints.

use super::extract::{Caller, idempotency_key, json_body};
use super::{ApiError, Shared};
use crate::command::{Command, Outcome};
use crate::event::app::AppDefinition;
use crate::event::json::timestamp;
use crate::event::{AppId, Event};
use crate::projection::App;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, Default)]
pub struct ForceQuery {
    #[serde(default)]
    force: bool,
}

pub async fn list(State(shared): State<Shared>) -> Json<Value> {
    let state = shared.projection.read();
    let apps: Vec<Value> = state
        .apps
        .values()
        .map(|app| app_json(app, &state))
        .collect();
    Json(json!({ "apps": apps }))
}

pub async fn show(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = app_id(&id);
    let state = shared.projection.read();
    let app = state
        .apps
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("App '{id}' does not exist")))?;
    Ok(Json(json!({ "app": app_json(app, &state) })))
}

pub async fn create(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut definition: AppDefinition = json_body(&body)?;
    definition.id = app_id(definition.id.as_str());
    let key = idempotency_key(&headers)?;
    let outcome = shared
        .committer
        .submit(actor, key, Command::CreateApp(definition))
        .await?;
    let (deployment, version) = deployment_of(&outcome)?;
    let state = shared.projection.read();
    let created = outcome.events.iter().find_map(|e| match &e.event {
        Event::AppCreated(c) => Some(c.app.clone()),
        _ => None,
    });
    let body = created
        .and_then(|id| state.apps.get(&id).map(|app| app_json(app, &state)))
        .unwrap_or_else(|| json!({"version": version}));
    Ok(with_deployment(StatusCode::CREATED, &deployment, body))
}

pub async fn update(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(query): Query<ForceQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut definition: AppDefinition = json_body(&body)?;
    let id = app_id(&id);
    definition.id = id;
    let command = Command::UpdateApp {
        definition,
        force: query.force,
    };
    deployable(&shared, actor, &headers, command).await
}

pub async fn delete(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(query): Query<ForceQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let command = Command::DeleteApp {
        app: app_id(&id),
        force: query.force,
    };
    deployable(&shared, actor, &headers, command).await
}

async fn deployable(
    shared: &Shared,
    actor: crate::event::Actor,
    headers: &HeaderMap,
    command: Command,
) -> Result<Response, ApiError> {
    let key = idempotency_key(headers)?;
    let outcome = shared.committer.submit(actor, key, command).await?;
    let (deployment, version) = deployment_of(&outcome)?;
    let body = json!({"deploymentId": deployment, "version": version});
    Ok(with_deployment(StatusCode::OK, &deployment, body))
}

/// The deployment a deployable command started, and the version it made.
fn deployment_of(outcome: &Outcome) -> Result<(String, String), ApiError> {
    outcome
        .events
        .iter()
        .find_map(|e| match &e.event {
            Event::DeploymentStarted(d) => {
                Some((d.deployment.to_string(), timestamp(e.recorded_at)))
            }
            _ => None,
        })
        .ok_or_else(|| ApiError::internal("a deployable command started no deployment"))
}

fn with_deployment(status: StatusCode, deployment: &str, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(deployment) {
        response
            .headers_mut()
            .insert("Marathon-Deployment-Id", value);
    }
    response
}

/// Marathon accepts ids without the leading slash.
fn app_id(raw: &str) -> AppId {
    let trimmed = raw.trim_end_matches('/');
    if trimmed.starts_with('/') {
        AppId(trimmed.to_owned())
    } else {
        AppId(format!("/{trimmed}"))
    }
}

fn app_json(app: &App, state: &crate::projection::State) -> Value {
    let mut value = serde_json::to_value(&*app.definition).unwrap_or_else(|_| json!({}));
    let deployments: Vec<Value> = state
        .deployment_of(&app.definition.id)
        .map(|(id, _)| json!({"id": id}))
        .into_iter()
        .collect();
    if let Value::Object(map) = &mut value {
        map.insert("version".into(), json!(timestamp(app.version)));
        map.insert(
            "versionInfo".into(),
            json!({
                "lastConfigChangeAt": timestamp(app.config_version),
                "lastScalingAt": timestamp(app.version),
            }),
        );
        map.insert("deployments".into(), json!(deployments));
    }
    value
}
