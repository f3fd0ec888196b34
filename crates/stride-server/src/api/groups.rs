//! `/v2/groups`: Marathon's groups (GroupsResource.scala): the tree of apps
//! with nested ids, each group with its dependencies; create, restructure,
//! scale, roll back and delete whole subtrees, each as one deployment.

use super::access::Who;
use super::app_view::{AppView, Embed, Sources};
use super::apps::parse_version;
use super::definitions;
use super::deployable;
use super::extract::{Caller, Params, json_body};
use super::{ApiError, Shared};
use crate::published;
use crate::stream::marathon::steps_json;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use stride_auth::{Scope, Verb};
use stride_core::command::{Command, GroupUpdate, Settings, decide};
use stride_core::projection::State as ProjectionState;
use stride_log::event::json::timestamp;
use stride_log::event::{AppId, Event};

/// What a path under `/v2/groups/` names (GroupsResource's matchers).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum GroupRoute {
    Group(AppId),
    Apps(AppId),
    Versions(AppId),
    Version(AppId, String),
}

impl GroupRoute {
    /// Methods this resource answers, for a 405's `Allow`.
    fn allowed(&self) -> &'static str {
        match self {
            GroupRoute::Group(_) => "GET, POST, PUT, PATCH, DELETE",
            GroupRoute::Apps(_) | GroupRoute::Versions(_) => "GET",
            GroupRoute::Version(..) => "GET, PUT",
        }
    }

    /// The group a path names, when the method takes only groups: POST,
    /// PATCH and DELETE on `/apps` or `/versions` are 405, as GET reads
    /// those paths as resources of the group before them.
    fn group_only(rest: &str) -> Result<AppId, ApiError> {
        match GroupRoute::parse(rest) {
            GroupRoute::Group(id) => Ok(id),
            other => Err(ApiError::MethodNotAllowed(other.allowed())),
        }
    }

    /// The route template of this resource, as `/metrics` labels it.
    pub(super) fn template(&self) -> &'static str {
        match self {
            GroupRoute::Group(_) => "/v2/groups/{id}",
            GroupRoute::Apps(_) => "/v2/groups/{id}/apps",
            GroupRoute::Versions(_) => "/v2/groups/{id}/versions",
            GroupRoute::Version(..) => "/v2/groups/{id}/versions/{version}",
        }
    }

    /// The group the resource is of.
    pub(super) fn id(&self) -> &AppId {
        match self {
            GroupRoute::Group(id)
            | GroupRoute::Apps(id)
            | GroupRoute::Versions(id)
            | GroupRoute::Version(id, _) => id,
        }
    }

    pub(super) fn parse(rest: &str) -> GroupRoute {
        let rest = rest.trim_matches('/');
        let id = |raw: &str| AppId::resolve(raw, &AppId::root());
        if rest == "apps" {
            return GroupRoute::Apps(AppId::root());
        }
        if let Some(group) = rest.strip_suffix("/apps") {
            return GroupRoute::Apps(id(group));
        }
        if rest == "versions" {
            return GroupRoute::Versions(AppId::root());
        }
        if let Some(group) = rest.strip_suffix("/versions") {
            return GroupRoute::Versions(id(group));
        }
        if let Some(version) = rest.strip_prefix("versions/") {
            return GroupRoute::Version(AppId::root(), version.to_owned());
        }
        if let Some((group, version)) = rest.rsplit_once("/versions/") {
            return GroupRoute::Version(id(group), version.to_owned());
        }
        GroupRoute::Group(id(rest))
    }
}

/// Which parts of a `GroupInfo` to include; Marathon includes apps, pods
/// and groups when `embed` names none of them.
#[derive(Debug, Clone, Copy)]
pub(super) struct GroupEmbed {
    apps: bool,
    groups: bool,
    app: Embed,
}

impl GroupEmbed {
    fn from_params(params: &Params) -> GroupEmbed {
        let values: Vec<&str> = params.all("embed").collect();
        if values.is_empty() {
            return GroupEmbed {
                apps: true,
                groups: true,
                app: Embed::default(),
            };
        }
        let app_values: Vec<(String, String)> = values
            .iter()
            .filter(|v| v.starts_with("group.apps."))
            .map(|v| ("embed".to_owned(), (*v).to_owned()))
            .collect();
        GroupEmbed {
            apps: values.contains(&"group.apps"),
            groups: values.contains(&"group.groups"),
            app: Embed::from_params(&Params::from_pairs(app_values), Embed::default()),
        }
    }
}

