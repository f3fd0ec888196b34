//! Who may do what, on every route: the auth layer proves the principal
//! (`stride-auth`), checks what the route needs (`need`), and keeps the
//! principal for the handler: lists and streams show only what its scope
//! covers, and `deployable::commit`, the one door of API writes, checks
//! every app and group a command touches (`command_targets`).
//!
//! 401 and 403 have Marathon's shape: a JSON `message`, and on 401 a
//! `WWW-Authenticate` challenge (docs/compat.md).

use super::Shared;
use super::app_routes::AppRoute;
use super::groups::GroupRoute;
use axum::Json;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use stride_auth::{Principal, Scope, Unauthenticated, Verb};
use stride_core::command::{AppUpdate, Command, GroupUpdate};
use stride_core::projection::State as ProjectionState;
use stride_log::event::AppId;

tokio::task_local! {
    /// The principal of the request whose handler runs on this task.
    static PRINCIPAL: Arc<Principal>;
}

/// What a route needs before its handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Liveness: answered to anyone.
    Nothing,
    /// The verb somewhere; the handler shows only what the scope covers
    /// (lists, streams), or the write door checks the command's ids.
    Somewhere(Verb),
    /// The verb on this app or group, and so on all under it.
    On(Verb, String),
    /// The verb on part of this group: a group read shows what lies in
    /// scope inside it.
    Within(Verb, String),
}

impl Need {
    fn allowed(&self, principal: &Principal) -> bool {
        let access = &principal.access;
        match self {
            Need::Nothing => true,
            Need::Somewhere(verb) => access.allows_anywhere(*verb),
            Need::On(verb, id) => access.allows(*verb, id),
            Need::Within(verb, id) => access.reaches(*verb, id),
        }
    }

    fn describe(&self) -> String {
        match self {
            Need::Nothing => "nothing".into(),
            Need::Somewhere(verb) => format!("{verb} somewhere"),
            Need::On(verb, id) => format!("{verb} on {id}"),
            Need::Within(verb, id) => format!("{verb} inside {id}"),
        }
    }
}

/// What `method` on the route `template` (the router's, e.g.
/// `/v2/apps/{*rest}`) needs; `rest` is the wildcard's decoded value and
/// `state` resolves a task to its app. A route this does not know needs
/// admin on `/`: a route added without a rule here fails closed (and the
/// route table test names it).
pub fn need(method: &Method, template: &str, rest: &str, state: &ProjectionState) -> Need {
    use Verb::*;
    let reading = matches!(*method, Method::GET | Method::HEAD);
    let root = || "/".to_owned();
    match template {
        "/ping" => Need::Nothing,
        "/metrics" => Need::On(Read, root()),
        "/openapi.json" | "/v1/info" | "/v1/leader" | "/v2/info" | "/v1/sidecars" => {
            Need::Somewhere(Read)
        }
        "/v2/leader" if reading => Need::Somewhere(Read),
        // The raw log, as a peer copies it (high availability).
        "/v1/replica" => Need::On(Admin, root()),
        "/v2/leader" | "/v1/backup" | "/v1/subscriptions" | "/v2/eventSubscriptions" => {
            Need::On(Admin, root())
        }
        "/v1/state" | "/v1/events" | "/v2/tasks" | "/v2/deployments" | "/v2/queue"
        | "/v1/queue" => Need::Somewhere(Read),
        "/v1/stream" | "/v2/events" => Need::Somewhere(Stream),
        "/v1/audit" => Need::Somewhere(Audit),
        "/v2/apps" | "/v2/pods" | "/v2/pods/{*rest}" if reading => Need::Somewhere(Read),
        // Ids come in the body: the write door checks them.
        "/v2/apps"
        | "/v2/pods"
        | "/v2/pods/{*rest}"
        | "/v2/tasks/delete"
        | "/v2/deployments/{id}" => Need::Somewhere(Write),
        "/v2/apps/{*rest}" => {
            let id = app_of(&AppRoute::parse(rest));
            Need::On(if reading { Read } else { Write }, id)
        }
        "/v1/apps/{*rest}" => {
            let raw = rest.trim_end_matches('/');
            let raw = raw.strip_suffix("/diff").unwrap_or(raw);
            Need::On(Read, absolute(raw))
        }
        "/v2/groups" if reading => Need::Within(Read, root()),
        "/v2/groups" if *method == Method::DELETE => Need::On(Write, root()),
        "/v2/groups" => Need::Somewhere(Write),
        "/v2/groups/{*rest}" => {
            let id = GroupRoute::parse(rest).id().as_str().to_owned();
            match reading {
                true => Need::Within(Read, id),
                // A new group's id may be relative to this one: the
                // write door checks what the body makes of it.
                false if *method == Method::POST => Need::Somewhere(Write),
                false => Need::On(Write, id),
            }
        }
        "/v2/queue/{*rest}" => {
            let raw = rest.trim_end_matches('/');
            Need::On(Write, absolute(raw.strip_suffix("/delay").unwrap_or(raw)))
        }
        "/v1/tasks/{id}/files/{name}" => {
            let task = rest.split('/').next().unwrap_or_default();
            let app = state
                .tasks
                .iter()
                .find(|(id, _)| id.as_str() == task)
                .and_then(|(_, t)| t.app.clone());
            // An unknown task is the root's: no one learns it is unknown
            // without reading everything.
            Need::On(Read, app.map_or_else(root, |a| a.as_str().to_owned()))
        }
        _ => Need::On(Admin, root()),
    }
}

