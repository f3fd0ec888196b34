//! `/v2/apps`: Marathon's app endpoints (AppsResource.scala).

use super::access::Who;
use super::app_routes::app_id;
use super::app_view::{AppView, Embed, Sources};
use super::definitions;
use super::deployable::{self, with_deployment};
use super::extract::{Caller, Params, json_body};
use super::label_selector::LabelSelector;
use super::{ApiError, Shared, rendered};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use stride_auth::Verb;
use stride_core::command::{AppUpdate, Command};
use stride_core::projection::{App, State as ProjectionState};
use stride_log::event::json::timestamp;
use stride_log::event::{Actor, AppId};
use stride_runtime::clock::now_micros;

impl Shared {
    /// What an `AppInfo` is made from, as of `state`.
    pub(super) fn sources<'a>(&'a self, state: &'a ProjectionState) -> Sources<'a> {
        Sources {
            state,
            health: &self.health,
            readiness: &self.readiness,
            now: now_micros(),
        }
    }
}

/// `GET /v2/apps`, filtered by `id` and `cmd` (substrings, any case, as
/// Marathon matches them) and a `label` selector.
#[utoipa::path(
    get,
    path = "/v2/apps",
    tag = "apps",
    summary = "Apps, filtered",
    params(
        ("id" = Option<String>, Query, description = "A part of the id, any case"),
        ("cmd" = Option<String>, Query),
        ("label" = Option<String>, Query, description = "A label selector"),
        crate::api::openapi::EmbedQuery,
    ),
    responses(
        (status = 200, description = "The apps", body = crate::api::openapi::AppList),
        (status = 400, response = crate::api::openapi::BadRequest),
    )
)]
pub async fn list(
    State(shared): State<Shared>,
    who: Who,
    params: Params,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let scope = who.scope(Verb::Read);
    let selector = params
        .get("label")
        .map(LabelSelector::parse)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let id_part = params.get("id").map(str::to_lowercase);
    let cmd_part = params.get("cmd").map(str::to_lowercase);
    let embed = Embed::from_params(&params, Embed::list());
    let state = shared.projection.read();
    let key = rendered::Key {
        seq: state.seq,
        health: shared.health.generation(),
        query: query.unwrap_or_default(),
        scope: scope.clone(),
    };
    if let Some(body) = shared.rendered.get(&key).filter(|_| !embed.is_live()) {
        return Ok(json_bytes(body));
    }
    // Tens of megabytes take a core a while: not on the runtime's threads,
    // which answer every other request (writers' acknowledgements too).
    let rendering = tokio::task::spawn_blocking(move || {
        let contains = |text: &str, part: &str| text.to_lowercase().contains(part);
        let apps: Vec<&Arc<App>> = state
            .apps
            .values()
            .filter(|app| scope.covers(app.definition.id.as_str()))
            .filter(|app| {
                id_part
                    .as_deref()
                    .is_none_or(|part| contains(app.definition.id.as_str(), part))
            })
            .filter(|app| {
                cmd_part.as_deref().is_none_or(|part| {
                    app.definition
                        .cmd
                        .as_deref()
                        .is_some_and(|cmd| contains(cmd, part))
                })
            })
            .filter(|app| {
                selector
                    .as_ref()
                    .is_none_or(|s| s.matches(&app.definition.labels))
            })
            .collect();
        let sources = shared.sources(&state);
        let body = shared.rendered.fragments.render(&apps, embed, sources);
        if let Ok(body) = &body {
            shared.rendered.put(key, body.clone());
        }
        body
    });
    let body = rendering
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(json_bytes(body))
}

pub(super) fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `POST /v2/apps`: 201 with the app as stored (service ports assigned).
#[utoipa::path(
    post,
    path = "/v2/apps",
    tag = "apps",
    summary = "Create an app",
    request_body = crate::api::openapi::AppDoc,
    responses(
        (status = 201, description = "The app as stored", body = crate::api::openapi::AppDoc),
        crate::api::openapi::WriteErrors,
    )
)]
pub async fn create(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let definition = definitions::definition(json_body(&body)?, &AppId::root())?;
    let id = definition.id.clone();
    let outcome =
        deployable::commit(&shared, actor, &headers, Command::CreateApp(definition)).await?;
    let (deployment, version) = deployable::started(&outcome)?;
    let body = {
        let state = shared.projection.read();
        let embed = Embed {
            deployments: true,
            ..Embed::default()
        };
        state.apps.get(&id).map_or_else(
            || json!({"id": id, "version": version}),
            |app| AppView::json(app, embed, shared.sources(&state)),
        )
    };
    let mut response = with_deployment(StatusCode::CREATED, &deployment, body);
    if let Ok(location) = HeaderValue::from_str(&format!("/v2/apps{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/v2/apps/{id}",
    tag = "apps",
    summary = "One app",
    params(
        crate::api::openapi::AppPath,
        crate::api::openapi::EmbedQuery,
    ),
    responses(
        (status = 200, description = "The app", body = crate::api::openapi::AppAnswer),
        crate::api::openapi::AppReadErrors,
    )
)]
pub(super) fn show(shared: &Shared, id: &AppId, params: &Params) -> Result<Response, ApiError> {
    let state = shared.projection.read();
    let app = found(&state, id)?;
    let embed = Embed::from_params(params, Embed::single());
    let body = json!({ "app": AppView::new(app, embed, shared.sources(&state)) });
    Ok(Json(body).into_response())
}

/// `GET /v2/apps/{id}/versions`: newest first, as Marathon lists them.
#[utoipa::path(
    get,
    path = "/v2/apps/{id}/versions",
    tag = "apps",
    summary = "An app's versions, newest first",
    params(
        crate::api::openapi::AppPath,
    ),
    responses(
        (status = 200, description = "Versions", body = crate::api::openapi::VersionList),
        crate::api::openapi::AppReadErrors,
    )
)]
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