#[utoipa::path(
    get,
    path = "/v2/groups",
    tag = "groups",
    summary = "The root group",
    params(
        crate::api::openapi::EmbedQuery,
    ),
    responses(
        (status = 200, description = "The group tree", body = crate::api::openapi::GroupDoc),
        (status = 400, response = crate::api::openapi::BadRequest),
    )
)]
pub async fn get_root(
    shared: State<Shared>,
    who: Who,
    params: Params,
) -> Result<Response, ApiError> {
    get(shared, who, Path(String::new()), params).await
}

/// What a principal reads of a group is what its read grants cover inside
/// it: other apps and groups are left out, as if absent.
pub async fn get(
    State(shared): State<Shared>,
    who: Who,
    Path(rest): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let embed = GroupEmbed::from_params(&params);
    let scope = who.scope(Verb::Read);
    match GroupRoute::parse(&rest) {
        GroupRoute::Group(id) => group(&shared, &id, embed, &scope),
        GroupRoute::Apps(id) => apps(&shared, &id, embed, &scope),
        GroupRoute::Versions(id) => versions(&shared, &id),
        GroupRoute::Version(id, version) => version_of(&shared, &id, &version, embed, &scope).await,
    }
}

#[utoipa::path(
    get,
    path = "/v2/groups/{id}",
    tag = "groups",
    summary = "A group",
    params(
        crate::api::openapi::GroupPath,
        crate::api::openapi::EmbedQuery,
    ),
    responses(
        (status = 200, description = "The group", body = crate::api::openapi::GroupDoc),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 404, response = crate::api::openapi::NotFound),
    )
)]
pub(super) fn group(
    shared: &Shared,
    id: &AppId,
    embed: GroupEmbed,
    scope: &Scope,
) -> Result<Response, ApiError> {
    let state = shared.projection.read();
    if !state.has_group(id) {
        return Err(unknown(id));
    }
    let json = group_json(&state, id, embed, shared.sources(&state), scope);
    Ok(Json(json).into_response())
}

/// `GET /v2/groups/{id}/apps`: every app under the group, at any depth.
#[utoipa::path(
    get,
    path = "/v2/groups/{id}/apps",
    tag = "groups",
    summary = "The apps under a group",
    params(
        crate::api::openapi::GroupPath,
        crate::api::openapi::EmbedQuery,
    ),
    responses(
        (status = 200, description = "The apps", body = Vec<crate::api::openapi::AppDoc>),
        (status = 400, response = crate::api::openapi::BadRequest),
    )
)]
pub(super) fn apps(
    shared: &Shared,
    id: &AppId,
    embed: GroupEmbed,
    scope: &Scope,
) -> Result<Response, ApiError> {
    let state = shared.projection.read();
    if !state.has_group(id) {
        return Ok(Json(json!([])).into_response());
    }
    let sources = shared.sources(&state);
    let apps: Vec<Value> = state
        .apps_under(id)
        .filter(|app| scope.covers(app.as_str()))
        .filter_map(|app| state.apps.get(app))
        .map(|app| AppView::json(app, embed.app, sources))
        .collect();
    Ok(Json(Value::Array(apps)).into_response())
}

/// `GET /v2/groups/{id}/versions`: newest first.
#[utoipa::path(
    get,
    path = "/v2/groups/{id}/versions",
    tag = "groups",
    summary = "A group's versions, newest first",
    params(
        crate::api::openapi::GroupPath,
    ),
    responses(
        (status = 200, description = "Versions", body = Vec<String>),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 404, response = crate::api::openapi::NotFound),
    )
)]
pub(super) fn versions(shared: &Shared, id: &AppId) -> Result<Response, ApiError> {
    let state = shared.projection.read();
    if !state.has_group(id) {
        return Err(unknown(id));
    }
    let versions: Vec<String> = state
        .group_versions(id)
        .iter()
        .rev()
        .map(|(at, _)| timestamp(*at))
        .collect();
    Ok(Json(json!(versions)).into_response())
}