fn app_of(route: &AppRoute) -> String {
    let id = match route {
        AppRoute::App(id)
        | AppRoute::Tasks(id)
        | AppRoute::Task(id, _)
        | AppRoute::Versions(id)
        | AppRoute::Version(id, _)
        | AppRoute::Restart(id) => id,
    };
    id.as_str().to_owned()
}

fn absolute(raw: &str) -> String {
    AppId::resolve(raw, &AppId::root()).as_str().to_owned()
}

/// The auth layer: on every routed request, before its handler.
pub async fn guard(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let authenticator = shared.auth.current();
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let rest = wildcard(&template, request.uri().path());
    let need = need(
        request.method(),
        &template,
        &rest,
        &shared.projection.read(),
    );
    if need == Need::Nothing {
        return next.run(request).await;
    }
    let header = request.headers().get(header::AUTHORIZATION);
    let proven = match header.map(|h| h.to_str()) {
        Some(Err(_)) => Err(Unauthenticated::Malformed("not visible ASCII")),
        Some(Ok(value)) => authenticator.authenticate(Some(value)),
        None => authenticator.authenticate(None),
    };
    let principal = match proven {
        Ok(principal) => principal,
        Err(why) => return unauthenticated(&why),
    };
    if !need.allowed(&principal) {
        return forbidden(&principal, &need.describe());
    }
    let mut request = request;
    request.extensions_mut().insert(principal.clone());
    PRINCIPAL.scope(principal, next.run(request)).await
}

/// The part of `path` a `{*rest}` (or `{id}...`) template leaves to its
/// handler, percent-decoded as axum's `Path` decodes it.
fn wildcard(template: &str, path: &str) -> String {
    let stem = template.split('{').next().unwrap_or_default();
    let rest = match template.contains('{') {
        true => path.strip_prefix(stem).unwrap_or_default(),
        false => "",
    };
    percent_encoding::percent_decode_str(rest)
        .decode_utf8_lossy()
        .into_owned()
}

