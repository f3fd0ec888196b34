//! `/v2/apps`: Marathon's app endpoints and its `AppInfo` shape.

use super::app_routes::app_id;
use super::deployable::{self, deployment_of, with_deployment};
use super::extract::{Caller, Params, from_json, json_body};
use super::label_selector::LabelSelector;
use super::{ApiError, Shared, rendered, tasks};
use crate::command::Command;
use crate::event::app::{AppDefinition, PortDefinition};
use crate::event::json::timestamp;
use crate::event::{Actor, AppId};
use crate::health::HealthResults;
use crate::projection::{App, State as ProjectionState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Which optional parts of `AppInfo` to include.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Embed {
    pub tasks: bool,
    pub counts: bool,
    pub deployments: bool,
    pub last_task_failure: bool,
}

impl Embed {
    /// Marathon always includes counts and deployments in the list, for
    /// clients written before `embed` existed.
    fn for_list(params: &Params) -> Embed {
        let mut embed = Embed {
            counts: true,
            deployments: true,
            ..Embed::default()
        };
        for value in params.all("embed") {
            match value.trim_start_matches("apps.").trim_start_matches("app.") {
                "tasks" => embed.tasks = true,
                "lastTaskFailure" => embed.last_task_failure = true,
                // counts and deployments are always on; readiness and
                // taskStats are not tracked yet.
                _ => {}
            }
        }
        embed
    }

    pub fn everything() -> Embed {
        Embed {
            tasks: true,
            counts: true,
            deployments: true,
            last_task_failure: true,
        }
    }
}

/// `GET /v2/apps`, filtered by `id` and `cmd` (substrings) and a `label`
/// selector.
pub async fn list(
    State(shared): State<Shared>,
    params: Params,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let selector = params
        .get("label")
        .map(LabelSelector::parse)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let id_part = params.get("id").map(|id| id.trim_end_matches('/'));
    let cmd_part = params.get("cmd");
    let embed = Embed::for_list(&params);
    let state = shared.projection.read();
    let key = rendered::Key {
        seq: state.seq,
        health: shared.health.generation(),
        query: query.unwrap_or_default(),
    };
    if let Some(body) = shared.rendered.get(&key) {
        return Ok(json_bytes(body));
    }
    let apps: Vec<AppView> = state
        .apps
        .values()
        .filter(|app| id_part.is_none_or(|part| app.definition.id.as_str().contains(part)))
        .filter(|app| {
            cmd_part.is_none_or(|part| {
                app.definition
                    .cmd
                    .as_deref()
                    .is_some_and(|c| c.contains(part))
            })
        })
        .filter(|app| {
            selector
                .as_ref()
                .is_none_or(|s| s.matches(&app.definition.labels))
        })
        .map(|app| AppView::new(app, &state, embed, &shared.health))
        .collect();
    let body = Bytes::from(
        serde_json::to_vec(&AppList { apps })
            .map_err(|error| ApiError::Internal(error.to_string()))?,
    );
    shared.rendered.put(key, body.clone());
    Ok(json_bytes(body))
}

fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `POST /v2/apps`: 201 with the app as stored (service ports assigned).
pub async fn create(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut definition = app_definition(json_body(&body)?)?;
    definition.id = app_id(definition.id.as_str());
    let id = definition.id.clone();
    let outcome =
        deployable::commit(&shared, actor, &headers, Command::CreateApp(definition)).await?;
    let (deployment, version) = deployment_of(&outcome)?;
    let body = {
        let state = shared.projection.read();
        state.apps.get(&id).map_or_else(
            || json!({"id": id, "version": version}),
            |app| app_json(app, &state, Embed::everything(), &shared.health),
        )
    };
    let mut response = with_deployment(StatusCode::CREATED, &deployment, body);
    if let Ok(location) = HeaderValue::from_str(&format!("/v2/apps{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub(super) fn show(shared: &Shared, id: &AppId) -> Result<Response, ApiError> {
    let state = shared.projection.read();
    let app = found(&state, id)?;
    Ok(
        Json(json!({ "app": app_json(app, &state, Embed::everything(), &shared.health) }))
            .into_response(),
    )
}

/// `GET /v2/apps/{id}/versions`: newest first, as Marathon lists them.
pub(super) fn versions(shared: &Shared, id: &AppId) -> Result<Response, ApiError> {
    let state = shared.projection.read();
    let app = found(&state, id)?;
    let versions: Vec<String> = app
        .versions
        .iter()
        .rev()
        .map(|v| timestamp(v.version))
        .collect();
    Ok(Json(json!({ "versions": versions })).into_response())
}

pub(super) fn version(shared: &Shared, id: &AppId, wanted: &str) -> Result<Response, ApiError> {
    let state = shared.projection.read();
    let app = found(&state, id)?;
    let micros = chrono::DateTime::parse_from_rfc3339(wanted)
        .ok()
        .and_then(|t| u64::try_from(t.timestamp_micros()).ok());
    let stored = app
        .versions
        .iter()
        .find(|v| Some(v.version) == micros)
        .ok_or_else(|| ApiError::NotFound(format!("App '{id}' has no version {wanted}")))?;
    let mut value = definition_json(&stored.definition);
    value.insert("version".into(), json!(timestamp(stored.version)));
    Ok(Json(Value::Object(value)).into_response())
}

/// A whole definition as Marathon reads one: with neither `portDefinitions`
/// nor port mappings, a task gets one port (`[{"port": 0}]`); an explicit
/// empty list means none.
fn app_definition(fields: Map<String, Value>) -> Result<AppDefinition, ApiError> {
    let declares_ports = fields.contains_key("portDefinitions");
    let mut definition: AppDefinition = from_json(Value::Object(fields))?;
    if !declares_ports && !definition.uses_port_mappings() {
        definition.port_definitions = vec![PortDefinition::default()];
    }
    Ok(definition)
}

#[derive(Serialize)]
struct AppList<'a> {
    apps: Vec<AppView<'a>>,
}

#[derive(Deserialize)]
struct ScaleBody {
    instances: u32,
}

#[derive(Deserialize)]
struct RevertBody {
    version: chrono::DateTime<chrono::Utc>,
}

/// `PUT /v2/apps/{id}`: replaces (or creates) the app. A body holding only
/// `instances` scales it instead, so the history says what changed; one
/// holding only `version` reverts to that earlier version.
pub(super) async fn replace(
    shared: &Shared,
    actor: Actor,
    id: AppId,
    params: &Params,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let force = params.flag("force")?;
    let mut fields: Map<String, Value> = json_body(body)?;
    let only = |field: &str| fields.len() == 1 && fields.contains_key(field);
    let command = if only("instances") {
        let ScaleBody { instances } = from_json(Value::Object(fields))?;
        Command::ScaleApp {
            app: id,
            instances,
            force,
        }
    } else if only("version") {
        let RevertBody { version } = from_json(Value::Object(fields))?;
        Command::RevertApp {
            app: id,
            version: u64::try_from(version.timestamp_micros()).unwrap_or_default(),
            force,
        }
    } else {
        // The path names the app, whatever the body says.
        fields.insert("id".into(), json!(id));
        Command::UpdateApp {
            definition: app_definition(fields)?,
            force,
        }
    };
    deployable::submit(shared, actor, headers, command).await
}

pub(super) async fn patch(
    shared: &Shared,
    actor: Actor,
    id: AppId,
    params: &Params,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let command = Command::PatchApp {
        app: id,
        patch: json_body(body)?,
        force: params.flag("force")?,
    };
    deployable::submit(shared, actor, headers, command).await
}

pub(super) async fn delete(
    shared: &Shared,
    actor: Actor,
    id: AppId,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let command = Command::DeleteApp {
        app: id,
        force: params.flag("force")?,
    };
    deployable::submit(shared, actor, headers, command).await
}

pub(super) async fn restart(
    shared: &Shared,
    actor: Actor,
    id: AppId,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let command = Command::RestartApp {
        app: id,
        force: params.flag("force")?,
    };
    deployable::submit(shared, actor, headers, command).await
}

fn found<'a>(state: &'a ProjectionState, id: &AppId) -> Result<&'a App, ApiError> {
    state
        .apps
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("App '{id}' does not exist")))
}