#[utoipa::path(
    get,
    path = "/v2/apps/{id}/versions/{version}",
    tag = "apps",
    summary = "An app as it was at a version",
    params(
        crate::api::openapi::AppPath,
        crate::api::openapi::VersionPath,
    ),
    responses(
        (status = 200, description = "The definition", body = crate::api::openapi::AppDoc),
        crate::api::openapi::AppReadErrors,
    )
)]
pub(super) fn version(shared: &Shared, id: &AppId, wanted: &str) -> Result<Response, ApiError> {
    let state = shared.projection.read();
    let app = found(&state, id)?;
    let stored = parse_version(wanted)
        .and_then(|micros| app.versions.iter().find(|v| v.version == micros))
        .ok_or_else(|| ApiError::NotFound(format!("App '{id}' has no version {wanted}")))?;
    let mut value = definition_json(&stored.definition);
    value.insert("version".into(), json!(timestamp(stored.version)));
    Ok(Json(Value::Object(value)).into_response())
}

/// An RFC 3339 version, as unix µs.
pub(super) fn parse_version(text: &str) -> Option<u64> {
    let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    u64::try_from(time.timestamp_micros()).ok()
}

/// `PUT /v2/apps/{id}`. As in Marathon, a partial update by default
/// (`partialUpdate=true`: the fields given change, the rest stay; a
/// missing app is created from them), a whole replacement with
/// `partialUpdate=false`; a body of only `version` reverts to that version.
#[utoipa::path(
    put,
    path = "/v2/apps/{id}",
    tag = "apps",
    summary = "Update (or create) an app; only instances scales, only version reverts",
    params(
        crate::api::openapi::AppPath,
        crate::api::openapi::Force,
        ("partialUpdate" = Option<bool>, Query),
    ),
    request_body = crate::api::openapi::AppDoc,
    responses(
        (status = 200, description = "The deployment started", body = crate::api::openapi::DeploymentResult),
        (status = 201, description = "The app was created", body = crate::api::openapi::DeploymentResult),
        crate::api::openapi::AppChangeErrors,
        (status = 422, response = crate::api::openapi::Invalid),
    )
)]
pub(super) async fn replace(
    shared: &Shared,
    actor: Actor,
    id: AppId,
    params: &Params,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let force = params.flag("force")?;
    let partial = params.flag_or("partialUpdate", true)?;
    let mut fields: Map<String, Value> = json_body(body)?;
    // The path names the app, whatever the body says.
    fields.remove("id");
    let command = match fields.remove("version") {
        Some(version) if fields.is_empty() => {
            let micros = version.as_str().and_then(parse_version).ok_or_else(|| {
                definitions::invalid(vec![(
                    "/version".into(),
                    "expected an RFC 3339 time".into(),
                )])
            })?;
            Command::RevertApp {
                app: id.clone(),
                version: micros,
                force,
            }
        }
        Some(_) => {
            return Err(definitions::invalid(vec![(
                "/version".into(),
                "The 'version' field may only be combined with the 'id' field.".into(),
            )]));
        }
        None if partial => Command::PatchApp {
            app: id.clone(),
            patch: definitions::patch(fields, &id.parent())?,
            force,
            create: true,
        },
        None => {
            fields.insert("id".into(), json!(id));
            let definition = definitions::definition(fields, &AppId::root())?;
            Command::UpdateApp { definition, force }
        }
    };
    deployable::submit(shared, actor, headers, command).await
}