fn unauthenticated(why: &Unauthenticated) -> Response {
    let body = json!({"message": format!("Not Authenticated: {why}")});
    let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    let headers = response.headers_mut();
    for challenge in [r#"Bearer realm="stride""#, r#"Basic realm="stride""#] {
        headers.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

fn forbidden(principal: &Principal, what: &str) -> Response {
    let body = json!({
        "message": format!("Not Authorized to perform this action: {} may not {what}", principal.name)
    });
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

/// A 403 raised inside a handler (the write door, a scoped query).
pub fn denied(what: &str) -> super::ApiError {
    let name = current().map_or_else(|| stride_auth::ANONYMOUS.to_owned(), |p| p.name.clone());
    super::ApiError::Forbidden(format!(
        "Not Authorized to perform this action: {name} may not {what}"
    ))
}

/// The principal of the request being handled, if the auth layer ran.
pub fn current() -> Option<Arc<Principal>> {
    PRINCIPAL.try_with(Arc::clone).ok()
}

/// The verified principal, for handlers: lists filter by its scope.
pub struct Who(pub Arc<Principal>);

impl Who {
    pub fn scope(&self, verb: Verb) -> Scope {
        self.0.access.scope(verb)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = super::ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, super::ApiError> {
        parts
            .extensions
            .get::<Arc<Principal>>()
            .cloned()
            .map(Who)
            .ok_or_else(|| super::ApiError::internal("a handler ran without the auth layer"))
    }
}

/// The write door: every app and group `command` changes must be covered
/// by the principal's write grants. Outside a request (no principal) it
/// refuses: a write the auth layer did not see is a bug.
pub fn authorize_command(
    command: &Command,
    state: &ProjectionState,
) -> Result<(), super::ApiError> {
    let principal =
        current().ok_or_else(|| super::ApiError::internal("a write without a principal"))?;
    let (verb, targets) = command_targets(command, state);
    match targets.iter().find(|id| !principal.access.allows(verb, id)) {
        None => Ok(()),
        Some(id) => Err(denied(&format!("{verb} {id}"))),
    }
}

/// What a command needs, and the ids it needs it on.
fn command_targets(command: &Command, state: &ProjectionState) -> (Verb, Vec<String>) {
    let id = |id: &AppId| id.as_str().to_owned();
    let targets = match command {
        Command::CreateApp(definition) | Command::UpdateApp { definition, .. } => {
            vec![id(&definition.id)]
        }
        Command::PatchApp { app, .. }
        | Command::RevertApp { app, .. }
        | Command::RestartApp { app, .. }
        | Command::DeleteApp { app, .. }
        | Command::KillTasks { app, .. }
        | Command::ResetLaunchDelay { app } => vec![id(app)],
        Command::UpdateApps { updates, .. } => updates
            .iter()
            .map(|update| match update {
                AppUpdate::Replace(definition) => id(&definition.id),
                AppUpdate::Patch { app, .. } => id(app),
            })
            .collect(),
        Command::KillTasksById { tasks, .. } => tasks
            .iter()
            .filter_map(|task| state.tasks.get(task)?.app.as_ref().map(id))
            .collect(),
        Command::CreateGroup { group, .. } | Command::UpdateGroup { group, .. } => {
            let mut ids = Vec::new();
            group_ids(group, &mut ids);
            ids
        }
        Command::ScaleGroup { group, .. } | Command::DeleteGroup { group, .. } => vec![id(group)],
        Command::CancelDeployment { deployment, .. } => match state.deployments.get(deployment) {
            Some(d) if d.apps.is_empty() => vec![id(&d.subject)],
            Some(d) => d.apps.iter().map(|change| id(&change.app)).collect(),
            None => Vec::new(),
        },
        Command::SubscribeCallback { .. } | Command::UnsubscribeCallback { .. } => {
            return (Verb::Admin, vec!["/".to_owned()]);
        }
        // Stride's own facts: never submitted through the API.
        Command::RecordTaskStatus(_)
        | Command::RecordPlan(_)
        | Command::RecordHealth { .. }
        | Command::KillUnhealthyTask { .. }
        | Command::RecordFrameworkSubscribed { .. }
        | Command::RecordElection(_) => {
            return (Verb::Admin, vec!["/".to_owned()]);
        }
    };
    (Verb::Write, targets)
}

/// A group update changes the group itself (so everything in it) and
/// whatever it names with an absolute id of its own.
fn group_ids(group: &GroupUpdate, ids: &mut Vec<String>) {
    ids.push(group.id.as_str().to_owned());
    for app in group.apps.iter().flatten() {
        ids.push(app.id.as_str().to_owned());
    }
    for inner in group.groups.iter().flatten() {
        group_ids(inner, ids);
    }
}

/// Whether a deployment lies wholly in `scope`: every app it changes (or
/// its subject, when it changes none).
pub fn deployment_in(scope: &Scope, deployment: &stride_core::projection::Deployment) -> bool {
    match deployment.apps.is_empty() {
        true => scope.covers(deployment.subject.as_str()),
        false => deployment.apps.iter().all(|c| scope.covers(c.app.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wildcard_is_what_follows_the_template_s_stem() {
        assert_eq!(
            wildcard("/v2/apps/{*rest}", "/v2/apps/prod%2Fweb/tasks"),
            "prod/web/tasks"
        );
        assert_eq!(
            wildcard("/v1/tasks/{id}/files/{name}", "/v1/tasks/t1/files/stdout"),
            "t1/files/stdout"
        );
        assert_eq!(wildcard("/v2/apps", "/v2/apps"), "");
    }

    #[test]
    fn routes_without_a_rule_need_admin_on_the_root() {
        let state = ProjectionState::default();
        assert_eq!(
            need(&Method::GET, "/v9/new", "", &state),
            Need::On(Verb::Admin, "/".into())
        );
        assert_eq!(
            need(&Method::GET, "/v2/apps/{*rest}", "prod/web/tasks", &state),
            Need::On(Verb::Read, "/prod/web".into())
        );
        assert_eq!(
            need(
                &Method::POST,
                "/v2/apps/{*rest}",
                "prod/web/restart",
                &state
            ),
            Need::On(Verb::Write, "/prod/web".into())
        );
        assert_eq!(
            need(
                &Method::DELETE,
                "/v2/queue/{*rest}",
                "prod/web/delay",
                &state
            ),
            Need::On(Verb::Write, "/prod/web".into())
        );
    }
}
