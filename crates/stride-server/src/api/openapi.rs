//! `GET /openapi.json`: the OpenAPI 3.1 description of every route, made by
//! utoipa from the `#[utoipa::path]` attributes on the handlers and the
//! schemas below. Marathon's objects are open (clients may send and see
//! more fields than are listed), so their schemas name the fields clients
//! rely on and allow the rest; Stride's `/v1` answers are described field
//! by field. What every operation shares (its id, 401 and 403) is added
//! here once, by `Conventions`.

use axum::Json;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use stride_log::event::AppId;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Ref, RefOr};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToResponse, ToSchema};

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "server",
    summary = "This description",
    responses((status = 200, description = "OpenAPI 3.1", body = Object))
)]
pub async fn spec() -> Json<Document> {
    Json(ApiDoc::openapi())
}

/// Every error: a message, and for invalid input Marathon's `details`
/// naming each bad field (400, 401, 403, 404, 405, 406, 409, 422, 502, 503).
#[derive(ToSchema)]
pub struct ErrorBody {
    pub message: String,
    /// Each invalid field: a JSON pointer and what is wrong there.
    #[schema(inline)]
    pub details: Option<Vec<FieldErrorBody>>,
}

#[derive(ToSchema)]
pub struct FieldErrorBody {
    /// A JSON pointer into the request body, e.g. `/portDefinitions/0/port`.
    pub path: String,
    pub errors: Vec<String>,
}

/// An app or group id: slash-separated segments of lowercase letters,
/// digits, `-` and `.` (not at either end of a segment), e.g. `/prod/web`;
/// relative to the enclosing group when it does not start with `/`; `/` is
/// the root group.
#[derive(ToSchema)]
#[schema(
    as = Id,
    pattern = "^(/|/?([a-z0-9]([a-z0-9.-]*[a-z0-9])?/)*[a-z0-9]([a-z0-9.-]*[a-z0-9])?)$"
)]
pub struct IdDoc(pub String);

/// An id in a path: relative to the root (`prod/web`, or `prod%2Fweb`
/// where a client cannot send `/`). The root group has routes of its own.
#[derive(ToSchema)]
#[schema(
    as = PathId,
    pattern = "^/?([a-z0-9]([a-z0-9.-]*[a-z0-9])?/)*[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"
)]
pub struct PathIdDoc(pub String);

/// `{id}`: an app.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppPath {
    /// The app id, e.g. `prod/web`.
    #[param(value_type = PathIdDoc)]
    pub id: String,
}

/// `{id}`: a group.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GroupPath {
    /// The group id, e.g. `prod`.
    #[param(value_type = PathIdDoc)]
    pub id: String,
}

/// `{version}`: a version as the versions list shows it.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VersionPath {
    /// RFC 3339, e.g. `2026-01-02T03:04:05.123456Z`.
    #[param(format = DateTime)]
    pub version: String,
}

/// `?force=`: true overrides a deployment that holds the app or group.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Force {
    /// Override a deployment that holds the app or group (`true` or `false`).
    pub force: Option<bool>,
}

/// The flags of a task kill.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Kill {
    /// Shrink the app by as many (answers the deployment); not with `wipe`.
    pub scale: Option<bool>,
    /// Accepted for Marathon's clients: Stride forgets every killed task.
    pub wipe: Option<bool>,
    /// Override a deployment that holds the app.
    pub force: Option<bool>,
}

/// `?embed=`: parts to include, e.g. `apps.tasks`, `apps.counts`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmbedQuery {
    /// Parts to include, e.g. `apps.tasks`, `apps.counts` (repeatable).
    pub embed: Option<Vec<String>>,
}

