//! `/v2/deployments`: running deployments in Marathon's plan shape, and
//! cancelling one.

use super::deployable;
use super::extract::{Caller, Params};
use super::{ApiError, Shared};
use crate::command::Command;
use crate::event::json::timestamp;
use crate::event::{AppId, DeploymentId, DeploymentKind};
use crate::health::Readiness;
use crate::projection::{Deployment, State as ProjectionState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `GET /v2/deployments`: a bare array, as Marathon answers.
pub async fn list(State(shared): State<Shared>) -> Json<Value> {
    let state = shared.projection.read();
    let deployments: Vec<Value> = state
        .deployments
        .iter()
        .map(|(id, deployment)| deployment_json(id, deployment, &state, &shared.readiness))
        .collect();
    Json(Value::Array(deployments))
}

/// `DELETE /v2/deployments/{id}`: with `force=true` the deployment just
/// stops (202); otherwise a rollback deployment starts (200).
pub async fn cancel(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let deployment = uuid::Uuid::parse_str(&id)
        .map(DeploymentId)
        .map_err(|_| ApiError::NotFound(format!("DeploymentPlan {id} does not exist")))?;
    let force = params.flag("force")?;
    let command = Command::CancelDeployment { deployment, force };
    if force {
        deployable::commit(&shared, actor, &headers, command).await?;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    deployable::submit(&shared, actor, &headers, command).await
}

/// Marathon's action name for what a deployment does to its app.
fn action(kind: DeploymentKind) -> &'static str {
    match kind {
        DeploymentKind::Create => "StartApplication",
        DeploymentKind::Scale => "ScaleApplication",
        DeploymentKind::Update | DeploymentKind::Restart | DeploymentKind::Rollback => {
            "RestartApplication"
        }
        DeploymentKind::Delete => "StopApplication",
    }
}

/// Marathon's `readinessCheckResults`: the last answer of each readiness
/// check of the deployment's app's tasks.
fn readiness_results(state: &ProjectionState, app: &AppId, readiness: &Readiness) -> Vec<Value> {
    let mut results = Vec::new();
    for (task, _) in state.tasks_of(app) {
        for (name, answer) in readiness.results_of(task) {
            let last = match &answer.answer {
                Ok(status) => json!({"status": status}),
                Err(error) => json!({"error": error}),
            };
            results.push(json!({"name": name, "taskId": task, "ready": answer.ready,
                "lastResponse": last}));
        }
    }
    results
}

fn deployment_json(
    id: &DeploymentId,
    deployment: &Deployment,
    state: &ProjectionState,
    readiness: &Readiness,
) -> Value {
    let step = json!({"actions": [{"action": action(deployment.kind), "app": deployment.app}]});
    let steps: Vec<Value> = (0..deployment.steps).map(|_| step.clone()).collect();
    json!({
        "id": id,
        "version": timestamp(deployment.started_at),
        "affectedApps": [deployment.app],
        "affectedPods": [],
        "steps": steps,
        "currentActions": [{
            "action": action(deployment.kind),
            "app": deployment.app,
            "readinessCheckResults": readiness_results(state, &deployment.app, readiness),
        }],
        "currentStep": (deployment.steps_finished + 1).min(deployment.steps),
        "totalSteps": deployment.steps,
    })
}