/// `PATCH /v2/apps/{id}`: a partial update of an existing app.
#[utoipa::path(
    patch,
    path = "/v2/apps/{id}",
    tag = "apps",
    summary = "Partially update an app",
    params(
        crate::api::openapi::AppPath,
        crate::api::openapi::Force,
    ),
    request_body = crate::api::openapi::AppDoc,
    responses(
        (status = 200, description = "The deployment started", body = crate::api::openapi::DeploymentResult),
        crate::api::openapi::AppChangeErrors,
        (status = 422, response = crate::api::openapi::Invalid),
    )
)]
pub(super) async fn patch(
    shared: &Shared,
    actor: Actor,
    id: AppId,
    params: &Params,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut fields: Map<String, Value> = json_body(body)?;
    fields.remove("id");
    let command = Command::PatchApp {
        patch: definitions::patch(fields, &id.parent())?,
        app: id,
        force: params.flag("force")?,
        create: false,
    };
    deployable::submit(shared, actor, headers, command).await
}

/// `PUT /v2/apps` (partial updates by default, creating missing apps) and
/// `PATCH /v2/apps` (partial updates of existing apps): every app of the
/// array in one deployment.
pub async fn update_many(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
    partial: Option<bool>,
) -> Result<Response, ApiError> {
    let (partial, create) = match partial {
        Some(partial) => (partial, true),
        None => (true, false),
    };
    let items: Vec<Map<String, Value>> = json_body(&body)?;
    let mut updates = Vec::new();
    for (i, mut fields) in items.into_iter().enumerate() {
        let Some(Value::String(raw)) = fields.get("id") else {
            return Err(definitions::invalid(vec![(
                format!("/{i}/id"),
                "App Update must have app id set".into(),
            )]));
        };
        let id = app_id(raw);
        updates.push(if partial {
            fields.remove("id");
            AppUpdate::Patch {
                patch: definitions::patch(fields, &id.parent())?,
                app: id,
                create,
            }
        } else {
            AppUpdate::Replace(Box::new(definitions::definition(fields, &AppId::root())?))
        });
    }
    let command = Command::UpdateApps {
        updates,
        force: params.flag("force")?,
    };
    // 200 even when apps were created, as Marathon's `updateMultiple`
    // answers: its 201 is for `PUT /v2/apps/{id}` alone.
    let mut response = deployable::submit(&shared, actor, &headers, command).await?;
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

#[utoipa::path(
    put,
    path = "/v2/apps",
    tag = "apps",
    summary = "Update (or create) several apps in one deployment",
    params(
        crate::api::openapi::Force,
        ("partialUpdate" = Option<bool>, Query),
    ),
    request_body = Vec<crate::api::openapi::AppDoc>,
    responses(
        (status = 200, description = "The deployment started (also when it creates apps, as in Marathon)", body = crate::api::openapi::DeploymentResult),
        crate::api::openapi::WriteErrors,
        (status = 404, response = crate::api::openapi::NotFound),
    )
)]
pub async fn put_many(
    shared: State<Shared>,
    caller: Caller,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let partial = params.flag_or("partialUpdate", true)?;
    update_many(shared, caller, params, headers, body, Some(partial)).await
}

#[utoipa::path(
    patch,
    path = "/v2/apps",
    tag = "apps",
    summary = "Partially update several apps in one deployment",
    params(
        crate::api::openapi::Force,
    ),
    request_body = Vec<crate::api::openapi::AppDoc>,
    responses(
        (status = 200, description = "The deployment started", body = crate::api::openapi::DeploymentResult),
        crate::api::openapi::WriteErrors,
        (status = 404, response = crate::api::openapi::NotFound),
    )
)]
pub async fn patch_many(
    shared: State<Shared>,
    caller: Caller,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    update_many(shared, caller, params, headers, body, None).await
}

/// `DELETE /v2/apps/{id}`: `force` defaults to true here, as in Marathon.
#[utoipa::path(
    delete,
    path = "/v2/apps/{id}",
    tag = "apps",
    summary = "Delete an app",
    params(
        crate::api::openapi::AppPath,
        crate::api::openapi::Force,
    ),
    responses(
        (status = 200, description = "The deployment started", body = crate::api::openapi::DeploymentResult),
        crate::api::openapi::AppChangeErrors,
    )
)]
pub(super) async fn delete(
    shared: &Shared,
    actor: Actor,
    id: AppId,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let command = Command::DeleteApp {
        app: id,
        force: params.flag_or("force", true)?,
    };
    deployable::submit(shared, actor, headers, command).await
}

#[utoipa::path(
    post,
    path = "/v2/apps/{id}/restart",
    tag = "apps",
    summary = "Replace every task of an app",
    params(
        crate::api::openapi::AppPath,
        crate::api::openapi::Force,
    ),
    responses(
        (status = 200, description = "The deployment started", body = crate::api::openapi::DeploymentResult),
        crate::api::openapi::AppChangeErrors,
    )
)]
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
        .map(|app| &**app)
        .ok_or_else(|| ApiError::NotFound(format!("App '{id}' does not exist")))
}

pub(super) fn definition_json(
    definition: &stride_log::event::app::AppDefinition,
) -> Map<String, Value> {
    match serde_json::to_value(definition) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    }
}