/// A Marathon app definition (`App` in Marathon's RAML). Fields not listed
/// are Marathon's too (see docs/compat.md); unknown ones are ignored.
#[derive(ToSchema)]
#[schema(as = App, example = json!({
    "id": "/prod/web",
    "cmd": "python3 -m http.server $PORT0",
    "instances": 1,
    "cpus": 0.01,
    "mem": 32,
    "labels": {"HAPROXY_GROUP": "external"}
}))]
#[allow(non_snake_case)] // Marathon's field names
pub struct AppDoc {
    /// The app's path, e.g. `/prod/web`.
    #[schema(value_type = IdDoc)]
    pub id: String,
    #[schema(nullable = false)]
    pub cmd: Option<String>,
    #[schema(nullable = false)]
    pub args: Option<Vec<String>>,
    #[schema(nullable = false, minimum = 0)]
    pub instances: Option<u32>,
    #[schema(nullable = false, minimum = 0.001)]
    pub cpus: Option<f64>,
    #[schema(nullable = false, minimum = 0)]
    pub mem: Option<f64>,
    #[schema(nullable = false, minimum = 0)]
    pub disk: Option<f64>,
    /// Strings only: Stride has no secrets.
    #[schema(nullable = false)]
    pub env: Option<BTreeMap<String, String>>,
    #[schema(nullable = false)]
    pub labels: Option<BTreeMap<String, String>>,
    #[schema(nullable = false, value_type = Option<Vec<Object>>)]
    pub portDefinitions: Option<Value>,
    #[schema(nullable = false, value_type = Option<Vec<Object>>)]
    pub healthChecks: Option<Value>,
    /// Alone (with `id`) in an update: revert to that version.
    #[schema(nullable = false)]
    pub version: Option<String>,
}

/// `GET /v2/apps`.
#[derive(ToSchema)]
pub struct AppList {
    pub apps: Vec<AppDoc>,
}

/// `GET /v2/apps/{id}`.
#[derive(ToSchema)]
pub struct AppAnswer {
    pub app: AppDoc,
}

/// What a deployable call answers (also in `Marathon-Deployment-Id`).
#[derive(ToSchema, Serialize)]
#[allow(non_snake_case)]
pub struct DeploymentResult {
    pub deploymentId: String,
    /// The version the change made (RFC 3339).
    pub version: String,
}

/// Versions, newest first (RFC 3339, microseconds).
#[derive(ToSchema)]
pub struct VersionList {
    pub versions: Vec<String>,
}

/// A Marathon task (`Task` in Marathon's RAML).
#[derive(ToSchema, Serialize)]
#[schema(as = Task)]
#[allow(non_snake_case)]
pub struct TaskDoc {
    pub id: String,
    pub appId: Option<String>,
    pub host: String,
    pub ports: Vec<u32>,
    pub state: String,
}

#[derive(ToSchema, Serialize)]
pub struct TaskList {
    pub tasks: Vec<TaskDoc>,
}

#[derive(ToSchema, Serialize)]
pub struct TaskAnswer {
    pub task: TaskDoc,
}

/// What a kill answers: the tasks being killed, or with `scale=true` the
/// deployment that shrinks their apps.
#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub enum KillAnswer {
    Tasks(TaskList),
    Deployment(DeploymentResult),
}

/// What killing one task answers.
#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub enum KillOneAnswer {
    Task(TaskAnswer),
    Deployment(DeploymentResult),
}

/// `POST /v2/tasks/delete`.
#[derive(ToSchema)]
pub struct TaskIds {
    pub ids: Vec<String>,
}

/// A group (`Group` in Marathon's RAML): its apps and groups nested.
#[derive(ToSchema)]
#[schema(as = Group)]
pub struct GroupDoc {
    #[schema(value_type = IdDoc)]
    pub id: String,
    pub apps: Option<Vec<AppDoc>>,
    #[schema(no_recursion, value_type = Option<Vec<Object>>)]
    pub groups: Option<Value>,
    pub dependencies: Option<Vec<String>>,
    pub version: Option<String>,
}

/// A group update: `version` alone rolls back, `scaleBy` alone scales.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct GroupUpdateDoc {
    #[schema(value_type = Option<IdDoc>, nullable = false)]
    pub id: Option<String>,
    #[schema(nullable = false)]
    pub apps: Option<Vec<AppDoc>>,
    #[schema(nullable = false, value_type = Option<Vec<Object>>)]
    pub groups: Option<Value>,
    #[schema(nullable = false)]
    pub dependencies: Option<Vec<String>>,
    #[schema(nullable = false)]
    pub version: Option<String>,
    #[schema(nullable = false, minimum = 0)]
    pub scaleBy: Option<f64>,
}

