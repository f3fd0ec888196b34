//! `/v2/tasks` and an app's tasks: Marathon's task shape, its `text/plain`
//! endpoint list for load balancers, and killing a task.

use super::deployable;
use super::extract::{Caller, Params, json_body};
use super::{ApiError, Shared};
use crate::health::rules::CheckResult;
use crate::health::{HealthResults, run_by_stride};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt::Write;
use std::sync::Arc;
use stride_core::command::{Command, TaskSelection};
use stride_core::projection::{State as ProjectionState, Task};
use stride_log::event::condition::Condition;
use stride_log::event::json::timestamp;
use stride_log::event::{Actor, AgentId, AppId, Event, TaskId};

/// Task counts in Marathon's `AppInfo` and the queue.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub staged: usize,
    pub running: usize,
    pub healthy: usize,
    pub unhealthy: usize,
}

impl Counts {
    pub fn of(state: &ProjectionState, app: &AppId) -> Counts {
        Counts::of_tasks(state.tasks_of(app).map(|(_, task)| task))
    }

    pub fn of_tasks<'a>(tasks: impl Iterator<Item = &'a Task>) -> Counts {
        let mut counts = Counts::default();
        for task in tasks {
            match task.condition {
                Condition::Provisioned | Condition::Staging | Condition::Starting => {
                    counts.staged += 1
                }
                Condition::Running => counts.running += 1,
                _ => continue,
            }
            match task.healthy {
                Some(true) => counts.healthy += 1,
                Some(false) => counts.unhealthy += 1,
                None => {}
            }
        }
        counts
    }
}

/// `GET /v2/tasks`: every app's tasks as JSON (optionally only those in one
/// `status`, e.g. `running`), or the `text/plain` endpoint list.
#[utoipa::path(
    get,
    path = "/v2/tasks",
    tag = "tasks",
    summary = "Every task (JSON, or text/plain endpoints)",
    params(
        ("status" = Option<String>, Query, description = "running or staging"),
    ),
    responses(
        (status = 200, description = "The tasks", body = crate::api::openapi::TaskList),
        (status = 400, response = crate::api::openapi::BadRequest),
    )
)]
pub async fn list(
    State(shared): State<Shared>,
    who: super::access::Who,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = who.scope(stride_auth::Verb::Read);
    let state = shared.projection.read();
    if wants_text(&headers) {
        let apps: Vec<&AppId> = state
            .apps
            .keys()
            .filter(|id| scope.covers(id.as_str()))
            .collect();
        return Ok(endpoints_text(&state, &apps));
    }
    // Marathon (TasksResource.scala) knows `running` and `staging`, given
    // as `status` or repeated `status[]`, and ignores other values.
    let wanted: Vec<Condition> = params
        .all("status")
        .chain(params.all("status[]"))
        .filter_map(|s| match s.to_ascii_lowercase().as_str() {
            "running" => Some(Condition::Running),
            "staging" => Some(Condition::Staging),
            _ => None,
        })
        .collect();
    let tasks: Vec<Value> = state
        .tasks
        .iter()
        .filter(|(_, task)| {
            task.app
                .as_ref()
                .is_some_and(|a| state.apps.contains_key(a) && scope.covers(a.as_str()))
        })
        .filter(|(_, task)| wanted.is_empty() || wanted.contains(&task.condition))
        .map(|(id, task)| task_json(id, task, &state, &shared.health))
        .collect();
    Ok(Json(json!({ "tasks": tasks })).into_response())
}

#[derive(Deserialize)]
struct TaskIds {
    ids: Vec<TaskId>,
}