/// `GET /v2/groups/{id}/versions/{version}`: the group as it was.
#[utoipa::path(
    get,
    path = "/v2/groups/{id}/versions/{version}",
    tag = "groups",
    summary = "A group as it was at a version",
    params(
        crate::api::openapi::GroupPath,
        crate::api::openapi::VersionPath,
    ),
    responses(
        (status = 200, description = "The group", body = crate::api::openapi::GroupDoc),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 404, response = crate::api::openapi::NotFound),
    )
)]
pub(super) async fn version_of(
    shared: &Shared,
    id: &AppId,
    version: &str,
    embed: GroupEmbed,
    scope: &Scope,
) -> Result<Response, ApiError> {
    let old = state_at(shared, id, version).await?;
    let embed = GroupEmbed {
        app: Embed::default(),
        ..embed
    };
    Ok(Json(group_json(&old, id, embed, shared.sources(&old), scope)).into_response())
}

/// The tree as it was at a version of `group`, rebuilt from the log.
async fn state_at(
    shared: &Shared,
    group: &AppId,
    version: &str,
) -> Result<ProjectionState, ApiError> {
    let seq = {
        let state = shared.projection.read();
        parse_version(version).and_then(|at| {
            state
                .group_versions(group)
                .iter()
                .find(|(v, _)| *v == at)
                .map(|(_, seq)| *seq)
        })
    };
    let missing = || {
        ApiError::NotFound(format!(
            "Group '{group}' does not exist in version {version}"
        ))
    };
    let seq = seq.ok_or_else(missing)?;
    let log = shared.log.clone();
    let state = tokio::task::spawn_blocking(move || published::load(&log, Some(seq)))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    if !state.has_group(group) {
        return Err(missing());
    }
    Ok(state)
}

/// Marathon's `GroupInfo`: every group has the tree's version.
fn group_json(
    state: &ProjectionState,
    id: &AppId,
    embed: GroupEmbed,
    sources: Sources,
    scope: &Scope,
) -> Value {
    let apps: Vec<Value> = if embed.apps {
        state
            .apps_in(id)
            .filter(|app| scope.covers(app.as_str()))
            .filter_map(|app| state.apps.get(app))
            .map(|app| AppView::json(app, embed.app, sources))
            .collect()
    } else {
        Vec::new()
    };
    let groups: Vec<Value> = if embed.groups {
        state
            .subgroups(id)
            .filter(|group| scope.reaches(group.as_str()))
            .map(|group| group_json(state, group, embed, sources, scope))
            .collect()
    } else {
        Vec::new()
    };
    let dependencies = state
        .groups
        .get(id)
        .map(|g| g.dependencies.clone())
        .unwrap_or_default();
    json!({
        "id": id,
        "apps": apps,
        "groups": groups,
        "pods": [],
        "dependencies": dependencies,
        "version": timestamp(state.version()),
    })
}

fn unknown(id: &AppId) -> ApiError {
    ApiError::NotFound(format!("Group '{id}' does not exist"))
}

#[utoipa::path(
    post,
    path = "/v2/groups",
    tag = "groups",
    summary = "Create a group",
    params(
        crate::api::openapi::Force,
    ),
    request_body = crate::api::openapi::GroupUpdateDoc,
    responses(
        (status = 201, description = "The deployment", body = crate::api::openapi::DeploymentResult),
        crate::api::openapi::WriteErrors,
    )
)]
pub async fn create_root(
    shared: State<Shared>,
    caller: Caller,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    create(shared, caller, Path(String::new()), params, headers, body).await
}