/// What a group update answers: the deployment, or with `dryRun=true`
/// the plan's steps.
#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub enum GroupUpdateAnswer {
    Deployment(DeploymentResult),
    DryRun(Steps),
}

/// `dryRun=true`: the plan's steps.
#[derive(ToSchema, Serialize)]
pub struct Steps {
    #[schema(value_type = Vec<Object>)]
    pub steps: Value,
}

/// A running deployment (`DeploymentStepInfo`).
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct DeploymentDoc {
    pub id: String,
    pub version: String,
    pub affectedApps: Vec<String>,
    #[schema(value_type = Vec<Object>)]
    pub steps: Value,
    pub currentStep: u32,
    pub totalSteps: u32,
}

/// `GET /v2/queue`, `GET /v1/queue`.
#[derive(ToSchema)]
pub struct QueueAnswer {
    #[schema(value_type = Vec<Object>)]
    pub queue: Value,
}

#[derive(ToSchema)]
pub struct Leader {
    pub leader: String,
}

/// `GET /v1/leader`: the election, and the seq this instance reflects.
#[derive(ToSchema)]
pub struct Election {
    pub leading: bool,
    pub seq: u64,
    /// Whether this instance has a ZooKeeper session (false without `--zk`).
    pub zookeeper: bool,
}

/// `GET /v2/info`: Marathon's `MarathonInfo`; `/v1/info`: Stride's.
#[derive(ToSchema)]
pub struct Info {
    pub name: String,
    pub version: String,
}

/// `GET /v2/eventSubscriptions`.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct CallbackUrls {
    pub callbackUrls: Vec<String>,
}

/// `?callbackUrl=`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case)]
pub struct Callback {
    /// An absolute http(s) URL.
    #[param(pattern = "^https?://.+")]
    pub callbackUrl: String,
}

/// The event a subscription change published (Marathon's
/// `subscribe_event` / `unsubscribe_event`).
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct SubscriptionEvent {
    pub eventType: String,
    pub callbackUrl: String,
}

/// `GET /v1/subscriptions`: each delivery's cursor, counts and last error.
#[derive(ToSchema)]
pub struct Deliveries {
    #[schema(value_type = Vec<Object>)]
    pub subscriptions: Value,
}

/// `GET /v1/sidecars`.
#[derive(ToSchema)]
pub struct SidecarList {
    #[schema(value_type = Vec<Object>)]
    pub sidecars: Value,
}

/// A page of the log (`/v1/events`) or of an audit (`/v1/audit`); events
/// in the shape `docs/stream.md` gives, audits with `changes` on
/// definition changes.
#[derive(ToSchema)]
pub struct EventPage {
    #[schema(value_type = Vec<Object>)]
    pub events: Value,
    /// Where the next page starts: a seq (`/v1/events`) or an opaque
    /// cursor, null on the last page (`/v1/audit`).
    #[schema(value_type = Value)]
    pub next: Value,
    pub head: u64,
}

/// `GET /v1/state`: the versioned state document (`protocol/state.rs`).
#[derive(ToSchema)]
pub struct StateAnswer {
    /// The document's format version.
    pub version: u32,
    /// The last event the state reflects: follow the stream from the next.
    pub seq: u64,
    #[schema(value_type = Object)]
    pub state: Value,
}

/// One changed field between two definitions.
#[derive(ToSchema)]
pub struct ChangeDoc {
    /// A JSON pointer into the definition.
    pub path: String,
    /// Absent when the field was added.
    #[schema(value_type = Option<Value>)]
    pub before: Option<Value>,
    /// Absent when the field was removed.
    #[schema(value_type = Option<Value>)]
    pub after: Option<Value>,
}

