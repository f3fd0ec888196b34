//! Answers to commands that start a deployment: `{deploymentId, version}`
//! and a `Marathon-Deployment-Id` header.

use super::idempotency::idempotency_key;
use super::{ApiError, Shared};
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stride_core::command::{Command, Outcome, Rejection};
use stride_log::event::json::timestamp;
use stride_log::event::{Actor, Event};

/// Submits `command` and answers with the deployment it started: 201 when
/// that created an app (a PUT of a new id), else 200.
pub async fn submit(
    shared: &Shared,
    actor: Actor,
    headers: &HeaderMap,
    command: Command,
) -> Result<Response, ApiError> {
    let outcome = commit(shared, actor, headers, command).await?;
    let (deployment, version) = started(&outcome)?;
    let created = outcome
        .events
        .iter()
        .any(|e| matches!(e.event, Event::AppCreated(_)));
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = json!({"deploymentId": deployment, "version": version});
    Ok(with_deployment(status, &deployment, body))
}

/// Submits `command` with the request's idempotency key.
pub async fn commit(
    shared: &Shared,
    actor: Actor,
    headers: &HeaderMap,
    command: Command,
) -> Result<Outcome, ApiError> {
    super::access::authorize_command(&command, &shared.projection.read())?;
    let key = idempotency_key(headers)?;
    Ok(shared.committer.submit(actor, key, command).await?)
}

/// The deployment a command started, if any, and the version it made.
pub fn deployment_of(outcome: &Outcome) -> Option<(String, String)> {
    outcome.events.iter().find_map(|e| match &e.event {
        Event::DeploymentPlanned(d) => Some((d.deployment.to_string(), timestamp(e.recorded_at))),
        // Recorded before plans; a retry of such a command replays it.
        Event::DeploymentStarted(d) => Some((d.deployment.to_string(), timestamp(e.recorded_at))),
        _ => None,
    })
}

/// The deployment a deployable command started. A retried command that
/// started none was another request, whose Idempotency-Key was recorded
/// before requests were digested (store format 2).
pub fn started(outcome: &Outcome) -> Result<(String, String), ApiError> {
    deployment_of(outcome).ok_or_else(|| match outcome.replayed {
        true => ApiError::Rejected(Rejection::reused_key()),
        false => ApiError::internal("a deployable command started no deployment"),
    })
}

pub fn with_deployment(status: StatusCode, deployment: &str, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(deployment) {
        response
            .headers_mut()
            .insert("Marathon-Deployment-Id", value);
    }
    response
}
