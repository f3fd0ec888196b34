//! `GET /v1/tasks/{id}/files/{stdout|stderr}`: a task's output, read from
//! its sandbox on the agent (`mesos::sandbox`), so a person or the UI needs
//! no route to the agents. Tasks already expunged are found through their
//! app's last failure.

use super::extract::Params;
use super::{ApiError, Shared};
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use stride_log::event::{AgentId, TaskId};
use stride_mesos::sandbox::{self, ByteRange, SandboxError, SandboxFile};

/// What one answer may carry (what an agent reads at once), and what it
/// carries unless asked.
const MAX_LENGTH: u64 = sandbox::MAX_READ;
const DEFAULT_LENGTH: u64 = sandbox::MAX_READ;
const FILES: [&str; 2] = ["stdout", "stderr"];

/// `offset` (default: the last `length` bytes) and `length` (default and
/// at most 64 KiB). Answers `{task, file, offset, next, size, data}`:
/// the bytes `offset..next` as text, and the file's size.
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}/files/{name}",
    tag = "stride",
    summary = "A task's stdout or stderr, read from its sandbox",
    params(
        ("id" = String, Path, description = "A task id (a task replaced since is found through its app's last failure)"),
        ("name" = crate::api::openapi::TaskFileName, Path, description = "Which file"),
        ("offset" = Option<u64>, Query, description = "The first byte (default: the last `length` bytes)"),
        ("length" = Option<u64>, Query, maximum = 65536, description = "How many bytes (default and at most 64 KiB)"),
    ),
    responses(
        (status = 200, description = "The bytes offset..next as text", body = crate::api::openapi::TaskFileChunk),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 404, response = crate::api::openapi::NotFound),
        (status = 502, description = "The task's agent could not be asked", body = crate::api::openapi::ErrorBody),
        (status = 503, response = crate::api::openapi::Unavailable),
    )
)]
pub async fn read(
    State(shared): State<Shared>,
    Path((task, name)): Path<(String, String)>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    if !FILES.contains(&name.as_str()) {
        return Err(ApiError::NotFound(format!(
            "no task file '{name}': Stride serves stdout and stderr"
        )));
    }
    let range = range(&params)?;
    let task = TaskId(task);
    let (agent, framework) = locate(&shared, &task)?;
    let Some(mesos) = shared.mesos.get() else {
        // With high availability a standby passes this to the leader
        // (`ha/proxy.rs`): only a leader is subscribed.
        let no_mesos = shared.server.masters.is_empty() && shared.server.detector.is_none();
        return Err(ApiError::Busy(match no_mesos {
            true => "Stride runs without Mesos (--no-mesos)".into(),
            false => "not subscribed to Mesos at the moment (a leader being elected); retry".into(),
        }));
    };
    let file = SandboxFile {
        agent: agent.as_str(),
        framework: &framework,
        executor: task.as_str(),
        name: &name,
    };
    let chunk = sandbox::read(&mesos, &file, range)
        .await
        .map_err(|error| match error {
            SandboxError::NoFile(_) | SandboxError::UnknownAgent(_) => {
                ApiError::NotFound(error.to_string())
            }
            SandboxError::NotSubscribed => ApiError::Busy(error.to_string()),
            SandboxError::Mesos { .. } | SandboxError::Http { .. } | SandboxError::Body { .. } => {
                ApiError::BadGateway(error.to_string())
            }
        })?;
    Ok(Json(json!({
        "task": task,
        "file": name,
        "offset": chunk.offset,
        "next": chunk.next,
        "size": chunk.size,
        "data": chunk.data,
    })))
}

fn range(params: &Params) -> Result<ByteRange, ApiError> {
    let number = |name: &str| {
        params
            .get(name)
            .map(|value| {
                value.parse::<u64>().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "{name} must be a non-negative integer, not '{value}'"
                    ))
                })
            })
            .transpose()
    };
    let length = number("length")?.unwrap_or(DEFAULT_LENGTH);
    if length > MAX_LENGTH {
        return Err(ApiError::BadRequest(format!(
            "length must be at most {MAX_LENGTH}"
        )));
    }
    Ok(ByteRange {
        offset: number("offset")?,
        length,
    })
}

/// The task's agent and Stride's framework id.
fn locate(shared: &Shared, task: &TaskId) -> Result<(AgentId, String), ApiError> {
    let state = shared.projection.read();
    let agent = match state.tasks.get(task) {
        Some(known) => known.agent.clone(),
        None => state
            .apps
            .values()
            .filter_map(|app| app.last_failure.as_ref())
            .find(|failure| failure.task == *task)
            .map(|failure| failure.agent.clone())
            .ok_or_else(|| ApiError::NotFound(format!("Task '{task}' does not exist")))?,
    };
    let agent = agent.ok_or_else(|| {
        ApiError::NotFound(format!("Task '{task}' has no agent: it was never launched"))
    })?;
    let framework = state
        .framework
        .as_ref()
        .ok_or_else(|| ApiError::Busy("Stride has not subscribed to Mesos yet".into()))?;
    Ok((agent, framework.as_str().to_owned()))
}