/// `POST /v2/groups[/{id}]`: a new group (its id in the body, relative to
/// the path); 201 with the deployment.
#[utoipa::path(
    post,
    path = "/v2/groups/{id}",
    tag = "groups",
    summary = "Create a group under this one",
    params(
        crate::api::openapi::GroupPath,
        crate::api::openapi::Force,
    ),
    request_body = crate::api::openapi::GroupUpdateDoc,
    responses(
        (status = 201, description = "The deployment", body = crate::api::openapi::DeploymentResult),
        crate::api::openapi::WriteErrors,
    )
)]
pub async fn create(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Path(rest): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let base = GroupRoute::group_only(&rest)?;
    let fields: Map<String, Value> = json_body(&body)?;
    let group = group_update(fields, &base)?;
    let id = group.id.clone();
    let command = Command::CreateGroup {
        group,
        force: params.flag("force")?,
    };
    let mut response = deployable::submit(&shared, actor, &headers, command).await?;
    *response.status_mut() = StatusCode::CREATED;
    if let Ok(location) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[utoipa::path(
    put,
    path = "/v2/groups",
    tag = "groups",
    summary = "Update the root group (dryRun: the plan)",
    params(
        crate::api::openapi::Force,
        ("dryRun" = Option<bool>, Query),
    ),
    request_body = crate::api::openapi::GroupUpdateDoc,
    responses(
        (status = 200, description = "The deployment started, or with dryRun the plan", body = crate::api::openapi::GroupUpdateAnswer),
        crate::api::openapi::WriteErrors,
        (status = 404, response = crate::api::openapi::NotFound),
    )
)]
pub async fn update_root(
    shared: State<Shared>,
    caller: Caller,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    update(shared, caller, Path(String::new()), params, headers, body).await
}

/// `PUT /v2/groups/{id}`: `{"version": V}` rolls the group back to V,
/// `{"scaleBy": F}` scales every app under it, anything else restructures
/// it (and creates it if missing). `dryRun=true` answers the plan's steps
/// and changes nothing. Also `PUT /v2/groups/{id}/versions/{V}` (no body)
/// rolls back, as the marathon client's `rollback_group` asks.
#[utoipa::path(
    put,
    path = "/v2/groups/{id}",
    tag = "groups",
    summary = "Update (or create) a group; version alone rolls back, scaleBy alone scales",
    params(
        crate::api::openapi::GroupPath,
        crate::api::openapi::Force,
        ("dryRun" = Option<bool>, Query),
    ),
    request_body = crate::api::openapi::GroupUpdateDoc,
    responses(
        (status = 200, description = "The deployment started (also when it creates the group, as in Marathon), or with dryRun the plan", body = crate::api::openapi::GroupUpdateAnswer),
        crate::api::openapi::AppChangeErrors,
        (status = 422, response = crate::api::openapi::Invalid),
    )
)]
pub async fn update(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Path(rest): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let force = params.flag("force")?;
    let command = match GroupRoute::parse(&rest) {
        GroupRoute::Version(id, version) => rollback(&shared, &id, &version, force).await?,
        GroupRoute::Group(path) => {
            let mut fields: Map<String, Value> = json_body(&body)?;
            let id = match fields.get("id") {
                Some(Value::String(raw)) => AppId::resolve(raw, &path),
                _ => path,
            };
            let version = fields.remove("version");
            let scale_by = fields.remove("scaleBy");
            let alone = fields.keys().all(|k| k == "id");
            match (version, scale_by) {
                (Some(_), _) | (_, Some(_)) if !alone => {
                    return Err(definitions::invalid(vec![(
                        "/".into(),
                        "version and scaleBy may only be given alone (with id)".into(),
                    )]));
                }
                (Some(_), Some(_)) => {
                    return Err(definitions::invalid(vec![(
                        "/".into(),
                        "give version or scaleBy, not both".into(),
                    )]));
                }
                (Some(version), None) => {
                    let version = version.as_str().unwrap_or_default().to_owned();
                    rollback(&shared, &id, &version, force).await?
                }
                (None, Some(by)) => Command::ScaleGroup {
                    group: id,
                    by: by.as_f64().ok_or_else(|| {
                        definitions::invalid(vec![("/scaleBy".into(), "expected a number".into())])
                    })?,
                    force,
                },
                (None, None) => {
                    fields.insert("id".into(), json!(id));
                    Command::UpdateGroup {
                        group: group_update(fields, &AppId::root())?,
                        force,
                    }
                }
            }
        }
        other @ (GroupRoute::Apps(_) | GroupRoute::Versions(_)) => {
            return Err(ApiError::MethodNotAllowed(other.allowed()));
        }
    };
    if params.flag("dryRun")? {
        return dry_run(&shared, &command);
    }
    // 200 even when apps were created: that 201 is for `PUT /v2/apps/{id}`.
    let mut response = deployable::submit(&shared, actor, &headers, command).await?;
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// The group as it was at `version`, put back.
#[utoipa::path(
    put,
    path = "/v2/groups/{id}/versions/{version}",
    tag = "groups",
    summary = "Roll a group back to a version",
    params(
        crate::api::openapi::GroupPath,
        crate::api::openapi::VersionPath,
        crate::api::openapi::Force,
    ),
    responses(
        (status = 200, description = "The deployment started", body = crate::api::openapi::DeploymentResult),
        crate::api::openapi::WriteErrors,
        (status = 404, response = crate::api::openapi::NotFound),
    )
)]
pub(super) async fn rollback(
    shared: &Shared,
    id: &AppId,
    version: &str,
    force: bool,
) -> Result<Command, ApiError> {
    let old = state_at(shared, id, version).await?;
    Ok(Command::UpdateGroup {
        group: as_update(&old, id),
        force,
    })
}