fn definition_json(definition: &AppDefinition) -> Map<String, Value> {
    match serde_json::to_value(definition) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    }
}

/// Marathon's `AppInfo`: the definition, its version, and what `embed` asks
/// for.
pub(super) fn app_json(
    app: &App,
    state: &ProjectionState,
    embed: Embed,
    health: &HealthResults,
) -> Value {
    serde_json::to_value(AppView::new(app, state, embed, health)).unwrap_or_default()
}

/// `AppInfo` serialized straight from the projection, with no JSON tree in
/// between: a list of 10,000 apps with their tasks is tens of megabytes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AppView<'a> {
    #[serde(flatten)]
    definition: &'a AppDefinition,
    version: String,
    version_info: VersionInfo,
    #[serde(flatten)]
    counts: Option<CountsView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployments: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<Vec<tasks::TaskView<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_task_failure: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionInfo {
    last_config_change_at: String,
    last_scaling_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CountsView {
    tasks_staged: usize,
    tasks_running: usize,
    tasks_healthy: usize,
    tasks_unhealthy: usize,
}

impl<'a> AppView<'a> {
    pub fn new(
        app: &'a App,
        state: &'a ProjectionState,
        embed: Embed,
        health: &HealthResults,
    ) -> Self {
        let id = &app.definition.id;
        AppView {
            definition: &app.definition,
            version: timestamp(app.version),
            version_info: VersionInfo {
                last_config_change_at: timestamp(app.config_version),
                last_scaling_at: timestamp(app.version),
            },
            counts: embed.counts.then(|| {
                let counts = tasks::Counts::of(state, id);
                CountsView {
                    tasks_staged: counts.staged,
                    tasks_running: counts.running,
                    tasks_healthy: counts.healthy,
                    tasks_unhealthy: counts.unhealthy,
                }
            }),
            deployments: embed.deployments.then(|| {
                let running = state.deployment_of(id).into_iter();
                running.map(|(d, _)| json!({ "id": d })).collect()
            }),
            tasks: embed.tasks.then(|| {
                let ports = tasks::service_ports(state, Some(id));
                let tasks = state.tasks_of(id);
                tasks
                    .map(|(task_id, task)| {
                        tasks::TaskView::new(task_id, task, state, health, ports.clone())
                    })
                    .collect()
            }),
            last_task_failure: embed
                .last_task_failure
                .then(|| tasks::last_failure(state, id))
                .flatten(),
        }
    }
}
