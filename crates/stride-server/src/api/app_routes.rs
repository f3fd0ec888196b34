//! `/v2/apps/{*rest}`: app ids are slash paths, so one wildcard route takes
//! everything and the suffix (`/tasks`, `/versions`, `/restart`) picks the
//! resource, as Marathon does. An app named `tasks` is as ambiguous here as
//! it is there.

use super::extract::{Caller, Params};
use super::{ApiError, Shared, apps, tasks};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use stride_log::event::{AppId, TaskId};

#[derive(Debug, PartialEq, Eq)]
pub(super) enum AppRoute {
    App(AppId),
    Tasks(AppId),
    Task(AppId, TaskId),
    Versions(AppId),
    Version(AppId, String),
    Restart(AppId),
}

impl AppRoute {
    /// Methods this resource answers, for a 405's `Allow`.
    fn allowed(&self) -> &'static str {
        match self {
            AppRoute::App(_) => "GET, PUT, PATCH, DELETE",
            AppRoute::Tasks(_) => "GET, DELETE",
            AppRoute::Task(..) => "DELETE",
            AppRoute::Versions(_) | AppRoute::Version(..) => "GET",
            AppRoute::Restart(_) => "POST",
        }
    }

    /// The route template of this resource, as `/metrics` labels it.
    pub(super) fn template(&self) -> &'static str {
        match self {
            AppRoute::App(_) => "/v2/apps/{id}",
            AppRoute::Tasks(_) => "/v2/apps/{id}/tasks",
            AppRoute::Task(..) => "/v2/apps/{id}/tasks/{taskId}",
            AppRoute::Versions(_) => "/v2/apps/{id}/versions",
            AppRoute::Version(..) => "/v2/apps/{id}/versions/{version}",
            AppRoute::Restart(_) => "/v2/apps/{id}/restart",
        }
    }

    pub(super) fn parse(rest: &str) -> AppRoute {
        let rest = rest.trim_end_matches('/');
        let leaf = |s: &str| !s.is_empty() && !s.contains('/');
        if let Some((app, task)) = rest.rsplit_once("/tasks/").filter(|(_, t)| leaf(t)) {
            return AppRoute::Task(app_id(app), TaskId::from(task));
        }
        if let Some(app) = rest.strip_suffix("/tasks") {
            return AppRoute::Tasks(app_id(app));
        }
        if let Some((app, version)) = rest.rsplit_once("/versions/").filter(|(_, v)| leaf(v)) {
            return AppRoute::Version(app_id(app), version.to_owned());
        }
        if let Some(app) = rest.strip_suffix("/versions") {
            return AppRoute::Versions(app_id(app));
        }
        if let Some(app) = rest.strip_suffix("/restart") {
            return AppRoute::Restart(app_id(app));
        }
        AppRoute::App(app_id(rest))
    }
}

/// Marathon reads ids in paths relative to the root: without the leading
/// slash, empty segments dropped, `..` climbing.
pub(super) fn app_id(raw: &str) -> AppId {
    AppId::resolve(raw, &AppId::root())
}

pub async fn get(
    State(shared): State<Shared>,
    Path(rest): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match AppRoute::parse(&rest) {
        AppRoute::App(id) => apps::show(&shared, &id, &params),
        AppRoute::Tasks(id) => tasks::of_app(&shared, &id, &headers),
        AppRoute::Versions(id) => apps::versions(&shared, &id),
        AppRoute::Version(id, version) => apps::version(&shared, &id, &version),
        other @ (AppRoute::Task(..) | AppRoute::Restart(_)) => {
            Err(ApiError::MethodNotAllowed(other.allowed()))
        }
    }
}

pub async fn put(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Path(rest): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    match AppRoute::parse(&rest) {
        AppRoute::App(id) => apps::replace(&shared, actor, id, &params, &headers, &body).await,
        other => Err(ApiError::MethodNotAllowed(other.allowed())),
    }
}

pub async fn patch(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Path(rest): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    match AppRoute::parse(&rest) {
        AppRoute::App(id) => apps::patch(&shared, actor, id, &params, &headers, &body).await,
        other => Err(ApiError::MethodNotAllowed(other.allowed())),
    }
}

pub async fn delete(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Path(rest): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match AppRoute::parse(&rest) {
        AppRoute::App(id) => apps::delete(&shared, actor, id, &params, &headers).await,
        AppRoute::Task(id, task) => {
            tasks::kill_one(&shared, actor, id, task, &params, &headers).await
        }
        AppRoute::Tasks(id) => tasks::kill_many(&shared, actor, id, &params, &headers).await,
        other => Err(ApiError::MethodNotAllowed(other.allowed())),
    }
}

pub async fn post(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Path(rest): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match AppRoute::parse(&rest) {
        AppRoute::Restart(id) => apps::restart(&shared, actor, id, &params, &headers).await,
        other => Err(ApiError::MethodNotAllowed(other.allowed())),
    }
}

/// A method no resource here takes (OPTIONS, TRACE): 405 with what this
/// resource takes, not every method of the wildcard route.
pub async fn other_method(Path(rest): Path<String>) -> ApiError {
    ApiError::MethodNotAllowed(AppRoute::parse(&rest).allowed())
}

#[cfg(test)]
mod tests {
    use super::AppRoute;

    #[test]
    fn suffixes_pick_the_resource() {
        let cases = [
            ("prod/web", AppRoute::App("/prod/web".into())),
            ("/prod/web/", AppRoute::App("/prod/web".into())),
            ("prod/web/tasks", AppRoute::Tasks("/prod/web".into())),
            (
                "prod/web/tasks/prod_web.1",
                AppRoute::Task("/prod/web".into(), "prod_web.1".into()),
            ),
            ("web/versions", AppRoute::Versions("/web".into())),
            (
                "web/versions/2026-01-01T00:00:00.000000Z",
                AppRoute::Version("/web".into(), "2026-01-01T00:00:00.000000Z".into()),
            ),
            ("a/b/restart", AppRoute::Restart("/a/b".into())),
        ];
        for (rest, expected) in cases {
            assert_eq!(AppRoute::parse(rest), expected, "{rest}");
        }
    }
}