/// A group of `state` as the update that recreates it.
fn as_update(state: &ProjectionState, id: &AppId) -> GroupUpdate {
    GroupUpdate {
        id: id.clone(),
        apps: Some(
            state
                .apps_in(id)
                .filter_map(|app| state.apps.get(app))
                .map(|app| (*app.definition).clone())
                .collect(),
        ),
        groups: Some(state.subgroups(id).map(|g| as_update(state, g)).collect()),
        dependencies: Some(
            state
                .groups
                .get(id)
                .map(|g| g.dependencies.clone())
                .unwrap_or_default(),
        ),
    }
}

/// Marathon's `DeploymentSteps`: what the change would do, decided against
/// the current state and not committed.
fn dry_run(shared: &Shared, command: &Command) -> Result<Response, ApiError> {
    let state = shared.projection.read();
    let settings = Settings {
        service_ports: shared.server.service_ports,
    };
    let events =
        decide(&state, &settings, command, uuid::Uuid::nil()).map_err(ApiError::Rejected)?;
    let steps = events.iter().find_map(|e| match e {
        Event::DeploymentPlanned(planned) => Some(steps_json(&planned.steps)),
        _ => None,
    });
    Ok(Json(json!({ "steps": steps.unwrap_or_else(|| json!([])) })).into_response())
}

/// `PATCH /v2/groups/{id}`: Marathon 1.9's role enforcement, which Stride
/// does not have: `enforceRole: false` (what every group is) is accepted.
#[utoipa::path(
    patch,
    path = "/v2/groups/{id}",
    tag = "groups",
    summary = "Role enforcement (enforceRole: false only)",
    params(
        crate::api::openapi::GroupPath,
    ),
    request_body = Object,
    responses(
        (status = 200, description = "Accepted"),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 404, response = crate::api::openapi::NotFound),
        (status = 422, response = crate::api::openapi::Invalid),
    )
)]
pub async fn patch(
    State(shared): State<Shared>,
    Path(rest): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = GroupRoute::group_only(&rest)?;
    let fields: Map<String, Value> = json_body(&body)?;
    if fields.get("enforceRole") == Some(&Value::Bool(true)) {
        return Err(definitions::invalid(vec![(
            "/enforceRole".into(),
            "role enforcement is not supported: every app runs under the role *".into(),
        )]));
    }
    if !shared.projection.read().has_group(&id) {
        return Err(unknown(&id));
    }
    Ok(StatusCode::OK.into_response())
}

#[utoipa::path(
    delete,
    path = "/v2/groups",
    tag = "groups",
    summary = "Delete everything",
    params(
        crate::api::openapi::Force,
    ),
    responses(
        (status = 200, description = "The deployment started", body = crate::api::openapi::DeploymentResult),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 409, response = crate::api::openapi::Conflict),
        (status = 503, response = crate::api::openapi::Unavailable),
    )
)]
pub async fn delete_root(
    shared: State<Shared>,
    caller: Caller,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    delete(shared, caller, Path(String::new()), params, headers).await
}

/// `DELETE /v2/groups[/{id}]`: the group and all under it (the root: all).
#[utoipa::path(
    delete,
    path = "/v2/groups/{id}",
    tag = "groups",
    summary = "Delete a group and all under it",
    params(
        crate::api::openapi::GroupPath,
        crate::api::openapi::Force,
    ),
    responses(
        (status = 200, description = "The deployment started", body = crate::api::openapi::DeploymentResult),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 404, response = crate::api::openapi::NotFound),
        (status = 409, response = crate::api::openapi::Conflict),
        (status = 503, response = crate::api::openapi::Unavailable),
    )
)]
pub async fn delete(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Path(rest): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let command = Command::DeleteGroup {
        group: GroupRoute::group_only(&rest)?,
        force: params.flag("force")?,
    };
    deployable::submit(&shared, actor, &headers, command).await
}