/// `GET /v1/apps/{id}/diff`.
#[derive(ToSchema)]
pub struct VersionDiffDoc {
    #[schema(value_type = String)]
    pub app: AppId,
    pub from: String,
    pub to: String,
    pub changes: Vec<ChangeDoc>,
}

/// A task's sandbox file Stride serves.
#[derive(ToSchema)]
#[schema(as = TaskFileName)]
#[allow(non_camel_case_types)] // the file names
pub enum TaskFileName {
    stdout,
    stderr,
}

/// `GET /v1/tasks/{id}/files/{name}`: bytes `offset..next` of a file
/// `size` bytes long, as text (bytes that are not UTF-8 read as U+FFFD).
#[derive(ToSchema)]
pub struct TaskFileChunk {
    pub task: String,
    pub file: String,
    pub offset: u64,
    /// Where the following read starts.
    pub next: u64,
    pub size: u64,
    pub data: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stride",
        description = "An event-sourced control plane for Apache Mesos: Marathon's /v2 API in \
                       Marathon's shapes (docs/compat.md), Stride's own /v1.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Conventions),
    paths(
        super::info::ping,
        super::metrics::metrics,
        spec,
        super::log::state,
        super::log::events,
        super::log::replica,
        super::stream::websocket,
        super::audit::audit,
        super::diff::app_diff,
        super::task_files::read,
        super::stream::sidecars,
        super::subscriptions::deliveries,
        super::queue::explained,
        super::info::stride,
        super::info::election_v1,
        super::stream::marathon_events,
        super::backup::backup,
        super::subscriptions::list,
        super::subscriptions::subscribe,
        super::subscriptions::unsubscribe,
        super::apps::list,
        super::apps::create,
        super::apps::put_many,
        super::apps::patch_many,
        super::apps::show,
        super::apps::replace,
        super::apps::patch,
        super::apps::delete,
        super::apps::restart,
        super::tasks::of_app,
        super::tasks::kill_many,
        super::tasks::kill_one,
        super::apps::versions,
        super::apps::version,
        super::groups::get_root,
        super::groups::create_root,
        super::groups::update_root,
        super::groups::delete_root,
        super::groups::group,
        super::groups::create,
        super::groups::update,
        super::groups::patch,
        super::groups::delete,
        super::groups::apps,
        super::groups::versions,
        super::groups::version_of,
        super::groups::rollback,
        super::pods::pods,
        super::pods::pod,
        super::tasks::list,
        super::tasks::kill_by_id,
        super::deployments::list,
        super::deployments::cancel,
        super::queue::list,
        super::queue::reset_delay,
        super::info::info,
        super::info::leader,
        super::info::abdicate,
    ),
    components(schemas(PathIdDoc, ErrorBody, TaskFileName), responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        Invalid,
        Unavailable
    )),
    tags(
        (name = "apps", description = "Marathon's /v2/apps"),
        (name = "groups", description = "Marathon's /v2/groups"),
        (name = "tasks", description = "Marathon's /v2/tasks"),
        (name = "deployments", description = "Marathon's /v2/deployments and /v2/queue"),
        (name = "events", description = "/v2/events (SSE), /v1/stream (websocket), callbacks"),
        (name = "stride", description = "Stride's own /v1: the log, the projection, audits"),
        (name = "server", description = "Who serves, and how: info, leader, ping, metrics"),
    )
)]
pub struct ApiDoc;

/// What every operation shares: an id made from its method and path
/// (`getV2AppsIdTasks`), the 401 and 403 that authentication and
/// authorization answer, and the credentials they take (an operation open
/// to all, `/ping`, says `security: [{}]` itself).
struct Conventions;

/// The names of the security schemes, as requirements refer to them.
pub const BEARER: &str = "bearer";
pub const BASIC: &str = "basic";