/// `POST /v2/tasks/delete` (`{"ids": [...]}`): kills the tasks named, of
/// any apps. With `scale=true` their apps shrink by as many, in one
/// deployment (answered with it); otherwise the answer lists the tasks
/// being killed. `wipe` is accepted: Stride has no resident tasks, so a
/// killed task is always forgotten.
#[utoipa::path(
    post,
    path = "/v2/tasks/delete",
    tag = "tasks",
    summary = "Kill tasks by id",
    params(
        crate::api::openapi::Kill,
    ),
    request_body = crate::api::openapi::TaskIds,
    responses(
        (status = 200, description = "The tasks killed, or the deployment when scaling", body = crate::api::openapi::KillAnswer),
        crate::api::openapi::WriteErrors,
    )
)]
pub async fn kill_by_id(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    params: Params,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let scale = scale_not_wipe(&params)?;
    let TaskIds { ids } = json_body(&body)?;
    let command = Command::KillTasksById {
        tasks: ids,
        scale,
        force: params.flag("force")?,
    };
    answer_kills(&shared, actor, &headers, command).await
}

/// Marathon refuses `scale` with `wipe` (AppTasksResource, TasksResource).
fn scale_not_wipe(params: &Params) -> Result<bool, ApiError> {
    let scale = params.flag("scale")?;
    if scale && params.flag("wipe")? {
        return Err(ApiError::BadRequest(
            "You cannot use scale and wipe at the same time.".into(),
        ));
    }
    Ok(scale)
}

/// `GET /v2/apps/{id}/tasks`.
#[utoipa::path(
    get,
    path = "/v2/apps/{id}/tasks",
    tag = "tasks",
    summary = "An app's tasks (JSON, or text/plain endpoints)",
    params(
        crate::api::openapi::AppPath,
    ),
    responses(
        (status = 200, description = "The tasks", body = crate::api::openapi::TaskList),
        crate::api::openapi::AppReadErrors,
    )
)]
pub(super) fn of_app(
    shared: &Shared,
    id: &AppId,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let state = shared.projection.read();
    if !state.apps.contains_key(id) {
        return Err(ApiError::NotFound(format!("App '{id}' does not exist")));
    }
    if wants_text(headers) {
        return Ok(endpoints_text(&state, &[id]));
    }
    let tasks: Vec<Value> = state
        .tasks_of(id)
        .map(|(task_id, task)| task_json(task_id, task, &state, &shared.health))
        .collect();
    Ok(Json(json!({ "tasks": tasks })).into_response())
}

/// `DELETE /v2/apps/{id}/tasks/{taskId}`: `{task}` when only killing;
/// with `scale=true` the app shrinks, which is a deployment.
#[utoipa::path(
    delete,
    path = "/v2/apps/{id}/tasks/{taskId}",
    tag = "tasks",
    summary = "Kill one task",
    params(
        crate::api::openapi::AppPath,
        ("taskId" = String, Path),
        crate::api::openapi::Kill,
    ),
    responses(
        (status = 200, description = "The task killed, or the deployment when scaling", body = crate::api::openapi::KillOneAnswer),
        crate::api::openapi::AppChangeErrors,
    )
)]
pub(super) async fn kill_one(
    shared: &Shared,
    actor: Actor,
    app: AppId,
    task: TaskId,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let scale = scale_not_wipe(params)?;
    let command = Command::KillTasks {
        app,
        which: TaskSelection::One(task.clone()),
        scale,
        force: params.flag("force")?,
    };
    if scale {
        return deployable::submit(shared, actor, headers, command).await;
    }
    deployable::commit(shared, actor, headers, command).await?;
    let state = shared.projection.read();
    let body = state.tasks.get(&task).map_or_else(
        || json!({"id": task}),
        |t| task_json(&task, t, &state, &shared.health),
    );
    Ok(Json(json!({ "task": body })).into_response())
}

/// `DELETE /v2/apps/{id}/tasks?host=&scale=`: kills every live task of the
/// app, or those on `host`. Answers with the deployment when the app
/// shrank, else with the tasks being killed.
#[utoipa::path(
    delete,
    path = "/v2/apps/{id}/tasks",
    tag = "tasks",
    summary = "Kill an app's tasks (all, or on host)",
    params(
        crate::api::openapi::AppPath,
        ("host" = Option<String>, Query),
        crate::api::openapi::Kill,
    ),
    responses(
        (status = 200, description = "The tasks killed, or the deployment when scaling", body = crate::api::openapi::KillAnswer),
        crate::api::openapi::AppChangeErrors,
    )
)]
pub(super) async fn kill_many(
    shared: &Shared,
    actor: Actor,
    app: AppId,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let command = Command::KillTasks {
        app,
        which: TaskSelection::All {
            host: params.get("host").map(str::to_owned),
        },
        scale: scale_not_wipe(params)?,
        force: params.flag("force")?,
    };
    answer_kills(shared, actor, headers, command).await
}