/// A method no resource under `/v2/groups/` takes (OPTIONS, TRACE): 405
/// with what this resource takes.
pub async fn other_method(Path(rest): Path<String>) -> ApiError {
    ApiError::MethodNotAllowed(GroupRoute::parse(&rest).allowed())
}

/// A `GroupUpdate` body, ids resolved: the group's against `base`, its
/// apps', groups' and dependencies' against the group.
fn group_update(mut fields: Map<String, Value>, base: &AppId) -> Result<GroupUpdate, ApiError> {
    // GroupUpdate's scalar fields, typed as Marathon's RAML types them.
    let typed = |field: &str, fits: fn(&Value) -> bool, expected: &str| match fields.get(field) {
        Some(value) if !value.is_null() && !fits(value) => Err(definitions::invalid(vec![(
            format!("/{field}"),
            format!("expected {expected}"),
        )])),
        _ => Ok(()),
    };
    typed("id", Value::is_string, "a string")?;
    typed("version", Value::is_string, "a string")?;
    typed("scaleBy", Value::is_number, "a number")?;
    let id = match fields.get("id") {
        Some(Value::String(raw)) => AppId::resolve(raw, base),
        _ => base.clone(),
    };
    if fields.get("enforceRole") == Some(&Value::Bool(true)) {
        return Err(definitions::invalid(vec![(
            "/enforceRole".into(),
            "role enforcement is not supported: every app runs under the role *".into(),
        )]));
    }
    let apps = match fields.remove("apps") {
        None | Some(Value::Null) => None,
        Some(Value::Array(apps)) => Some(
            apps.into_iter()
                .enumerate()
                .map(|(i, app)| {
                    let app = object(app, &format!("/apps/{i}"))?;
                    definitions::definition(app, &id).map_err(|e| nested(e, &format!("/apps/{i}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(definitions::invalid(vec![(
                "/apps".into(),
                "expected an array".into(),
            )]));
        }
    };
    let groups = match fields.remove("groups") {
        None | Some(Value::Null) => None,
        Some(Value::Array(groups)) => Some(
            groups
                .into_iter()
                .enumerate()
                .map(|(i, group)| {
                    let group = object(group, &format!("/groups/{i}"))?;
                    group_update(group, &id).map_err(|e| nested(e, &format!("/groups/{i}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(definitions::invalid(vec![(
                "/groups".into(),
                "expected an array".into(),
            )]));
        }
    };
    let dependencies = match fields.remove("dependencies") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(|d| d.as_str().map(|raw| AppId::resolve(raw, &id)))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    definitions::invalid(vec![("/dependencies".into(), "expected ids".into())])
                })?,
        ),
        Some(_) => {
            return Err(definitions::invalid(vec![(
                "/dependencies".into(),
                "expected an array".into(),
            )]));
        }
    };
    Ok(GroupUpdate {
        id,
        apps,
        groups,
        dependencies,
    })
}

fn object(value: Value, path: &str) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(fields) => Ok(fields),
        _ => Err(definitions::invalid(vec![(
            path.to_owned(),
            "expected an object".into(),
        )])),
    }
}

/// An error of a nested object, its paths under `prefix`.
fn nested(error: ApiError, prefix: &str) -> ApiError {
    match error {
        ApiError::Rejected(mut rejection) => {
            for detail in &mut rejection.details {
                detail.path = format!("{prefix}{}", detail.path);
            }
            ApiError::Rejected(rejection)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::GroupRoute;
    use stride_log::event::AppId;

    #[test]
    fn suffixes_pick_the_resource() {
        let cases = [
            ("", GroupRoute::Group(AppId::root())),
            ("prod/web", GroupRoute::Group("/prod/web".into())),
            ("apps", GroupRoute::Apps(AppId::root())),
            ("prod/apps", GroupRoute::Apps("/prod".into())),
            ("versions", GroupRoute::Versions(AppId::root())),
            ("prod/versions", GroupRoute::Versions("/prod".into())),
            (
                "prod/versions/2026-01-01T00:00:00Z",
                GroupRoute::Version("/prod".into(), "2026-01-01T00:00:00Z".into()),
            ),
            (
                "versions/2026-01-01T00:00:00Z",
                GroupRoute::Version(AppId::root(), "2026-01-01T00:00:00Z".into()),
            ),
        ];
        for (rest, expected) in cases {
            assert_eq!(GroupRoute::parse(rest), expected, "{rest}");
        }
    }
}