impl Modify for Conventions {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `stride auth token create` (docs/security.md)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            BASIC,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "A user from `stride auth user set` or `--http-credentials`, as Marathon's clients send",
                    ))
                    .build(),
            ),
        );
        // Either scheme will do. A server without an auth file, or whose
        // file grants `anonymous` a role, also serves requests without.
        openapi.security = Some(vec![
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
            SecurityRequirement::new(BASIC, Vec::<String>::new()),
        ]);
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
                ("head", &mut item.head),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    conventions(method, path, operation);
                }
            }
        }
    }
}

fn conventions(method: &str, path: &str, operation: &mut Operation) {
    operation.operation_id = Some(operation_id(method, path));
    // An operation open to all (`security: [{}]`) refuses no one.
    let open = operation
        .security
        .as_ref()
        .is_some_and(|requirements| requirements.iter().all(|r| *r == Default::default()));
    if open {
        return;
    }
    for (status, response) in [("401", "Unauthorized"), ("403", "Forbidden")] {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(response)));
    }
}

/// `get` and `/v2/apps/{id}/tasks` make `getV2AppsIdTasks`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for word in path.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

/// The request is malformed: JSON that does not parse, a query parameter
/// or header of the wrong form.
#[derive(ToResponse)]
pub struct BadRequest(pub ErrorBody);

/// Not authenticated: with an auth file (or `--http-credentials`), no
/// credentials, an unknown token or a wrong password; `WWW-Authenticate`
/// names the schemes (docs/security.md).
#[derive(ToResponse)]
pub struct Unauthorized(pub ErrorBody);

/// Authenticated, but the principal's roles do not grant this verb here.
#[derive(ToResponse)]
pub struct Forbidden(pub ErrorBody);

/// What the path names does not exist.
#[derive(ToResponse)]
pub struct NotFound(pub ErrorBody);

/// The path names a resource that does not take this method (an app id
/// ending in `/tasks`, say); `Allow` lists the methods it takes.
#[derive(ToResponse)]
pub struct MethodNotAllowed(pub ErrorBody);

/// Another deployment holds the app or group (`?force=true` overrides), or
/// what is created exists.
#[derive(ToResponse)]
pub struct Conflict(pub ErrorBody);

/// The input is refused: `details` names each bad field (Marathon's 422).
#[derive(ToResponse)]
pub struct Invalid(pub ErrorBody);

/// The server is stopping, or a limit is reached: try again.
#[derive(ToResponse)]
pub struct Unavailable(pub ErrorBody);

/// How reading one app, its tasks or versions fails.
#[derive(IntoResponses)]
pub enum AppReadErrors {
    #[response(status = 400)]
    BadRequest(#[ref_response] BadRequest),
    #[response(status = 404)]
    NotFound(#[ref_response] NotFound),
    #[response(status = 405)]
    MethodNotAllowed(#[ref_response] MethodNotAllowed),
}

/// How a change to one existing app fails (409: another deployment holds
/// it).
#[derive(IntoResponses)]
pub enum AppChangeErrors {
    #[response(status = 400)]
    BadRequest(#[ref_response] BadRequest),
    #[response(status = 404)]
    NotFound(#[ref_response] NotFound),
    #[response(status = 405)]
    MethodNotAllowed(#[ref_response] MethodNotAllowed),
    #[response(status = 409)]
    Conflict(#[ref_response] Conflict),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}

/// How a change with a body fails (422: the body is refused, field by
/// field).
#[derive(IntoResponses)]
pub enum WriteErrors {
    #[response(status = 400)]
    BadRequest(#[ref_response] BadRequest),
    #[response(status = 409)]
    Conflict(#[ref_response] Conflict),
    #[response(status = 422)]
    Invalid(#[ref_response] Invalid),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}

#[cfg(test)]
mod tests {
    use super::operation_id;

    #[test]
    fn operation_ids_come_from_method_and_path() {
        assert_eq!(
            operation_id("delete", "/v2/apps/{id}/tasks/{taskId}"),
            "deleteV2AppsIdTasksTaskId"
        );
        assert_eq!(operation_id("get", "/openapi.json"), "getOpenapiJson");
        assert_eq!(
            operation_id("post", "/v2/eventSubscriptions"),
            "postV2EventSubscriptions"
        );
    }
}