/// The deployment when apps shrank, else the tasks being killed.
async fn answer_kills(
    shared: &Shared,
    actor: Actor,
    headers: &HeaderMap,
    command: Command,
) -> Result<Response, ApiError> {
    let outcome = deployable::commit(shared, actor, headers, command).await?;
    if let Some((deployment, version)) = deployable::deployment_of(&outcome) {
        let body = json!({"deploymentId": deployment, "version": version});
        return Ok(deployable::with_deployment(
            StatusCode::OK,
            &deployment,
            body,
        ));
    }
    let state = shared.projection.read();
    let killed: Vec<Value> = outcome
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::TaskKillRequested(kill) => Some(&kill.task),
            _ => None,
        })
        .filter_map(|id| {
            state
                .tasks
                .get(id)
                .map(|task| task_json(id, task, &state, &shared.health))
        })
        .collect();
    Ok(Json(json!({ "tasks": killed })).into_response())
}

fn wants_text(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/plain") && !accept.contains("json"))
}

/// Marathon's endpoint list for HAProxy bridges: per service port, a line
/// `app_id<TAB>servicePort<TAB>host:port<TAB>...`.
fn endpoints_text(state: &ProjectionState, apps: &[&AppId]) -> Response {
    let mut out = String::new();
    for id in apps {
        let Some(app) = state.apps.get(*id) else {
            continue;
        };
        let clean = id.as_str().trim_start_matches('/').replace('/', "_");
        let service_ports = app.definition.service_ports();
        let running: Vec<&Task> = state
            .tasks_of(id)
            .map(|(_, t)| t)
            .filter(|t| t.condition == Condition::Running)
            .collect();
        if service_ports.is_empty() {
            let _ = write!(out, "{clean}\t \t");
            for task in &running {
                let _ = write!(out, "{}\t", task.host);
            }
            out.push('\n');
        }
        for (index, (_, service_port)) in service_ports.iter().enumerate() {
            let _ = write!(out, "{clean}\t{service_port}\t");
            for task in &running {
                if let Some(port) = task.ports.get(index) {
                    let _ = write!(out, "{}:{port}\t", task.host);
                }
            }
            out.push('\n');
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out).into_response()
}

/// Marathon's task shape.
pub(super) fn task_json(
    id: &TaskId,
    task: &Task,
    state: &ProjectionState,
    health: &HealthResults,
) -> Value {
    let ports = service_ports(state, task.app.as_ref());
    serde_json::to_value(TaskView::new(id, task, state, health, ports)).unwrap_or_default()
}

/// The app's service ports, shared by all of its tasks' views.
pub(super) fn service_ports(state: &ProjectionState, app: Option<&AppId>) -> Arc<[u32]> {
    app.and_then(|app| state.apps.get(app))
        .map(|app| {
            let ports = app.definition.service_ports();
            ports.into_iter().map(|(_, p)| p).collect()
        })
        .unwrap_or_default()
}

/// Marathon's task shape (TaskConversion.scala), serialized straight from
/// the projection: the app list with every task embedded is the largest
/// answer Stride gives. A task no longer active has no ports, times or
/// version, as in Marathon.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TaskView<'a> {
    app_id: &'a Option<AppId>,
    health_check_results: Vec<Value>,
    host: &'a str,
    id: &'a TaskId,
    ip_addresses: [(); 0],
    ports: &'a [u32],
    service_ports: Arc<[u32]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slave_id: &'a Option<AgentId>,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    staged_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    local_volumes: [(); 0],
    role: &'static str,
}

