//! `/v2/deployments`: running deployments in Marathon's plan shape, and
//! cancelling one.

use super::app_view::readiness_results;
use super::deployable;
use super::extract::{Caller, Params};
use super::{ApiError, Shared};
use crate::health::Readiness;
use crate::stream::marathon::steps_json;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stride_core::command::Command;
use stride_core::projection::{Deployment, State as ProjectionState};
use stride_log::event::json::timestamp;
use stride_log::event::{AppId, DeploymentId};

/// `GET /v2/deployments`: a bare array, as Marathon answers.
#[utoipa::path(
    get,
    path = "/v2/deployments",
    tag = "deployments",
    summary = "Running deployments",
    responses(
        (status = 200, description = "Deployments", body = Vec<crate::api::openapi::DeploymentDoc>),
    )
)]
pub async fn list(State(shared): State<Shared>, who: super::access::Who) -> Json<Value> {
    let scope = who.scope(stride_auth::Verb::Read);
    let state = shared.projection.read();
    let deployments: Vec<Value> = state
        .deployments
        .iter()
        .filter(|(_, deployment)| super::access::deployment_in(&scope, deployment))
        .map(|(id, deployment)| deployment_json(id, deployment, &state, &shared.readiness))
        .collect();
    Json(Value::Array(deployments))
}

/// `DELETE /v2/deployments/{id}`: with `force=true` the deployment just
/// stops (202); otherwise a rollback deployment starts (200).
#[utoipa::path(
    delete,
    path = "/v2/deployments/{id}",
    tag = "deployments",
    summary = "Roll a deployment back, or stop it (force)",
    params(
        ("id" = String, Path, description = "The deployment id"),
        crate::api::openapi::Force,
    ),
    responses(
        (status = 200, description = "The deployment started", body = crate::api::openapi::DeploymentResult),
        (status = 202, description = "Stopped (force=true)"),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 404, response = crate::api::openapi::NotFound),
        (status = 409, response = crate::api::openapi::Conflict),
        (status = 503, response = crate::api::openapi::Unavailable),
    )
)]
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
    // 200 even when the rollback re-creates an app the deployment deleted:
    // Marathon answers a rollback with deploymentResult's default 200.
    let mut response = deployable::submit(&shared, actor, &headers, command).await?;
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// Marathon's `DeploymentStepInfo` (DeploymentsResource.scala): the plan,
/// where it is (1-based) and what it does now.
fn deployment_json(
    id: &DeploymentId,
    deployment: &Deployment,
    state: &ProjectionState,
    readiness: &Readiness,
) -> Value {
    let affected: Vec<&AppId> = deployment.affected().into_iter().collect();
    let current: Vec<Value> = deployment
        .current_step()
        .into_iter()
        .flatten()
        .map(|(app, action)| {
            json!({
                "action": action.marathon_name(),
                "app": app,
                "readinessCheckResults": readiness_results(state, app, readiness),
            })
        })
        .collect();
    let total = deployment.steps.len();
    json!({
        "id": id,
        "version": timestamp(deployment.started_at),
        "affectedApps": affected,
        "affectedPods": [],
        "steps": steps_json(&deployment.steps),
        "currentActions": current,
        "currentStep": (deployment.steps_finished as usize + 1).min(total),
        "totalSteps": total,
    })
}