impl<'a> TaskView<'a> {
    pub fn new(
        id: &'a TaskId,
        task: &'a Task,
        state: &ProjectionState,
        health: &HealthResults,
        service_ports: Arc<[u32]>,
    ) -> Self {
        let active = !task.condition.is_terminal();
        TaskView {
            app_id: &task.app,
            health_check_results: health_check_results(id, task, state, health),
            host: &task.host,
            id,
            ip_addresses: [],
            ports: if active { &task.ports } else { &[] },
            service_ports,
            slave_id: &task.agent,
            state: state_name(task),
            staged_at: active.then(|| timestamp(task.staged_at)),
            started_at: task.started_at.filter(|_| active).map(timestamp),
            version: active.then(|| timestamp(task.app_version)),
            local_volumes: [],
            role: "*",
        }
    }
}

/// Marathon's `healthCheckResults`: for checks Stride runs, each one's
/// results from memory; otherwise the `healthy` flag of the task's Mesos
/// status updates, which is all Mesos says. (When an app mixes both, the
/// projection's flag is Stride's verdict, so only Stride's results show.)
fn health_check_results(
    id: &TaskId,
    task: &Task,
    state: &ProjectionState,
    health: &HealthResults,
) -> Vec<Value> {
    let checks = crate::health::definition_of(state, task)
        .map(|definition| definition.health_checks.as_slice())
        .unwrap_or_default();
    let results: Vec<(bool, CheckResult)> = if checks.iter().any(|c| run_by_stride(c.protocol)) {
        let results = health.of(id);
        results.into_values().map(|r| (r.alive(), r)).collect()
    } else {
        task.healthy
            .map(|alive| (alive, CheckResult::default()))
            .into_iter()
            .collect()
    };
    results
        .into_iter()
        .map(|(alive, result)| {
            let mut health = json!({
                "alive": alive,
                "consecutiveFailures": result.consecutive_failures,
                "instanceId": id,
            });
            for (key, value) in [
                ("firstSuccess", result.first_success.map(timestamp)),
                ("lastSuccess", result.last_success.map(timestamp)),
                ("lastFailure", result.last_failure.map(timestamp)),
                ("lastFailureCause", result.last_failure_cause),
            ] {
                if let Some(value) = value {
                    health[key] = json!(value);
                }
            }
            health
        })
        .collect()
}

/// The most recent failed task of the app, in Marathon's `TaskFailure`
/// shape.
pub(super) fn last_failure(state: &ProjectionState, app: &AppId) -> Option<Value> {
    let failure = state.apps.get(app)?.last_failure.as_ref()?;
    Some(json!({
        "appId": app,
        "taskId": failure.task,
        "host": failure.host,
        "slaveId": failure.agent,
        "state": failure.mesos_state,
        "message": failure.message.clone().unwrap_or_default(),
        "timestamp": timestamp(failure.at),
        "version": timestamp(failure.app_version),
    }))
}

/// The Mesos state name Marathon shows; before Mesos has said anything the
/// task counts as staging.
fn state_name(task: &Task) -> String {
    if let Some(state) = &task.mesos_state {
        return state.clone();
    }
    let name = match task.condition {
        Condition::Provisioned | Condition::Staging => "TASK_STAGING",
        Condition::Starting => "TASK_STARTING",
        Condition::Running => "TASK_RUNNING",
        Condition::Killing => "TASK_KILLING",
        Condition::Finished => "TASK_FINISHED",
        Condition::Failed => "TASK_FAILED",
        Condition::Killed => "TASK_KILLED",
        Condition::Error => "TASK_ERROR",
        Condition::Dropped => "TASK_DROPPED",
        Condition::Unreachable => "TASK_UNREACHABLE",
        Condition::Gone => "TASK_GONE",
        Condition::GoneByOperator => "TASK_GONE_BY_OPERATOR",
        Condition::Unknown => "TASK_UNKNOWN",
    };
    name.to_owned()
}
